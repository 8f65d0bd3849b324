#!/usr/bin/env python
"""Cost per call vs system size: diamond Si supercells from 64 to 4096 atoms (E + F + S).

Each size runs in its own child process (so its peak RSS is its own), default architecture with
random weights, 0.02 Å rattle, median of ``--calls`` calls after one warm-up.  Prints ms/call,
µs/atom, the µs/atom relative to the smallest cell (1.0 = perfectly linear), graph-building share
and peak RSS; ``--plot`` writes a log-log plot.

    python benchmarks/bench_scaling.py --json benchmarks/results/bench_scaling.json --plot benchmarks/results/scaling.png
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import median_ms, peak_rss_mb  # noqa: E402

REPEATS = [2, 3, 4, 5, 6, 8]  # 8 * n^3 atoms: 64 ... 4096


def child(args) -> None:
    import torch
    from ase.build import bulk
    from ase.calculators.calculator import all_changes

    from bench_calculator import default_model
    from dens_calc import DeNSCalculator
    from dens_calc.data import atoms_to_graph, collate

    torch.set_num_threads(args.threads)
    atoms = bulk("Si", "diamond", a=5.431, cubic=True).repeat((args.repeat,) * 3)
    atoms.rattle(stdev=0.02, seed=0)
    calc = DeNSCalculator(default_model(), device="cpu", dtype=args.dtype)
    calls = max(2, args.calls if len(atoms) <= 1000 else args.calls // 2)
    ms = median_ms(lambda: calc.calculate(atoms, ["energy", "forces", "stress"], all_changes), calls, 1)
    graph_ms = median_ms(lambda: collate([atoms_to_graph(atoms, calc.species, calc.cutoff, dtype=calc.dtype)]), 3, 1)
    print("RESULT " + json.dumps({"n_atoms": len(atoms), "ms": ms, "graph_ms": graph_ms,
                                   "peak_rss_mb": peak_rss_mb()}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, nargs="+", default=REPEATS, help="supercell n (8 n^3 atoms)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--calls", type=int, default=6)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json")
    parser.add_argument("--plot")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--repeat", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    rows = []
    for n in args.repeats:
        cmd = [sys.executable, __file__, "--child", "--repeat", str(n), "--dtype", args.dtype,
               "--calls", str(args.calls), "--threads", str(args.threads)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
        if proc.returncode != 0 or not lines:
            sys.exit(f"size {n} failed:\n{proc.stderr[-2000:]}")
        r = json.loads(lines[0][len("RESULT "):])
        r["us_per_atom"] = 1000 * r["ms"] / r["n_atoms"]
        rows.append(r)
        print(f"Si{r['n_atoms']:<5d} {r['ms']:9.1f} ms  {r['us_per_atom']:6.1f} µs/atom", flush=True)
    base = rows[0]["us_per_atom"]
    print(f"\nSi diamond, {args.dtype}, {args.threads} threads, E+F+S per call\n")
    print("| atoms | ms/call | µs/atom | µs/atom relative to smallest | graph % | peak RSS MB |\n|---|---|---|---|---|---|")
    for r in rows:
        r["relative"] = r["us_per_atom"] / base
        print(f"| {r['n_atoms']} | {r['ms']:.1f} | {r['us_per_atom']:.1f} | {r['relative']:.2f} "
              f"| {100 * r['graph_ms'] / r['ms']:.1f} | {r['peak_rss_mb']:.0f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "dtype": args.dtype,
                                               "threads": args.threads, "rows": rows}, indent=1))
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        n = [r["n_atoms"] for r in rows]
        ms = [r["ms"] for r in rows]
        fig, ax = plt.subplots(figsize=(4.5, 3.5))
        ax.loglog(n, ms, "o-", label="dens-calc (E+F+S)")
        ax.loglog(n, [ms[0] * x / n[0] for x in n], "k--", lw=0.8, label="linear from smallest")
        ax.set(xlabel="atoms (Si diamond)", ylabel="ms per call", title=f"{args.dtype}, {args.threads} CPU threads")
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.plot, dpi=120)


if __name__ == "__main__":
    main()
