"""Closed-form refit of the energy read-out (dens_calc.train.refit) on tiny EMT data."""

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from cli.main import main
from dens_calc.checkpoint import load_model
from dens_calc.data import collate
from dens_calc.nn.model import evaluate
from dens_calc.train import train
from dens_calc.train.data import build_graphs, load_labelled
from dens_calc.train.refit import (_flat, _prediction, linearise, readout_parameters, refit_energy_readout, set_readout,
                                   solve)
from dens_calc.train.config import TrainConfig
from train_helpers import tiny_config, write_emt


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("refit")
    data = write_emt(root / "cu.xyz", n=8)
    result = train(tiny_config(root, data, max_epochs=2, dens={"enabled": False}))
    model, _ = load_model(result.out_dir, dtype=torch.float64)
    graphs = build_graphs(load_labelled(data, TrainConfig()), model.config.species, model.config.r_max, torch.float64)
    return root, data, result.out_dir, model, graphs


def _reference(model, graph):
    out = evaluate(model, collate([graph]), compute_forces=True, compute_stress=True)
    return float(out["energy"].sum()), out["forces"].detach().numpy().ravel(), out["stress"].detach().numpy().ravel()


def test_energy_forces_and_stress_are_linear_in_the_readout_weights(setup):
    """The linearisation predicts exactly what the model gives at other read-out weights."""
    _, _, _, model, graphs = setup
    w0 = _flat(readout_parameters(model))
    item = linearise(model, collate([graphs[0]]))
    w = w0 + np.random.default_rng(0).normal(scale=0.3, size=w0.shape)
    e, f, s = _prediction(item, w, w0)
    set_readout(model, w)
    try:
        e_ref, f_ref, s_ref = _reference(model, graphs[0])
    finally:
        set_readout(model, w0)
    assert e == pytest.approx(e_ref, rel=1e-10, abs=1e-10)
    np.testing.assert_allclose(f, f_ref, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(s, s_ref, rtol=1e-8, atol=1e-10)


def test_solve_recovers_the_weights_that_made_the_labels(setup, monkeypatch):
    """Labels from the model at known weights w*: the least-squares solve from w0 returns w*."""
    _, _, _, model, graphs = setup
    w0 = _flat(readout_parameters(model))
    w_star = w0 + np.random.default_rng(1).normal(scale=0.2, size=w0.shape)
    set_readout(model, w_star)
    labelled = []
    for g in graphs:
        e, f, s = _reference(model, g)
        g = g.clone()
        g.energy, g.forces, g.stress = (torch.tensor([e]), torch.tensor(f).view(-1, 3), torch.tensor(s).view(1, 3, 3))
        labelled.append(g)
    set_readout(model, w0)
    items = [linearise(model, collate([g])) for g in labelled]
    # a negligible pull towards w0, which would bias the poorly determined directions
    w = solve(items, w0, energy_weight=100.0, forces_weight=10.0, stress_weight=1.0, ridge=1e-14)
    for item, g in zip(items, labelled):
        e, f, s = _prediction(item, w, w0)
        assert abs(e - float(g.energy)) / g.num_nodes < 1e-7
        np.testing.assert_allclose(f, g.forces.numpy().ravel(), atol=1e-6)
        np.testing.assert_allclose(s, g.stress.numpy().ravel(), atol=1e-6)  # 0.16 MPa


def test_refit_chooses_on_validation_and_never_makes_the_validation_errors_worse(setup):
    _, _, _, model, graphs = setup
    w0 = _flat(readout_parameters(model))
    report = refit_energy_readout(model, graphs[:6], graphs[6:], energy_weight=100.0, forces_weight=10.0,
                                  stress_weight=1.0, energy_factors=(1.0, 100.0), ridges=(1e-6, 1e-12),
                                  max_force_structures=None)
    assert set(report.candidates) == {(1.0, 1e-6), (100.0, 1e-6), (1.0, 1e-12), (100.0, 1e-12)}
    assert "forces" in report.trained
    relative = {f: sum(e[k] / report.trained[k] for k in report.trained) for f, e in report.candidates.items()}
    if report.chosen is None:  # then the model is unchanged
        assert all(cost >= len(report.trained) for cost in relative.values())
        np.testing.assert_array_equal(_flat(readout_parameters(model)), w0)
    else:
        assert relative[report.chosen] == min(relative.values()) < len(report.trained)
    set_readout(model, w0)
    with pytest.raises(ValueError, match="validation"):
        refit_energy_readout(model, graphs, [], energy_weight=1.0, forces_weight=1.0, stress_weight=0.0)


def test_refit_command_writes_a_loadable_model_with_its_provenance(setup):
    root, data, run_dir, _, _ = setup
    out = root / "refitted"
    result = CliRunner().invoke(main, ["refit", "--model", str(run_dir), "--train", str(data), "--out", str(out),
                                       "--valid-fraction", "0.25", "--energy-factors", "1,10",
                                       "--ridges", "1e-9"])
    assert result.exit_code == 0, result.output
    assert "energy factor" in result.output and "model:" in result.output
    _, meta = load_model(out)
    assert meta["readout_refit"]["valid_mae_candidates"].keys() == {"x1 ridge 1e-09", "x10 ridge 1e-09"}
    bad = CliRunner().invoke(main, ["refit", "--model", str(run_dir), "--train", str(data), "--out", str(out),
                                    "--energy-factors", "1,-2"])
    assert bad.exit_code != 0 and "positive" in bad.output
