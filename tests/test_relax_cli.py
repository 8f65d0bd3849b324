"""``dens-calc relax`` end to end."""

import pytest
import yaml
from ase.build import bulk, molecule
from ase.io import read, write
from click.testing import CliRunner
from sim_helpers import assert_one_line_error, in_tmp_dir, model_dir, one_thread  # noqa: F401

from cli.main import main


def relax(*args):
    return CliRunner().invoke(main, ["relax", *map(str, args)])


def test_relax_cli_converges_and_keeps_format(tmp_path, model_dir):
    atoms = molecule("H2O")
    atoms.rattle(0.05, seed=2)
    write(tmp_path / "h2o.xyz", atoms)
    result = relax(tmp_path / "h2o.xyz", "--model", model_dir, "--optimizer", "bfgs", "--out", tmp_path / "r")
    assert result.exit_code == 0, result.output
    out = read(tmp_path / "r/h2o-relaxed.xyz")
    assert abs(out.get_forces()).max() < 0.01 and out.info["dens_units"]["forces"] == "eV/Ang"
    summary = yaml.safe_load((tmp_path / "r/relax_summary.yaml").read_text())
    # the summary reports the structure that was written, and how it was asked for
    assert summary["results"]["converged"] and summary["inputs"]["optimizer"] == "BFGS"
    assert summary["results"]["energy_eV"] == pytest.approx(out.get_potential_energy(), abs=1e-9)
    assert summary["results"]["files"]["structure"] == str(tmp_path / "r/h2o-relaxed.xyz")


def test_relax_cli_not_converged_exits_nonzero_but_writes(tmp_path, model_dir):
    write(tmp_path / "si.cif", bulk("Si", "diamond", a=5.6))
    result = relax(tmp_path / "si.cif", "--model", model_dir, "--cell", "--steps", "2", "--pressure", "1",
                   "--out", tmp_path / "r")
    assert_one_line_error(result)
    assert "NOT converged" in result.output
    assert len(read(tmp_path / "r/si-relaxed.cif")) == 2  # same format as the input
    assert len(read(tmp_path / "r/relax.traj", ":")) == 3


def test_relax_cli_bad_inputs(tmp_path, model_dir):
    write(tmp_path / "h2o.xyz", molecule("H2O"))
    for args in ([tmp_path / "nope.cif"], [tmp_path / "h2o.xyz", "--cell"], [tmp_path / "h2o.xyz", "--steps", "0"]):
        assert_one_line_error(relax(*args, "--model", model_dir))
