#!/usr/bin/env python
"""One multi-element Zuo model against the six per-element bundled models, element by element (issue #18).

    python benchmarks/zuo6_per_element.py --results runs/zuo6/results.json --arm pnorm \
        [--bundled benchmarks/results/bundled_models.json] [--json OUT.json]

Reads the multi-element arm's test evaluations from a ``side_by_side.py zuo6`` run (one per element's test
file) and the per-element models' from ``bundled_models.py`` (same test files, both float64), and prints test
MAEs (energy meV/atom, force meV/Å, stress meV/Å³) next to GAP and MTP (published).  Both sides are read from
files the benchmarks wrote, so the table is never typed by hand.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bundled_models import ZUO_PEERS

REPO = Path(__file__).resolve().parents[1]
METRICS = ("energy_per_atom", "forces", "stress")


def element_of(test_file: str) -> str:
    """``.../Si_test.xyz`` -> ``Si``."""
    return Path(test_file).name.split("_")[0]


def maes(evaluation: dict) -> dict[str, float | None]:
    got = evaluation["metrics"]
    return {key: (got[key]["mae"] if key in got else None) for key in METRICS}


def compare(results: dict, arm: str, bundled: dict) -> list[dict]:
    """One row per element: the multi-element arm's and the per-element model's test MAEs."""
    multi = {element_of(e["file"]): maes(e) for e in results["arms"][arm]["eval"]}
    single = {element_of(evals[0]["file"]): maes(evals[0]) for name, evals in bundled.items() if "zuo2020" in name}
    rows = []
    for element in ZUO_PEERS:
        if element in multi and element in single:
            rows.append({"element": element, "multi": multi[element], "single": single[element],
                         "peers": {peer: dict(zip(("energy_per_atom", "forces"), pair))
                                   for peer, pair in ZUO_PEERS[element].items()}})
    return rows


def fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}" if value < 10 else f"{value:.1f}"


def table(rows: list[dict], arm: str) -> str:
    head = (f"| element | E MAE {arm} / per-element / GAP / MTP (meV/atom) | F MAE {arm} / per-element / GAP / MTP "
            f"(meV/Å) | S MAE {arm} / per-element (meV/Å³) |\n|---|---|---|---|")
    lines = [head]
    for row in rows:
        m, s, p = row["multi"], row["single"], row["peers"]
        cells = [" / ".join([fmt(m[key]), fmt(s[key]), fmt(p["GAP"][key]), fmt(p["MTP"][key])])
                 for key in ("energy_per_atom", "forces")]
        cells.append(f"{fmt(m['stress'])} / {fmt(s['stress'])}")
        lines.append(f"| {row['element']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", required=True, help="results.json of `side_by_side.py zuo6`")
    parser.add_argument("--arm", required=True, help="the multi-element arm's name in it")
    parser.add_argument("--bundled", default=str(REPO / "benchmarks" / "results" / "bundled_models.json"))
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args()
    results = json.loads(Path(args.results).read_text())
    if args.arm not in results.get("arms", {}):
        raise SystemExit(f"{args.results} has no arm {args.arm!r} (arms: {', '.join(results.get('arms', {}))})")
    rows = compare(results, args.arm, json.loads(Path(args.bundled).read_text()))
    if not rows:
        raise SystemExit("no element is evaluated in both files")
    print(table(rows, args.arm))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
