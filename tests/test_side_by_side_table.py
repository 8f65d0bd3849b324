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


def test_two_stage_arm_trains_then_finetunes_the_stage1_model_within_the_budget(tmp_path):
    files = {"train": "t.xyz", "valid": "v.xyz"}
    cmd = sbs.two_stage_command("ts", "--forces direct --dens => --lr 1e-3", files, 10.0, False, tmp_path, 0.6)
    stage1, stage2 = cmd[2].split(" && ")
    assert stage1.startswith("dens-calc train ") and f"--out {tmp_path}/ts/stage1 " in stage1
    assert "--time-limit 6.0 " in stage1 and stage1.endswith("--forces direct --dens")
    assert stage2.startswith(f"dens-calc finetune --from {tmp_path}/ts/stage1 ") and f"--out {tmp_path}/ts " in stage2
    assert "--time-limit 4.0 " in stage2 and stage2.endswith("--lr 1e-3")


def test_two_stage_summary_counts_the_epochs_of_both_stages(tmp_path):
    header = "epoch,valid_loss\n"
    (tmp_path / "ts" / "stage1").mkdir(parents=True)
    (tmp_path / "ts" / "stage1" / "metrics.csv").write_text(header + "1,0.5\n2,0.4\n3,0.3\n")
    (tmp_path / "ts" / "metrics.csv").write_text(header + "1,0.2\n2,0.1\n3,0.15\n")
    (tmp_path / "ts" / "train_wall.json").write_text('{"wall_s": 1.0, "rc": 0}')
    summary = sbs.training_summary("ts", "--forces direct => ", tmp_path)
    assert (summary["epochs"], summary["best_epoch"], summary["stage1_epochs"]) == (6, 5, 3)


def test_finetune_curves_table_reports_each_arm_against_scratch():
    spec = importlib.util.spec_from_file_location("finetune_curves", Path(__file__).parents[1] / "benchmarks" / "finetune_curves.py")
    fc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fc)
    points = {50: _results(_arm("scratch", "ours", 5.0, 40.0), _arm("ft_a", "ours", 5.0, 20.0)),
              450: _results(_arm("scratch", "ours", 5.0, 20.0), _arm("ft_a", "ours", 5.0, 18.0),
                            _arm("mace32", "mace", 40.0, 25.0))}
    data = fc.curves({"aspirin": points})
    assert data["aspirin"]["ft_a"] == [(50, 20.0, 10.0), (450, 18.0, 10.0)]
    text = fc.table(data, 10)
    assert "50: -50 %, 450: -10 %" in text
    assert "| mace32 | – | 25.0 / 10.0 |" in text
    # since `dens-calc train --init auto`, a scratch arm of a molecule must ask for scratch
    assert fc.arms_for(50, {"a": "m"}, [450]) == ["scratch=--init scratch", "ft_a=from:m"]


def test_mace_gets_e0s_only_for_the_elements_of_its_training_data(tmp_path):
    # the ethanol set's isolated atoms include N, its frames do not; MACE rejects an E0 table larger than the data's
    import ase.io
    from ase import Atoms

    frames = [Atoms("C2H6O", positions=[[i, 0, 0] for i in range(9)]) for _ in range(2)]
    isolated = [Atoms(s) for s in "HCNO"]
    for atoms, energy in zip(isolated, (-13.6, -1025.0, -1479.0, -2035.0)):
        atoms.info["REF_energy"] = energy
    ase.io.write(tmp_path / "train.xyz", frames)
    ase.io.write(tmp_path / "isolated.xyz", isolated)
    files = {"train": tmp_path / "train.xyz", "valid": tmp_path / "train.xyz", "isolated": tmp_path / "isolated.xyz"}
    cmd = sbs.mace_command("mace32", "mace:32:1", files, False, tmp_path, 10)
    e0s = next(c for c in cmd if c.startswith("--E0s="))
    assert e0s == "--E0s={1: -13.6, 6: -1025.0, 8: -2035.0}"


def test_test_copies_are_named_for_the_extxyz_they_hold():
    # the .npz test files of MD17 are copied as extxyz: a copy named .npz could not be read back
    assert sbs.test_file_copy_name("md17_original_egraffbench/naphthalene/test/nequip_npz.npz") == "test.xyz"
    assert sbs.test_file_copy_name("3BPA/test_300K.xyz") == "test_300K.xyz"
    assert sbs.DATASETS["naphthalene"]["tests"][0].endswith(".npz")
