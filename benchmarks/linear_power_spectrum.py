#!/usr/bin/env python
"""A linear model in the neighbour-density power spectrum, fitted by least squares: how much do angles of high
degree l carry on a data set?

    python benchmarks/linear_power_spectrum.py --train runs/zuo6/data/mo/data/train_full.xyz \\
        --test runs/zuo6/data/mo/data/Mo_test.xyz --l-max 2 4 6 --json out.json

Per atom, c[n, lm] = Σ_j G_n(r_ij) f_cut(r_ij) Y_lm(r̂_ij) with ``--n-max`` Gaussians G_n between 1.5 Å and the
cutoff and a cosine cutoff f_cut, and p[n, n', l] = Σ_m c[n, lm] c[n', lm] / (2l + 1) (SOAP's power spectrum,
single species).  The energy is a constant per atom plus a linear function of Σ_i (c[n, 00], p_i); forces are its
negative gradient, so one least-squares problem (energy rows per atom, force rows times ``--force-weight``, a ridge
term) fits both.  A model that has only the invariants of degree ≤ l shows what angles of degree > l add: this is
the measurement behind ``descriptor_l_max`` (docs/ARCHITECTURE.md, "High-l invariants").  Labels are read as
REF_energy / REF_forces (the split files of ``side_by_side.py``).  Single-element data only.
"""

from __future__ import annotations

import argparse
import json
import time

import ase.io
import numpy as np
import torch

from dens_calc.nn.quadratic_prior import power_spectrum_features
from dens_calc.train import quadratic_base


def per_atom_features(positions, atoms, edges, r_max: float, l_max: int, n_max: int) -> torch.Tensor:
    i, j, shifts = edges
    vectors = positions[j] - positions[i] + torch.as_tensor(shifts @ atoms.cell.array)
    return power_spectrum_features(vectors, torch.as_tensor(i), len(atoms), r_max, l_max, n_max)


def featurise(frames, r_max: float, l_max: int, n_max: int, quadratic: bool = False) -> list[dict]:
    """Summed features, their Jacobian in the positions, and the labels of each frame (float64)."""
    labels = [{"energy": atoms.info["REF_energy"], "forces": atoms.arrays["REF_forces"]} for atoms in frames]
    out = quadratic_base.featurise(frames, labels, r_max, l_max, n_max, quadratic)
    for f, atoms in zip(out, frames):
        f["description"] = str(atoms.info.get("description", atoms.info.get("config_type", "")))
    return out


def fit(train: list[dict], force_weight: float, ridge: float) -> np.ndarray:
    """Weights [constant per atom, features...] by least squares on energies per atom and weighted forces."""
    return quadratic_base.NormalEquations(train).solve(force_weight, ridge)


def errors(frames: list[dict], w: np.ndarray) -> dict:
    e_err, f_abs, per_frame = [], [], {}
    for f in frames:
        e, forces = quadratic_base.frame_errors(f, w)
        e_err.append(e)
        f_abs.append(np.abs(forces))
        per_frame[f["description"]] = round(float(e), 2)
    return {"E_mae_meV_atom": float(np.mean(np.abs(e_err))), "F_mae_meV_A": float(np.mean(np.concatenate(f_abs))),
            "signed_E_meV_atom": per_frame}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", required=True)
    parser.add_argument("--test", required=True)
    parser.add_argument("--r-max", type=float, default=5.0)
    parser.add_argument("--l-max", type=int, nargs="+", default=[2, 4, 6])
    parser.add_argument("--n-max", type=int, default=6)
    parser.add_argument("--force-weight", type=float, nargs="+", default=[0.03, 0.01, 0.003],
                        help="weight of a force row (eV/Å) against an energy row (eV/atom)")
    parser.add_argument("--ridge", type=float, default=1e-8)
    parser.add_argument("--quadratic", action="store_true",
                        help="also the pairwise products of each atom's features (a quadratic model, as qSNAP)")
    parser.add_argument("--watch", nargs="*", default=[], help="print the signed energy error of frames whose "
                                                                "description contains these strings")
    parser.add_argument("--json")
    args = parser.parse_args()
    train_frames, test_frames = ase.io.read(args.train, ":"), ase.io.read(args.test, ":")
    results = []
    for l_max in args.l_max:
        start = time.perf_counter()
        train, test = (featurise(f, args.r_max, l_max, args.n_max, args.quadratic) for f in (train_frames, test_frames))
        print(f"l_max {l_max}: {train[0]['x'].size} features per atom, featurised in {time.perf_counter() - start:.0f} s")
        for force_weight in args.force_weight:
            w = fit(train, force_weight, args.ridge)
            row = {"l_max": l_max, "n_max": args.n_max, "r_max": args.r_max, "quadratic": args.quadratic,
                   "force_weight": force_weight,
                   "ridge": args.ridge, "train": errors(train, w), "test": errors(test, w)}
            results.append(row)
            watched = " ".join(f"{key} {value:+.1f}" for key, value in row["test"]["signed_E_meV_atom"].items()
                               if any(s in key for s in args.watch))
            print(f"  force weight {force_weight:g}: train E {row['train']['E_mae_meV_atom']:.2f} | test E "
                  f"{row['test']['E_mae_meV_atom']:.2f} meV/atom, F {row['test']['F_mae_meV_A']:.1f} meV/Å {watched}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)


if __name__ == "__main__":
    torch.set_default_dtype(torch.float64)
    main()
