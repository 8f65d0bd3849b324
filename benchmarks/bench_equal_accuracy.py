#!/usr/bin/env python
"""Equal accuracy: our EMT-Cu model vs the peers' MACE EMT-Cu model, accuracy and per-call cost.

Both models are trained on the same data (``../shared/peers/data/cu_emt_{train,val}.xyz``, 200/50
frames) under the same 15-minute wall-clock budget on this machine: MACE with
``../shared/peers/train_mace_cu.sh`` (its measured test errors are in ``../shared/peers/README.md`` §3),
ours with the command in ``benchmarks/README.md``.  This script

1. evaluates our model on the 100 test frames (``dens-calc eval`` metrics, float64), and
2. times, in the same run and the same thread count, ``calc.calculate`` (E + F + S) of our model and
   of the MACE model on the first 32-atom and 108-atom test cells and on the peers' 256-atom Cu cell,
   in float32 and float64; each side in its own child process, ours first, MACE right after.

Without ``--mace-model`` the MACE side is the peers' exact architecture (48,784 parameters) with
random weights: per-call cost does not depend on the weight values.

    python benchmarks/bench_equal_accuracy.py --model runs/cu_emt --json benchmarks/results/bench_equal_accuracy.json
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
from _timing import PEERS, peak_rss_mb, peer_build_atoms, time_structures  # noqa: E402

TEST = PEERS / "data" / "cu_emt_test.xyz"
PEER_ACCURACY = {"energy_per_atom": 4.8, "forces": 20.4, "stress": 1.5}  # peers README §3, 15-min budget


def timing_structures(test_file: Path):
    import ase.io

    frames = ase.io.read(test_file, ":")
    picked = [next(a for a in frames if len(a) == n) for n in (32, 108)]
    picked.append(peer_build_atoms("cu256"))
    for atoms in picked:
        atoms.calc = None
    return picked


def child(args) -> None:
    import torch

    from dens_calc import DeNSCalculator

    torch.set_num_threads(args.threads)
    calc = DeNSCalculator(args.model, device="cpu", dtype=args.dtype)
    rows = time_structures(calc, args.structures, args.calls, args.warmup)
    result = {"n_params": calc.model.num_parameters(), "rows": rows,
              "peak_rss_mb": peak_rss_mb()}
    print("RESULT " + json.dumps(result), flush=True)


def run_child(cmd: list[str], threads: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        sys.exit(f"benchmark child failed: {' '.join(cmd[:3])}\n{proc.stderr[-2000:]}")
    return json.loads(lines[0][len("RESULT "):])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="our trained EMT-Cu model (run directory or model.pt)")
    parser.add_argument("--mace-model", help="trained MACE model file (default: its architecture, random weights)")
    parser.add_argument("--test", default=str(TEST))
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"], choices=["float32", "float64"])
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--peer-python", default="/tmp/peers-venv/bin/python")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--structures", help=argparse.SUPPRESS)
    parser.add_argument("--dtype", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    if not Path(args.peer_python).exists():
        sys.exit(f"peer venv missing ({args.peer_python}): run bash ../shared/peers/setup.sh first")

    from dens_calc.train.evaluate import evaluate_file

    accuracy = evaluate_file(args.model, args.test, dtype="float64", device="cpu")["metrics"]
    print("test errors (ours):", ", ".join(f"{k} MAE {v['mae']:.2f} {v['unit']}" for k, v in accuracy.items()))

    import ase.io

    timing = []
    with tempfile.TemporaryDirectory() as tmp:
        structures = Path(tmp) / "structures.xyz"
        ase.io.write(structures, timing_structures(Path(args.test)), format="extxyz")
        common = ["--structures", str(structures), "--calls", str(args.calls), "--warmup", str(args.warmup),
                  "--threads", str(args.threads)]
        for dtype in args.dtypes:
            ours = run_child([sys.executable, __file__, "--child", "--model", args.model, "--dtype", dtype, *common],
                             args.threads)
            peer_cmd = [args.peer_python, str(Path(__file__).with_name("peer_mace_cu.py")), "--dtype", dtype, *common]
            if args.mace_model:
                peer_cmd += ["--model", args.mace_model]
            mace = run_child(peer_cmd, args.threads)
            for o, m in zip(ours["rows"], mace["rows"]):
                row = {"dtype": dtype, "n_atoms": o["n_atoms"], "ours_ms": o["calc_ms"], "mace_ms": m["calc_ms"],
                       "ratio": m["calc_ms"] / o["calc_ms"], "ours_params": ours["n_params"],
                       "mace_params": mace["n_params"], "mace_trained": mace["trained"],
                       "ours_peak_rss_mb": ours["peak_rss_mb"], "mace_peak_rss_mb": mace["peak_rss_mb"]}
                timing.append(row)
                print(f"{dtype:7s} Cu{row['n_atoms']:<4d} ours {row['ours_ms']:8.1f} ms   MACE {row['mace_ms']:8.1f} ms"
                      f"   MACE/ours {row['ratio']:.2f}x", flush=True)

    print("\n| quantity | ours | MACE (peers, same data, 15 min) |\n|---|---|---|")
    for key, peer in PEER_ACCURACY.items():
        print(f"| test {key} MAE ({accuracy[key]['unit']}) | {accuracy[key]['mae']:.2f} | {peer} |")
    print("\n| dtype | atoms | ours ms/call | MACE ms/call | MACE/ours | peak RSS MB ours / MACE |\n|---|---|---|---|---|---|")
    for r in timing:
        print(f"| {r['dtype']} | {r['n_atoms']} | {r['ours_ms']:.1f} | {r['mace_ms']:.1f} | {r['ratio']:.2f}x "
              f"| {r['ours_peak_rss_mb']:.0f} / {r['mace_peak_rss_mb']:.0f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "threads": args.threads,
                                               "accuracy_ours": accuracy, "accuracy_mace_peers": PEER_ACCURACY,
                                               "timing": timing}, indent=1))


if __name__ == "__main__":
    main()
