#!/usr/bin/env python
"""How much of two models' force error is the same error: ours against a MACE model, atom by atom.

    python benchmarks/shared_error.py --ours runs/si_w1/ours/model.pt --mace runs/si_w3/mace32/mace32.model \\
        runs/si_w1/data/Si_test.xyz runs/si_w1/data/train.xyz --json results/si_shared_error.json

For each file it prints, overall and per ``config_type`` (and MD temperature), both models' force RMSE, the RMSE of their average,
the correlation of their error components and the RMS of the force labels.  Two models this different (SO(2)/MACE, other loss, other
optimiser) that miss the labels in the same direction point at what the data do not determine (too few
frames of a kind, labels a 5 Å local model cannot represent), not at either model's capacity: an architecture
change then cannot remove the shared part.  The MACE forces are computed in the peers' venv
(``peer_mace_side.py forces``), ours here; both in float64, one thread.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from side_by_side import MACE_VENV, PEER_SCRIPT, _result_line  # noqa: E402


TEMPERATURE = re.compile(r"(\d+) ?K\b")


def group_of(atoms) -> str:
    """``config_type``, with the MD temperature of the description when it gives one ("AIMD-NVT 2530 K")."""
    group = str(atoms.info.get("config_type", "all"))
    temperature = TEMPERATURE.search(str(atoms.info.get("description", "")))
    return f"{group} {temperature.group(1)} K" if temperature else group


def group_order(group: str) -> tuple[str, int]:
    """Groups by name, then by temperature (300 K before 2530 K)."""
    temperature = TEMPERATURE.search(group)
    return (group[: temperature.start()] if temperature else group, int(temperature.group(1)) if temperature else 0)


def reference_forces(frames) -> tuple[np.ndarray, np.ndarray]:
    forces, groups = [], []
    for atoms in frames:
        ref = atoms.arrays.get("REF_forces")
        forces.append(atoms.get_forces() if ref is None else ref)
        groups += [group_of(atoms)] * len(atoms)
    return np.concatenate(forces), np.array(groups)


def our_forces(model: str, frames) -> np.ndarray:
    from dens_calc import DeNSCalculator

    calc = DeNSCalculator(model, dtype="float64", device="cpu")
    out = []
    for atoms in frames:
        work = atoms.copy()
        work.calc = calc
        out.append(work.get_forces())
    return np.concatenate(out)


def mace_forces(model: str, path: str) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "forces.npy")
        cmd = [str(MACE_VENV / "bin" / "python"), str(PEER_SCRIPT), "forces", model, path, out]
        _result_line(subprocess.run(cmd, capture_output=True, text=True, check=True,
                                    env={**os.environ, "OMP_NUM_THREADS": "1"}).stdout)
        return np.load(out)


def compare(ours: np.ndarray, mace: np.ndarray, ref: np.ndarray) -> dict:
    def rmse(diff):
        return float(1000.0 * np.sqrt(np.mean(diff**2)))

    e_ours, e_mace = (ours - ref).ravel(), (mace - ref).ravel()
    corr = float(np.corrcoef(e_ours, e_mace)[0, 1]) if e_ours.std() > 0 and e_mace.std() > 0 else float("nan")
    return {"atoms": int(len(ref)), "ours_rmse": rmse(e_ours), "mace_rmse": rmse(e_mace),
            "average_rmse": rmse(0.5 * (e_ours + e_mace)), "ours_minus_mace_rmse": rmse(ours - mace),
            "error_correlation": corr, "label_rms": rmse(ref)}


def analyse(ours_model: str, mace_model: str, path: str) -> dict:
    import ase.io

    frames = ase.io.read(path, ":")
    ref, groups = reference_forces(frames)
    ours, mace = our_forces(ours_model, frames), mace_forces(mace_model, path)
    result = {"file": path, "all": compare(ours, mace, ref)}
    for group in sorted(set(groups), key=group_order):
        mask = groups == group
        result[group] = compare(ours[mask], mace[mask], ref[mask])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+")
    parser.add_argument("--ours", required=True)
    parser.add_argument("--mace", required=True)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch_threads = os.environ.setdefault("OMP_NUM_THREADS", "1")
    results = []
    for path in args.files:
        result = analyse(args.ours, args.mace, path)
        results.append(result)
        print(f"{path} (meV/Å, {torch_threads} thread)")
        print(f"  {'group':18s} {'atoms':>6s} {'ours':>7s} {'MACE':>7s} {'average':>8s} {'corr':>5s} {'|F| RMS':>8s}")
        for group, row in result.items():
            if group != "file":
                print(f"  {group:18s} {row['atoms']:6d} {row['ours_rmse']:7.1f} {row['mace_rmse']:7.1f} "
                      f"{row['average_rmse']:8.1f} {row['error_correlation']:5.2f} {row['label_rms']:8.1f}")
    if args.json:
        args.json.write_text(json.dumps({"ours": args.ours, "mace": args.mace, "results": results}, indent=1))


if __name__ == "__main__":
    main()
