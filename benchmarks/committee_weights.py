#!/usr/bin/env python
"""How far weighting a committee's members can go: convex weights found by linear programming.

    python benchmarks/committee_weights.py --models runs/a/model.pt runs/b/model.pt runs/c/model.pt \
        --valid data/valid.xyz --test data/test.xyz --target-energy 2.24 --target-forces 90 --out runs/w.json

A committee whose energy is ``sum_i w_i E_i`` with ``w_i >= 0`` and ``sum_i w_i = 1`` has forces and stress
``sum_i w_i F_i`` (exact derivatives), so its error on any frame is the same combination of its members'
errors.  Energy and force MAE are then piecewise linear in ``w`` and the best weights are a linear
programme: each model is evaluated once per file (float64, the calculator's forces) and nothing is re-run.

Two questions, kept apart:

* **Chosen on validation** (``--valid``): the weights minimising ``E/E_best + F/F_best`` on the validation
  file (the score ``committee_subsets.py`` ranks subsets by, here over every convex combination), then
  scored on the test file.  This is a committee one could ship.
* **An oracle bound** (``--target-energy``/``--target-forces``): weights chosen *on the test file itself*,
  the lowest test energy MAE any convex combination reaches with forces at or under the force target, and
  the lowest force MAE with energies at or under the energy target.  Not a model: if even these miss the
  targets, no committee of these models, however weighted, meets them on this test set.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

ENERGY_MEV, FORCE_MEV = 1000.0, 1000.0  # eV -> meV (per atom; per Å)


def frame_errors(model: str, path: str) -> tuple[np.ndarray, list[np.ndarray], list[str]]:
    """Per frame: energy-per-atom error (meV/atom), force-component errors (meV/Å) and a name of ``model``."""
    from dens_calc.train.evaluate import predict_file

    frames, labels, results, _ = predict_file(model, path, dtype="float64")
    energy = np.array([(r["energy"] - lab["energy"]) / len(a) for a, lab, r in zip(frames, labels, results)])
    forces = [np.ravel(np.asarray(r["forces"]) - np.asarray(lab["forces"])) * FORCE_MEV if "forces" in lab
              else np.zeros(0) for lab, r in zip(labels, results)]
    names = [" ".join(str(v) for v in a.info.values() if isinstance(v, str)) for a in frames]
    return energy * ENERGY_MEV, forces, names


def error_matrices(per_model: list, keep: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(frames, models) energy errors and (components, models) force errors, for the frames in ``keep``."""
    n = len(per_model[0][0])
    keep = np.ones(n, bool) if keep is None else keep
    energy = np.column_stack([e[keep] for e, _, _ in per_model])
    forces = np.column_stack([np.concatenate([f for f, k in zip(fs, keep) if k]) for _, fs, _ in per_model])
    return energy, forces


def _mae_blocks(errors: np.ndarray):
    """Rows ``A w - t <= 0`` and ``-A w - t <= 0`` for auxiliary ``t >= |A w|`` (one per row of ``errors``)."""
    from scipy import sparse

    n = errors.shape[0]
    eye = sparse.identity(n, format="csr")
    return sparse.vstack([sparse.hstack([sparse.csr_matrix(errors), -eye]),
                          sparse.hstack([sparse.csr_matrix(-errors), -eye])], format="csr")


def best_weights(energy: np.ndarray, forces: np.ndarray, *, energy_cost: float, force_cost: float,
                 max_energy: float | None = None, max_forces: float | None = None) -> np.ndarray | None:
    """Convex weights minimising ``energy_cost * E_MAE + force_cost * F_MAE`` (optionally with MAE caps).

    ``energy`` is (frames, models), ``forces`` (components, models), both errors.  None if the caps cannot
    be met by any convex combination.
    """
    from scipy import sparse
    from scipy.optimize import linprog

    n_frames, n_models = energy.shape
    n_comp = forces.shape[0]
    n_var = n_models + n_frames + n_comp  # w, then |energy error| per frame, then |force error| per component
    cost = np.concatenate([np.zeros(n_models), np.full(n_frames, energy_cost / n_frames),
                           np.full(n_comp, force_cost / n_comp)])
    e_rows = _mae_blocks(energy)  # columns: w, t_energy
    f_rows = _mae_blocks(forces)  # columns: w, t_forces
    zeros_e = sparse.csr_matrix((e_rows.shape[0], n_comp))
    zeros_f = sparse.csr_matrix((f_rows.shape[0], n_frames))
    rows = [sparse.hstack([e_rows, zeros_e]),
            sparse.hstack([f_rows[:, :n_models], zeros_f, f_rows[:, n_models:]])]
    caps = [0.0] * (2 * n_frames + 2 * n_comp)  # right-hand sides of the rows above
    if max_energy is not None:
        rows.append(sparse.csr_matrix(np.concatenate([np.zeros(n_models), np.full(n_frames, 1 / n_frames),
                                                      np.zeros(n_comp)])))
        caps.append(max_energy)
    if max_forces is not None:
        rows.append(sparse.csr_matrix(np.concatenate([np.zeros(n_models + n_frames), np.full(n_comp, 1 / n_comp)])))
        caps.append(max_forces)
    a_eq = sparse.csr_matrix(np.concatenate([np.ones(n_models), np.zeros(n_frames + n_comp)]))
    result = linprog(cost, A_ub=sparse.vstack(rows, format="csr"), b_ub=np.array(caps), A_eq=a_eq, b_eq=[1.0],
                     bounds=[(0, None)] * n_var, method="highs")
    if result.status == 2:  # infeasible: the caps cannot both hold
        return None
    if not result.success:
        raise RuntimeError(f"linear programme failed: {result.message}")
    weights = np.clip(result.x[:n_models], 0.0, None)
    return weights / weights.sum()


def maes(weights: np.ndarray, energy: np.ndarray, forces: np.ndarray) -> dict:
    """Energy-per-atom and force MAE of the weighted committee."""
    return {"energy_per_atom": float(np.abs(energy @ weights).mean()), "forces": float(np.abs(forces @ weights).mean())}


def _describe(weights: np.ndarray, models: list[str]) -> dict:
    return {m: round(float(w), 4) for m, w in zip(models, weights) if w > 1e-4}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", required=True, help="checkpoints, model directories or bundled names")
    parser.add_argument("--valid", help="labelled file the shippable weights are chosen on")
    parser.add_argument("--valid-models", nargs="+",
                        help="the subset of --models allowed in the validation choice (e.g. leave out models "
                             "that were trained on the validation file); default: all")
    parser.add_argument("--test", required=True, help="labelled held-out file")
    parser.add_argument("--target-energy", type=float, help="energy MAE target (meV/atom) for the oracle bound")
    parser.add_argument("--target-forces", type=float, help="force MAE target (meV/Å) for the oracle bound")
    parser.add_argument("--leave-out", nargs="*", default=[], metavar="TEXT",
                        help="also give the oracle bound without the test frames whose info strings contain TEXT")
    parser.add_argument("--out", type=Path, help="JSON with every number printed")
    args = parser.parse_args()
    if len(args.models) < 2:
        raise SystemExit("need at least two models")

    test = [frame_errors(m, args.test) for m in args.models]
    e_test, f_test = error_matrices(test)
    singles = {m: maes(np.eye(len(args.models))[i], e_test, f_test) for i, m in enumerate(args.models)}
    report: dict = {"test": args.test, "single_models_test": singles}
    print("test MAE of each model: E meV/atom, F meV/Å (float64)")
    for m, s in singles.items():
        print(f"  E {s['energy_per_atom']:6.2f}  F {s['forces']:7.2f}  {m}")
    equal = np.full(len(args.models), 1 / len(args.models))
    report["equal_weights_test"] = maes(equal, e_test, f_test)
    print(f"equal weights, all models: test E {report['equal_weights_test']['energy_per_atom']:.2f} "
          f"F {report['equal_weights_test']['forces']:.2f}")

    if args.valid:
        allowed = args.valid_models or args.models
        unknown = set(allowed) - set(args.models)
        if unknown:
            raise SystemExit(f"--valid-models not in --models: {sorted(unknown)}")
        idx = [args.models.index(m) for m in allowed]
        e_val, f_val = error_matrices([frame_errors(args.models[i], args.valid) for i in idx])
        e_best = np.abs(e_val).mean(0).min()
        f_best = np.abs(f_val).mean(0).min()
        w_val = best_weights(e_val, f_val, energy_cost=1 / e_best, force_cost=1 / f_best)
        w_full = np.zeros(len(args.models))
        w_full[idx] = w_val
        chosen = {"weights": _describe(w_full, args.models), "valid": maes(w_val, e_val, f_val),
                  "test": maes(w_full, e_test, f_test)}
        report["chosen_on_validation"] = chosen
        print(f"chosen on validation (min E/{e_best:.2f} + F/{f_best:.2f}): valid E {chosen['valid']['energy_per_atom']:.2f}"
              f" F {chosen['valid']['forces']:.2f} | test E {chosen['test']['energy_per_atom']:.2f} "
              f"F {chosen['test']['forces']:.2f}\n  weights {chosen['weights']}")

    if args.target_energy is not None and args.target_forces is not None:
        bound = {}
        for name, kwargs in (("lowest_energy", {"energy_cost": 1.0, "force_cost": 0.0}),
                             ("lowest_forces", {"energy_cost": 0.0, "force_cost": 1.0}),
                             ("lowest_energy_with_forces_at_target",
                              {"energy_cost": 1.0, "force_cost": 0.0, "max_forces": args.target_forces}),
                             ("lowest_forces_with_energy_at_target",
                              {"energy_cost": 0.0, "force_cost": 1.0, "max_energy": args.target_energy})):
            w = best_weights(e_test, f_test, **kwargs)
            bound[name] = None if w is None else {"weights": _describe(w, args.models), "test": maes(w, e_test, f_test)}
        w = best_weights(e_test, f_test, energy_cost=1 / args.target_energy, force_cost=1 / args.target_forces)
        bound["lowest_sum_of_ratios"] = {"weights": _describe(w, args.models), "test": maes(w, e_test, f_test)}
        for text in args.leave_out:
            # how much of the gap one named frame (or group) is: the same bound without it
            keep = np.array([text not in name for name in test[0][2]])
            if keep.all() or not keep.any():
                raise SystemExit(f"--leave-out {text!r} matches {'no' if keep.all() else 'every'} test frame")
            e_kept, f_kept = error_matrices(test, keep)
            w = best_weights(e_kept, f_kept, energy_cost=1.0, force_cost=0.0, max_forces=args.target_forces)
            bound[f"lowest_energy_with_forces_at_target_without_{text}"] = None if w is None else {
                "left_out_frames": int((~keep).sum()), "weights": _describe(w, args.models),
                "test": maes(w, e_kept, f_kept)}
        report["oracle_bound_on_test"] = {"target": {"energy_per_atom": args.target_energy,
                                                     "forces": args.target_forces}, **bound}
        print(f"oracle bound (weights chosen on the test file; not a model), targets E {args.target_energy} "
              f"F {args.target_forces}:")
        for name, row in bound.items():
            text = "infeasible" if row is None else (f"test E {row['test']['energy_per_atom']:.2f} "
                                                     f"F {row['test']['forces']:.2f}  weights {row['weights']}")
            print(f"  {name}: {text}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
