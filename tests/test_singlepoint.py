"""Single-point API: batched results match one-by-one evaluation; dens_ keys; labels kept."""

import numpy as np
from ase.build import bulk, molecule
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import read
from sim_helpers import calculator, one_thread  # noqa: F401

from dens_calc.calculations.singlepoint import run_singlepoint


def frames():
    water, si = molecule("H2O"), bulk("Si", "diamond", a=5.43)
    si.rattle(0.02, seed=1)
    water.calc = SinglePointCalculator(water, energy=-14.0, forces=np.zeros((3, 3)))  # a "DFT" label
    return [water, si, molecule("H2")]


def test_singlepoint_matches_calculator(tmp_path):
    structures = frames()
    res = run_singlepoint(structures, calculator(), batch_size=2, out_dir=tmp_path)
    assert res["frames"] == 3
    for atoms in structures:
        ref = atoms.copy()
        ref.calc = calculator()
        assert np.isclose(atoms.info["dens_energy"], ref.get_potential_energy(), rtol=1e-10)
        np.testing.assert_allclose(atoms.arrays["dens_forces"], ref.get_forces(), atol=1e-10)
    assert "dens_stress" in structures[1].info and "dens_stress" not in structures[0].info
    back = read(tmp_path / "singlepoint.extxyz", ":")
    assert len(back) == 3 and back[0].get_potential_energy() == -14.0  # the reference label survives
    assert np.isclose(back[1].info["dens_energy"], res["energies_eV"][1])
    assert back[1].arrays["dens_forces"].shape == (2, 3) and back[1].info["dens_stress"].shape == (6,)
    assert (tmp_path / "singlepoint_summary.yaml").exists()


def test_singlepoint_single_structure_writes_nothing_without_out_dir():
    res = run_singlepoint(molecule("H2O"), calculator())
    assert res["frames"] == 1 and res["files"] == {}
