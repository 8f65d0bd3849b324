"""DeNS corruption and loss: each piece of DENS.md checked on its own."""

import math

import numpy as np
import pytest
import torch
from torch_geometric.data import Batch, Data

from dens_calc.data import atoms_to_graph, collate, extract_labels
from dens_calc.nn.model import evaluate
from dens_calc.testing import tiny_model
from dens_calc.train import DeNSConfig, LossWeights, TrainConfig, corrupt, lambda_dens_at, loss_terms, sigma_grid, training_loss
from dens_calc.train.dens import draw_sigmas, select_samples
from train_helpers import emt_batch, emt_frames


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_only_picked_atoms_move_with_noise_of_the_right_scale():
    n, sigma, ratio = 20000, 0.1, 0.3
    cfg = DeNSConfig(p=1.0, ratio=ratio, sigma=sigma)
    pos = torch.randn(n, 3, dtype=torch.float64)
    c = corrupt(cfg, pos, torch.zeros(n, dtype=torch.long), 1, None, _gen())
    moved = (c.positions != pos).any(dim=1)
    assert torch.equal(moved, c.picked)
    assert abs(c.picked.double().mean().item() - ratio) < 0.015
    disp = (c.positions - pos)[c.picked]
    assert abs(disp.std().item() - sigma) < 0.03 * sigma
    assert abs(disp.mean().item()) < 0.01 * sigma
    torch.testing.assert_close(c.target, (c.positions - pos) / sigma)


def test_fixed_atoms_never_move():
    n = 1000
    fixed = torch.arange(n) % 2 == 0
    cfg = DeNSConfig(p=1.0, ratio=1.0, sigma=0.2)
    pos = torch.zeros(n, 3, dtype=torch.float64)
    c = corrupt(cfg, pos, torch.zeros(n, dtype=torch.long), 1, fixed, _gen())
    assert not c.picked[fixed].any() and c.picked[~fixed].all()
    assert torch.all(c.positions[fixed] == 0) and torch.all(c.target[fixed] == 0)


def test_fixatoms_constraint_reaches_the_graph():
    from ase.constraints import FixAtoms

    atoms = emt_frames(1)[0]
    atoms.set_constraint(FixAtoms(indices=[0, 1]))
    labels, _ = extract_labels(atoms)
    g = collate([atoms_to_graph(atoms, [29], 3.0, dtype=torch.float64, labels=labels)])
    c = corrupt(DeNSConfig(p=1.0, ratio=1.0), g.pos, g.batch, 1, g.fixed, _gen())
    assert c.picked.tolist() == [False, False, True, True]


def test_selection_per_structure_and_per_batch():
    cfg = DeNSConfig(p=0.25)
    sel = select_samples(cfg, 20000, _gen())
    assert abs(sel.double().mean().item() - 0.25) < 0.015
    batch_cfg = DeNSConfig(p=0.25, selection="batch")
    draws = [select_samples(batch_cfg, 7, g) for g in [_gen(0)] * 1 for _ in range(400)]
    assert all(d.all() or not d.any() for d in draws)
    assert 0.15 < np.mean([bool(d[0]) for d in draws]) < 0.35
    # unselected structures have no picked atoms
    n_graphs, per = 50, 10
    batch = torch.arange(n_graphs).repeat_interleave(per)
    c = corrupt(DeNSConfig(p=0.5, ratio=1.0), torch.zeros(n_graphs * per, 3), batch, n_graphs, None, _gen(3))
    assert torch.equal(c.picked, c.selected[batch])


def test_multi_scale_sigma_draws_stay_in_range_and_target_uses_sigma_max():
    cfg = DeNSConfig(p=1.0, ratio=1.0, multi_scale=True, sigma_min=0.01, sigma_max=0.5, num_sigmas=50)
    grid = sigma_grid(cfg)
    assert len(grid) == 50 and math.isclose(grid[0], 0.01) and math.isclose(grid[-1], 0.5)
    ratios = grid[1:] / grid[:-1]
    torch.testing.assert_close(ratios, torch.full_like(ratios, ratios[0].item()))
    draws = draw_sigmas(cfg, 5000, _gen())
    assert draws.min() >= 0.01 - 1e-12 and draws.max() <= 0.5 + 1e-12
    assert all(torch.isclose(grid, d).any() for d in draws[:200])
    assert len(torch.unique(draws)) > 40
    n = 40
    batch = torch.arange(n).repeat_interleave(100)
    pos = torch.zeros(n * 100, 3, dtype=torch.float64)
    c = corrupt(cfg, pos, batch, n, None, _gen(1))
    torch.testing.assert_close(c.target, c.positions / 0.5)
    per_graph_std = torch.stack([c.positions[batch == k].std() for k in range(n)])
    assert torch.corrcoef(torch.stack([per_graph_std, c.sigma]))[0, 1] > 0.95


def test_lambda_decay_is_linear_to_zero():
    cfg = DeNSConfig(lambda_dens=5.0, lambda_decay=True)
    assert [lambda_dens_at(cfg, x) for x in (0.0, 0.5, 1.0)] == [5.0, 2.5, 0.0]
    assert lambda_dens_at(DeNSConfig(lambda_dens=5.0, lambda_decay=False), 0.9) == 5.0


def _three_atom_graph():
    g = Data(
        pos=torch.zeros(3, 3, dtype=torch.float64), energy=torch.tensor([-3.0], dtype=torch.float64),
        forces=torch.tensor([[1.0, 0, 0], [0, 2.0, 0], [0, 0, -1.0]], dtype=torch.float64),
        has_energy=torch.tensor([True]), has_forces=torch.tensor([True]), has_stress=torch.tensor([False]),
        cell=torch.zeros(1, 3, 3, dtype=torch.float64), stress=torch.zeros(1, 3, 3, dtype=torch.float64), num_nodes=3,
    )
    return Batch.from_data_list([g])


def _three_atom_prediction():
    from dens_calc.train.dens import Corruption

    g = _three_atom_graph()
    pred = {"energy": torch.tensor([-2.4], dtype=torch.float64),
            "forces": torch.tensor([[1.0, 0.3, 0.4], [0, 2.0, 0], [0, 0, 0]], dtype=torch.float64),
            "noise": torch.tensor([[0, 0, 0], [1.0, 0, 0], [0, 0, 0]], dtype=torch.float64)}
    target = torch.tensor([[0, 0, 0], [1.0, 2.0, 2.0], [0, 0, 0]], dtype=torch.float64)
    corruption = Corruption(positions=g.pos, picked=torch.tensor([False, True, False]), selected=torch.tensor([True]),
                            sigma=torch.tensor([0.1]), target=target)
    return g, pred, corruption


def test_mse_loss_equals_hand_computation_on_three_atoms():
    g, pred, corruption = _three_atom_prediction()
    terms = loss_terms(pred, g, LossWeights(energy=2.0, forces=10.0, dens=5.0, kind="mse", separate_means=False), scale=2.0,
                       corruption=corruption)
    # energy: 2 * (0.6 / 3 atoms / scale 2)^2 = 0.02
    # atom 0 (force): 10 * |(0, .3, .4) / 2|^2 / 3 = 10 * 0.0625 / 3 ; atom 1 (noise): 5 * |(0, 2, 2)|^2 / 3 = 40 / 3
    # atom 2 (force): 10 * |(0, 0, 1) / 2|^2 / 3 = 2.5 / 3 ; vector term = mean over the 3 atoms
    expected_vec = (10 * 0.0625 / 3 + 40 / 3 + 2.5 / 3) / 3
    assert terms["energy"].item() == pytest.approx(0.02)
    assert terms["vector"].item() == pytest.approx(expected_vec)
    assert terms["dens"].item() == pytest.approx(40 / 9)


def test_norm_loss_equals_hand_computation_on_three_atoms():
    g, pred, corruption = _three_atom_prediction()
    w = LossWeights(energy=2.0, forces=10.0, dens=5.0, kind="norm", separate_means=False)
    terms = loss_terms(pred, g, w, scale=2.0, corruption=corruption)
    # energy: 2 * |(-2.4) - (-3)| / 3 atoms / scale 2 = 0.2
    # atom 0 (force): 10 * |(0, .3, .4)| / 2 = 2.5 ; atom 1 (noise): 5 * |(0, 2, 2)| = 5 * sqrt(8);
    # atom 2 (force): 10 * |(0, 0, 1)| / 2 = 5 ; vector term = mean over the 3 atoms
    expected_vec = (2.5 + 5 * math.sqrt(8) + 5.0) / 3
    assert terms["energy"].item() == pytest.approx(0.2)
    assert terms["vector"].item() == pytest.approx(expected_vec)
    assert terms["dens"].item() == pytest.approx(5 * math.sqrt(8) / 3)
    assert terms["total"].item() == pytest.approx(0.2 + expected_vec)
    dropped = loss_terms(pred, g, LossWeights(energy=2.0, forces=10.0, dens=5.0, energy_on_noisy=False, kind="norm",
                                                       separate_means=False), scale=2.0,
                         corruption=corruption)
    assert dropped["energy"].item() == 0.0 and dropped["vector"].item() == pytest.approx(expected_vec)


@pytest.fixture
def cu_batch():
    return emt_batch(4, seed=5)


@pytest.fixture
def cu_model():
    return tiny_model(species=(29,), channels=8, l_max=1, r_max=3.0)


@pytest.mark.parametrize("forces", ["direct", "conservative"])
def test_energy_term_is_present_on_dens_samples_unless_dropped(cu_model, cu_batch, forces):
    keep = TrainConfig(forces=forces, dens={"enabled": True, "p": 1.0, "ratio": 0.5})
    loss, parts = training_loss(cu_model, cu_batch, keep, generator=_gen())
    assert parts["dens_atoms"] > 0 and parts["energy"] > 1e-6 and parts["dens"] > 0
    loss.backward()
    assert cu_model.final_readout[0].weight.grad.abs().sum() > 0
    drop = TrainConfig(forces=forces, dens={"enabled": True, "p": 1.0, "ratio": 0.5, "energy_on_noisy": False})
    _, parts = training_loss(cu_model, cu_batch, drop, generator=_gen())
    assert parts["energy"] == 0.0 and parts["dens"] > 0
    # structures that are not DeNS samples keep their energy term even when it is dropped on noisy ones
    _, parts = training_loss(cu_model, cu_batch, drop.updated(dens={"p": 0.0}), generator=_gen())
    assert parts["energy"] > 1e-6


def _grads(model):
    return [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in model.parameters()]


@pytest.mark.parametrize("forces", ["direct", "conservative"])
def test_dens_off_training_step_equals_plain_step(cu_model, cu_batch, forces):
    import copy

    off = TrainConfig(forces=forces, dens={"enabled": False}, loss="norm")
    m1 = copy.deepcopy(cu_model)
    loss1, _ = training_loss(m1, cu_batch, off)
    loss1.backward()
    # plain energy/force loss by hand
    m2 = copy.deepcopy(cu_model)
    out = evaluate(m2, cu_batch, compute_forces=forces == "conservative", training=True, vector_heads=forces == "direct")
    f = out["forces"] if forces == "conservative" else out["direct_forces"]
    n = torch.bincount(cu_batch.batch).double()
    scale = m2.config.scale
    plain = ((out["energy"] - cu_batch.energy).abs() / n / scale).mean() + 10.0 * ((f - cu_batch.forces).norm(dim=1) / scale).mean()
    plain.backward()
    assert loss1.item() == pytest.approx(plain.item(), rel=1e-12)
    for a, b in zip(_grads(m1), _grads(m2)):
        torch.testing.assert_close(a, b)
    # DeNS enabled with p = 0 is exactly the plain step too
    m3 = copy.deepcopy(cu_model)
    loss3, parts = training_loss(m3, cu_batch, TrainConfig(forces=forces, dens={"p": 0.0}, loss="norm"), generator=_gen())
    loss3.backward()
    assert parts["dens_atoms"] == 0 and loss3.item() == loss1.item()
    for a, b in zip(_grads(m1), _grads(m3)):
        torch.testing.assert_close(a, b)


def test_force_encoding_is_given_only_to_picked_atoms(cu_model, cu_batch, monkeypatch):
    seen = {}
    original = cu_model.force_encoding.forward

    def spy(forces, mask):
        seen["forces"], seen["mask"] = forces.clone(), mask.clone()
        return original(forces, mask)

    monkeypatch.setattr(cu_model.force_encoding, "forward", spy)
    training_loss(cu_model, cu_batch, TrainConfig(dens={"enabled": True, "p": 1.0, "ratio": 0.5}), generator=_gen())
    torch.testing.assert_close(seen["forces"], cu_batch.forces)  # raw labelled forces
    assert 0 < seen["mask"].sum() < len(seen["mask"])
    seen.clear()
    training_loss(cu_model, cu_batch, TrainConfig(dens={"enabled": True, "p": 1.0, "force_encoding": False}), generator=_gen())
    assert not seen
