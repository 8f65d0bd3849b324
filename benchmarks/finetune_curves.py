#!/usr/bin/env python
"""Fine-tuning learning curves (issue #19): test force RMSE vs training frames, pretrained vs from scratch.

    python benchmarks/finetune_curves.py --work runs/ft_curves --minutes 10 \\
        --pretrained dens=runs/pre_dens --pretrained nodens=runs/pre_nodens \\
        --molecule aspirin --molecule ethanol --frames 25 50 100 450 --mace-frames 450

For every molecule and frame count, one ``side_by_side.py`` run on nested subsets of one seeded split
(``--train-frames``; validation and test files fixed): ``scratch`` (``dens-calc train`` defaults) and
``ft_NAME`` (``dens-calc finetune --from MODEL`` defaults) for each pretrained model, plus MACE
32x0e+32x1o at ``--mace-frames``; same budget, one thread each, two arms per wave.  The molecules
offered are held out of the xTB pretraining set by formula (``hcno_xtb_data.py``).  Writes
``WORK/curves.json``, ``WORK/curves.md`` and ``WORK/curves.png``; finished runs are reused.

Runs made by hand (``side_by_side.py ... --train-frames N``, arms trained in separate processes or
sessions) are gathered instead with ``--collect DIR``: every ``DIR/*/results.json`` is grouped by data
set and frame count, arms of the same point merged, and the curves written to ``--work``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
MOLECULES = ("aspirin", "ethanol", "naphthalene", "salicylic")
MACE_ARM = "mace32=mace:32:1"


def arms_for(frames: int, pretrained: dict[str, str], mace_frames: list[int]) -> list[str]:
    arms = ["scratch=--init scratch"] + [f"ft_{name}=from:{model}" for name, model in pretrained.items()]
    return arms + ([MACE_ARM] if frames in mace_frames else [])


def run_point(molecule: str, frames: int, arms: list[str], minutes: float, work: Path) -> dict:
    """One side-by-side run (skipped arms are reused); returns its results.json."""
    point = work / f"{molecule}_{frames}"
    cmd = [sys.executable, str(HERE / "side_by_side.py"), molecule, "--minutes", str(minutes), "--work", str(point),
           "--train-frames", str(frames)]
    for arm in arms:
        cmd += ["--arm", arm]
    subprocess.run(cmd, check=True)
    return json.loads((point / "results.json").read_text())


def collect(root: Path) -> dict[str, dict[int, dict]]:
    """{molecule: {frames: {"arms": ...}}} from every ``root/*/results.json``; arms of one point are merged
    (an arm name met twice at one point is an error: which one to plot would be a guess)."""
    results: dict = {}
    for path in sorted(root.glob("*/results.json")):
        res = json.loads(path.read_text())
        if res["dataset"] not in MOLECULES or res.get("train_frames") is None:
            continue
        point = results.setdefault(res["dataset"], {}).setdefault(res["train_frames"], {"arms": {}})
        for name, arm in res["arms"].items():
            if name in point["arms"]:
                raise SystemExit(f"{path}: arm {name!r} at {res['dataset']} {res['train_frames']} frames twice")
            point["arms"][name] = arm
    if not results:
        raise SystemExit(f"no results.json of {', '.join(MOLECULES)} with --train-frames under {root}")
    return results


def curves(results: dict[str, dict[int, dict]]) -> dict:
    """{molecule: {arm: [(frames, force RMSE, energy RMSE)]}} on the first test file."""
    out: dict = {}
    for molecule, points in results.items():
        for frames, res in sorted(points.items()):
            for name, arm in res["arms"].items():
                m = arm["eval"][0]["metrics"]
                out.setdefault(molecule, {}).setdefault(name, []).append(
                    (frames, m["forces"]["rmse"], m["energy"]["rmse"]))
    return out


def table(data: dict, minutes: float) -> str:
    lines = [f"Test force / energy RMSE (meV/Å / meV) after {minutes:g} min of training, one thread per arm:", ""]
    for molecule, arms in data.items():
        frames = sorted({f for rows in arms.values() for f, _, _ in rows})
        lines += [f"**{molecule}**", "", "| arm | " + " | ".join(f"{f} frames" for f in frames) + " |",
                  "|---|" + "---|" * len(frames)]
        for name, rows in arms.items():
            at = {f: (fr, er) for f, fr, er in rows}
            lines.append(f"| {name} | " + " | ".join(f"{at[f][0]:.1f} / {at[f][1]:.1f}" if f in at else "–"
                                                    for f in frames) + " |")
        scratch = {f: fr for f, fr, _ in arms.get("scratch", [])}
        for name, rows in arms.items():
            if name.startswith("ft_"):
                change = [f"{f}: {100 * (fr / scratch[f] - 1):+.0f} %" for f, fr, _ in rows if f in scratch]
                lines.append(f"\n`{name}` force RMSE vs scratch: " + ", ".join(change))
        lines.append("")
    return "\n".join(lines) + "\n"


def plot(data: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from matplotlib.ticker import NullFormatter, ScalarFormatter

    columns = min(len(data), 2)
    n_rows = -(-len(data) // columns)
    fig, axes = plt.subplots(n_rows, columns, figsize=(5.5 * columns, 4 * n_rows), squeeze=False)
    for ax in axes.flat[len(data):]:
        ax.set_visible(False)
    # one colour per arm across all panels, so "mace32" looks the same everywhere
    arm_names = list(dict.fromkeys(name for arms in data.values() for name in arms))
    colour = {name: f"C{i % 10}" for i, name in enumerate(arm_names)}
    for ax, (molecule, arms) in zip(axes.flat, data.items()):
        for name, rows in arms.items():
            frames, forces = [r[0] for r in rows], [r[1] for r in rows]
            ax.plot(frames, forces, "s" if name.startswith("mace") else "o-", color=colour[name], label=name)
        ax.set_xscale("log")
        ax.set_yscale("log")
        # plain numbers at the frame counts run, not 10^x labels
        ax.set_xticks(sorted({f for rows in arms.values() for f, _, _ in rows}))
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_formatter(ScalarFormatter())
            axis.set_minor_formatter(NullFormatter())
        all_forces = [r[1] for rows in arms.values() for r in rows]
        low, high = min(all_forces) / 1.3, max(all_forces) * 1.3
        ax.set_yticks([t for t in (10, 15, 20, 30, 40, 60, 80, 100, 150, 200) if low < t < high])
        ax.set_xlabel("training frames")
        ax.set_ylabel("test force RMSE (meV/Å)")
        ax.set_title(molecule)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--pretrained", action="append", default=[], help="NAME=MODEL (directory or .pt)")
    parser.add_argument("--molecule", action="append", choices=MOLECULES, default=[])
    parser.add_argument("--collect", type=Path, help="gather DIR/*/results.json instead of training")
    parser.add_argument("--frames", type=int, nargs="+", default=[25, 50, 100, 450])
    parser.add_argument("--mace-frames", type=int, nargs="*", default=[450])
    args = parser.parse_args()
    if args.collect:
        results = collect(args.collect)
    elif not (args.pretrained and args.molecule):
        parser.error("give --pretrained and --molecule to train, or --collect DIR to gather finished runs")
    else:
        pretrained = dict(p.split("=", 1) for p in args.pretrained)
        results = {}
        for molecule in args.molecule:
            for frames in args.frames:
                arms = arms_for(frames, pretrained, args.mace_frames)
                results.setdefault(molecule, {})[frames] = run_point(molecule, frames, arms, args.minutes, args.work)
    args.work.mkdir(parents=True, exist_ok=True)
    data = curves(results)
    (args.work / "curves.json").write_text(json.dumps(data, indent=1))
    text = table(data, args.minutes)
    (args.work / "curves.md").write_text(text)
    plot(data, args.work / "curves.png")
    print(text)


if __name__ == "__main__":
    main()
