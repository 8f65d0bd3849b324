"""Training recipe: a schedule that fits the time budget, the late loss stage, optimizers, E0s."""

import logging

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import molecule
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write

from dens_calc.data import DataError
from dens_calc.train import ConfigError, TrainConfig, train
from dens_calc.train.config import DEFAULT_EPOCHS
from dens_calc.train.loss import LossWeights
from train_helpers import emt_frames, tiny_config, write_emt


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_emt(tmp_path_factory.mktemp("recipe") / "cu.xyz", n=8)


def test_epoch_budget_follows_max_epochs_or_time_limit():
    assert TrainConfig().epoch_budget == DEFAULT_EPOCHS and not TrainConfig().time_fitted
    assert TrainConfig(max_epochs=7, time_limit=5).epoch_budget == 7 and not TrainConfig(max_epochs=7, time_limit=5).time_fitted
    fitted = TrainConfig(time_limit=5)
    assert fitted.time_fitted and fitted.epoch_budget == float("inf")


def test_schedule_is_retargeted_to_the_epochs_that_fit():
    from types import SimpleNamespace

    from dens_calc.train.loop import fit_schedule_to_time
    from dens_calc.train.state import LRSchedule

    params = [torch.nn.Parameter(torch.zeros(1))]
    schedule = LRSchedule(torch.optim.SGD(params, lr=1.0), base_lr=1.0, warmup_steps=0, total_steps=1000)
    schedule.step_count = 30  # 3 epochs of 10 steps done
    config = TrainConfig(batch_size=2, time_limit=1.0)
    run = SimpleNamespace(epoch_times=[10.0, 12.0, 14.0], schedule=schedule, config=config, world=1,
                          prep=SimpleNamespace(train_graphs=list(range(20))))
    fit_schedule_to_time(run, remaining_s=50.0)  # mean epoch 12 s: 4 more epochs fit
    assert schedule.total_steps == 30 + 4 * 10
    fit_schedule_to_time(run, remaining_s=5.0)  # none fits: the schedule ends now
    assert schedule.total_steps == 30
    schedule.step()
    assert schedule.lr == pytest.approx(schedule.base_lr * schedule.min_ratio)


def test_time_fitted_run_ends_its_schedule_within_the_budget(tmp_path, data, monkeypatch):
    import itertools

    from dens_calc.train import loop

    # a clock that advances 1 s per reading makes the budget a deterministic number of epochs
    ticks = itertools.count()
    monkeypatch.setattr(loop.time, "monotonic", lambda: float(next(ticks)))
    result = train(tiny_config(tmp_path, data, max_epochs=None, time_limit=0.5, warmup_epochs=0))
    assert result.stopped == "time_limit" and result.epochs >= 4
    lrs = [row["lr"] for row in result.history]
    # the last completed epoch reaches (close to) the end of the cosine
    assert lrs[-1] < 0.2 * TrainConfig.lr and lrs == sorted(lrs, reverse=True)


def test_late_stage_raises_only_the_energy_weight():
    config = TrainConfig(energy_weight=2.0, forces_weight=10.0, late_start=0.6, late_energy_factor=50.0, late_ramp=0.0)
    early, late = LossWeights.from_config(config, 1.0, 0.59), LossWeights.from_config(config, 1.0, 0.6)
    assert early.energy == 2.0 and late.energy == 100.0 and early.forces == late.forces == 10.0


def test_late_ramp_reaches_the_factor_geometrically():
    config = TrainConfig(late_start=0.5, late_energy_factor=100.0, late_ramp=0.2)
    factors = [config.energy_factor_at(x) for x in (0.49, 0.5, 0.6, 0.7, 0.9)]
    assert factors == pytest.approx([1.0, 1.0, 10.0, 100.0, 100.0])
    with pytest.raises(ConfigError, match="late_ramp"):
        TrainConfig(late_ramp=1.5)


def test_best_checkpoint_is_chosen_by_the_late_loss_among_late_epochs_only():
    """A force-dominated base loss kept the epoch before the energy stage (Zuo Ge: 2.5x the energy MAE)."""
    from types import SimpleNamespace

    from dens_calc.train.loop import selection_loss

    schedule = SimpleNamespace(step_count=40, total_steps=100)
    run = SimpleNamespace(config=TrainConfig(late_start=0.75), schedule=schedule, best_in_late_stage=False, best_loss=0.1)
    assert selection_loss(run, {"loss": 0.2, "late_loss": 5.0}) == 0.2 and run.best_loss == 0.1
    schedule.step_count = 80  # the late stage has begun: its loss, and an earlier best no longer counts
    assert selection_loss(run, {"loss": 0.2, "late_loss": 5.0}) == 5.0
    assert run.best_in_late_stage and run.best_loss == float("inf")
    run.best_loss, schedule.total_steps = 5.0, 200  # a retargeted schedule steps back: still the late loss
    assert selection_loss(run, {"loss": 0.2, "late_loss": 4.0}) == 4.0 and run.best_loss == 5.0
    off = SimpleNamespace(config=TrainConfig(late_energy_factor=1.0), schedule=SimpleNamespace(step_count=99, total_steps=100),
                          best_in_late_stage=False, best_loss=0.1)
    assert selection_loss(off, {"loss": 0.2, "late_loss": 0.2}) == 0.2 and off.best_loss == 0.1


def test_training_keeps_a_late_stage_epoch_and_resumes_the_choice(tmp_path, data):
    from dens_calc.train.loop import LAST, read_checkpoint

    result = train(tiny_config(tmp_path, data, max_epochs=6, late_start=0.5, late_ramp=0.0, late_energy_factor=100.0))
    assert result.best_epoch >= 3  # epoch 3 ends at progress 0.5: the first late-stage epoch
    late = [row["valid_late_loss"] for row in result.history]
    assert min(late[2:]) == result.history[result.best_epoch - 1]["valid_late_loss"]
    assert read_checkpoint(tmp_path / "run" / LAST)["train_state"]["best_in_late_stage"] is True


@pytest.mark.parametrize("optimizer,amsgrad", [("adam", True), ("adamw", False)])
def test_optimizer_choice(optimizer, amsgrad):
    from dens_calc.train.loop import build_optimizer

    opt = build_optimizer(TrainConfig(optimizer=optimizer, amsgrad=amsgrad, lr=0.01), torch.nn.Linear(2, 2))
    assert type(opt).__name__ == {"adam": "Adam", "adamw": "AdamW"}[optimizer]
    assert opt.param_groups[0]["amsgrad"] is amsgrad and opt.param_groups[0]["lr"] == 0.01


def _labelled(atoms, energy):
    atoms = atoms.copy()
    atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=np.zeros((len(atoms), 3)))
    return atoms


def _water_frames(n=6, e_h=-13.6, e_o=-2041.0):
    rng = np.random.default_rng(0)
    frames = []
    for _ in range(n):
        atoms = molecule("H2O")
        atoms.rattle(0.02, seed=int(rng.integers(1000)))
        frames.append(_labelled(atoms, 2 * e_h + e_o - 10.0 + rng.normal(0, 0.01)))
    return frames


def test_isolated_atom_frames_in_the_data_give_the_e0s(tmp_path):
    from dens_calc.train.data import fitted_e0s, load_labelled

    lone = [_labelled(Atoms("H"), -13.6), _labelled(Atoms("O"), -2041.0)]
    lone[0].info["config_type"] = "IsolatedAtom"
    frames = _water_frames()
    write(tmp_path / "d.xyz", frames[:2] + lone + frames[2:])
    data = load_labelled(tmp_path / "d.xyz", TrainConfig())
    assert len(data) == 6 and data.isolated == {1: -13.6, 8: -2041.0}
    assert fitted_e0s(data, [1, 8]) == {1: -13.6, 8: -2041.0}
    # messages name structures by their frame number in the file, isolated atoms counted
    assert [data.frame_number(k) for k in range(6)] == [0, 1, 4, 5, 6, 7]


def test_one_composition_gives_equal_e0s_and_a_warning(tmp_path, caplog):
    """Minimum-norm least squares gave H -807.9, C -504.9, O -202.0 eV for one molecule: nonsense elsewhere."""
    from dens_calc.train.data import fitted_e0s, load_labelled

    write(tmp_path / "w.xyz", _water_frames())
    data = load_labelled(tmp_path / "w.xyz", TrainConfig())
    with caplog.at_level(logging.WARNING, logger="dens_calc"):
        e0s = fitted_e0s(data, [1, 8])
    per_atom = np.mean([lab["energy"] for lab in data.labels]) / 3
    assert e0s[1] == pytest.approx(per_atom, abs=1e-6) and e0s[8] == pytest.approx(per_atom, abs=1e-6)
    assert "do not determine E0s" in caplog.text


def test_some_isolated_atoms_fix_theirs_and_the_rest_is_fitted(tmp_path, caplog):
    from dens_calc.train.data import fitted_e0s, load_labelled

    write(tmp_path / "d.xyz", _water_frames() + [_labelled(Atoms("H"), -13.6)])
    data = load_labelled(tmp_path / "d.xyz", TrainConfig())
    e0s = fitted_e0s(data, [1, 8])
    assert e0s[1] == -13.6
    mean_residual = np.mean([lab["energy"] - 2 * -13.6 for lab in data.labels])
    assert e0s[8] == pytest.approx(mean_residual, abs=1e-6)


def test_several_compositions_keep_the_exact_fit(tmp_path, caplog):
    from dens_calc.train.data import fitted_e0s, load_labelled

    frames = [_labelled(molecule("H2O"), 2 * -13.6 - 2041.0), _labelled(molecule("H2"), 2 * -13.6),
              _labelled(molecule("O2"), 2 * -2041.0)]
    write(tmp_path / "m.xyz", frames)
    with caplog.at_level(logging.WARNING, logger="dens_calc"):
        e0s = fitted_e0s(load_labelled(tmp_path / "m.xyz", TrainConfig()), [1, 8])
    assert e0s[1] == pytest.approx(-13.6) and e0s[8] == pytest.approx(-2041.0)
    assert "do not determine" not in caplog.text


def test_single_atom_crystal_is_a_training_structure(tmp_path):
    from ase.build import bulk

    from dens_calc.train.data import load_labelled

    cu = _labelled(bulk("Cu", "fcc", a=3.6), -3.5)
    write(tmp_path / "cu.xyz", [cu, _labelled(bulk("Cu", "fcc", a=3.7), -3.4)])
    data = load_labelled(tmp_path / "cu.xyz", TrainConfig())
    assert len(data) == 2 and data.isolated == {}


def test_stress_is_trained_when_the_data_have_stress_labels(tmp_path, data):
    with_stress = train(tiny_config(tmp_path / "a", data, max_epochs=1))
    assert with_stress.history[-1]["train_stress"] > 0
    no_stress = write_emt(tmp_path / "ns.xyz", n=8, stress=False)
    without = train(tiny_config(tmp_path / "b", no_stress, max_epochs=1))
    assert without.history[-1]["train_stress"] == 0
    explicit_off = train(tiny_config(tmp_path / "c", data, max_epochs=1, stress_weight=0.0))
    assert explicit_off.history[-1]["train_stress"] == 0


def test_stress_weight_on_data_with_stress_on_some_frames_only(tmp_path):
    """Two sources, one with stresses: stress trains where labelled (an explicit weight too); a weight
    with no stress label anywhere is a one-line error, not a silent no-op."""
    mixed = tmp_path / "mixed.xyz"
    write(str(mixed), emt_frames(4, seed=1) + emt_frames(4, seed=2, stress=False))
    for weight in (None, 1.0):
        result = train(tiny_config(tmp_path / f"w{weight}", mixed, max_epochs=1, stress_weight=weight))
        assert result.history[-1]["train_stress"] > 0
    no_stress = write_emt(tmp_path / "ns.xyz", n=8, stress=False)
    with pytest.raises(DataError, match="no training structure has a stress label"):
        train(tiny_config(tmp_path / "none", no_stress, max_epochs=1, stress_weight=1.0))


def test_new_models_get_the_cubic_term_and_old_checkpoints_load_without_it():
    from dens_calc.nn.model import ModelConfig
    from dens_calc.train.config import architecture

    assert architecture(TrainConfig())["correlation"] == 3
    assert architecture(TrainConfig(model={"correlation": 2}))["correlation"] == 2
    # a saved config without the key (trained before the cubic term existed) means correlation 2
    assert ModelConfig.from_dict({"species": [1], "atomic_energies": [0.0]}).correlation == 2


def test_config_type_weights_parse_from_text_or_mapping_and_reject_bad_values():
    assert TrainConfig(config_type_weights="Surface=5, Vacancy=0.5").config_type_weights == {"Surface": 5.0,
                                                                                             "Vacancy": 0.5}
    assert TrainConfig(config_type_weights={"Surface": 2}).config_type_weights == {"Surface": 2.0}
    assert TrainConfig().config_type_weights == {}
    for bad in ("Surface", "Surface=x", "Surface=-1", "=2"):
        with pytest.raises(ConfigError, match="config_type_weights"):
            TrainConfig(config_type_weights=bad)


def test_config_type_weight_multiplies_every_loss_term_of_its_structures():
    """Weight w on one structure of a batch scales exactly its energy, force and stress contributions."""
    from dens_calc.data import atoms_to_graph, collate, extract_labels
    from dens_calc.nn.model import evaluate
    from dens_calc.testing import tiny_model
    from dens_calc.train.loss import loss_terms
    from train_helpers import emt_frames

    frames = emt_frames(3, seed=5)
    model = tiny_model(species=(29,), channels=8, l_max=1, r_max=3.0)

    def terms(weights):
        graphs = [atoms_to_graph(a, [29], 3.0, dtype=torch.float64, labels={**extract_labels(a)[0], "weight": w})
                  for a, w in zip(frames, weights)]
        batch = collate(graphs)
        pred = evaluate(model, batch, compute_forces=True, compute_stress=True, training=True)
        return loss_terms(pred, batch, LossWeights(stress=1.0))

    ones, only_first, tripled_first = terms([1, 1, 1]), terms([1, 0, 0]), terms([3, 1, 1])
    for key in ("energy", "forces", "stress"):
        first = only_first[key].item()
        assert 0 < first < ones[key].item()
        assert tripled_first[key].item() == pytest.approx(ones[key].item() + 2 * first, rel=1e-9)


def test_training_warns_about_config_types_no_structure_has(tmp_path, data, caplog):
    with caplog.at_level(logging.WARNING):
        train(tiny_config(tmp_path / "run", data, max_epochs=1, config_type_weights="Surfce=5"))
    assert "no structure has config_type Surfce" in caplog.text
