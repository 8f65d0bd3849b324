#!/usr/bin/env python
"""Cross-validate the sparse-kernel base over its settings and report every fit's errors.

    python benchmarks/kernel_base_grid.py --train $D/train.xyz --valid $D/valid.xyz --test $D/Mo_test.xyz \\
        --n-max 8 --num-sparse 1000 --zeta 2 4 --json out.json

For each number of Gaussians, sparse-environment count and exponent: the kernel base of ``dens_calc.train.kernel_base``
(farthest-point environments, standardised invariants) fitted on the training file for every force weight and ridge,
with its K-fold CV errors on the training file and its errors on the validation and test files.  The CV score
(E/E_best + F/F_best) chooses, as ``dens-calc train --base-kind kernel`` does; the test errors are printed for every
fit and never used to choose.  ``--watch`` prints the signed energy error of test frames whose description contains
the given text (Zuo Mo: the (211) slab, which no training structure resembles).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import ase.io
import numpy as np

from dens_calc.data import check_labels
from dens_calc.train import kernel_base, quadratic_base


def errors(feats: list[dict], w: np.ndarray) -> dict:
    pairs = [quadratic_base.frame_errors(f, w) for f in feats]
    return {"E_mae_meV_atom": float(np.mean([abs(e) for e, _ in pairs])),
            "F_mae_meV_A": float(np.mean(np.abs(np.concatenate([f for _, f in pairs]))))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", required=True)
    parser.add_argument("--valid", required=True)
    parser.add_argument("--test", required=True)
    parser.add_argument("--r-max", type=float, default=5.0)
    parser.add_argument("--l-max", type=int, default=6)
    parser.add_argument("--n-max", type=int, nargs="+", default=[8])
    parser.add_argument("--num-sparse", type=int, nargs="+", default=[1000])
    parser.add_argument("--zeta", type=int, nargs="+", default=[2])
    parser.add_argument("--force-weight", type=float, nargs="+", default=list(quadratic_base.FORCE_WEIGHTS))
    parser.add_argument("--ridge", type=float, nargs="+", default=list(quadratic_base.RIDGES))
    parser.add_argument("--cv-folds", type=int, default=5)
    parser.add_argument("--watch", nargs="*", default=["(2_1_1)"])
    parser.add_argument("--json")
    args = parser.parse_args()
    frames = {name: ase.io.read(getattr(args, name), ":") for name in ("train", "valid", "test")}
    labels = {name: check_labels(f, getattr(args, name), ("energy", "forces"), None) for name, f in frames.items()}
    watched = {i: a.info.get("description", str(i)) for i, a in enumerate(frames["test"])
               if any(w in str(a.info.get("description", "")) for w in args.watch)}
    rows = []
    for n_max in args.n_max:
        start = time.perf_counter()
        every = np.concatenate([kernel_base.atom_invariants(a, args.r_max, args.l_max, n_max) for a in frames["train"]])
        mean, std, standard = kernel_base.standardised(every)
        unit = kernel_base.unit_rows(standard)
        for num_sparse in args.num_sparse:
            sparse = standard[kernel_base.farthest_points(unit, num_sparse)]
            for zeta in args.zeta:
                base = kernel_base.KernelBase(mean, std, sparse, None, args.l_max, n_max, zeta, 0.0, 0.0)
                feats = {name: [kernel_base.kernel_columns(a, lab, base, args.r_max)
                                for a, lab in zip(frames[name], labels[name])] for name in frames}
                print(f"n_max {n_max}, {num_sparse} sparse, ζ {zeta}: columns in {time.perf_counter() - start:.0f} s",
                      flush=True)
                cv = quadratic_base.cross_validate(feats["train"], args.force_weight, args.ridge, args.cv_folds)
                equations = quadratic_base.NormalEquations(feats["train"])
                for row in cv:
                    w = equations.solve(row["force_weight"], row["ridge"])
                    out = {"n_max": n_max, "num_sparse": num_sparse, "zeta": zeta, "force_weight": row["force_weight"],
                           "ridge": row["ridge"], "cv": {k: row[k] for k in ("E_mae_meV_atom", "F_mae_meV_A")},
                           **{name: errors(f, w) for name, f in feats.items()},
                           "watched": {watched[i]: quadratic_base.frame_errors(feats["test"][i], w)[0] for i in watched}}
                    rows.append(out)
                    print(f"  force weight {out['force_weight']:g}, ridge {out['ridge']:g}: " + " | ".join(
                        f"{name} E {out[name]['E_mae_meV_atom']:.2f} F {out[name]['F_mae_meV_A']:.1f}"
                        for name in ("cv", "train", "valid", "test")) +
                        "".join(f" | {d[-7:]} {e:+.1f}" for d, e in out["watched"].items()), flush=True)
    chosen = quadratic_base.best_by_score(rows, "cv")
    print("chosen by CV:", {k: chosen[k] for k in ("n_max", "num_sparse", "zeta", "force_weight", "ridge")})
    if args.json:
        Path(args.json).write_text(json.dumps({"settings": vars(args), "chosen": chosen, "fits": rows}, indent=1))


if __name__ == "__main__":
    main()
