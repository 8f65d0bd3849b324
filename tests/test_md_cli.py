"""``dens-calc md`` end to end with click's CliRunner."""

import numpy as np
import pytest
import yaml
from ase.build import bulk, molecule
from ase.io import read, write
from click.testing import CliRunner
from sim_helpers import assert_one_line_error, in_tmp_dir, model_dir, one_thread  # noqa: F401

from cli.main import main


@pytest.fixture
def si_file(tmp_path):
    path = tmp_path / "si.cif"
    write(path, bulk("Si", "diamond", a=5.43))
    return path


def md(*args):
    return CliRunner().invoke(main, ["md", *map(str, args)])


def test_md_cli_writes_everything(tmp_path, si_file, model_dir):
    out = tmp_path / "run"
    result = md(si_file, "--model", model_dir, "--ensemble", "nvt", "--time", "0.01", "--timestep", "1",
                "--interval", "5", "--supercell", "1", "1", "2", "--dtype", "float64", "--out", out, "--no-progress")
    assert result.exit_code == 0, result.output
    frames = read(out / "md.extxyz", ":")
    assert len(frames) == 3 and len(frames[-1]) == 4 and frames[-1].info["step"] == 10
    assert frames[-1].get_forces().shape == (4, 3) and frames[-1].info["dens_units"]["time"] == "ps"
    assert np.loadtxt(out / "md.log").shape == (3, 8)
    assert (out / "md_energy.png").exists() and (out / "md_restart.json").exists()
    summary = yaml.safe_load((out / "md_summary.yaml").read_text())
    assert summary["inputs"]["structure"] == str(si_file) and summary["inputs"]["steps"] == 10
    assert summary["model"]["dtype"] == "float64" and summary["model"]["elements"] == ["H", "O", "Si"]
    # the summary's final state is the last row of the log
    np.testing.assert_allclose(list(summary["results"]["final"].values()), np.loadtxt(out / "md.log")[-1], rtol=1e-7)


def test_md_cli_restart_matches_straight_run(tmp_path, si_file, model_dir):
    common = [si_file, "--model", model_dir, "--ensemble", "langevin", "--interval", "2", "--dtype", "float64",
              "--seed", "3", "--no-progress", "--quiet"]
    assert md(*common, "--steps", "8", "--out", tmp_path / "a").exit_code == 0
    assert md(*common, "--steps", "4", "--out", tmp_path / "b").exit_code == 0
    result = md(*common, "--steps", "8", "--out", tmp_path / "b", "--restart")
    assert result.exit_code == 0, result.output
    a, b = read(tmp_path / "a/md.extxyz", ":"), read(tmp_path / "b/md.extxyz", ":")
    assert [f.info["step"] for f in b] == [0, 2, 4, 6, 8]
    np.testing.assert_array_equal(a[-1].positions, b[-1].positions)
    np.testing.assert_array_equal(a[-1].get_momenta(), b[-1].get_momenta())


def test_md_cli_bad_inputs(tmp_path, si_file, model_dir):
    (tmp_path / "bad.xyz").write_text("not a structure\n1 2 3\n")
    write(tmp_path / "cu.xyz", bulk("Cu"))
    cases = {
        "missing file": [tmp_path / "missing.cif"],
        "unreadable": [tmp_path / "bad.xyz"],
        "unknown element": [tmp_path / "cu.xyz"],
        "zero steps": [si_file, "--steps", "0"],
        "negative temperature": [si_file, "--temperature", "-10"],
        "steps and time": [si_file, "--steps", "5", "--time", "1"],
        "restart without a run": [si_file, "--restart", "--out", tmp_path / "empty"],
    }
    for name, args in cases.items():
        result = md(*args, "--model", model_dir, "--no-progress")
        assert_one_line_error(result)
    assert "Cu" in md(tmp_path / "cu.xyz", "--model", model_dir).output


def test_md_cli_without_model_explains_bundled_models(tmp_path, monkeypatch):
    import dens_calc.models

    monkeypatch.setattr(dens_calc.models, "MODELS_DIR", tmp_path / "no-models")
    write(tmp_path / "h2o.xyz", molecule("H2O"))
    result = md(tmp_path / "h2o.xyz", "--steps", "2")
    assert_one_line_error(result)
    assert "no bundled models" in result.output


def test_md_cli_direct_force_model_on_a_periodic_cell(tmp_path, si_file):
    from dens_calc.checkpoint import save_model
    from sim_helpers import small_model

    direct = save_model(small_model(), tmp_path / "direct", metadata={"forces": "direct"}).parent
    result = md(si_file, "--model", direct, "--ensemble", "langevin", "--steps", "4", "--interval", "2",
                "--out", tmp_path / "run", "--no-progress", "--quiet")
    assert result.exit_code == 0, result.output
    log = np.loadtxt(tmp_path / "run/md.log")
    assert log.shape == (3, 8) and np.isnan(log[:, 6]).all()  # no pressure without stress
    refused = md(si_file, "--model", direct, "--ensemble", "npt", "--steps", "4", "--out", tmp_path / "npt")
    assert_one_line_error(refused)
    assert "npt needs stress" in refused.output and not (tmp_path / "npt/md.log").exists()
