"""Scan of the energy read-out refit (``dens-calc refit``) on a model's validation AND test files.

``dens-calc refit`` chooses its (energy factor, ridge) on validation structures only; this script shows the
whole grid on the test file as well, so the choice can be judged.  Linearisations are cached (``--cache``):
they are the slow part (one backward pass per read-out weight per structure).

    python benchmarks/refit_scan.py --model models/cu-zuo2020-small --train runs/sbs_cu95/data/train.xyz \
        --valid runs/sbs_cu95/data/valid.xyz --test runs/sbs_cu95/data/Cu_test.xyz --out results/refit_cu.json
"""

from __future__ import annotations

import argparse
import json
import pickle
from pathlib import Path

import numpy as np
import torch

from dens_calc.checkpoint import load_model
from dens_calc.train import refit
from dens_calc.train.config import DEFAULT_STRESS_WEIGHT, TrainConfig
from dens_calc.train.data import build_graphs, load_labelled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--train", required=True)
    parser.add_argument("--valid", required=True)
    parser.add_argument("--test", required=True)
    parser.add_argument("--out", type=Path, required=True, help="JSON with every grid point's errors")
    parser.add_argument("--cache", type=Path, help="pickle of the linearisations (re-used when present)")
    parser.add_argument("--max-force-structures", type=int, default=50)
    args = parser.parse_args()

    net, _ = load_model(args.model, dtype=torch.float64)
    species, r_max = net.config.species, net.config.r_max

    def linearised(path, limit):
        graphs = build_graphs(load_labelled(path, TrainConfig()), species, r_max, torch.float64)
        return refit.linearise_all(net, graphs, limit)

    if args.cache and args.cache.exists():
        train, valid, test = pickle.loads(args.cache.read_bytes())
    else:
        train = linearised(args.train, args.max_force_structures)
        valid, test = linearised(args.valid, None), linearised(args.test, None)
        if args.cache:
            args.cache.write_bytes(pickle.dumps((train, valid, test)))
    w0 = refit._flat(refit.readout_parameters(net))
    config = TrainConfig()
    stress = DEFAULT_STRESS_WEIGHT if any(i.stress is not None for i in train) else 0.0
    trained = {"valid": refit.errors(valid, w0, w0), "test": refit.errors(test, w0, w0)}
    rows = []
    print(f"trained: valid {trained['valid']}\n         test  {trained['test']}")
    for ridge in refit.DEFAULT_RIDGES:
        for factor in refit.DEFAULT_ENERGY_FACTORS:
            w = refit.solve(train, w0, config.energy_weight * config.late_energy_factor * factor, config.forces_weight,
                            stress, ridge)
            row = {"energy_factor": factor, "ridge": ridge, "weight_change_norm": float(np.linalg.norm(w - w0)),
                   "valid": refit.errors(valid, w, w0), "test": refit.errors(test, w, w0)}
            row["valid_relative_cost"] = refit.relative_cost(row["valid"], trained["valid"])
            rows.append(row)
            fmt = lambda d: " ".join(f"{k} {v:.2f}" for k, v in d.items())  # noqa: E731
            print(f"x{factor:<4g} ridge {ridge:<6.0e} valid {fmt(row['valid'])} | test {fmt(row['test'])}", flush=True)
    best = min(rows, key=lambda r: r["valid_relative_cost"])
    chosen = best if best["valid_relative_cost"] < refit.relative_cost(trained["valid"], trained["valid"]) else None
    print("dens-calc refit would keep:", "the trained model" if chosen is None else
          f"x{chosen['energy_factor']:g}, ridge {chosen['ridge']:g}: test {chosen['test']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"model": args.model, "train": args.train, "valid": args.valid, "test": args.test,
                                    "max_force_structures": args.max_force_structures, "trained": trained,
                                    "grid": rows, "chosen": chosen}, indent=1))


if __name__ == "__main__":
    main()
