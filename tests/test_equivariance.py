"""Invariance of E and equivariance of F and stress under E(3) operations and permutations."""

import numpy as np
import pytest

from dens_calc.testing import assert_rotation_equivariant, random_rotation


@pytest.mark.parametrize("improper", [False, True])
@pytest.mark.parametrize("system", ["ethanol", "si_cell", "cu_triclinic"])
def test_rotation_and_reflection(system, improper, calc64, request):
    atoms = request.getfixturevalue(system)
    for seed in range(2):
        assert_rotation_equivariant(atoms, calc64, random_rotation(seed, improper=improper), atol=1e-9)


@pytest.mark.parametrize("system", ["ethanol", "si_cell"])
def test_translation(system, calc64, request):
    atoms = request.getfixturevalue(system)
    a = atoms.copy()
    a.calc = calc64
    b = atoms.copy()
    b.positions += np.array([0.3, -1.7, 2.9])
    b.calc = calc64
    assert abs(a.get_potential_energy() - b.get_potential_energy()) < 1e-9
    np.testing.assert_allclose(a.get_forces(), b.get_forces(), atol=1e-9)
    if atoms.pbc.all():
        np.testing.assert_allclose(a.get_stress(), b.get_stress(), atol=1e-10)


def test_periodic_wrap_is_invisible(si_cell, calc64):
    a = si_cell.copy()
    a.calc = calc64
    b = si_cell.copy()
    b.positions += 3.0 * si_cell.cell[0] - 2.0 * si_cell.cell[2]  # whole lattice vectors
    b.calc = calc64
    assert abs(a.get_potential_energy() - b.get_potential_energy()) < 1e-9
    np.testing.assert_allclose(a.get_forces(), b.get_forces(), atol=1e-9)


@pytest.mark.parametrize("system", ["ethanol", "si_cell"])
def test_permutation(system, calc64, request):
    atoms = request.getfixturevalue(system)
    perm = np.random.default_rng(5).permutation(len(atoms))
    a = atoms.copy()
    a.calc = calc64
    b = atoms[perm]
    b.calc = calc64
    assert abs(a.get_potential_energy() - b.get_potential_energy()) < 1e-9
    np.testing.assert_allclose(a.get_forces()[perm], b.get_forces(), atol=1e-9)
    np.testing.assert_allclose(a.get_potential_energies()[perm], b.get_potential_energies(), atol=1e-9)
