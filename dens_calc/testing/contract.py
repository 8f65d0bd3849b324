"""The model contract: what every potential must satisfy, as assertions and as a reusable pytest suite.

The ``assert_*`` functions of :mod:`dens_calc.testing.physics` take an ASE calculator and
structures, so they check any potential.  :class:`ModelContract` runs them all on a model
variant, in float32 and float64, with the tolerances of :data:`TOLERANCES`; a test module
subclasses it and provides only a ``model`` fixture (nequip's ``utils/unittests`` pattern)::

    class TestCubicProduct(ModelContract):
        @pytest.fixture(scope="class")
        def model(self):
            return tiny_model(correlation=3)

Finite differences come from ASE (``ase.calculators.fd``), not our own code.  This module
imports pytest, so import it from tests only.
"""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms

from .physics import (assert_batch_equals_single, assert_equivariant, assert_forces_match_finite_differences,
                      assert_separable, assert_size_extensive, assert_smooth_at_cutoff,
                      assert_stress_matches_finite_differences)

#: Relative tolerances (of the largest magnitude compared) by model dtype, and the FD step (Å, strain).
TOLERANCES = {
    "float64": {"equivariance": 1e-9, "batch": 1e-9, "extensive": 1e-9, "fd_forces": 1e-6, "fd_stress": 1e-6,
                "fd_step": 1e-4, "cutoff": 1e-7},
    "float32": {"equivariance": 2e-5, "batch": 2e-5, "extensive": 2e-5, "fd_forces": 3e-2, "fd_stress": 3e-2,
                "fd_step": 1e-2, "cutoff": 1e-4},
}


def contract_structures(species: list[int], seed: int = 0) -> dict[str, Atoms]:
    """A small molecule-like cluster and a skewed periodic cell made of ``species``, rattled."""
    rng = np.random.default_rng(seed)
    cluster = Atoms(numbers=[species[k % len(species)] for k in range(5)],
                    positions=[[0, 0, 0], [1.3, 0, 0], [0, 1.4, 0], [0.2, 0.3, 1.5], [1.4, 1.2, 0.9]])
    cluster.positions += rng.normal(scale=0.05, size=(5, 3))
    cell = np.array([[3.1, 0.0, 0.0], [0.6, 2.9, 0.0], [0.3, 0.4, 3.3]])
    crystal = Atoms(numbers=[species[0], species[-1]], cell=cell, pbc=True,
                    scaled_positions=[[0, 0, 0], [0.45, 0.52, 0.48]])
    crystal.positions += rng.normal(scale=0.05, size=(2, 3))
    return {"cluster": cluster, "crystal": crystal}


class ModelContract:
    """The contract as a pytest suite.  Subclasses provide a ``model`` fixture (a built
    :class:`~dens_calc.nn.model.DeNSPotential`) and may set ``forces = "direct"``."""

    forces = "conservative"

    @pytest.fixture(params=["float32", "float64"])
    def dtype(self, request) -> str:
        return request.param

    @pytest.fixture
    def tol(self, dtype) -> dict:
        return TOLERANCES[dtype]

    @pytest.fixture
    def calc(self, model, dtype):
        from ..calculators import DeNSCalculator

        return DeNSCalculator(model, device="cpu", dtype=dtype, forces=self.forces)

    @pytest.fixture
    def structures(self, model) -> dict[str, Atoms]:
        return contract_structures(list(model.species))

    def test_equivariance(self, calc, structures, tol):
        for atoms in structures.values():
            assert_equivariant(atoms, calc, rtol=tol["equivariance"])

    def test_forces_are_energy_gradient(self, calc, structures, tol):
        if self.forces == "direct":
            pytest.skip("direct forces are not a gradient")
        for atoms in structures.values():
            assert_forces_match_finite_differences(atoms, calc, rtol=tol["fd_forces"], delta=tol["fd_step"])

    def test_stress_is_strain_derivative(self, calc, structures, tol):
        if self.forces == "direct":
            pytest.skip("a direct-force model gives no stress")
        assert_stress_matches_finite_differences(structures["crystal"], calc, rtol=tol["fd_stress"],
                                                 delta=tol["fd_step"])

    def test_batch_equals_one_by_one(self, calc, structures, tol):
        assert_batch_equals_single([structures["cluster"], structures["crystal"], structures["cluster"][:3]], calc,
                                   rtol=tol["batch"])

    def test_extensive_and_separable(self, calc, structures, tol):
        assert_size_extensive(structures["crystal"], calc, rtol=tol["extensive"])
        assert_separable(structures["cluster"], structures["cluster"][:3], calc, rtol=tol["extensive"])

    def test_smooth_at_cutoff(self, calc, model, tol):
        assert_smooth_at_cutoff((model.species[0], model.species[-1]), model.config.r_max, calc, rtol=tol["cutoff"])
