"""Model variants the accuracy work added (cubic node product, radial rank): same physics contract."""

import pytest
import torch

from dens_calc import DeNSCalculator
from dens_calc.testing import (
    assert_forces_match_finite_differences,
    assert_rotation_equivariant,
    assert_stress_matches_finite_differences,
    model_energy,
    random_rotation,
    tiny_model,
)


@pytest.fixture(scope="module")
def cubic_calc():
    return DeNSCalculator(tiny_model(correlation=3, radial_rank=3), device="cpu", dtype="float64")


@pytest.mark.parametrize("improper", [False, True])
def test_cubic_model_is_o3_equivariant(cubic_calc, ethanol, si_cell, improper):
    for atoms in (ethanol, si_cell):
        assert_rotation_equivariant(atoms, cubic_calc, random_rotation(3, improper=improper), atol=1e-9)


def test_cubic_model_forces_and_stress_are_derivatives(cubic_calc, ethanol, si_cell):
    assert_forces_match_finite_differences(ethanol, cubic_calc)
    assert_stress_matches_finite_differences(si_cell, cubic_calc)


def test_cubic_term_changes_the_energy_and_is_trainable(ethanol):
    plain = tiny_model(seed=4)
    cubic = tiny_model(seed=4, correlation=3)
    # the cubic model has the plain model's weights plus one product per layer
    extra = {k for k in cubic.state_dict()} - {k for k in plain.state_dict()}
    assert extra and all(".cubic." in k for k in extra)
    cubic.load_state_dict({**cubic.state_dict(), **plain.state_dict()})
    energies = [model_energy(ethanol, model) for model in (plain, cubic)]
    assert abs(energies[0] - energies[1]) > 1e-6
    # zero cubic weights give back the plain model exactly
    with torch.no_grad():
        for layer in cubic.layers:
            layer.cubic.weight.zero_()
    assert model_energy(ethanol, cubic) == pytest.approx(energies[0], abs=1e-10)


def test_unsymmetric_product_equals_dense_contraction():
    from dens_calc.nn.blocks import SquareProduct
    from dens_calc.nn.irreps import square_coupling_table

    torch.manual_seed(0)
    product = SquareProduct(2, 3, 2, symmetric=False).double()
    a, b = torch.randn(4, 9, 3, dtype=torch.float64), torch.randn(4, 9, 3, dtype=torch.float64)
    species = torch.tensor([0, 1, 1, 0])
    _, table = square_coupling_table(2)
    dense = table.view(-1, 9, 9, 9)  # [P, k, i, j]
    w = product.weight[species]  # [N, P, C]
    expected = torch.einsum("pkij,nic,njc,npc->nkc", dense, a, b, w)
    torch.testing.assert_close(product(a, species, b), expected, rtol=1e-10, atol=1e-12)


def test_correlation_must_be_2_or_3():
    from dens_calc.nn.model import ModelConfig

    with pytest.raises(ValueError, match="correlation"):
        ModelConfig(species=[1], atomic_energies=[0.0], correlation=4)


def test_soft_rms_norm_leaves_small_features_and_bounds_large_ones():
    from dens_calc.nn.blocks import SoftRMSNorm

    norm = SoftRMSNorm(l_max=2, channels=4).double()
    x = torch.randn(5, 9, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(norm(1e-3 * x), 1e-3 * x, rtol=1e-5)  # ~identity where features are small
    big = norm(1e4 * x)
    assert big.abs().max() < 10 and torch.allclose(big, norm(1e5 * x), rtol=1e-6)  # scale-free where large
    zero = torch.zeros(2, 9, 4, dtype=torch.float64, requires_grad=True)
    out = norm(zero)
    out.sum().backward()  # smooth at zero (no division by a vanishing norm)
    assert torch.isfinite(zero.grad).all() and torch.equal(out, zero)


def test_models_saved_before_the_product_norm_load_without_it():
    from dens_calc.nn.model import ModelConfig

    config = ModelConfig.from_dict({"species": [14], "atomic_energies": [-5.0]})
    assert config.product_norm is False
