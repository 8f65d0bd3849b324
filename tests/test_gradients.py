"""Forces and stress are exact derivatives of the energy; periodic images; smoothness at the cutoff."""

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk

from dens_calc import DeNSCalculator
from dens_calc.testing import assert_forces_match_finite_differences, assert_stress_matches_finite_differences


@pytest.mark.parametrize("system", ["ethanol", "si_cell", "cu_triclinic"])
def test_forces_are_negative_energy_gradient(system, calc64, request):
    assert_forces_match_finite_differences(request.getfixturevalue(system), calc64, rtol=1e-6)


@pytest.mark.parametrize("system", ["si_cell", "cu_triclinic"])
def test_stress_is_strain_derivative(system, calc64, request):
    assert_stress_matches_finite_differences(request.getfixturevalue(system), calc64, rtol=1e-6)


def test_energies_sum_to_energy(si_cell, calc64):
    si_cell.calc = calc64
    assert abs(si_cell.get_potential_energies().sum() - si_cell.get_potential_energy()) < 1e-9


@pytest.mark.parametrize("make", [lambda: bulk("Cu", "fcc", a=3.61), lambda: bulk("Si", "diamond", a=5.43)])
def test_primitive_cell_equals_supercell_per_atom(make, calc64):
    """Cutoff (4 Å) exceeds the primitive cell's heights: every image must be counted."""
    prim = make()
    prim.calc = calc64
    sup = make().repeat(2)
    sup.calc = calc64
    assert calc64.cutoff > min(prim.cell.cellpar()[:3])
    e_prim = prim.get_potential_energy() / len(prim)
    assert abs(e_prim - sup.get_potential_energy() / len(sup)) < 1e-9
    np.testing.assert_allclose(
        prim.get_stress(), DeNSCalculator(calc64.model, device="cpu", dtype="float64").get_stress(sup), atol=1e-9
    )


def test_mixed_pbc_slab(calc64):
    slab = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 2, 1))
    slab.pbc = [True, True, False]
    slab.center(vacuum=5.0, axis=2)
    slab.rattle(0.03, seed=4)
    slab.calc = calc64
    assert np.isfinite(slab.get_potential_energy())
    assert_forces_match_finite_differences(slab, calc64, rtol=1e-6)


def test_energy_smooth_at_cutoff(calc64):
    """A dimer's energy and force go continuously to the isolated-atom values at r_max."""
    rc = calc64.cutoff
    energies, forces = [], []
    for r in (rc - 1e-3, rc - 1e-4, rc + 1e-4):
        dimer = Atoms("CO", positions=[[0, 0, 0], [r, 0, 0]])
        dimer.calc = calc64
        energies.append(dimer.get_potential_energy())
        forces.append(np.abs(dimer.get_forces()).max())
    assert abs(energies[1] - energies[2]) < 1e-9
    assert forces[1] < 1e-6 and forces[2] == 0.0


def test_atoms_beyond_the_cutoff_do_not_interact(calc64):
    """(Not "energy = E0": with no neighbours the network still adds its per-atom terms.)"""
    atoms = Atoms("CO", positions=[[0, 0, 0], [10.0, 0, 0]])
    atoms.calc = calc64
    single_c = Atoms("C")
    single_c.calc = calc64
    single_o = Atoms("O")
    single_o.calc = calc64
    assert abs(atoms.get_potential_energy() - single_c.get_potential_energy() - single_o.get_potential_energy()) < 1e-10
    assert np.abs(atoms.get_forces()).max() == 0.0


def test_float32_close_to_float64(model64, si_cell):
    c32 = DeNSCalculator(model64, device="cpu", dtype="float32")
    c64 = DeNSCalculator(model64, device="cpu", dtype="float64")
    f32, f64 = c32.get_forces(si_cell), c64.get_forces(si_cell)
    assert next(c32.model.parameters()).dtype == torch.float32
    assert c32.model.atomic_energies.dtype == torch.float64  # E0 sums stay exact
    np.testing.assert_allclose(f32, f64, atol=1e-4 * max(1.0, np.abs(f64).max()))
