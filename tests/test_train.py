"""Training loop, resume, fine-tuning and input errors on tiny EMT data."""

import copy
import csv
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from ase.io import write

from dens_calc import DeNSCalculator
from dens_calc.checkpoint import load_model
from dens_calc.data import DataError
from dens_calc.train import ConfigError, TrainConfig, load_config, train
from train_helpers import emt_frames, tiny_config, write_emt


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    return write_emt(root / "cu.xyz", n=8)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data):
    tmp = tmp_path_factory.mktemp("trained")
    return train(tiny_config(tmp, data, max_epochs=2))


def test_train_writes_loadable_checkpoints_and_logs(trained):
    out = trained.out_dir
    assert trained.epochs == 2 and trained.stopped == "max_epochs"
    for name in ("model.pt", "best.pt", "last.pt", "config.yaml", "metrics.csv", "config.json"):
        assert (out / name).exists(), name
    payload = torch.load(out / "last.pt", weights_only=True)
    assert payload["train_state"]["epoch"] == 2 and "optimizer" in payload["train_state"]
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2] and "valid_f_mae_meV_A" in rows[0]
    cfg = load_config(out / "config.yaml")
    assert cfg.max_epochs == 2 and cfg.dens.p == 0.5
    model, meta = load_model(out)
    assert meta["forces"] == "conservative" and model.config.species == [29]
    assert model.config.scale > 0.1 and model.config.avg_num_neighbors > 1


def test_saved_model_is_the_ema_model(trained):
    payload = torch.load(trained.out_dir / "last.pt", weights_only=True)
    ema = payload["train_state"]["ema"]["weights"]
    for key, value in payload["model_state"].items():
        torch.testing.assert_close(value, ema[key])
    raw = payload["train_state"]["raw_model"]
    assert any(not torch.equal(raw[k], ema[k]) for k in raw)


def test_resume_follows_the_uninterrupted_trajectory(tmp_path, data):
    straight = train(tiny_config(tmp_path / "a", data, max_epochs=3))
    config = tiny_config(tmp_path / "b", data, max_epochs=3)
    first = train(config, stop_after=1)
    assert first.epochs == 1 and first.stopped == "stop_after"
    resumed = train(config, resume=config.out_dir)
    assert resumed.epochs == 3
    a = torch.load(straight.out_dir / "last.pt", weights_only=True)
    b = torch.load(resumed.out_dir / "last.pt", weights_only=True)
    for key in a["model_state"]:
        torch.testing.assert_close(a["model_state"][key], b["model_state"][key], rtol=0, atol=1e-12)
    assert [h["valid_loss"] for h in a["train_state"]["history"]] == pytest.approx(
        [h["valid_loss"] for h in b["train_state"]["history"]], rel=1e-10)


def test_time_limit_stops_cleanly_and_saves(tmp_path, data):
    result = train(tiny_config(tmp_path, data, max_epochs=50, time_limit=1e-6))
    assert result.stopped == "time_limit" and result.epochs < 50
    assert (result.out_dir / "model.pt").exists()
    load_model(result.out_dir)


def test_early_stopping(tmp_path, data):
    result = train(tiny_config(tmp_path, data, max_epochs=20, patience=1, lr=1e-12, warmup_epochs=0))
    assert result.stopped == "early_stopping" and result.epochs < 20


@pytest.mark.parametrize("forces,scheduler", [("conservative", "plateau")])
def test_conservative_training_with_stress_and_plateau(tmp_path, data, forces, scheduler):
    result = train(tiny_config(tmp_path, data, forces=forces, scheduler=scheduler, stress_weight=1.0, max_epochs=1,
                               dens={"p": 0.5, "multi_scale": True, "lambda_decay": True}, graph_skin=0.3))
    assert np.isfinite(result.history[-1]["train_total"])
    assert result.history[-1]["train_stress"] > 0


def _write(path, frames):
    write(str(path), frames)
    return path


def test_bad_inputs_are_one_line_errors_naming_file_and_frame(tmp_path):
    frames = emt_frames(3, stress=False)
    no_forces = [f.copy() for f in frames]
    for f, src in zip(no_forces, frames):
        f.calc = None
        f.info["energy"] = src.get_potential_energy()
    cases = {}
    cases["missing"] = _write(tmp_path / "missing.xyz", no_forces)
    nan = emt_frames(3, stress=False)
    nan[2].calc.results["energy"] = float("nan")
    cases["nan"] = _write(tmp_path / "nan.xyz", nan)
    (tmp_path / "empty.xyz").write_text("")
    cases["empty"] = tmp_path / "empty.xyz"
    expected = {"missing": "frame 0: missing 'forces'", "nan": "frame 2: non-finite 'energy'", "empty": "empty.xyz"}
    for name, path in cases.items():
        with pytest.raises(DataError, match=expected[name]) as info:
            train(tiny_config(tmp_path, path))
        assert "\n" not in str(info.value) and str(path.name) in str(info.value)
    mixed = emt_frames(3, stress=False)
    for k, f in enumerate(mixed):
        f.info["REF_energy" if k == 1 else "energy"] = f.get_potential_energy()
        f.arrays["REF_forces"] = f.get_forces()
        f.calc = None
    path = _write(tmp_path / "mixed.xyz", mixed)
    with pytest.raises(DataError, match="mixed.xyz, frame 1: label keys"):
        train(tiny_config(tmp_path, path))


def test_element_missing_from_e0s(tmp_path):
    path = _write(tmp_path / "alcu.xyz", emt_frames(3) + emt_frames(1, symbol="Al", a=4.05))
    with pytest.raises(DataError, match="alcu.xyz, frame 3: element.*Al.*E0s"):
        train(tiny_config(tmp_path, path, e0s={"Cu": -0.1}))


def test_unknown_config_keys_are_errors(tmp_path):
    (tmp_path / "c.yaml").write_text("max_epochs: 3\nlearning_rate: 0.1\n")
    with pytest.raises(ConfigError, match="learning_rate"):
        load_config(tmp_path / "c.yaml")
    (tmp_path / "d.yaml").write_text("dens:\n  sigmaa: 0.1\n")
    with pytest.raises(ConfigError, match="sigmaa"):
        load_config(tmp_path / "d.yaml")
    with pytest.raises(ConfigError, match="forces"):
        TrainConfig(forces="both")


def test_finetune_refits_e0s_and_rejects_new_elements(tmp_path, trained):
    shifted = emt_frames(6, seed=11)
    for atoms in shifted:  # a different DFT reference: +1 eV per atom
        atoms.calc.results["energy"] += len(atoms) * 1.0
    path = _write(tmp_path / "shifted.xyz", shifted)
    result = train(tiny_config(tmp_path, path, from_model=str(trained.model_path), max_epochs=1, lr=1e-4,
                               forces="conservative", freeze_layers=1))
    base, _ = load_model(trained.model_path)
    tuned, meta = load_model(result.out_dir)
    assert tuned.config.atomic_energies[0] - base.config.atomic_energies[0] > 0.5
    assert meta["finetuned_from"] == str(trained.model_path)
    torch.testing.assert_close(tuned.embedding.weight, base.embedding.weight)  # frozen
    with_al = _write(tmp_path / "al.xyz", emt_frames(3) + emt_frames(1, symbol="Al", a=4.05))
    with pytest.raises(DataError, match="al.xyz, frame 3: element.*Al.*add-elements"):
        train(tiny_config(tmp_path / "x", with_al, from_model=str(trained.model_path)))
    added = train(tiny_config(tmp_path / "y", with_al, from_model=str(trained.model_path), add_elements=True,
                              max_epochs=1, valid_fraction=0.3))
    model, _ = load_model(added.out_dir)
    assert model.config.species == [29, 13]


def test_finetune_replay_adds_force_only_frames(tmp_path, trained):
    from dens_calc.train.setup import prepare

    replay = emt_frames(10, seed=21)
    for atoms in replay:  # another level of theory: its energy reference must not reach the E0s or the loss
        atoms.calc.results["energy"] += len(atoms) * 1000.0
    replay_path = _write(tmp_path / "replay.xyz", replay)
    new = _write(tmp_path / "new.xyz", emt_frames(8, seed=12))
    config = tiny_config(tmp_path, new, from_model=str(trained.model_path), replay_file=str(replay_path),
                         replay_fraction=0.5, max_epochs=1, lr=1e-4, forces="conservative")
    prepared = prepare(config, device=torch.device("cpu"))
    replayed = [g for g in prepared.train_graphs if not bool(g.has_energy)]
    assert len(prepared.train_graphs) == 6 + 3 and len(replayed) == 3  # 8 frames: 6 train + 2 valid; 0.5 x 6
    assert all(bool(g.has_forces) and not bool(g.has_stress) for g in replayed)
    assert all(bool(g.has_energy) for g in prepared.valid_graphs)  # validation is on the new data only
    result = train(config)
    base, _ = load_model(trained.model_path)
    tuned, meta = load_model(result.out_dir)
    assert abs(tuned.config.atomic_energies[0] - base.config.atomic_energies[0]) < 1.0  # not the +1000 eV replay
    assert meta["replay"] == {"file": str(replay_path), "fraction": 0.5}
    with pytest.raises(ConfigError, match="replay.*from_model"):
        TrainConfig(replay_file=str(replay_path))


@pytest.mark.slow
def test_torchrun_two_processes(tmp_path, data):
    pytest.importorskip("torch.distributed.run")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    script = tmp_path / "launch.py"
    script.write_text("from cli.main import main\nmain()\n")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", "29533", str(script),
           "train", "--train", str(data), "--out", str(tmp_path / "ddp"), "--r-max", "3", "--channels", "8",
           "--l-max", "1", "--layers", "1", "--max-epochs", "2", "--batch-size", "2", "--valid-fraction", "0.25",
           "--device", "cpu", "--no-progress"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, cwd=os.getcwd())
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = list(csv.DictReader(open(tmp_path / "ddp" / "metrics.csv")))
    assert len(rows) == 2
    load_model(tmp_path / "ddp")


def test_refit_e0s_absorbs_a_constant_reference_shift(trained):
    from dens_calc.train.data import LabelledSet
    from dens_calc.train.finetune import refit_e0s

    frames = emt_frames(5, seed=3)
    labels = [{"energy": a.get_potential_energy()} for a in frames]
    shifted = [{"energy": lab["energy"] + 0.7 * len(a)} for a, lab in zip(frames, labels)]
    e0 = []
    for labs in (labels, shifted):
        model, _ = load_model(trained.model_path, dtype=torch.float64)
        refit_e0s(model, LabelledSet(frames, labs, "x"))
        e0.append(model.config.atomic_energies[0])
        assert model.atomic_energies[0].item() == pytest.approx(e0[-1])
    assert e0[1] - e0[0] == pytest.approx(0.7, abs=1e-8)


def test_refit_e0s_keeps_saved_reference_for_single_composition(model64, caplog):
    """One composition cannot split a shift between elements: the saved E0s must survive (min-norm correction)."""
    from ase.build import molecule

    from dens_calc.train.data import LabelledSet
    from dens_calc.train.finetune import refit_e0s

    model = copy.deepcopy(model64)
    saved = list(model.config.atomic_energies)
    frames = [molecule("CH3CH2OH") for _ in range(3)]
    for k, atoms in enumerate(frames):
        atoms.rattle(0.02, seed=k)
    calc = DeNSCalculator(model, device="cpu", dtype="float64")
    labels = [{"energy": calc.get_potential_energy(a) + 0.3 * len(a)} for a in frames]
    with caplog.at_level("WARNING"):
        refit_e0s(model, LabelledSet(frames, labels, "x"))
    assert "do not determine the per-element E0 shift" in caplog.text  # the user learns how to fix it
    shifts = {z: new - old for z, new, old in zip(model.config.species, model.config.atomic_energies, saved)}
    assert all(abs(shifts[z]) < 1.0 for z in (1, 6, 8))  # no element moved by hundreds of eV
    assert shifts[14] == 0.0 and shifts[29] == 0.0  # absent elements untouched
    refitted = DeNSCalculator(model, device="cpu", dtype="float64")
    for atoms, lab in zip(frames, labels):
        assert refitted.get_potential_energy(atoms) == pytest.approx(lab["energy"], abs=1e-6)


def test_finetune_sets_e0s_from_isolated_atoms_of_the_new_reference(tmp_path, trained):
    """``--e0s FILE`` in fine-tuning sets the E0s (then the refit corrects them); it used to be ignored."""
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator

    lone = Atoms("Cu", pbc=False)
    lone.calc = SinglePointCalculator(lone, energy=-123.0)
    lone.info["config_type"] = "IsolatedAtom"
    iso = _write(tmp_path / "iso.xyz", [lone])
    new = _write(tmp_path / "new.xyz", emt_frames(6, seed=13))
    fixed = train(tiny_config(tmp_path / "a", new, from_model=str(trained.model_path), e0s=str(iso), refit_e0s=False,
                              max_epochs=1, lr=1e-4, forces="conservative"))
    assert load_model(fixed.out_dir)[0].config.atomic_energies == [-123.0]
    refitted = train(tiny_config(tmp_path / "b", new, from_model=str(trained.model_path), e0s=str(iso),
                                 max_epochs=1, lr=1e-4, forces="conservative"))
    base, _ = load_model(trained.model_path)
    # one element: the refit determines the shift fully, whatever the anchor
    plain = train(tiny_config(tmp_path / "c", new, from_model=str(trained.model_path), max_epochs=1, lr=1e-4,
                              forces="conservative"))
    assert load_model(refitted.out_dir)[0].config.atomic_energies[0] == pytest.approx(
        load_model(plain.out_dir)[0].config.atomic_energies[0], abs=1e-6)
    assert base.config.atomic_energies[0] != pytest.approx(-123.0)
