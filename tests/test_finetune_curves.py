"""The fine-tuning learning-curve gatherer: arms of one (molecule, frames) point merged across run folders."""

import importlib.util
import json
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "finetune_curves", Path(__file__).parents[1] / "benchmarks" / "finetune_curves.py")
fc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fc)


def _write(root: Path, folder: str, dataset: str, frames, arms: dict[str, float]) -> None:
    def arm(f_rmse):
        return {"eval": [{"metrics": {"forces": {"rmse": f_rmse}, "energy": {"rmse": f_rmse / 10}}}]}

    (root / folder).mkdir(parents=True)
    (root / folder / "results.json").write_text(json.dumps(
        {"dataset": dataset, "train_frames": frames, "arms": {n: arm(v) for n, v in arms.items()}}))


def test_collect_merges_arms_of_one_point_and_skips_other_runs(tmp_path):
    _write(tmp_path, "eth450_mace", "ethanol", 450, {"mace32": 26.0})
    _write(tmp_path, "eth450", "ethanol", 450, {"scratch": 25.0, "ft_x": 17.0})
    _write(tmp_path, "eth50", "ethanol", 50, {"scratch": 70.0, "ft_x": 40.0})
    _write(tmp_path, "si", "si", None, {"scratch": 90.0})  # not a molecule of the curves
    data = fc.curves(fc.collect(tmp_path))
    assert list(data) == ["ethanol"]
    assert data["ethanol"]["scratch"] == [(50, 70.0, 7.0), (450, 25.0, 2.5)]
    assert data["ethanol"]["mace32"] == [(450, 26.0, 2.6)]
    text = fc.table(data, 8)
    assert "| ft_x | 40.0 / 4.0 | 17.0 / 1.7 |" in text and "50: -43 %, 450: -32 %" in text


def test_collect_refuses_one_arm_twice_at_one_point(tmp_path):
    _write(tmp_path, "a", "ethanol", 50, {"scratch": 70.0})
    _write(tmp_path, "b", "ethanol", 50, {"scratch": 71.0})
    with pytest.raises(SystemExit, match="twice"):
        fc.collect(tmp_path)
