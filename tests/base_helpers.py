"""Shared helpers for the tests of the least-squares bases (quadratic, kernel) and the power-spectrum scripts."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk


def jittered_bcc(count: int, seed: int, element: str = "Mo") -> list:
    """``count`` 4-atom bcc cells, each 1 % larger than the one before, every atom moved by N(0, 0.1 Å)."""
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(count):
        atoms = bulk(element, "bcc", a=3.16 * (1 + 0.01 * k), cubic=True).repeat((2, 1, 1))
        atoms.positions += rng.normal(0, 0.1, atoms.positions.shape)
        frames.append(atoms)
    return frames


def assert_stress_is_strain_derivative(energy_of, atoms, voigt_stress, eps: float = 1e-5) -> None:
    """The trace of a Voigt stress (eV/Å³) times the volume equals dE/dε of a uniform stretch (central difference);
    ``energy_of(atoms)`` gives the energy (eV)."""
    energies = []
    for sign in (1, -1):
        stretched = atoms.copy()
        stretched.set_cell(atoms.cell * (1 + sign * eps), scale_atoms=True)
        energies.append(energy_of(stretched))
    trace = sum(voigt_stress[:3])
    assert abs(trace) > 1e-3
    assert trace * atoms.get_volume() == pytest.approx((energies[0] - energies[1]) / (2 * eps), rel=1e-6)
