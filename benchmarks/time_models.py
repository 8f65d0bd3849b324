#!/usr/bin/env python
"""Per-call cost (E + F + S) of several models on one structure, each against the first, in one run.

    python benchmarks/time_models.py --structure runs/zuo6/data/mo/data/Mo_test.xyz@-1 \\
        --models models/mo-zuo2020-small runs/mo_r6/model.pt runs/committee --json runs/times.json

Made for comparing a committee with its members (or any models of one element set): the structure is one frame
of a labelled file (``FILE@INDEX``), every model is timed on it in this process, in turn, with the threads torch
has (``OMP_NUM_THREADS``).  Reported: median ms per ``calc.calculate`` after warm-up and the ratio to the first
model.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from _timing import median_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--structure", required=True, help="FILE@INDEX: the frame to time on")
    parser.add_argument("--models", nargs="+", required=True)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--json", type=Path, help="also write the timings here")
    args = parser.parse_args()

    import ase.io
    import torch

    from dens_calc.calculators import DeNSCalculator

    path, _, index = args.structure.rpartition("@")
    atoms = ase.io.read(path, index=int(index)) if path else ase.io.read(args.structure)
    rows = []
    for model in args.models:
        calc = DeNSCalculator(model, dtype=args.dtype)
        ms = median_ms(lambda: calc.calculate(atoms, ["energy", "forces", "stress"]), args.calls, warmup=3)
        rows.append({"model": model, "ms_per_call": round(ms, 2)})
    base = rows[0]["ms_per_call"]
    print(f"{len(atoms)} atoms, {args.dtype}, {torch.get_num_threads()} thread(s)")
    for row in rows:
        row["ratio_to_first"] = round(row["ms_per_call"] / base, 2)
        print(f"{row['model']:60s} {row['ms_per_call']:8.2f} ms  x{row['ratio_to_first']:.2f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"atoms": len(atoms), "dtype": args.dtype,
                                         "threads": torch.get_num_threads(), "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
