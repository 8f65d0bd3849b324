#!/usr/bin/env python
"""Which of several trained models to put in a committee: every subset scored, chosen on validation.

    python benchmarks/committee_subsets.py --models runs/a/model.pt runs/b/model.pt runs/c/model.pt \
        --valid data/valid.xyz --test data/test.xyz --out runs/subsets.json

A committee's energy is the mean of its members' (dens_calc.nn.committee), so its forces and stress are the
means of theirs: each model is evaluated once per file (float64, the calculator's forces, each model with its
own cutoff) and every subset of two or more is scored from those predictions without running it again.

The subset is chosen on the validation file only, by ``E/E_best + F/F_best`` (validation energy and force MAE
relative to the best single model's), so that neither energies nor forces are traded away unseen.  The test
file's numbers are printed for the chosen subset and for each single model; ``--all`` prints them for every
subset too (for a report, not for choosing).
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np


def predictions(model: str, path: str) -> tuple[list, list, list]:
    """Frames, labels and the calculator's results of ``model`` on ``path`` (float64)."""
    from dens_calc.train.evaluate import predict_file

    frames, labels, results, _ = predict_file(model, path, dtype="float64")
    return frames, labels, results


def mean_results(per_model: list[list[dict]]) -> list[dict]:
    """Per frame, the mean of the models' energy, forces and stress: the committee's prediction."""
    out = []
    for frame_results in zip(*per_model):
        keys = set.intersection(*(set(r) & {"energy", "forces", "stress"} for r in frame_results))
        out.append({k: np.mean([np.asarray(r[k], float) for r in frame_results], axis=0) for k in keys})
    return out


def scores(frames, labels, results) -> dict:
    """Energy-per-atom, force and stress MAE (meV units) of one set of predictions."""
    from dens_calc.train.evaluate import collect, metrics

    m = metrics(collect(frames, labels, results))
    return {k: m[k]["mae"] for k in ("energy_per_atom", "forces", "stress") if k in m}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", required=True, help="checkpoints, model directories or bundled names")
    parser.add_argument("--valid", required=True, help="labelled file the subset is chosen on")
    parser.add_argument("--test", help="labelled held-out file, reported only")
    parser.add_argument("--min-size", type=int, default=2)
    parser.add_argument("--all", action="store_true", help="also print every subset's test numbers")
    parser.add_argument("--out", type=Path, help="JSON with every subset's validation (and test) MAEs")
    args = parser.parse_args()
    if len(args.models) < args.min_size:
        raise SystemExit(f"need at least {args.min_size} models, got {len(args.models)}")

    files = {"valid": args.valid, **({"test": args.test} if args.test else {})}
    cached = {name: [predictions(m, path) for m in args.models] for name, path in files.items()}

    def score(subset: tuple[int, ...], name: str) -> dict:
        runs = cached[name]
        frames, labels, _ = runs[0]
        return scores(frames, labels, mean_results([runs[i][2] for i in subset]))

    rows = []  # the single models first, then every committee
    for size in range(1, len(args.models) + 1):
        if 1 < size < args.min_size:
            continue
        for subset in itertools.combinations(range(len(args.models)), size):
            row = {"members": [args.models[i] for i in subset], "valid": score(subset, "valid")}
            if args.test:
                row["test"] = score(subset, "test")
            rows.append(row)
    e_best = min(r["valid"]["energy_per_atom"] for r in rows[:len(args.models)])
    f_best = min(r["valid"]["forces"] for r in rows[:len(args.models)])
    for r in rows:
        r["score"] = r["valid"]["energy_per_atom"] / e_best + r["valid"]["forces"] / f_best
    committees = [r for r in rows if len(r["members"]) >= args.min_size]
    chosen = min(committees, key=lambda r: r["score"])

    def line(r: dict, with_test: bool = True) -> str:
        text = f"{r['score']:6.3f}  valid E {r['valid']['energy_per_atom']:6.2f} F {r['valid']['forces']:7.2f}"
        if with_test and "test" in r:
            t = r["test"]
            text += f"  | test E {t['energy_per_atom']:6.2f} F {t['forces']:7.2f} S {t.get('stress', float('nan')):6.2f}"
        return f"{text}  {' + '.join(r['members'])}"

    print("score = valid E/E_best + F/F_best; MAE in meV/atom, meV/Å, meV/Å³ (float64)")
    print("single models:")
    for r in rows[:len(args.models)]:
        print("  " + line(r))
    print("committees, best validation score first:")
    for r in sorted(committees, key=lambda r: r["score"]):
        print("  " + line(r, with_test=r is chosen or args.all) + ("   <- chosen on validation" if r is chosen else ""))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"files": files, "chosen": chosen, "subsets": rows}, indent=1))


if __name__ == "__main__":
    main()
