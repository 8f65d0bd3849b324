#!/usr/bin/env python
"""Energy and force MAE per structure group *and MD temperature*, for finding where a model's error sits.

    python benchmarks/group_errors.py --model models/mo-zuo2020-small runs/zuo6/data/mo/data/Mo_test.xyz

``dens-calc eval`` already splits by ``atoms.info["config_type"]``; the Zuo 2020 files put all AIMD frames of
300 K and 6000 K in one group, whose errors differ ten-fold, so here the temperature in the frame's description
("... at 6000 K") is appended to the group name.  Also printed: the mean |F| of the labels (how hard the group
is) and each group's share of the summed force error.  Float64, one structure at a time.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict

import ase.io
import numpy as np

from dens_calc import DeNSCalculator
from dens_calc.data.labels import extract_labels


def group_name(atoms) -> str:
    name = str(atoms.info.get("config_type", "all"))
    match = re.search(r"at (\d+) K", str(atoms.info.get("description", "")))
    return f"{name} {match.group(1)} K" if match else name


def group_errors(model: str, files: list[str]) -> dict:
    calc = DeNSCalculator(model, dtype="float64")
    energy_err, force_err, force_ref = defaultdict(list), defaultdict(list), defaultdict(list)
    for path in files:
        for atoms in ase.io.read(path, ":"):
            labels, _ = extract_labels(atoms)  # the label keys dens-calc eval and train accept
            if "energy" not in labels or "forces" not in labels:
                raise ValueError(f"{path}: a structure without energy/forces labels")
            e_ref, f_ref = labels["energy"], labels["forces"]
            key = group_name(atoms)
            work = atoms.copy()
            work.calc = calc
            energy_err[key].append(abs(work.get_potential_energy() - e_ref) / len(atoms) * 1e3)
            force_err[key].append(np.abs(work.get_forces() - f_ref).ravel() * 1e3)
            force_ref[key].append(np.abs(f_ref).ravel() * 1e3)
    total = sum(np.concatenate(v).sum() for v in force_err.values())
    rows = {}
    for key in sorted(energy_err):
        f_err, f_ref = np.concatenate(force_err[key]), np.concatenate(force_ref[key])
        rows[key] = {"frames": len(energy_err[key]), "E_mae_meV_atom": float(np.mean(energy_err[key])),
                     "F_mae_meV_A": float(f_err.mean()), "F_label_mean_abs_meV_A": float(f_ref.mean()),
                     "share_of_force_error": float(f_err.sum() / total)}
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="checkpoint, model directory or bundled model name")
    parser.add_argument("--json", help="also write the table here")
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()
    rows = group_errors(args.model, args.files)
    print(f"{'group':18s} {'frames':>6s} {'E MAE':>8s} {'F MAE':>8s} {'mean|F|':>8s} {'share F':>8s}")
    for key, r in rows.items():
        print(f"{key:18s} {r['frames']:6d} {r['E_mae_meV_atom']:8.2f} {r['F_mae_meV_A']:8.1f} "
              f"{r['F_label_mean_abs_meV_A']:8.0f} {r['share_of_force_error']:8.2f}")
    print("(E meV/atom, F meV/Å per component)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"model": args.model, "files": args.files, "groups": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
