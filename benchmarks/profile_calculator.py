#!/usr/bin/env python
"""Where the time of one calculator call goes: torch profiler table for one benchmark system.

    python benchmarks/profile_calculator.py --system cu256 --rows 15
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import peer_build_atoms  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--system", default="cu256", choices=["aspirin", "cu256", "si216"])
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--calls", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rows", type=int, default=15)
    args = parser.parse_args()

    import torch
    from ase.calculators.calculator import all_changes
    from torch.profiler import ProfilerActivity, profile

    from bench_calculator import default_model
    from dens_calc import DeNSCalculator

    torch.set_num_threads(args.threads)
    atoms = peer_build_atoms(args.system)
    calc = DeNSCalculator(default_model(), device="cpu", dtype=args.dtype)
    props = ["energy", "forces"] + (["stress"] if atoms.pbc.all() else [])
    for _ in range(2):
        calc.calculate(atoms, props, all_changes)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(args.calls):
            calc.calculate(atoms, props, all_changes)
    print(f"{args.system}, {args.dtype}, {args.threads} threads, {args.calls} calls (self CPU time per op)")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))


if __name__ == "__main__":
    main()
