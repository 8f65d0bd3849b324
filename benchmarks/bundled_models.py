#!/usr/bin/env python
"""Every bundled model on its own test set, next to the published numbers of its peers.

    python benchmarks/bundled_models.py [--models si-zuo2020-small ...] [--out benchmarks/results/bundled_models]

Evaluates in float64 with ``dens_calc.train.evaluate_file`` (the forces the calculator gives) on the
test files in ``../shared/data`` and prints one markdown table: energy / force MAE for the Zuo-2020
elements against GAP and MTP (Zuo et al. 2020, via the ACEpotentials.jl tutorial; see that folder's
SOURCE.md), force / energy RMSE for the 3BPA model against MACE (published, converged) and MACE trained
on this machine (``../shared/peers/README.md``).  Writes ``OUT.json`` and ``OUT.md``; the README's
table of bundled models is meant to be pasted from ``OUT.md``, never typed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from dens_calc.models import is_pretrained

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
ZUO = DATA / "zuo2020_mlearn" / "converted_extxyz"

# published test MAEs: energy meV/atom, force meV/Å (zuo2020_mlearn/SOURCE.md; forces given there in eV/Å)
ZUO_PEERS = {
    "Ni": {"GAP": (0.42, 20), "MTP": (0.48, 10)}, "Cu": {"GAP": (0.46, 10), "MTP": (0.41, 10)},
    "Li": {"GAP": (0.49, 10), "MTP": (0.49, 10)}, "Mo": {"GAP": (2.24, 90), "MTP": (2.83, 90)},
    "Si": {"GAP": (2.91, 70), "MTP": (2.21, 60)}, "Ge": {"GAP": (2.06, 50), "MTP": (1.79, 50)},
}
# 3BPA force RMSE meV/Å (test_300K, test_600K): MACE L=2 (Batatia et al. 2022, Table 2) and MACE
# 64x0e+64x1o trained 60 min with 2 threads on this machine (../shared/peers/README.md; 600 K not run)
BPA_PEERS = {"MACE (published, L=2)": (8.8, 21.8), "MACE (trained here, 60 min)": (20.9, None)}


def is_3bpa(name: str) -> bool:
    return name.startswith("hcno-3bpa")


def zuo_element(name: str) -> str:
    """``si-zuo2020-small`` -> ``Si``."""
    return name.split("-")[0].capitalize()


def test_files(name: str) -> list[Path]:
    """The held-out test files of a bundled model, from its name."""
    if is_3bpa(name):
        return [DATA / "3BPA" / "test_300K.xyz", DATA / "3BPA" / "test_600K.xyz"]
    if zuo_element(name) in ZUO_PEERS:
        return [ZUO / f"{zuo_element(name)}_test.xyz"]
    raise SystemExit(f"no test set known for model {name!r}")


def evaluate_model(name: str) -> list[dict]:
    from dens_calc.train import evaluate_file

    return [evaluate_file(str(REPO / "models" / name), path, dtype="float64") for path in test_files(name)]


def zuo_rows(results: dict) -> list[str]:
    rows = ["| model | test E MAE (meV/atom) ours / GAP / MTP | test F MAE (meV/Å) ours / GAP / MTP |", "|---|---|---|"]
    for name, evals in results.items():
        if is_3bpa(name):
            continue
        m, peers = evals[0]["metrics"], ZUO_PEERS[zuo_element(name)]
        e = f"{m['energy_per_atom']['mae']:.2f} / {peers['GAP'][0]} / {peers['MTP'][0]}"
        f = f"{m['forces']['mae']:.1f} / {peers['GAP'][1]} / {peers['MTP'][1]}"
        rows.append(f"| {name} | {e} | {f} |")
    return rows


def bpa_rows(results: dict) -> list[str]:
    rows = ["| model | test_300K F RMSE (meV/Å) | test_600K F RMSE | test_300K E RMSE (meV) | test_600K E RMSE |",
            "|---|---|---|---|---|"]
    for name, evals in results.items():
        if not is_3bpa(name):
            continue
        m300, m600 = (e["metrics"] for e in evals)
        rows.append(f"| {name} | {m300['forces']['rmse']:.1f} | {m600['forces']['rmse']:.1f} | "
                    f"{m300['energy']['rmse']:.1f} | {m600['energy']['rmse']:.1f} |")
    for peer, (f300, f600) in BPA_PEERS.items():
        rows.append(f"| {peer} | {f300} | {f600 if f600 is not None else '–'} | | |")
    return rows


def merged_with_earlier(results: dict, earlier: Path, *, names_given: bool) -> dict:
    """With ``--models``, the other bundled models keep their rows from the last full run (``earlier``), so
    re-evaluating one model does not drop the rest of the table; rows of models no longer bundled go."""
    if not names_given or not earlier.is_file():
        return results
    bundled = {p.name for p in (REPO / "models").iterdir() if (p / "model.pt").exists()}
    kept = {name: evals for name, evals in json.loads(earlier.read_text()).items() if name in bundled}
    for name in sorted(set(kept) - set(results)):
        print(f"{name}: kept from {earlier.name}")
    return dict(sorted({**kept, **results}.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="*", help="bundled model names (default: all in models/)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "bundled_models")
    args = parser.parse_args()
    names = args.models or sorted(p.name for p in (REPO / "models").iterdir() if (p / "model.pt").exists())
    for name in [n for n in names if is_pretrained(n)]:
        print(f"{name}: skipped (a pretrained starting point; its fine-tuning numbers are in its card)")
    names = [n for n in names if not is_pretrained(n)]
    results = {}
    for name in names:
        results[name] = evaluate_model(name)
        print(f"{name}: evaluated on {', '.join(Path(e['file']).name for e in results[name])}", flush=True)
    results = merged_with_earlier(results, args.out.with_suffix(".json"), names_given=bool(args.models))
    text = "\n".join(zuo_rows(results) + [""] + bpa_rows(results)) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=1))
    args.out.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
