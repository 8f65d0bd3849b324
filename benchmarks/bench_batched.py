#!/usr/bin/env python
"""Throughput of batched evaluation (``DeNSCalculator.batch_evaluate``) vs one call per structure.

64 real aspirin frames (the first 64 of ``../shared/data/rmd17_aspirin/rmd17_aspirin_test.xyz``),
energy + forces, the default architecture (random weights: cost only).  Prints frames/s of
``calc.calculate`` called frame by frame and of ``batch_evaluate`` at several batch sizes, and the ratio.

    python benchmarks/bench_batched.py --json benchmarks/results/bench_batched.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import ASPIRIN_FRAMES, median_ms  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[4, 8, 16, 32, 64])
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--repeats", type=int, default=5, help="median over this many interleaved passes")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json")
    args = parser.parse_args()

    import ase.io
    import torch
    from ase.calculators.calculator import all_changes

    from bench_calculator import default_model
    from dens_calc import DeNSCalculator

    torch.set_num_threads(args.threads)
    frames = ase.io.read(ASPIRIN_FRAMES, f":{args.frames}")
    for atoms in frames:
        atoms.calc = None
    calc = DeNSCalculator(default_model(), device="cpu", dtype=args.dtype)
    start = time.perf_counter()
    # warm-up for a single frame and for every batch size
    calc.calculate(frames[0], ["energy", "forces"], all_changes)
    for bs in args.batch_sizes:
        calc.batch_evaluate(frames[:bs], batch_size=bs)
    warmup_s = time.perf_counter() - start

    def one_by_one():
        for atoms in frames:
            calc.calculate(atoms, ["energy", "forces"], all_changes)

    # one-by-one and every batch size timed in turn within each pass, so that drift of this shared
    # machine's speed over the run hits all modes alike; medians over the passes
    modes = [("one call per frame", 1, one_by_one)] + [
        ("batch_evaluate", bs, lambda bs=bs: calc.batch_evaluate(frames, batch_size=bs)) for bs in args.batch_sizes
    ]
    times = {bs: [] for _, bs, _ in modes}
    for _ in range(args.repeats):
        for _, bs, fn in modes:
            times[bs].append(median_ms(fn, 1, 0))
    rows = [{"mode": mode, "batch_size": bs, "ms": statistics.median(times[bs]), "passes_ms": times[bs]}
            for mode, bs, _ in modes]
    single_ms = rows[0]["ms"]
    print(f"{len(frames)} aspirin frames, {args.dtype}, {args.threads} threads (warm-up {warmup_s:.1f} s)\n")
    print("| mode | batch size | ms for all frames | frames/s | speed-up vs one-by-one |\n|---|---|---|---|---|")
    for r in rows:
        r["frames_per_s"] = 1000 * len(frames) / r["ms"]
        r["speedup"] = single_ms / r["ms"]
        print(f"| {r['mode']} | {r['batch_size']} | {r['ms']:.0f} | {r['frames_per_s']:.0f} | {r['speedup']:.2f}x |")
    if args.json:
        Path(args.json).write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "dtype": args.dtype,
                                               "threads": args.threads,
                                               "warmup_s": warmup_s, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
