"""benchmarks/surface_energies.py: broken-bond counts of bcc slabs, and a mislabelled slab stands out."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from ase.build import bcc100, bcc110, bcc111, bulk
from ase.calculators.singlepoint import SinglePointCalculator

_spec = importlib.util.spec_from_file_location(
    "surface_energies", Path(__file__).parents[1] / "benchmarks" / "surface_energies.py")
surface_energies = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(surface_energies)

A_MO, E_BULK, BONDS = 3.16, -10.85, np.array([0.40, 0.12])  # eV per atom; eV per missing 1st / 2nd-shell bond


def labelled(atoms, config_type, energy):
    atoms.info["config_type"] = config_type
    atoms.calc = SinglePointCalculator(atoms, energy=energy)
    return atoms


def ground_state():
    crystal = bulk("Mo", "bcc", a=A_MO, cubic=True).repeat(2)
    return labelled(crystal, "Elastic", E_BULK * len(crystal))


def slab(build, layers, offset_eV=0.0):
    """A slab labelled exactly by the broken-bond model (plus an offset), its missing bonds counted independently."""
    atoms = build("Mo", size=(1, 1, layers), a=A_MO, vacuum=8.0)
    bounds, per_atom = surface_energies.neighbour_shells(ground_state(), 2)
    missing = surface_energies.missing_bonds(atoms, bounds, per_atom)
    return labelled(atoms, "Surface", E_BULK * len(atoms) + BONDS @ missing + offset_eV)


def test_bcc_shells_and_missing_bonds():
    bounds, per_atom = surface_energies.neighbour_shells(ground_state(), 2)
    np.testing.assert_allclose(per_atom, [8, 6])  # bcc: 8 first, 6 second neighbours
    assert A_MO * np.sqrt(3) / 2 < bounds[0] < A_MO < bounds[1] < A_MO * np.sqrt(2)
    # (100), one atom per layer: the top atom misses 4 first and 1 second neighbour, the one below it 1 second
    # neighbour (two layers up); twice for the two faces
    slab_100 = bcc100("Mo", (1, 1, 6), a=A_MO, vacuum=8.0)
    np.testing.assert_allclose(surface_energies.missing_bonds(slab_100, bounds, per_atom), [8, 4])


def test_fit_recovers_bond_energies_and_flags_an_offset_slab():
    train = [ground_state(), slab(bcc100, 6), slab(bcc110, 6), slab(bcc111, 9), slab(bcc100, 8)]
    offset = 0.5  # eV on a 6-atom test slab
    test = [slab(bcc110, 8), slab(bcc111, 6, offset_eV=offset)]
    table = surface_energies.surface_table(train, test, "Elastic", 2)
    np.testing.assert_allclose(table["bond_energies_eV"], BONDS, atol=1e-9)
    assert table["bulk_energy_per_atom_eV"] == pytest.approx(E_BULK)
    residuals = [row["label_minus_left_out_fit_meV_atom"] for row in table["surfaces"]]
    np.testing.assert_allclose(residuals, [0, 0, 0, 0, 0, offset / 6 * 1000], atol=1e-6)
    gamma_110 = table["surfaces"][4]["gamma_label_J_m2"]
    area = np.linalg.norm(np.cross(*np.asarray(test[0].cell)[:2]))
    assert gamma_110 == pytest.approx((test[0].get_potential_energy() - 8 * E_BULK) / (2 * area) * 16.021766)


def test_slab_without_vacuum_is_refused():
    crystal = labelled(bulk("Mo", "bcc", a=A_MO, cubic=True).repeat((1, 1, 4)), "Surface", 0.0)
    with pytest.raises(ValueError, match="vacuum"):
        surface_energies.slab_area(crystal)
