"""The side-by-side benchmark's summary logic: Pareto front, ratios and dominance on made-up arms."""

import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location("side_by_side", Path(__file__).parents[1] / "benchmarks" / "side_by_side.py")
sbs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sbs)


def _arm(name, kind, ms, f_rmse, e_rmse=10.0):
    metrics = {"forces": {"rmse": f_rmse}, "energy": {"rmse": e_rmse}}
    return {"name": name, "kind": kind, "spec": "", "train": {"epochs": 1, "best_epoch": 1},
            "eval": [{"metrics": metrics}], "time": {d: {"ms_per_call": ms, "parameters": 1} for d in ("float32", "float64")}}


def _results(*arms):
    return {"tests": ["test"], "stress": False, "arms": {a["name"]: a for a in arms}}


def test_pareto_front_keeps_only_non_dominated_points_by_cost():
    assert sbs.pareto_front([(3, 4), (1, 5), (4, 1), (2, 3), (5, 2)]) == [(1, 5), (2, 3), (4, 1)]


def test_ratios_use_the_most_accurate_mace_arm():
    r = _results(_arm("ours", "ours", 10.0, 30.0, 5.0), _arm("big", "mace", 80.0, 40.0, 20.0), _arm("small", "mace", 20.0, 60.0))
    line = sbs.ratio_lines(r)[-1]
    assert "F RMSE ratio 0.75" in line and "E RMSE ratio 0.25" in line and "8.0x faster" in line
    assert "test: `big`" in sbs.ratio_lines(r)[0]


@pytest.mark.parametrize("ours_ms, ours_f, dominated", [(10.0, 30.0, True), (10.0, 45.0, False), (90.0, 30.0, False)])
def test_dominance_needs_an_arm_that_is_both_faster_and_as_accurate(ours_ms, ours_f, dominated):
    r = _results(_arm("ours", "ours", ours_ms, ours_f), _arm("mace", "mace", 80.0, 40.0))
    line = sbs.dominance_lines(r)[0]
    assert ("dominates every MACE arm" in line) == dominated
    assert dominated or "mace" in line
