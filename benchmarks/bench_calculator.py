#!/usr/bin/env python
"""Per-call cost of DeNSCalculator (E + F + S) against MACE measured in the same run.

Systems are the peers' (``../shared/peers/bench_peers.py``: aspirin 21 atoms, fcc Cu 4x4x4
256 atoms a = 3.61 Å, diamond Si 3x3x3 216 atoms a = 5.431 Å, 0.02 Å rattle), built by the
peer script's own ``build_atoms`` so both sides time identical structures.

Each (dtype, system) runs in its own child process (peak RSS belongs to that case), ours
then the peer's right after it on the same case, with
2 threads.  Reported: median ms per ``calc.calculate(atoms, [energy, forces, stress])``
after warm-up (stress only for the periodic cells; MACE's calculator always computes it),
the median ms of building the graph (neighbour list + tensors) and its fraction of a call,
the parameter count and peak RSS.  With the peer venv present (``bash ../shared/peers/setup.sh``)
the MACE-MP-small-sized model is timed in the same run and our/MACE ratios are printed.

    python benchmarks/bench_calculator.py                    # all systems, float32 + float64
    python benchmarks/bench_calculator.py --no-peer --calls 5
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import PEERS, median_ms, peak_rss_mb, peer_build_atoms  # noqa: E402

PEER_SCRIPT = PEERS / "bench_peers.py"
SYSTEMS = ["aspirin", "cu256", "si216"]


def default_model(seed: int = 0):
    """The default architecture (ModelConfig defaults) with random weights: cost only."""
    import torch

    from dens_calc.nn import DeNSPotential, ModelConfig

    torch.manual_seed(seed)
    species = [1, 6, 7, 8, 14, 29]
    return DeNSPotential(ModelConfig(species=species, atomic_energies=[0.0] * len(species)))


def child(args) -> None:
    import torch
    from ase.calculators.calculator import all_changes

    from dens_calc import DeNSCalculator
    from dens_calc.data import atoms_to_graph, collate

    torch.set_num_threads(args.threads)
    atoms = peer_build_atoms(args.system)
    calc = DeNSCalculator(default_model(), device="cpu", dtype=args.dtype)
    props = ["energy", "forces"] + (["stress"] if atoms.pbc.all() else [])
    graph = collate([atoms_to_graph(atoms, calc.species, calc.cutoff, dtype=calc.dtype)])
    result = {
        "system": args.system,
        "dtype": args.dtype,
        "n_atoms": len(atoms),
        "n_edges": int(graph.edge_index.shape[1]),
        "n_params": calc.model.num_parameters(),
        "calc_ms": median_ms(lambda: calc.calculate(atoms, props, all_changes), args.calls, args.warmup),
        "graph_ms": median_ms(
            lambda: collate([atoms_to_graph(atoms, calc.species, calc.cutoff, dtype=calc.dtype)]), args.calls, 1
        ),
        "peak_rss_mb": peak_rss_mb(),
    }
    print("RESULT " + json.dumps(result), flush=True)


def run_ours(args, dtype: str, system: str) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    cmd = [sys.executable, __file__, "--child", "--system", system, "--dtype", dtype,
           "--calls", str(args.calls), "--warmup", str(args.warmup), "--threads", str(args.threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        sys.exit(f"our benchmark failed for {dtype} {system}:\n{proc.stderr[-2000:]}")
    return json.loads(lines[0][len("RESULT "):])


def run_peer(args, dtype: str, system: str) -> dict | None:
    """MACE-MP-small-sized model on the same case, right after ours (same machine state)."""
    if args.no_peer or not Path(args.peer_python).exists():
        return None
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "peer.json"
        cmd = [args.peer_python, str(PEER_SCRIPT), "--sizes", "small", "--dtypes", dtype,
               "--systems", system, "--calls", str(args.calls), "--fwd-calls", "1",
               "--warmup", str(args.warmup), "--threads", str(args.threads), "--json", str(out)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0 or not out.exists():
            print(f"peer benchmark failed for {dtype} {system}:\n{proc.stderr[-2000:]}")
            return None
        return json.loads(out.read_text())["results"][0]


def run_all(args) -> tuple[list[dict], dict]:
    if not args.no_peer and not Path(args.peer_python).exists():
        print(f"(peer skipped: {args.peer_python} missing; run ../shared/peers/setup.sh)")
    ours, peer = [], {}
    for dtype in args.dtypes:
        for system in args.systems:
            r = run_ours(args, dtype, system)
            ours.append(r)
            p = run_peer(args, dtype, system)
            if p:
                peer[(dtype, system)] = p
            mace = f"  MACE {p['calc_ms_median']:8.1f} ms" if p else ""
            print(f"{dtype:7s} {system:7s} dens-calc {r['calc_ms']:8.1f} ms (graph {r['graph_ms']:5.2f} ms){mace}", flush=True)
    return ours, peer


def print_table(ours: list[dict], peer: dict) -> None:
    print("\n| system | atoms | edges (ours, 5 Å) | dtype | params | ours ms/call | graph ms | graph % "
          "| peak RSS MB | MACE-MP-small ms/call | MACE/ours |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in ours:
        p = peer.get((r["dtype"], r["system"]))
        mace = f"{p['calc_ms_median']:.1f}" if p else "n/a"
        ratio = f"{p['calc_ms_median'] / r['calc_ms']:.2f}x" if p else "n/a"
        print(f"| {r['system']} | {r['n_atoms']} | {r['n_edges']} | {r['dtype']} | {r['n_params']:,} "
              f"| {r['calc_ms']:.1f} | {r['graph_ms']:.2f} | {100 * r['graph_ms'] / r['calc_ms']:.1f} "
              f"| {r['peak_rss_mb']:.0f} | {mace} | {ratio} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--systems", nargs="+", default=SYSTEMS, choices=SYSTEMS)
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"], choices=["float32", "float64"])
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--peer-python", default="/tmp/peers-venv/bin/python")
    parser.add_argument("--no-peer", action="store_true", help="time dens-calc only")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--system", help=argparse.SUPPRESS)
    parser.add_argument("--dtype", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    ours, peer = run_all(args)
    print_table(ours, peer)
    if args.json:
        rows = [dict(r, mace_calc_ms=peer.get((r["dtype"], r["system"]), {}).get("calc_ms_median")) for r in ours]
        Path(args.json).write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "results": rows}, indent=1))


if __name__ == "__main__":
    main()
