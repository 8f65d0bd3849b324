"""The fused CPU edge-convolution kernel agrees with the torch implementation it replaces."""

import logging

import numpy as np
import pytest
import torch
from ase.build import bulk

from dens_calc import DeNSCalculator
from dens_calc.nn import fused
from dens_calc.nn.blocks import EdgeConvolution
from dens_calc.nn.fused import fused_applies, fused_available, use_fused

needs_kernel = pytest.mark.skipif(not fused_available(), reason="fused CPU kernel could not be compiled here")


def edge_inputs(nodes=7, edges=40, d=9, channels=8, num_basis=6, seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    vectors = torch.randn(edges, 3, generator=gen, dtype=dtype)
    from e3nn import o3

    l_max = int(round(d**0.5)) - 1
    sh = o3.spherical_harmonics(list(range(l_max + 1)), vectors, normalize=True, normalization="component")
    return {
        "h": torch.randn(nodes, d, channels, generator=gen, dtype=dtype),
        "sh": sh,
        "basis": torch.randn(edges, num_basis, generator=gen, dtype=dtype),
        "envelope": torch.rand(edges, generator=gen, dtype=dtype),
        "sender": torch.randint(0, nodes, (edges,), generator=gen),
        # unsorted receivers and repeated pairs: the scatter must not assume any order
        "receiver": torch.randint(0, nodes, (edges,), generator=gen),
    }


def run_conv(conv, inputs, fused_on, scalar_input, wrt=("h", "sh", "basis", "envelope")):
    leaves = {k: (v.clone().requires_grad_(True) if k in wrt else v) for k, v in inputs.items()}
    with use_fused(fused_on):
        out = conv(leaves["h"], leaves["sh"], leaves["basis"], leaves["envelope"], leaves["sender"],
                   leaves["receiver"], scalar_input=scalar_input)
        weight = torch.randn(out.shape, generator=torch.Generator().manual_seed(9), dtype=out.dtype)
        grads = torch.autograd.grad((out * weight).sum(), [leaves[k] for k in wrt])
    return out, dict(zip(wrt, grads))



def assert_same_results(got, expected, rtol=1e-12, atol=1e-12, grad_rtol=1e-11, grad_atol=1e-12):
    """``got`` and ``expected`` are (output, {input name: gradient}) pairs from :func:`run_conv`."""
    torch.testing.assert_close(got[0], expected[0], rtol=rtol, atol=atol)
    for name, grad in expected[1].items():
        torch.testing.assert_close(got[1][name], grad, rtol=grad_rtol, atol=grad_atol, msg=name)

@needs_kernel
@pytest.mark.parametrize("l_max", [0, 1, 2, 3])
@pytest.mark.parametrize("scalar_input", [False, True])
@pytest.mark.parametrize("rank", [1, 3])
def test_fused_convolution_and_gradients_equal_torch_path(l_max, scalar_input, rank):
    torch.manual_seed(3)
    d = (l_max + 1) ** 2
    conv = EdgeConvolution(l_max, 8, 6, 16, rank).double().eval()
    inputs = edge_inputs(d=d)
    assert fused_applies(inputs["h"])
    assert_same_results(run_conv(conv, inputs, True, scalar_input), run_conv(conv, inputs, False, scalar_input))
    # the parameters' gradients too (radial network) — eval mode can still be differentiated
    with use_fused(True):
        loss = conv(*(inputs[k] for k in ("h", "sh", "basis", "envelope", "sender", "receiver")),
                    scalar_input=scalar_input).square().sum()
    fused_param_grads = torch.autograd.grad(loss, list(conv.parameters()))
    with use_fused(False):
        loss = conv(*(inputs[k] for k in ("h", "sh", "basis", "envelope", "sender", "receiver")),
                    scalar_input=scalar_input).square().sum()
    for got, expected in zip(fused_param_grads, torch.autograd.grad(loss, list(conv.parameters()))):
        torch.testing.assert_close(got, expected, rtol=1e-11, atol=1e-12)


@needs_kernel
def test_fused_convolution_float32_with_channel_groups_and_remainder():
    # 40 channels = one group of 32 plus one vector of 8: both code paths of the kernel
    torch.manual_seed(4)
    conv = EdgeConvolution(2, 40, 6, 16, 2).eval()
    inputs = edge_inputs(channels=40, edges=300, nodes=30, dtype=torch.float32)
    expected = run_conv(conv, inputs, False, False)
    assert_same_results(run_conv(conv, inputs, True, False), expected, rtol=1e-4, atol=1e-5, grad_rtol=1e-4, grad_atol=1e-4)


@needs_kernel
def test_int32_and_strided_edge_indices_are_accepted():
    conv = EdgeConvolution(2, 8, 6, 16, 2).double().eval()
    inputs = edge_inputs()
    expected = run_conv(conv, inputs, False, False, wrt=("h",))
    pairs = torch.stack([inputs["sender"], inputs["receiver"]], dim=1)  # [E, 2]: columns are strided
    for sender, receiver in ((inputs["sender"].int(), inputs["receiver"].int()), (pairs[:, 0], pairs[:, 1])):
        got = run_conv(conv, dict(inputs, sender=sender, receiver=receiver), True, False, wrt=("h",))
        assert_same_results(got, expected)


@needs_kernel
@pytest.mark.parametrize("threads", [1, 3])
def test_fused_convolution_independent_of_thread_count(threads):
    conv = EdgeConvolution(2, 8, 6, 16, 2).double().eval()
    inputs = edge_inputs(edges=500, nodes=40)
    expected = run_conv(conv, inputs, False, False)
    torch.set_num_threads(threads)  # the autouse fixture restores 2
    assert_same_results(run_conv(conv, inputs, True, False), expected)


@needs_kernel
@pytest.mark.parametrize("scalar_input", [False, True])
def test_fused_function_derivatives_to_third_order(scalar_input):
    """Force training differentiates the backward kernel: numerical checks of 2nd and 3rd derivatives."""
    torch.manual_seed(5)
    conv = EdgeConvolution(2, 4, 6, 16, 2).double()
    index, value = (
        (conv.scalar_coupling_index, conv.scalar_coupling_value) if scalar_input else (conv.coupling_index, conv.coupling_value)
    )
    nodes, edges = 3, 5  # small: third-order numerical checks cost O(inputs^2) backward passes
    gen = torch.Generator().manual_seed(6)
    inputs = [torch.randn(shape, generator=gen, dtype=torch.float64, requires_grad=True)
              for shape in ((nodes, 1 if scalar_input else 9, 4), (edges, 2, conv.num_paths), (edges, 9), (edges, 2, 4))]
    sender, receiver = torch.randint(0, nodes, (edges,), generator=gen), torch.randint(0, nodes, (edges,), generator=gen)

    def message(h, b, y, a):
        return fused.FusedEdgeConvolution.apply(h, b, y, a, sender, receiver, index, value.like(h))

    def gradient(h, b, y, a):
        return torch.autograd.grad(message(h, b, y, a).square().sum(), (h, b, y, a), create_graph=True)

    assert torch.autograd.gradcheck(message, inputs)
    assert torch.autograd.gradgradcheck(message, inputs)
    assert torch.autograd.gradgradcheck(gradient, inputs)


@needs_kernel
def test_force_and_stress_training_gradients_equal_torch_path(model64, si_cell):
    """A conservative training loss (E, F = -dE/dr, stress) differentiated w.r.t. the weights."""
    from dens_calc.data.graph import atoms_to_graph, collate
    from dens_calc.nn.model import evaluate

    graph = collate([atoms_to_graph(si_cell, model64.config.species, model64.config.r_max, dtype=torch.float64)])
    params = [p for p in model64.parameters() if p.requires_grad]
    results = []
    for fused_on in (False, True):
        with use_fused(fused_on):
            out = evaluate(model64, graph, compute_forces=True, compute_stress=True, training=True)
            loss = out["energy"].square().sum() + out["forces"].square().sum() + out["stress"].square().sum()
            results.append(torch.autograd.grad(loss, params, allow_unused=True))
    for got, expected in zip(results[1], results[0]):
        if expected is None:
            assert got is None
        else:
            torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)


@needs_kernel
def test_fused_convolution_without_edges_gives_zeros():
    conv = EdgeConvolution(2, 8, 6, 16, 2).double().eval()
    inputs = edge_inputs(edges=0)
    out, grads = run_conv(conv, inputs, True, False, wrt=("h",))
    assert out.shape == (7, 9, 8) and not out.any() and not grads["h"].any()


def test_torch_path_is_used_where_the_kernel_does_not_apply():
    assert not fused_applies(torch.zeros(3, 9, 6))  # 6 channels: not a whole vector
    assert not fused_applies(torch.zeros(3, 9, 8, dtype=torch.float16))
    with use_fused(False):
        assert not fused_available()


def test_failed_build_falls_back_with_a_warning(monkeypatch, caplog):
    def broken_load(*args, **kwargs):
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(fused, "_state", {"loaded": None})
    monkeypatch.setattr("torch.utils.cpp_extension.load", broken_load)
    with caplog.at_level(logging.WARNING, logger="dens_calc.nn.fused"):
        assert not fused_available()
    assert "torch path" in caplog.text and "no C++ compiler" in caplog.text
    assert not fused_available()  # not retried


@needs_kernel
def test_bundled_model_energy_forces_stress_identical_with_and_without_kernel():
    atoms = bulk("Si", "diamond", a=5.43, cubic=True).repeat((1, 1, 2))
    atoms.rattle(0.05, seed=3)
    calc = DeNSCalculator("si-zuo2020-small", device="cpu", dtype="float64")
    results = []
    for fused_on in (False, True):
        with use_fused(fused_on):
            calc.calculate(atoms, ["energy", "forces", "stress"])
            results.append(dict(calc.results))
    assert abs(results[1]["energy"] - results[0]["energy"]) < 1e-9
    np.testing.assert_allclose(results[1]["forces"], results[0]["forces"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(results[1]["stress"], results[0]["stress"], rtol=0, atol=1e-11)
    assert np.abs(results[0]["forces"]).max() > 0.1  # a real model: forces are not trivially zero
