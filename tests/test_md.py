"""MD API: NVE energy conservation, exact restarts, guard, files."""

import numpy as np
import pytest
import yaml
from ase.build import bulk, molecule
from ase.io import read
from sim_helpers import calculator, one_thread  # noqa: F401

from dens_calc.calculations.common import SimulationError
from dens_calc.calculations.md import run_md


def si():
    return bulk("Si", "diamond", a=5.43)


def test_nve_conserves_energy_float64(tmp_path):
    atoms = molecule("H2O")
    res = run_md(atoms, calculator(), ensemble="nve", temperature_K=300, timestep_fs=0.5, steps=1000, interval=20,
                 out_dir=tmp_path, seed=1)
    log = np.loadtxt(tmp_path / "md.log")
    assert log.shape == (51, 8) and log[-1, 0] == 1000
    assert res["mean_temperature_K"] > 50  # the molecule actually moves
    etot = log[:, 4]
    fluctuation = np.abs(etot - etot[0]).max() / len(atoms)
    drift = np.polyfit(log[:, 1], etot, 1)[0] / len(atoms)  # eV/atom/ps
    assert fluctuation < 1e-4, fluctuation
    assert abs(drift) < 1e-4, drift
    assert abs(res["etot_drift_eV_per_atom"]) < 1e-5


@pytest.mark.parametrize("ensemble", ["nve", "langevin", "nvt", "npt"])
def test_restart_continues_exactly(tmp_path, ensemble):
    settings = dict(ensemble=ensemble, temperature_K=500, timestep_fs=1.0, interval=3, seed=7, pdamp_fs=50.0)
    straight = si()
    run_md(straight, calculator(), steps=12, out_dir=tmp_path / "a", **settings)
    first = si()
    run_md(first, calculator(), steps=6, out_dir=tmp_path / "b", **settings)
    resumed = si()  # a fresh structure: everything comes from md_restart.json
    run_md(resumed, calculator(), steps=12, out_dir=tmp_path / "b", restart=True, **settings)
    np.testing.assert_array_equal(resumed.positions, straight.positions)
    np.testing.assert_array_equal(resumed.get_momenta(), straight.get_momenta())
    np.testing.assert_array_equal(resumed.cell.array, straight.cell.array)
    assert (tmp_path / "a/md.log").read_text() == (tmp_path / "b/md.log").read_text()
    assert (tmp_path / "a/md.extxyz").read_text() == (tmp_path / "b/md.extxyz").read_text()


def test_restart_refuses_changed_settings(tmp_path):
    run_md(si(), calculator(), steps=3, interval=3, out_dir=tmp_path)
    with pytest.raises(SimulationError, match="timestep"):
        run_md(si(), calculator(), steps=6, interval=3, timestep_fs=2.0, out_dir=tmp_path, restart=True)
    with pytest.raises(SimulationError, match="nothing to do"):
        run_md(si(), calculator(), steps=3, interval=3, out_dir=tmp_path, restart=True)


def test_files_are_readable(tmp_path):
    res = run_md(si(), calculator(), ensemble="langevin", steps=10, interval=5, out_dir=tmp_path)
    frames = read(tmp_path / "md.extxyz", ":")
    assert [f.info["step"] for f in frames] == [0, 5, 10]
    last = frames[-1]
    assert np.isfinite(last.get_potential_energy()) and last.get_forces().shape == (2, 3)
    assert last.get_stress().shape == (6,) and last.info["dens_units"]["energy"] == "eV"
    assert np.loadtxt(tmp_path / "md.log").shape == (3, 8)
    assert (tmp_path / "md_energy.png").stat().st_size > 0
    summary = yaml.safe_load((tmp_path / "md_summary.yaml").read_text())
    assert summary["task"] == "md" and summary["inputs"]["ensemble"] == "langevin"
    assert summary["results"]["steps"] == res["steps"] == 10 and "ase" in summary["versions"]


def test_guard_stops_runaway_and_keeps_files(tmp_path):
    atoms = si()
    with pytest.raises(SimulationError, match="temperature"):
        run_md(atoms, calculator(), ensemble="langevin", temperature_K=5000, friction_per_fs=0.5, steps=200,
               interval=1, initial_velocities=False, max_temperature_K=200, out_dir=tmp_path)
    log = np.atleast_2d(np.loadtxt(tmp_path / "md.log"))
    assert 1 <= len(log) < 200 and len(read(tmp_path / "md.extxyz", ":")) == len(log)
    summary = yaml.safe_load((tmp_path / "md_summary.yaml").read_text())
    assert "temperature" in summary["results"]["stopped"]


def test_guard_stops_close_atoms():
    from ase import Atoms

    atoms = Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.3]])
    with pytest.raises(SimulationError, match="apart"):
        run_md(atoms, calculator(), steps=5, interval=1)


@pytest.mark.parametrize("kwargs, match", [
    ({"steps": 0}, "steps"), ({"temperature_K": -1.0}, "temperature"), ({"ensemble": "nph"}, "ensemble"),
    ({"timestep_fs": 0.0}, "timestep"), ({"ensemble": "langevin", "temperature_K": 0.0}, "temperature"),
])
def test_invalid_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        run_md(si(), calculator(), **{"steps": 5, **kwargs})


def test_npt_needs_periodic_cell():
    with pytest.raises(ValueError, match="periodic"):
        run_md(molecule("H2O"), calculator(), ensemble="npt", steps=5)


def test_langevin_leaves_the_callers_constraints_alone():
    from ase.constraints import FixAtoms

    free = si()
    run_md(free, calculator(), ensemble="langevin", steps=3, interval=1)
    assert free.constraints == []  # the FixCom of the run is not left behind
    pinned = si()
    fix = FixAtoms(indices=[0])
    pinned.set_constraint(fix)
    run_md(pinned, calculator(), ensemble="langevin", steps=3, interval=1)
    assert pinned.constraints == [fix]


def test_constraints_are_restored_when_the_run_stops():
    atoms = si()
    with pytest.raises(SimulationError, match="temperature"):
        run_md(atoms, calculator(), ensemble="langevin", temperature_K=5000, friction_per_fs=0.5, steps=50,
               interval=1, initial_velocities=False, max_temperature_K=200)
    assert atoms.constraints == []


def test_non_finite_model_output_stops_md_by_type_not_message(tmp_path):
    from sim_helpers import FailingCalculator

    from dens_calc.calculators import NonFiniteOutputError

    typed = FailingCalculator(NonFiniteOutputError("model returned NaN energies"), fail_after=4)
    with pytest.raises(SimulationError, match="MD stopped at step .*NaN energies"):
        run_md(molecule("H2O"), typed, steps=10, interval=1, out_dir=tmp_path)
    assert "NaN energies" in yaml.safe_load((tmp_path / "md_summary.yaml").read_text())["results"]["stopped"]
    other = FailingCalculator(RuntimeError("a bug that mentions non-finite values"), fail_after=4)
    with pytest.raises(RuntimeError, match="a bug") as caught:
        run_md(molecule("H2O"), other, steps=10, interval=1)
    assert not isinstance(caught.value, SimulationError)  # an internal error is not a stopped simulation


@pytest.mark.parametrize("ensemble", ["nve", "langevin", "nvt"])
def test_direct_force_model_runs_on_a_periodic_cell_without_pressure(tmp_path, ensemble):
    from sim_helpers import direct_calculator

    res = run_md(si(), direct_calculator(), ensemble=ensemble, steps=4, interval=2, out_dir=tmp_path)
    log = np.loadtxt(tmp_path / "md.log")
    assert log.shape == (3, 8) and np.isnan(log[:, 6]).all() and np.isfinite(log[:, 7]).all()
    assert np.isnan(res["final"]["P_GPa"]) and res["steps"] == 4
    frames = read(tmp_path / "md.extxyz", ":")
    assert "stress" not in frames[-1].calc.results and frames[-1].get_forces().shape == (2, 3)


def test_npt_with_a_direct_force_model_is_refused_before_it_starts(tmp_path):
    from sim_helpers import direct_calculator

    with pytest.raises(ValueError, match="npt needs stress"):
        run_md(si(), direct_calculator(), ensemble="npt", steps=4, out_dir=tmp_path)
    assert not (tmp_path / "md.log").exists()
