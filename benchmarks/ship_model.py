#!/usr/bin/env python
"""Copy a trained checkpoint into ``models/NAME`` as a bundled model: weights, config and provenance only.

    python benchmarks/ship_model.py runs/sbs_ge40/ours_c3/last.pt models/ge-zuo2020-small \\
        --info benchmarks/results/zuo_retrain_40min/ge_ship_info.json

``last.pt`` (the final epoch's EMA weights) or a model directory's ``model.pt``; the resume state
(optimizer, RNG, history) is dropped, so the shipped file stays small and loads with
``torch.load(weights_only=True)``.  ``--info``: a JSON object merged into the checkpoint's metadata
(data, split, test errors, the training command); the card (README.md) is written by hand from it.
Stored in float32 unless ``--keep-dtype``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from dens_calc.checkpoint import load_model, save_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--info", type=Path, help="JSON object merged into the metadata")
    parser.add_argument("--keep-dtype", action="store_true")
    args = parser.parse_args()
    model, metadata = load_model(args.checkpoint)
    if not args.keep_dtype:
        model = model.to(torch.float32)
    if args.info:
        metadata.update(json.loads(args.info.read_text()))
    metadata.pop("dtype", None)  # save_model writes the dtype of the weights it stores
    args.model_dir.mkdir(parents=True, exist_ok=True)
    path = save_model(model, args.model_dir, metadata=metadata)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB, {sum(p.numel() for p in model.parameters())} parameters)")


if __name__ == "__main__":
    main()
