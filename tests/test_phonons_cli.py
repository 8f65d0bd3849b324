"""``dens-calc phonons`` end to end."""

import numpy as np
import yaml
from ase.build import bulk, molecule
from ase.io import write
from click.testing import CliRunner
from sim_helpers import assert_one_line_error, in_tmp_dir, model_dir, one_thread  # noqa: F401

from cli.main import main


def phonons(*args):
    return CliRunner().invoke(main, ["phonons", *map(str, args)])


def test_phonons_cli(tmp_path, model_dir):
    import phonopy

    write(tmp_path / "si.cif", bulk("Si", "diamond", a=5.43))
    result = phonons(tmp_path / "si.cif", "--model", model_dir, "--supercell", "2", "2", "2", "--mesh", "4", "4", "4",
                     "--relax", "--dtype", "float64", "--out", tmp_path / "ph")
    assert result.exit_code == 0, result.output
    assert "lowest frequency" in result.output
    loaded = phonopy.load(tmp_path / "ph/phonopy_params.yaml")
    loaded.run_qpoints([[0, 0, 0]])
    assert np.sort(np.abs(loaded.qpoints.frequencies[0]))[:3].max() < 1e-3
    summary = yaml.safe_load((tmp_path / "ph/phonons_summary.yaml").read_text())
    assert summary["inputs"]["supercell"] == [2, 2, 2] and summary["inputs"]["relax"] is True
    assert "relax" in summary["timings_s"] and (tmp_path / "ph/band.png").exists()


def test_phonons_cli_bad_inputs(tmp_path, model_dir):
    write(tmp_path / "h2o.xyz", molecule("H2O"))
    assert_one_line_error(phonons(tmp_path / "h2o.xyz", "--model", model_dir))
    assert_one_line_error(phonons(tmp_path / "missing.cif", "--model", model_dir))
