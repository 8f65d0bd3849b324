#!/usr/bin/env python
"""Learning curves of training runs from their ``metrics.csv``: validation force MAE against
wall-clock time and against epoch, one line per run.

    python benchmarks/plot_learning_curves.py dens=runs/ablation_3bpa/dens nodens=runs/ablation_3bpa/nodens \\
        --title "3BPA, 1 thread per run" --out benchmarks/results/ablation_3bpa/learning_curves.png
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path


def read_curve(run_dir: Path) -> dict[str, list[float]]:
    with open(run_dir / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise SystemExit(f"{run_dir}/metrics.csv has no epochs")
    minutes, elapsed = [], 0.0
    for row in rows:  # time_s is the duration of each epoch
        elapsed += float(row["time_s"])
        minutes.append(elapsed / 60)
    return {
        "epoch": [int(r["epoch"]) for r in rows],
        "minutes": minutes,
        "f_mae": [float(r["valid_f_mae_meV_A"]) for r in rows],
        "e_mae": [float(r["valid_e_mae_meV_atom"]) for r in rows],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", metavar="NAME=DIR")
    parser.add_argument("--out", required=True, help="PNG file")
    parser.add_argument("--title", default="")
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_time, ax_epoch) = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for spec in args.runs:
        name, _, folder = spec.partition("=")
        curve = read_curve(Path(folder or name))
        ax_time.plot(curve["minutes"], curve["f_mae"], label=name)
        ax_epoch.plot(curve["epoch"], curve["f_mae"], label=name)
        print(f"{name}: {curve['epoch'][-1]} epochs in {curve['minutes'][-1]:.1f} min, "
              f"best valid F MAE {min(curve['f_mae']):.1f} meV/Å, last {curve['f_mae'][-1]:.1f}")
    ax_time.set_xlabel("wall-clock time (min)")
    ax_epoch.set_xlabel("epoch")
    ax_time.set_ylabel("validation force MAE (meV/Å)")
    for ax in (ax_time, ax_epoch):
        ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
    ax_epoch.legend()
    fig.suptitle(args.title)
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
