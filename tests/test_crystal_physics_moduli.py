"""The crystal-physics benchmark's C11/C12/B from ±2 % uniaxial strains, on a made-up linear-elastic crystal."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk
from ase.units import GPa

_spec = importlib.util.spec_from_file_location("crystal_physics", Path(__file__).parents[1] / "benchmarks" / "crystal_physics.py")
physics = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(physics)


def test_cubic_moduli_recover_the_elastic_constants_of_a_linear_crystal():
    c11, c12 = 150.0 * GPa, 60.0 * GPa
    ref = bulk("Si", cubic=True)
    cells = {}
    for axis in range(3):
        for eps in (0.02, -0.02):
            atoms = ref.copy()
            scale = np.ones(3)
            scale[axis] += eps
            atoms.set_cell(ref.cell * scale[:, None], scale_atoms=True)
            cells.setdefault(axis, {})[eps] = atoms

    def stress(atoms):  # Hooke's law with a residual pressure that the central difference cancels
        strain = atoms.cell.lengths() / ref.cell.lengths() - 1.0
        normal = c12 * strain.sum() + (c11 - c12) * strain - 0.5 * GPa
        return np.concatenate([normal, np.zeros(3)])

    moduli = physics.cubic_moduli(cells, stress)
    assert moduli["C11_GPa"] == pytest.approx(150.0) and moduli["C12_GPa"] == pytest.approx(60.0)
    assert moduli["B_GPa"] == pytest.approx(90.0) and moduli["axes"] == 3
