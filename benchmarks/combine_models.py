#!/usr/bin/env python
"""Two or more trained models of one architecture combined: prediction average and weight average.

    python benchmarks/combine_models.py --models runs/a/model.pt runs/b/model.pt \
        --test ../shared/data/3BPA/test_300K.xyz ../shared/data/3BPA/test_600K.xyz --out runs/combined

Evaluates on the test files in float64: each model alone; the ensemble (the mean of the models' energies, so
forces and stress are the mean's exact derivatives: still conservative, at N times the call cost); and the
model whose weights are the mean of the models' weights (one model's call cost, written to OUT/averaged.pt).
Models of different architectures give the ensemble only. The weight average only makes sense for models in one basin, e.g. snapshots of one run or a run and its
continuation (stochastic weight averaging); the script measures whether it does.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
import torch


def averaged_checkpoint(paths: list[str], out: Path) -> Path:
    """A checkpoint whose weights are the element-wise mean of the given checkpoints' (same architecture)."""
    from dens_calc.checkpoint import atomic_torch_save, read_checkpoint
    from dens_calc.nn.model import ModelConfig

    payloads = [read_checkpoint(p) for p in paths]
    first = payloads[0]
    configs = [dataclasses.asdict(ModelConfig.from_dict(p["model_config"])) for p in payloads]
    # compared as configs, so that files written before a new (defaulted) key existed still match; the E0s
    # may differ (a fine-tuning run refits them) and are averaged like the weights
    for path, config in zip(paths[1:], configs[1:]):
        if {**config, "atomic_energies": None} != {**configs[0], "atomic_energies": None}:
            raise ValueError(f"{path} has another architecture than {paths[0]}: weights cannot be averaged")
    model_config = dict(first["model_config"],
                        atomic_energies=np.mean([c["atomic_energies"] for c in configs], axis=0).tolist())
    state = {}
    for key, value in first["model_state"].items():
        stacked = torch.stack([p["model_state"][key] for p in payloads])
        state[key] = stacked.mean(0) if value.is_floating_point() else value
    averaged = dict(first, model_config=model_config, model_state=state,
                    metadata=dict(first.get("metadata") or {}, averaged_from=[str(p) for p in paths]))
    target = out / "averaged.pt"
    atomic_torch_save(averaged, target)
    return target


def evaluate_together(paths: list[str], test: str) -> dict[str, dict]:
    """Test metrics (float64) of each model and of their mean prediction, from one evaluation per model."""
    from dens_calc.calculators import DeNSCalculator
    from dens_calc.data import check_labels, read_structures
    from dens_calc.train.evaluate import collect, metrics

    frames = read_structures(test)
    labels = check_labels(frames, test, ("energy",), None)
    predictions = {p: DeNSCalculator(p, dtype="float64").batch_evaluate(frames, batch_size=16) for p in paths}
    predictions["ensemble"] = [{key: np.mean([r[i][key] for r in predictions.values()], axis=0)
                                for key in predictions[paths[0]][i]} for i in range(len(frames))]
    return {name: {"file": test, "structures": len(frames), "metrics": metrics(collect(frames, labels, results))}
            for name, results in predictions.items()}


def row(name: str, evaluation: dict) -> str:
    m = evaluation["metrics"]
    stress = f"{m['stress']['mae']:.2f}" if "stress" in m else "–"
    return (f"| {name} | {Path(evaluation['file']).name} | {m['forces']['rmse']:.2f} | {m['energy']['rmse']:.2f} | "
            f"{m['forces']['mae']:.2f} | {m['energy_per_atom']['mae']:.3f} | {stress} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", required=True)
    parser.add_argument("--test", nargs="+", required=True)
    parser.add_argument("--out", required=True, help="directory for averaged.pt and combined.json")
    args = parser.parse_args()
    if len(args.models) < 2:
        raise SystemExit("give at least two models")
    from dens_calc.train import evaluate_file

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        averaged = averaged_checkpoint(args.models, out)
    except ValueError as error:  # models of different architectures still make an ensemble
        print(f"no weight average: {error}")
        averaged = None
    results = {}
    for test in args.test:
        results[test] = evaluate_together(args.models, test)
        if averaged is not None:
            results[test]["weight_average"] = evaluate_file(str(averaged), test, dtype="float64")
    (out / "combined.json").write_text(json.dumps(results, indent=1) + "\n")
    print("| model | test file | F RMSE (meV/Å) | E RMSE (meV) | F MAE | E MAE (meV/atom) | S MAE (meV/Å³) |\n"
          "|---|---|---|---|---|---|---|")
    for test, by_name in results.items():
        for name, evaluation in by_name.items():
            print(row(name, evaluation))


if __name__ == "__main__":
    main()
