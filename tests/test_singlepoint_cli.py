"""``dens-calc singlepoint`` and ``dens-calc models`` end to end; default model selection."""

import shutil

import pytest
import yaml
from ase.build import bulk, molecule
from ase.io import read, write
from click.testing import CliRunner
from sim_helpers import assert_one_line_error, in_tmp_dir, model_dir, one_thread  # noqa: F401

from cli.main import main


def run(*args):
    return CliRunner().invoke(main, [*map(str, args)])


def test_singlepoint_cli_every_frame(tmp_path, model_dir):
    write(tmp_path / "frames.xyz", [molecule("H2O"), molecule("H2"), bulk("Si", "diamond", a=5.43)])
    result = run("singlepoint", tmp_path / "frames.xyz", "--model", model_dir, "--batch-size", "2",
                 "--out", tmp_path / "sp")
    assert result.exit_code == 0, result.output
    back = read(tmp_path / "sp/singlepoint.extxyz", ":")
    assert len(back) == 3 and all("dens_energy" in a.info for a in back)
    assert back[2].info["dens_units"]["stress"] == "eV/Ang^3"
    summary = yaml.safe_load((tmp_path / "sp/singlepoint_summary.yaml").read_text())
    # the summary's energies are those written into the frames, in order
    assert summary["results"]["frames"] == 3 and summary["inputs"]["batch_size"] == 2
    assert summary["results"]["energies_eV"] == [a.info["dens_energy"] for a in back]


def test_singlepoint_cli_bad_inputs(tmp_path, model_dir):
    (tmp_path / "empty.xyz").write_text("")
    write(tmp_path / "cu.xyz", bulk("Cu"))
    for path in ("missing.xyz", "empty.xyz", "cu.xyz"):
        assert_one_line_error(run("singlepoint", tmp_path / path, "--model", model_dir))
    assert_one_line_error(run("singlepoint", tmp_path / "cu.xyz", "--model", tmp_path / "no-model"))


@pytest.fixture
def bundled(tmp_path, monkeypatch, model_dir):
    import dens_calc.models

    root = tmp_path / "models"
    shutil.copytree(model_dir, root / "tiny-HOSi")
    monkeypatch.setattr(dens_calc.models, "MODELS_DIR", root)
    return root


def test_models_cli(bundled, monkeypatch, tmp_path):
    result = run("models")
    assert result.exit_code == 0 and "tiny-HOSi" in result.output and "H O Si" in result.output
    assert "energy_mae_meV_atom=1.5" in result.output
    import dens_calc.models

    monkeypatch.setattr(dens_calc.models, "MODELS_DIR", tmp_path / "none")
    result = run("models")
    assert result.exit_code == 0 and "no bundled models" in result.output


def test_default_model_is_a_covering_bundled_model(bundled, tmp_path):
    write(tmp_path / "h2o.xyz", molecule("H2O"))
    result = run("singlepoint", tmp_path / "h2o.xyz", "--out", tmp_path / "sp")
    assert result.exit_code == 0, result.output
    assert "tiny-HOSi" in yaml.safe_load((tmp_path / "sp/singlepoint_summary.yaml").read_text())["model"]["model"]
    write(tmp_path / "cu.xyz", bulk("Cu"))
    result = run("singlepoint", tmp_path / "cu.xyz")
    assert_one_line_error(result)
    assert "tiny-HOSi (H, O, Si)" in result.output
