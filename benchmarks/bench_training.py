#!/usr/bin/env python
"""Training throughput (structures/s per optimizer step) by force mode and DeNS setting.

For each dataset, one ``build_run`` per mode (the real training code path: collate, DeNS corruption,
loss, backward, clipping, AdamW, EMA), then the median time of ``--steps`` optimizer steps after two
warm-up steps, converted to structures per second.  Modes: forces direct / conservative, each without
DeNS, with DeNS at the MD17 recipe's p = 0.25, and with every structure a DeNS sample (p = 1).

    python benchmarks/bench_training.py --json benchmarks/results/bench_training.json
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import PEERS, REPO, median_ms  # noqa: E402

DATASETS = {
    "aspirin": REPO.parent / "shared" / "data" / "rmd17_aspirin" / "rmd17_aspirin_train.xyz",
    "cu_emt": PEERS / "data" / "cu_emt_train.xyz",
}
MODES = [("direct", None), ("direct", 0.25), ("direct", 1.0),
         ("conservative", None), ("conservative", 0.25), ("conservative", 1.0)]


def time_mode(train_file: Path, forces: str, p: float | None, args, out_dir: str) -> float:
    import torch

    from dens_calc.data import collate
    from dens_calc.train.config import DeNSConfig, TrainConfig
    from dens_calc.train.loop import build_run, optimizer_step
    from dens_calc.train.loss import training_loss

    dens = DeNSConfig(enabled=p is not None, p=p or 0.25)
    config = TrainConfig(train_file=str(train_file), valid_fraction=0.1, out_dir=out_dir, forces=forces, dens=dens,
                         batch_size=args.batch_size, model={"num_channels": args.channels}, device="cpu",
                         progress=False, seed=0)
    run = build_run(config)
    graphs = run.prep.train_graphs
    batches = iter([collate(graphs[i : i + args.batch_size]) for i in range(0, len(graphs), args.batch_size)] * 100)
    run.model.train()

    def step():
        loss, _ = training_loss(run.model, next(batches), config, generator=run.generators["dens"])
        optimizer_step(run, loss)

    torch.manual_seed(0)
    return median_ms(step, args.steps, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--frames", type=int, default=60, help="structures read from each dataset")
    parser.add_argument("--batch-size", type=int, default=5)
    parser.add_argument("--channels", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json")
    args = parser.parse_args()

    import ase.io
    import torch

    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.datasets:
            subset = Path(tmp) / f"{name}.xyz"
            ase.io.write(subset, ase.io.read(DATASETS[name], f":{args.frames}"), format="extxyz")
            for forces, p in MODES:
                ms = time_mode(subset, forces, p, args, str(Path(tmp) / "run"))
                row = {"dataset": name, "forces": forces, "dens_p": p, "ms_per_step": ms,
                       "structures_per_s": 1000 * args.batch_size / ms}
                rows.append(row)
                print(f"{name:8s} {forces:12s} DeNS {'off' if p is None else f'p={p}':7s} "
                      f"{ms:8.1f} ms/step  {row['structures_per_s']:7.1f} structures/s", flush=True)
    print(f"\nbatch {args.batch_size}, {args.channels} channels, float32, {args.threads} threads\n")
    print("| dataset | forces | DeNS | ms per step | structures/s | relative to direct, no DeNS |\n|---|---|---|---|---|---|")
    for r in rows:
        base = next(b for b in rows if b["dataset"] == r["dataset"] and b["forces"] == "direct" and b["dens_p"] is None)
        r["relative_cost"] = r["ms_per_step"] / base["ms_per_step"]
        dens = "off" if r["dens_p"] is None else f"p = {r['dens_p']}"
        print(f"| {r['dataset']} | {r['forces']} | {dens} | {r['ms_per_step']:.1f} | {r['structures_per_s']:.1f} "
              f"| {r['relative_cost']:.2f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "batch_size": args.batch_size,
                                               "channels": args.channels, "threads": args.threads, "rows": rows},
                                              indent=1))


if __name__ == "__main__":
    main()
