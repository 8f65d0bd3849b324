#!/usr/bin/env python
"""Largest |feature| per interaction layer of a model on some structures (a health check of the network).

Hooks on every layer report the largest absolute value of the aggregated messages, the square and cubic
product terms and the layer output, over the structures given.  Features of order 1e3 entering the
polynomial node products make the energy surface steep and training fragile (docs/ARCHITECTURE.md,
"Training stability").

    python benchmarks/feature_scale.py --model runs/zuo6/ours/model.pt --data runs/zuo6/data/train.xyz --every 25
"""

from __future__ import annotations

import argparse
import json

import ase.io
import torch

from dens_calc.checkpoint import load_model
from dens_calc.data import collate
from dens_calc.data.graph import atoms_to_graph
from dens_calc.nn.model import evaluate


def feature_scales(model, frames) -> dict[str, float]:
    largest: dict[str, float] = {}

    def hook(name):
        def record(module, inputs, output):
            largest[name] = max(largest.get(name, 0.0), float(output.detach().abs().max()))
        return record

    handles = []
    for i, layer in enumerate(model.layers):
        parts = {"messages": layer.conv, "square": layer.product, "cubic": layer.cubic, "output": layer}
        handles += [module.register_forward_hook(hook(f"layer {i + 1} {part}"))
                    for part, module in parts.items() if module is not None]
    try:
        dtype = next(model.parameters()).dtype
        graphs = [atoms_to_graph(atoms, model.config.species, model.config.r_max, dtype=dtype) for atoms in frames]
        for start in range(0, len(graphs), 8):
            evaluate(model, collate(graphs[start : start + 8]))
    finally:
        for handle in handles:
            handle.remove()
    return largest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="checkpoint file or model directory")
    parser.add_argument("--data", required=True, help="structures (any ase.io format)")
    parser.add_argument("--every", type=int, default=1, help="take every N-th structure")
    args = parser.parse_args()
    model, _ = load_model(args.model)
    frames = ase.io.read(args.data, index=f"::{args.every}")
    print(json.dumps({k: round(v, 3) for k, v in feature_scales(model, frames).items()}, indent=1))


if __name__ == "__main__":
    main()
