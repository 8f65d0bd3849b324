"""Every model variant satisfies the model contract (dens_calc.testing.contract), in float32 and float64."""

import functools

import pytest
from sim_helpers import one_thread  # noqa: F401  (tiny models: one thread is fastest)

from dens_calc.testing import tiny_model
from dens_calc.testing.contract import ModelContract

SPECIES = (1, 6, 8, 14)


def variant(**config):
    return tiny_model(species=SPECIES, r_max=3.5, **config)


# every architecture option the config offers, each in a tiny model
VARIANTS = {
    "lmax0": dict(l_max=0), "lmax1-1layer": dict(l_max=1, layers=1), "lmax2": dict(l_max=2),
    "lmax3-3layers": dict(l_max=3, layers=3), "correlation3": dict(correlation=3), "rank1": dict(radial_rank=1),
    "rank4": dict(radial_rank=4), "pair-repulsion": dict(pair_repulsion=True),
    "product-norm": dict(correlation=3, product_norm=True),
}


class TestConservativeForces(ModelContract):
    @pytest.fixture(scope="class", params=list(VARIANTS.values()), ids=list(VARIANTS))
    def model(self, request):
        return variant(**request.param)


class TestDirectForces(ModelContract):
    forces = "direct"

    @pytest.fixture(scope="class", params=[dict(l_max=1), dict(l_max=2, correlation=3)], ids=["lmax1", "lmax2-cubic"])
    def model(self, request):
        return variant(**request.param)


@functools.lru_cache(maxsize=1)
def reference_calculator():
    from dens_calc import DeNSCalculator

    return DeNSCalculator(variant(l_max=1), device="cpu", dtype="float64")


def distorted(change):
    """A DeNS calculator whose results ``change(atoms, results)`` spoils: the contract must notice."""
    from ase.calculators.calculator import Calculator, all_changes

    inner = reference_calculator()

    class Distorted(Calculator):
        implemented_properties = ["energy", "free_energy", "forces", "stress"]

        def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
            super().calculate(atoms, properties, system_changes)
            copy = self.atoms.copy()
            copy.calc = inner
            self.results = {"energy": copy.get_potential_energy(), "forces": copy.get_forces()}
            if copy.pbc.all():
                self.results["stress"] = copy.get_stress()
            change(self.atoms, self.results)
            self.results["free_energy"] = self.results["energy"]

    return Distorted()


def test_the_contract_catches_broken_physics():
    from dens_calc.testing.contract import TOLERANCES, contract_structures
    from dens_calc.testing.physics import (assert_equivariant, assert_forces_match_finite_differences,
                                           assert_size_extensive, assert_stress_matches_finite_differences)

    tol = TOLERANCES["float64"]
    s = contract_structures(list(SPECIES))

    def scale_forces(atoms, res):
        res["forces"] = 1.05 * res["forces"]

    def scale_stress(atoms, res):
        if "stress" in res:
            res["stress"] = 1.05 * res["stress"]

    def field(atoms, res):  # an external field: neither rotation- nor translation-invariant
        res["energy"] += 0.1 * atoms.positions[:, 0].sum()

    def pair_bonus(atoms, res):  # energy growing like N^2: not extensive
        res["energy"] += 1e-3 * len(atoms) ** 2

    cases = [(scale_forces, lambda c: assert_forces_match_finite_differences(s["cluster"], c, rtol=tol["fd_forces"])),
             (scale_stress, lambda c: assert_stress_matches_finite_differences(s["crystal"], c, rtol=tol["fd_stress"])),
             (field, lambda c: assert_equivariant(s["cluster"], c, rtol=tol["equivariance"])),
             (pair_bonus, lambda c: assert_size_extensive(s["crystal"], c, rtol=tol["extensive"]))]
    for change, check in cases:
        check(distorted(lambda atoms, res: None))  # the undistorted model passes every check
        with pytest.raises(AssertionError):
            check(distorted(change))
