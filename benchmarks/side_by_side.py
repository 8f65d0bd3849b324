#!/usr/bin/env python
"""Ours and MACE trained side by side on the same split, for the same wall-clock budget.

    python benchmarks/side_by_side.py 3bpa --minutes 40 --work runs/sbs_3bpa \\
        --arm "ours=" --arm "ours_c96=--channels 96" --arm "mace64=mace:64:1" [--readme]

Every arm gets one thread (``OMP_NUM_THREADS=1``) and the same budget; arms of a wave start
together (``--parallel`` arms per wave, default 2 = the cores of this machine).  ``name=FLAGS``
is our ``dens-calc train`` with FLAGS after the common ones (default CLI settings otherwise; since ``--init auto``
became the default, molecules of H/C/N/O start from the bundled pretrain: ``--init scratch`` for a from-scratch arm);
``name=mace:C:L`` is ``mace_run_train`` with the peer scripts' settings (``../shared/peers/``)
and hidden irreps C x 0e (+ C x 1o for L = 1), in its own venv (``bash ../shared/peers/setup.sh``).
Our budget is ``--time-limit`` (the training loop; data loading comes before it), MACE's is a
``timeout`` of the whole process plus 30 s for its start-up; MACE stopped by the budget keeps its
best checkpoint (``--restart_latest`` with ``--max_num_epochs`` = that epoch rebuilds the model
without more training).

``name=from:MODEL FLAGS`` is ``dens-calc finetune --from MODEL`` with FLAGS on the same split (fine-tuning
benchmarks, issue #19: the molecules ``aspirin``, ``ethanol``, ``naphthalene`` and ``salicylic`` are held out of the
xTB pretraining set).

``name=FLAGS1 => FLAGS2`` is the two-stage recipe: ``dens-calc train`` with FLAGS1 for
``--stage1-fraction`` of the budget (e.g. ``--forces direct --dens``), then ``dens-calc finetune`` of
that model on the same split with FLAGS2 for the rest (conservative by default).

``--train-frames N`` trains on the first N frames of the same seeded order (nested subsets, for
learning curves in frames; validation and test files unchanged).

Afterwards, one at a time: both evaluated on the full test files in float64 (same metric code), and
both timed per E+F(+S) call on the first test structure (2 threads, float32 and float64, median of
30 calls; both with glibc's allocator told to keep freed memory, see ``ALLOCATOR_ENV``).  Writes
``WORK/results.json``, ``WORK/table.md``, ``WORK/pareto.png`` (test force RMSE vs ms/call) and, with
``--readme``, the table into ``benchmarks/README.md``.  Re-running skips arms that finished (delete
``WORK/NAME`` to redo one).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
MACE_VENV = Path(os.environ.get("PEERS_VENV", "/tmp/peers-venv"))
PEER_SCRIPT = Path(__file__).resolve().parent / "peer_mace_side.py"

DATASETS = {
    # train file, frames used, validation frames, test files, isolated atoms, stress labels
    "3bpa": dict(train="3BPA/train_300K.xyz", use=None, n_valid=50, tests=["3BPA/test_300K.xyz", "3BPA/test_600K.xyz"],
                 isolated="3BPA/iso_atoms.xyz", stress=False),
    "aspirin": dict(train="rmd17_aspirin/rmd17_aspirin_train.xyz", use=1000, n_valid=50,
                    tests=["rmd17_aspirin/rmd17_aspirin_test.xyz"], isolated=None, stress=False),
    "si": dict(train="zuo2020_mlearn/converted_extxyz/Si_train.xyz", use=None, n_valid=21,
               tests=["zuo2020_mlearn/converted_extxyz/Si_test.xyz"], isolated=None, stress=True),
    # the converted Ni training file carries no stress labels (its test file does); 26 of 263 frames (10 %) validate
    "ni": dict(train="zuo2020_mlearn/converted_extxyz/Ni_train.xyz", use=None, n_valid=26,
               tests=["zuo2020_mlearn/converted_extxyz/Ni_test.xyz"], isolated=None, stress=False),
}
# held out of the xTB pretraining set (issue #19): fine-tuning benchmarks on other molecules
DATASETS["ethanol"] = dict(train="rmd17_ethanol_botnet/train.xyz", use=None, n_valid=50,
                           tests=["rmd17_ethanol_botnet/test_MD.xyz"], isolated="rmd17_ethanol_botnet/isolated_atoms.xyz",
                           stress=False)
for _molecule in ("naphthalene", "salicylic_acid"):  # original MD17 (EGraFFBench's npz splits)
    DATASETS[_molecule.split("_")[0]] = dict(train=f"md17_original_egraffbench/{_molecule}/train/nequip_npz.npz",
                                             use=None, n_valid=50, isolated=None, stress=False,
                                             tests=[f"md17_original_egraffbench/{_molecule}/test/nequip_npz.npz"])
# the other Zuo-2020 elements (the bundled models' data, issue #18), 10 % of the training file validates
for _element, _n_valid, _stress in [("Ge", 23, True), ("Mo", 19, True), ("Li", 24, True), ("Cu", 26, False)]:
    DATASETS[_element.lower()] = dict(train=f"zuo2020_mlearn/converted_extxyz/{_element}_train.xyz", use=None,
                                      n_valid=_n_valid, tests=[f"zuo2020_mlearn/converted_extxyz/{_element}_test.xyz"],
                                      isolated=None, stress=_stress)
# issue #18: one model of all six Zuo elements, on the union of the per-element splits above (the same training,
# validation and test frames as each per-element model), so its errors compare element by element
ZUO_ELEMENTS = ("si", "ge", "mo", "li", "cu", "ni")
DATASETS["zuo6"] = dict(parts=ZUO_ELEMENTS, isolated=None, stress=True)
# the peer scripts' settings: molecules as train_mace_3bpa.sh, periodic cells with stress as train_mace_cu.sh
MACE_COMMON = ["--model=MACE", "--max_ell=3", "--correlation=3", "--num_interactions=2", "--r_max=5.0",
               "--num_radial_basis=8", "--num_cutoff_basis=5", "--MLP_irreps=16x0e", "--batch_size=5",
               "--valid_batch_size=10", "--lr=0.01", "--scheduler_patience=5", "--ema", "--ema_decay=0.99",
               "--amsgrad", "--eval_interval=1", "--patience=1000", "--num_workers=0", "--save_cpu", "--seed=123",
               "--device=cpu", "--default_dtype=float32", "--energy_key=REF_energy", "--forces_key=REF_forces"]
MACE_LOSS = {False: ["--loss=weighted", "--energy_weight=1.0", "--forces_weight=100.0"],
             True: ["--loss=stress", "--energy_weight=1.0", "--forces_weight=10.0", "--stress_weight=100.0",
                    "--stress_key=REF_stress"]}
# our stress weight for data with stress labels (our CLI default is 0: many sets have none)
OURS_STRESS_WEIGHT = "1.0"


# ---------------------------------------------------------------- data
def write_split(dataset: str, work: Path, train_frames: int | None = None) -> dict:
    """Train/valid split (seed 123) and test copies with REF_* labels, read identically by both codes.

    ``train_frames``: keep only that many training frames, the first of the same seeded order, so
    that smaller sets are subsets of larger ones (learning curves); validation and tests unchanged.
    """
    import ase.io

    spec = DATASETS[dataset]
    if "parts" in spec:
        return _write_union_split(dataset, spec["parts"], work, train_frames)
    data = work / "data"
    files = {"train": data / "train.xyz", "valid": data / "valid.xyz",
             "tests": [data / test_file_copy_name(t) for t in spec["tests"]]}
    if spec["isolated"]:
        files["isolated"] = data / "isolated.xyz"
    stamp = {"dataset": dataset, "train_frames": train_frames}
    if files["train"].exists():
        written = json.loads((data / "split.json").read_text()) if (data / "split.json").exists() else stamp
        if written != stamp:
            raise SystemExit(f"{data} holds a split for {written}, not {stamp}: use another --work")
        return files
    data.mkdir(parents=True, exist_ok=True)
    frames = read_frames(SHARED / "data" / spec["train"])[: spec["use"]]
    order = np.random.default_rng(123).permutation(len(frames))
    valid = sorted(order[: spec["n_valid"]].tolist())
    pool = order[spec["n_valid"] :].tolist()
    if train_frames is not None and not 0 < train_frames <= len(pool):
        raise SystemExit(f"--train-frames must be in 1..{len(pool)} for {dataset}")
    train = sorted(pool[:train_frames])
    (data / "split.json").write_text(json.dumps(stamp))
    _write_ref(files["train"], [frames[i] for i in train])
    _write_ref(files["valid"], [frames[i] for i in valid])
    for src, dst in zip(spec["tests"], files["tests"]):
        _write_ref(dst, read_frames(SHARED / "data" / src))
    if spec["isolated"]:
        atoms = ase.io.read(SHARED / "data" / spec["isolated"], ":")
        for a in atoms:
            a.info["config_type"] = "IsolatedAtom"
        _write_ref(files["isolated"], atoms, forces=False)
    return files


def _write_union_split(dataset: str, parts: tuple[str, ...], work: Path, train_frames: int | None) -> dict:
    """Each part's own split under WORK/data/PART, concatenated into WORK/data/{train,valid}.xyz."""
    if train_frames is not None:
        raise SystemExit(f"--train-frames is not supported for {dataset}")
    data = work / "data"
    part_files = [write_split(part, data / part) for part in parts]
    files = {"train": data / "train.xyz", "valid": data / "valid.xyz",
             "tests": [test for part in part_files for test in part["tests"]]}
    if not files["train"].exists():
        for key in ("train", "valid"):
            text = "".join(part[key].read_text() for part in part_files)
            files[key].write_text(text)
    return files


def test_file_copy_name(source: str) -> str:
    """Name of a test file's extxyz copy: its own name, or for ``SPLIT/nequip_npz.npz`` the split's (``test.xyz``),
    since the copy is extxyz and readers go by the suffix."""
    path = Path(source)
    return f"{path.parent.name}.xyz" if path.suffix == ".npz" else path.name


def read_frames(path: Path) -> list:
    """Labelled frames of an ase-readable file or of a NequIP-style ``.npz`` (pos, energy, forces, atomic_numbers)."""
    import ase.io

    if path.suffix != ".npz":
        return ase.io.read(path, ":")
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator

    data = np.load(path)
    frames = []
    for pos, energy, forces in zip(data["pos"], data["energy"].reshape(-1), data["forces"]):
        atoms = Atoms(numbers=data["atomic_numbers"], positions=pos)
        atoms.calc = SinglePointCalculator(atoms, energy=float(energy), forces=forces)
        frames.append(atoms)
    return frames


def _write_ref(path: Path, frames, forces: bool = True) -> None:
    import ase.io

    out = []
    for atoms in frames:
        copy = atoms.copy()
        copy.info["REF_energy"] = atoms.get_potential_energy()
        if forces:
            copy.arrays["REF_forces"] = atoms.get_forces()
        if atoms.pbc.all() and "stress" in atoms.calc.results:
            copy.info["REF_stress"] = atoms.get_stress(voigt=False)
        copy.calc = None
        out.append(copy)
    ase.io.write(path, out, format="extxyz")


def isolated_e0s(path: Path) -> dict[int, float]:
    import ase.io

    return {int(a.numbers[0]): float(a.info["REF_energy"]) for a in ase.io.read(path, ":")}


def training_elements(path: Path) -> set[int]:
    return {int(z) for atoms in read_frames(path) for z in atoms.numbers}


# ---------------------------------------------------------------- training
FINETUNE = "from:"


def ours_command(name: str, flags: str, files: dict, minutes: float, stress: bool, work: Path) -> list[str]:
    """``dens-calc train`` with FLAGS, or ``dens-calc finetune --from MODEL`` for ``from:MODEL FLAGS``."""
    command = ["train"]
    if flags.startswith(FINETUNE):
        start, _, flags = flags[len(FINETUNE):].partition(" ")
        command = ["finetune", "--from", start]
    cmd = ["dens-calc", *command, "--train", str(files["train"]), "--valid", str(files["valid"]), "--out",
           str(work / name), "--time-limit", str(minutes), "--seed", "123", "--no-progress"]
    if "isolated" in files:
        cmd += ["--e0s", str(files["isolated"])]
    if stress and "--stress-weight" not in flags:
        cmd += ["--stress-weight", OURS_STRESS_WEIGHT]
    return cmd + flags.split()


TWO_STAGE = " => "


def two_stage_command(name: str, spec: str, files: dict, minutes: float, stress: bool, work: Path,
                      stage1_fraction: float) -> list[str]:
    """Stage 1 into WORK/NAME/stage1, then the fine-tune into WORK/NAME, one process after the other."""
    flags1, flags2 = spec.split(TWO_STAGE)
    stage1 = ours_command(f"{name}/stage1", flags1, files, minutes * stage1_fraction, stress, work)
    stage2 = ours_command(name, f"{FINETUNE}{work / name / 'stage1'} {flags2}", files, minutes * (1.0 - stage1_fraction),
                          stress, work)
    return ["bash", "-c", shlex.join(stage1) + " && " + shlex.join(stage2)]


def mace_command(name: str, spec: str, files: dict, stress: bool, work: Path, max_epochs: int) -> list[str]:
    _, channels, max_l = spec.split(":")
    e0s = "average"
    if "isolated" in files:
        # only the training elements: MACE sizes its element table from the data and rejects extra E0s
        present = training_elements(files["train"])
        e0s = "{" + ", ".join(f"{z}: {e!r}" for z, e in isolated_e0s(files["isolated"]).items() if z in present) + "}"
    hidden = int(channels)
    return [str(MACE_VENV / "bin" / "mace_run_train"), f"--name={name}", f"--train_file={files['train']}",
            f"--valid_file={files['valid']}", f"--E0s={e0s}", f"--num_channels={hidden}", f"--max_L={max_l}",
            f"--radial_MLP=[{hidden}, {hidden}, {hidden}]", f"--max_num_epochs={max_epochs}",
            f"--work_dir={work / name}", *MACE_COMMON, *MACE_LOSS[stress]]


def run_wave(arms: list[tuple[str, str]], files: dict, minutes: float, stress: bool, work: Path,
             stage1_fraction: float = 0.6) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    procs = []
    for name, spec in arms:
        (work / name).mkdir(parents=True, exist_ok=True)
        if spec.startswith("mace:"):
            cmd = ["timeout", str(int(minutes * 60 + 30))] + mace_command(name, spec, files, stress, work, 100000)
        elif TWO_STAGE in spec:
            cmd = two_stage_command(name, spec, files, minutes, stress, work, stage1_fraction)
        else:
            cmd = ours_command(name, spec, files, minutes, stress, work)
        log = open(work / f"{name}.log", "w")
        print(f"[{time.strftime('%H:%M:%S')}] start {name}: {' '.join(cmd)}", flush=True)
        procs.append((name, spec, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env), time.time()))
    for name, spec, proc, t0 in procs:
        rc = proc.wait()
        wall = time.time() - t0
        print(f"[{time.strftime('%H:%M:%S')}] {name} ended (rc {rc}) after {wall:.0f} s", flush=True)
        if spec.startswith("mace:"):
            rebuild_mace(name, spec, files, stress, work)
        (work / name / "train_wall.json").write_text(json.dumps({"wall_s": wall, "rc": rc}))


MACE_MODELS_WRITTEN = "Computing metrics for training"


def rebuild_mace(name: str, spec: str, files: dict, stress: bool, work: Path) -> None:
    """Write MACE's .model from its best checkpoint without training further."""
    checkpoints = sorted((work / name / "checkpoints").glob("*_epoch-*.pt"),
                         key=lambda p: int(re.search(r"_epoch-(\d+)", p.name).group(1)))
    if not checkpoints:
        raise RuntimeError(f"{name}: MACE saved no checkpoint within the budget")
    epoch = int(re.search(r"_epoch-(\d+)", checkpoints[-1].name).group(1))
    cmd = mace_command(name, spec, files, stress, work, epoch) + ["--restart_latest"]
    log_path = work / f"{name}_rebuild.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "2"})
        # the models are written before MACE's own train/valid metrics, which took 5-10 min on 450 molecules and
        # are not used (the test files are evaluated below): stop it there
        while process.poll() is None:
            if MACE_MODELS_WRITTEN in log_path.read_text():
                process.terminate()
                process.wait()
                break
            time.sleep(2)
    if process.returncode not in (0, -signal.SIGTERM):
        raise RuntimeError(f"{name}: MACE's rebuild failed (rc {process.returncode}), see {log_path}")
    model_path(name, spec, work)  # raises when no .model was written
    (work / name / "best_epoch.json").write_text(json.dumps({"best_epoch": epoch}))


# ---------------------------------------------------------------- evaluation and timing
def model_path(name: str, spec: str, work: Path) -> Path:
    if not spec.startswith("mace:"):
        return work / name
    models = [p for p in (work / name).glob("*.model") if "compiled" not in p.name]
    if not models:
        raise RuntimeError(f"{name}: no MACE .model in {work / name}")
    return models[0]


def _result_line(output: str):
    line = next(line for line in output.splitlines() if line.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def evaluate_arm(name: str, spec: str, files: dict, work: Path) -> list[dict]:
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    tests = [str(t) for t in files["tests"]]
    if spec.startswith("mace:"):
        cmd = [str(MACE_VENV / "bin" / "python"), str(PEER_SCRIPT), "eval", str(model_path(name, spec, work)), *tests]
    else:
        cmd = [sys.executable, __file__, "_eval_ours", str(work / name), *tests]
    return _result_line(subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stdout)


# glibc keeps freed memory instead of returning it (what dens_calc.runtime.configure_process does for our
# commands through mallopt): the peer gets the same setting through the environment, so neither pays the
# VM's slow page faults on fresh allocations (benchmarks/README.md, "Per-call cost")
ALLOCATOR_ENV = {"MALLOC_MMAP_THRESHOLD_": "1073741824", "MALLOC_TRIM_THRESHOLD_": "2147483648"}


def time_arm(name: str, spec: str, files: dict, work: Path, dtype: str) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "2", **ALLOCATOR_ENV}
    structure = str(files["tests"][0])
    if spec.startswith("mace:"):
        cmd = [str(MACE_VENV / "bin" / "python"), str(PEER_SCRIPT), "time", str(model_path(name, spec, work)),
               structure, "--dtype", dtype]
    else:
        cmd = [sys.executable, __file__, "_time_ours", str(work / name), structure, dtype]
    return _result_line(subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stdout)


def _eval_ours(model: str, tests: list[str]) -> None:
    from dens_calc.train import evaluate_file

    print("RESULT " + json.dumps([evaluate_file(model, t, dtype="float64", device="cpu") for t in tests]))


def _time_ours(model: str, structure: str, dtype: str) -> None:
    import ase.io
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _timing import median_ms

    from dens_calc import DeNSCalculator
    from dens_calc.runtime import configure_process

    configure_process(threads=2)  # as the dens-calc commands run it
    atoms = ase.io.read(structure, 0)
    atoms.calc = DeNSCalculator(model, device="cpu", dtype=dtype)
    props = ["energy", "forces"] + (["stress"] if atoms.pbc.all() else [])
    ms = median_ms(lambda: atoms.calc.calculate(atoms, props, ["positions"]), 30, 3)
    params = sum(p.numel() for p in atoms.calc.model.parameters())
    print("RESULT " + json.dumps({"ms_per_call": ms, "atoms": len(atoms), "dtype": dtype, "threads": 2,
                                  "parameters": int(params)}))


def training_summary(name: str, spec: str, work: Path) -> dict:
    wall = json.loads((work / name / "train_wall.json").read_text())
    if spec.startswith("mace:"):
        text = (work / f"{name}.log").read_text(errors="replace")
        log_dir = work / name / "logs"
        logs = "".join(p.read_text(errors="replace") for p in log_dir.glob("*.log")) if log_dir.exists() else text
        epochs = max([int(m) for m in re.findall(r"Epoch (\d+)", logs)] or [0]) + 1
        best = json.loads((work / name / "best_epoch.json").read_text())["best_epoch"]
        return {"epochs": epochs, "best_epoch": best, **wall}
    import csv

    rows = list(csv.DictReader(open(work / name / "metrics.csv")))
    best = min(rows, key=lambda r: float(r["valid_loss"]))
    summary = {"epochs": len(rows), "best_epoch": int(best["epoch"]), **wall}
    if TWO_STAGE in spec:  # epochs of both stages; the best epoch counts from the start of stage 1
        stage1 = len(list(csv.DictReader(open(work / name / "stage1" / "metrics.csv"))))
        summary.update(stage1_epochs=stage1, epochs=stage1 + len(rows), best_epoch=stage1 + int(best["epoch"]))
    return summary


# ---------------------------------------------------------------- report
def table(results: dict) -> str:
    tests = results["tests"]
    head = ["arm", "model", "params", "epochs (best)"]
    for t in tests:
        head += [f"{t} F RMSE", f"{t} E RMSE"]
    if results["stress"]:
        head += [f"{tests[0]} S RMSE"]
    head += ["ms/call f32", "ms/call f64"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    mace = [a for a in results["arms"].values() if a["kind"] == "mace"]
    for name, arm in results["arms"].items():
        cells = [name, arm["spec"] or "(defaults)", f"{arm['time']['float32']['parameters']:,}",
                 f"{arm['train']['epochs']} ({arm['train']['best_epoch']})"]
        for k, t in enumerate(tests):
            m = arm["eval"][k]["metrics"]
            cells += [f"{m['forces']['rmse']:.1f}", f"{m['energy']['rmse']:.1f}"]
        if results["stress"]:
            cells += [f"{arm['eval'][0]['metrics'].get('stress', {}).get('rmse', float('nan')):.2f}"]
        cells += [f"{arm['time']['float32']['ms_per_call']:.1f}", f"{arm['time']['float64']['ms_per_call']:.1f}"]
        rows.append("| " + " | ".join(cells) + " |")
    lines = ["\n".join(rows), ""]
    if mace:
        lines += ratio_lines(results) + [""] + dominance_lines(results)
    return "\n".join(lines) + "\n"


def _force_rmse(arm: dict, k: int) -> float:
    return arm["eval"][k]["metrics"]["forces"]["rmse"]


def _ms(arm: dict) -> float:
    return arm["time"]["float32"]["ms_per_call"]


def ratio_lines(results: dict) -> list[str]:
    """Each of our arms against the most accurate MACE arm of each test file."""
    tests, arms = results["tests"], list(results["arms"].values())
    mace = [a for a in arms if a["kind"] == "mace"]
    best = [min(mace, key=lambda a: _force_rmse(a, k)) for k in range(len(tests))]
    refs = ", ".join(f"{t}: `{b['name']}`" for t, b in zip(tests, best))
    lines = [f"Ratios against the most accurate MACE arm per test ({refs}; force and energy RMSE ours/MACE; "
             "MACE ms / ours ms, float32):", ""]
    for arm in arms:
        if arm["kind"] != "ours":
            continue
        f = [_force_rmse(arm, k) / _force_rmse(b, k) for k, b in enumerate(best)]
        e = [arm["eval"][k]["metrics"]["energy"]["rmse"] / b["eval"][k]["metrics"]["energy"]["rmse"] for k, b in enumerate(best)]
        speed = [_ms(b) / _ms(arm) for b in best]
        lines.append(f"- `{arm['name']}`: F RMSE ratio {', '.join(f'{r:.2f}' for r in f)}; "
                     f"E RMSE ratio {', '.join(f'{r:.2f}' for r in e)}; {', '.join(f'{r:.1f}' for r in speed)}x faster per call")
    return lines


def dominance_lines(results: dict) -> list[str]:
    """Whether every MACE arm is dominated (a faster arm of ours with a force RMSE no higher) per test."""
    tests, arms = results["tests"], list(results["arms"].values())
    ours, mace = [a for a in arms if a["kind"] == "ours"], [a for a in arms if a["kind"] == "mace"]
    lines = []
    for k, test in enumerate(tests):
        free = [m["name"] for m in mace
                if not any(_ms(o) <= _ms(m) and _force_rmse(o, k) <= _force_rmse(m, k) for o in ours)]
        lines.append(f"- {test}: " + ("our front dominates every MACE arm" if not free
                                       else f"not dominated by any arm of ours: {', '.join(free)}"))
    return lines


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The non-dominated (cost, error) points, by increasing cost."""
    front, best = [], float("inf")
    for x, y in sorted(points):
        if y < best:
            front.append((x, y))
            best = y
    return front


def pareto_plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tests = results["tests"]
    fig, axes = plt.subplots(1, len(tests), figsize=(5.5 * len(tests), 4.2), squeeze=False)
    for k, (ax, test) in enumerate(zip(axes[0], tests)):
        for kind, marker, colour in (("ours", "o", "tab:blue"), ("mace", "s", "tab:red")):
            arms = [a for a in results["arms"].values() if a["kind"] == kind]
            xs = [_ms(a) for a in arms]
            ys = [_force_rmse(a, k) for a in arms]
            ax.scatter(xs, ys, marker=marker, color=colour, label="dens-calc" if kind == "ours" else "MACE")
            front = pareto_front(list(zip(xs, ys)))
            ax.step([x for x, _ in front], [y for _, y in front], where="post", color=colour, alpha=0.5)
            for a, x, y in zip(arms, xs, ys):
                ax.annotate(a["name"], (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.set_xscale("log")
        call = "E+F+S" if results.get("stress") else "E+F"
        ax.set_xlabel(f"ms per {call} call (float32, 2 threads)")
        ax.set_ylabel(f"{test}: force RMSE (meV/Å)")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"{results['dataset']}: {results['minutes']} min training, one thread per arm")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def update_readme(results: dict, text: str) -> None:
    readme = REPO / "benchmarks" / "README.md"
    begin, end = f"<!-- side_by_side:{results['dataset']} -->", f"<!-- /side_by_side:{results['dataset']} -->"
    body = readme.read_text()
    block = f"{begin}\n{text}{end}"
    if begin in body:
        body = body[: body.index(begin)] + block + body[body.index(end) + len(end):]
    else:
        body += f"\n{block}\n"
    readme.write_text(body)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_eval_ours":
        return _eval_ours(sys.argv[2], sys.argv[3:])
    if len(sys.argv) > 1 and sys.argv[1] == "_time_ours":
        return _time_ours(*sys.argv[2:5])
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dataset", choices=sorted(DATASETS))
    parser.add_argument("--minutes", type=float, default=40.0)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--arm", action="append", required=True, help="NAME=FLAGS (ours) or NAME=mace:C:L")
    parser.add_argument("--parallel", type=int, default=2, help="arms started together per wave")
    parser.add_argument("--train-frames", type=int, default=None,
                        help="use only this many training frames (nested subsets of one seeded order)")
    parser.add_argument("--stage1-fraction", type=float, default=0.6,
                        help="share of the budget for stage 1 of a two-stage arm (FLAGS1 => FLAGS2)")
    parser.add_argument("--readme", action="store_true", help="write the table into benchmarks/README.md")
    parser.add_argument("--train-only", action="store_true",
                        help="stop after training; a later run without it evaluates (lets two data sets train "
                             "at once without their 2-thread evaluations overlapping)")
    args = parser.parse_args()
    arms = [tuple(a.split("=", 1)) for a in args.arm]
    stress = DATASETS[args.dataset]["stress"]
    args.work.mkdir(parents=True, exist_ok=True)
    files = write_split(args.dataset, args.work, args.train_frames)
    todo = [(n, s) for n, s in arms if not (args.work / n / "train_wall.json").exists()]
    for start in range(0, len(todo), args.parallel):
        run_wave(todo[start : start + args.parallel], files, args.minutes, stress, args.work, args.stage1_fraction)
    if args.train_only:
        return
    results = {"dataset": args.dataset, "minutes": args.minutes, "threads_per_arm": 1, "stress": stress,
               "train_frames": args.train_frames,
               "tests": [Path(t).stem for t in files["tests"]], "arms": {}}
    for name, spec in arms:
        cached = args.work / name / "side_by_side.json"
        if cached.exists():
            results["arms"][name] = json.loads(cached.read_text())
            continue
        arm = {"name": name, "spec": spec, "kind": "mace" if spec.startswith("mace:") else "ours",
               "train": training_summary(name, spec, args.work), "eval": evaluate_arm(name, spec, files, args.work),
               "time": {d: time_arm(name, spec, files, args.work, d) for d in ("float32", "float64")}}
        cached.write_text(json.dumps(arm, indent=1))
        results["arms"][name] = arm
        print(f"{name}: evaluated and timed", flush=True)
    (args.work / "results.json").write_text(json.dumps(results, indent=1))
    text = table(results)
    (args.work / "table.md").write_text(text)
    pareto_plot(results, args.work / "pareto.png")
    print(text)
    if args.readme:
        update_readme(results, text)


if __name__ == "__main__":
    main()
