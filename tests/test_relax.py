"""Relaxation API."""

import numpy as np
import pytest
import yaml
from ase.build import bulk, molecule
from ase.io import read
from sim_helpers import calculator, one_thread  # noqa: F401

from dens_calc.calculations.relax import run_relax


@pytest.mark.parametrize("optimizer", ["FIRE", "BFGS", "LBFGS"])
def test_relax_brings_forces_below_fmax(optimizer):
    atoms = molecule("H2O")
    atoms.rattle(0.05, seed=1)
    res = run_relax(atoms, calculator(), optimizer=optimizer, fmax=0.01, steps=200)
    assert res["converged"]
    assert np.linalg.norm(atoms.get_forces(), axis=1).max() < 0.01
    assert res["max_force_eV_per_Ang"] < 0.01 and res["files"] == {}


def test_relax_files(tmp_path):
    atoms = molecule("H2O")
    atoms.rattle(0.05, seed=1)
    res = run_relax(atoms, calculator(), out_dir=tmp_path, input_path="water.xyz")
    relaxed = read(tmp_path / "water-relaxed.xyz")
    assert np.allclose(relaxed.positions, atoms.positions) and relaxed.get_forces().shape == (3, 3)
    assert len(read(tmp_path / "relax.traj", ":")) == res["steps"] + 1
    summary = yaml.safe_load((tmp_path / "relax_summary.yaml").read_text())
    assert summary["results"]["converged"] is True and summary["inputs"]["fmax"] == 0.01


def test_cell_relax_with_symmetry_keeps_space_group(tmp_path):
    from ase.spacegroup.symmetrize import check_symmetry

    atoms = bulk("Si", "diamond", a=5.6)
    res = run_relax(atoms, calculator(), cell=True, fix_symmetry=True, steps=3, pressure_GPa=5.0, out_dir=tmp_path,
                    input_path="si.cif", output_format="extxyz")
    assert res["steps"] == 3 and not res["converged"]
    assert res["volume_change_percent"] != 0.0 and len(res["stress_eV_per_Ang3"]) == 6
    assert check_symmetry(read(tmp_path / "si-relaxed.xyz"), 1e-4).number == 227


def test_relax_invalid_settings():
    with pytest.raises(ValueError, match="periodic"):
        run_relax(molecule("H2O"), calculator(), cell=True)
    with pytest.raises(ValueError, match="optimizer"):
        run_relax(molecule("H2O"), calculator(), optimizer="SD")
    with pytest.raises(ValueError, match="steps"):
        run_relax(molecule("H2O"), calculator(), steps=0)


def test_user_constraints_come_back_when_the_optimizer_fails():
    from ase.constraints import FixAtoms
    from sim_helpers import FailingCalculator

    atoms = bulk("Si", "diamond", a=5.5, cubic=True)
    atoms.rattle(0.1, seed=1)
    fix = FixAtoms(indices=[0])
    atoms.set_constraint(fix)
    with pytest.raises(RuntimeError, match="boom"):
        run_relax(atoms, FailingCalculator(RuntimeError("boom"), fail_after=3), fix_symmetry=True, fmax=1e-6)
    assert atoms.constraints == [fix]  # no FixSymmetry left behind


def test_cell_relaxation_with_a_direct_force_model_is_refused_before_it_starts(tmp_path):
    from sim_helpers import direct_calculator

    with pytest.raises(ValueError, match="needs stress"):
        run_relax(bulk("Si", "diamond", a=5.5), direct_calculator(), cell=True, out_dir=tmp_path)
    assert not (tmp_path / "relax.log").exists()
    assert run_relax(molecule("H2O"), direct_calculator(), steps=2)["steps"] == 2  # positions only: fine
