"""What a DeNS training step does, pinned piece by piece (issue: DeNS must earn its place).

The model runs at the corrupted positions; the targets there are the clean energy and the clean
forces; a conservative model's unpicked forces are -dE/dr at the noisy geometry; the noise comes
from the noise head (optionally on its own block, never run at inference); gradients reach the
noise head and every degree of the force encoding; the filters and the means do what they say.
"""

import copy

import pytest
import torch

import dens_calc.train.loss as loss_module
from dens_calc.data import atoms_to_graph, collate
from dens_calc.nn.model import evaluate
from dens_calc.testing import tiny_model
from dens_calc.train import ConfigError, DeNSConfig, LossWeights, TrainConfig, corrupt, loss_terms, training_loss
from dens_calc.train.dens import Corruption, eligible_graphs
from train_helpers import emt_batch, emt_frames

DENS_ALL = {"enabled": True, "p": 1.0, "ratio": 0.5, "sigma": 0.1}


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.fixture
def batch():
    return emt_batch(4, seed=11, cutoff=3.5)


@pytest.fixture
def model():
    return tiny_model(species=(29,), channels=8, l_max=2, r_max=3.0)


def _spy_step(monkeypatch, model, batch, config, seed=0):
    """Run one training_loss; return (parts, the Corruption drawn, what the model was evaluated on)."""
    seen = {}
    real_corrupt, real_evaluate = loss_module.corrupt, loss_module.evaluate

    def spy_corrupt(*args, **kwargs):
        seen["corruption"] = real_corrupt(*args, **kwargs)
        return seen["corruption"]

    def spy_evaluate(m, graph, **kwargs):
        seen["pos"], seen["kwargs"] = graph.pos.detach().clone(), kwargs
        seen["out"] = real_evaluate(m, graph, **kwargs)
        return seen["out"]

    monkeypatch.setattr(loss_module, "corrupt", spy_corrupt)
    monkeypatch.setattr(loss_module, "evaluate", spy_evaluate)
    _, parts = training_loss(model, batch, config, generator=_gen(seed))
    return parts, seen


def test_model_runs_at_the_corrupted_positions(monkeypatch, model, batch):
    monkeypatch.setattr(model.config, "scale", 2.5)  # an RMS force that is not 1, so the encoding test means something
    _, seen = _spy_step(monkeypatch, model, batch, TrainConfig(dens=DENS_ALL))
    c = seen["corruption"]
    assert c.picked.any() and not c.picked.all()
    torch.testing.assert_close(seen["pos"], c.positions, rtol=0, atol=0)
    moved = (seen["pos"] != batch.pos).any(dim=1)
    assert torch.equal(moved, c.picked)  # only picked atoms moved; the batch itself is untouched
    # the clean forces are encoded in units of the model's RMS force (scale), so hot data cannot blow up
    torch.testing.assert_close(seen["kwargs"]["encoded_forces"], batch.forces / model.config.scale)


@pytest.mark.parametrize("forces", ["conservative", "direct"])
def test_targets_on_a_dens_sample_are_clean_labels_at_the_noisy_geometry(monkeypatch, model, batch, forces):
    config = TrainConfig(forces=forces, energy_weight=2.0, forces_weight=3.0,
                         dens={**DENS_ALL, "lambda_dens": 0.7, "lambda_decay": False})
    parts, seen = _spy_step(monkeypatch, model, batch, config)
    c, out = seen["corruption"], seen["out"]
    f_pred = out["forces"] if forces == "conservative" else out["direct_forces"]
    scale, n = float(model.config.scale), torch.bincount(batch.batch).double()
    unpicked = ~c.picked
    energy = 2.0 * (((out["energy"] - batch.energy) / n / scale) ** 2).mean()  # clean energy label
    force = 3.0 * (((f_pred - batch.forces)[unpicked] / scale) ** 2).sum() / 3 / unpicked.sum()  # clean forces
    noise = 0.7 * ((out["noise"] - c.target)[c.picked] ** 2).sum() / 3 / c.picked.sum()
    assert parts["energy"] == pytest.approx(energy.item(), rel=1e-10)
    assert parts["forces"] == pytest.approx(force.item(), rel=1e-10)
    assert parts["dens"] == pytest.approx(noise.item(), rel=1e-10)
    # the noise target is the displacement over sigma
    torch.testing.assert_close(c.target, (c.positions - batch.pos) / 0.1)


def test_conservative_unpicked_forces_are_minus_the_energy_gradient_at_the_noisy_geometry(monkeypatch, model, batch):
    _, seen = _spy_step(monkeypatch, model, batch, TrainConfig(dens=DENS_ALL))
    c, kwargs = seen["corruption"], seen["kwargs"]
    graph = copy.copy(batch)
    atom = int(torch.nonzero(~c.picked)[0])
    h = 1e-5
    energies = []
    for sign in (1.0, -1.0):
        pos = c.positions.clone()
        pos[atom, 0] += sign * h
        graph.pos = pos
        e = evaluate(model, graph, compute_forces=False, encoded_forces=kwargs["encoded_forces"],
                     encoding_mask=kwargs["encoding_mask"])["energy"]
        energies.append(float(e.detach().sum()))
    finite_difference = -(energies[0] - energies[1]) / (2 * h)
    assert seen["out"]["forces"][atom, 0].item() == pytest.approx(finite_difference, rel=1e-6, abs=1e-8)


def test_noise_comes_from_the_noise_head_and_gradients_reach_it_and_every_encoding_degree(model, batch):
    config = TrainConfig(energy_weight=0.0, forces_weight=0.0, dens={**DENS_ALL, "lambda_dens": 1.0})
    loss, parts = training_loss(model, batch, config, generator=_gen())
    assert parts["dens"] > 0 and loss.item() == pytest.approx(parts["dens"])
    loss.backward()
    assert model.noise_head.weight.grad.abs().sum() > 0
    assert model.force_head.weight.grad is None  # conservative: the direct head is not even run
    encoding = model.force_encoding.weight.grad  # [l_max + 1, C]: one row per degree
    assert encoding.shape[0] == 3 and (encoding.abs().sum(dim=1) > 0).all()
    assert model.force_encoding.bias.grad.abs().sum() > 0
    # a noise head that predicts exactly the target leaves no noise loss
    with torch.no_grad():
        model.noise_head.weight.zero_()
    _, parts = training_loss(model, batch, config, generator=_gen())
    c = corrupt(config.dens, batch.pos, batch.batch, batch.num_graphs, batch.fixed, _gen(),
                eligible_graphs(config.dens, batch.forces, batch.has_forces, batch.batch, batch.num_graphs))
    expected = (c.target[c.picked] ** 2).sum() / 3 / c.picked.sum()
    assert parts["dens"] == pytest.approx(expected.item(), rel=1e-10)


def test_noise_block_is_trained_and_never_runs_at_inference(batch, monkeypatch):
    from dens_calc.calculators import DeNSCalculator

    model = tiny_model(species=(29,), channels=8, l_max=1, r_max=3.0, noise_block=True)
    plain = tiny_model(species=(29,), channels=8, l_max=1, r_max=3.0)
    assert model.num_parameters() > plain.num_parameters()
    loss, _ = training_loss(model, batch, TrainConfig(dens=DENS_ALL), generator=_gen())
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.noise_block.parameters() if p.requires_grad
               and p.ndim > 0 and p.numel() > 1)
    calls = []
    for forces in ("conservative", "direct"):
        calc = DeNSCalculator(model, forces=forces)
        monkeypatch.setattr(calc.model.noise_block, "forward", lambda *a, **k: calls.append(1))
        atoms = emt_frames(1, seed=3)[0]
        atoms.calc = calc
        assert atoms.get_forces().shape == (4, 3)
    assert not calls


def mixed_batch_prediction(model, batch):
    """Structures 0 and 2 are DeNS samples (every other atom picked; positions unchanged), 1 and 3 are not."""
    selected = torch.tensor([True, False, True, False])
    picked = selected[batch.batch] & (torch.arange(batch.num_nodes) % 2 == 0)
    corruption = Corruption(positions=batch.pos, picked=picked, selected=selected,
                            sigma=torch.full((4,), 0.1, dtype=torch.float64), target=torch.zeros_like(batch.pos))
    out = evaluate(model, batch, compute_forces=True, vector_heads=True)
    return corruption, out


def test_energy_on_noisy_false_drops_the_energy_only_of_dens_structures_in_a_mixed_batch(model, batch):
    corruption, out = mixed_batch_prediction(model, batch)
    selected = corruption.selected
    n = torch.bincount(batch.batch).double()
    per_structure = ((out["energy"] - batch.energy) / n) ** 2  # scale 1 here
    for keep, mask in ((True, torch.ones(4, dtype=torch.bool)), (False, ~selected)):
        terms = loss_terms(out, batch, LossWeights(energy_on_noisy=keep), corruption=corruption)
        assert terms["energy"].item() == pytest.approx((per_structure * mask).sum().item() / 4, rel=1e-12)


def test_forces_on_noisy_false_drops_the_forces_only_of_dens_structures_in_a_mixed_batch(model, batch):
    corruption, out = mixed_batch_prediction(model, batch)
    selected, picked = corruption.selected, corruption.picked
    f_err = ((out["forces"] - batch.forces) ** 2).sum(dim=1) / 3
    for keep, mask in ((True, ~picked), (False, ~selected[batch.batch])):
        terms = loss_terms(out, batch, LossWeights(forces_on_noisy=keep), corruption=corruption)
        expected = 10.0 * (f_err * mask).sum() / mask.sum()  # default λ_F 10, separate means
        assert terms["forces"].item() == pytest.approx(expected.item(), rel=1e-12)
        assert terms["dens"].item() > 0  # the noise term stays either way


def test_separate_means_average_forces_over_unpicked_and_noise_over_picked_atoms(model, batch):
    picked = torch.zeros(batch.num_nodes, dtype=torch.bool)
    picked[[0, 5, 9]] = True
    corruption = Corruption(positions=batch.pos, picked=picked, selected=torch.ones(4, dtype=torch.bool),
                            sigma=torch.full((4,), 0.1, dtype=torch.float64), target=torch.ones_like(batch.pos))
    out = evaluate(model, batch, compute_forces=True, vector_heads=True)
    f_err = ((out["forces"] - batch.forces) ** 2).sum(dim=1) / 3
    n_err = ((out["noise"] - 1.0) ** 2).sum(dim=1) / 3
    sep = loss_terms(out, batch, LossWeights(forces=2.0, dens=3.0), corruption=corruption)
    joint = loss_terms(out, batch, LossWeights(forces=2.0, dens=3.0, separate_means=False), corruption=corruption)
    assert sep["forces"].item() == pytest.approx(2.0 * f_err[~picked].mean().item(), rel=1e-12)
    assert sep["dens"].item() == pytest.approx(3.0 * n_err[picked].mean().item(), rel=1e-12)
    assert joint["forces"].item() == pytest.approx(2.0 * f_err[~picked].sum().item() / batch.num_nodes, rel=1e-12)
    assert joint["dens"].item() == pytest.approx(3.0 * n_err[picked].sum().item() / batch.num_nodes, rel=1e-12)


def test_max_force_norm_keeps_far_from_equilibrium_structures_out():
    forces = torch.zeros(6, 3, dtype=torch.float64)
    forces[1, 0] = 3.0  # structure 0 has a 3 eV/Å force
    forces[4, 2] = 1.0
    batch = torch.tensor([0, 0, 0, 1, 1, 2])
    has_forces = torch.tensor([True, True, False])
    cfg = DeNSConfig(p=1.0, ratio=1.0, max_force_norm=2.5)
    ok = eligible_graphs(cfg, forces, has_forces, batch, 3)
    assert ok.tolist() == [False, True, False]  # too large a force; fine; no force labels
    assert eligible_graphs(DeNSConfig(), forces, has_forces, batch, 3).tolist() == [True, True, False]
    c = corrupt(cfg, torch.zeros(6, 3, dtype=torch.float64), batch, 3, None, _gen(), ok)
    assert c.selected.tolist() == [False, True, False] and c.picked.tolist() == [False] * 3 + [True, True, False]
    with pytest.raises(ConfigError, match="max_force_norm"):
        DeNSConfig(max_force_norm=0.0)


def test_ratio_one_corrupts_every_atom_and_the_step_stays_finite(model, batch):
    config = TrainConfig(dens={**DENS_ALL, "ratio": 1.0})
    loss, parts = training_loss(model, batch, config, generator=_gen())
    assert parts["dens_atoms"] == batch.num_nodes
    assert parts["forces"] == 0.0 and parts["dens"] > 0 and torch.isfinite(loss)
    loss.backward()
    assert model.noise_head.weight.grad.abs().sum() > 0


def test_vector_outputs_need_l1_features():
    with pytest.raises(ConfigError, match="l_max >= 1"):
        TrainConfig(forces="direct", model={"l_max": 0})
    with pytest.raises(ConfigError, match="l_max >= 1"):
        TrainConfig(model={"l_max": 0}, dens={"enabled": True})
    TrainConfig(model={"l_max": 0})  # conservative without DeNS is fine
    graph = collate([atoms_to_graph(emt_frames(1)[0], [29], 3.0, dtype=torch.float64)])
    with pytest.raises(ValueError, match="l_max must be >= 1"):
        evaluate(tiny_model(species=(29,), l_max=0, r_max=3.0), graph, vector_heads=True)


def test_noise_block_output_rotates_with_the_structure():
    from scipy.spatial.transform import Rotation

    model = tiny_model(species=(29,), channels=8, l_max=2, r_max=3.0, noise_block=True)
    atoms = emt_frames(1, seed=4)[0]
    forces = torch.tensor(atoms.get_forces())
    atoms.calc = None
    atoms.pbc = False  # a free cluster rotates without its cell
    rot = torch.tensor(Rotation.random(random_state=1).as_matrix())
    mask = torch.tensor([True, False, True, False])
    outputs = []
    for r in (torch.eye(3, dtype=torch.float64), rot):
        rotated = atoms.copy()
        rotated.positions = atoms.positions @ r.numpy().T
        graph = collate([atoms_to_graph(rotated, [29], 3.0, dtype=torch.float64)])
        out = evaluate(model, graph, compute_forces=False, encoded_forces=forces @ r.T, encoding_mask=mask, noise=True)
        outputs.append(out["noise"])
    torch.testing.assert_close(outputs[1], outputs[0] @ rot.T)
    assert outputs[0].abs().sum() > 0
