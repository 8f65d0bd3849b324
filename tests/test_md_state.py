"""MD restarts read ASE's private integrator attributes: this fails loudly when an ASE release renames them."""

import numpy as np
import pytest
from ase.build import bulk
from sim_helpers import calculator, one_thread  # noqa: F401

from dens_calc.calculations.common import SimulationError
from dens_calc.calculations.md import MDConfig, _make_dynamics
from dens_calc.calculations.md_state import CACHED, STATE, integrator_state, restore_integrator_state


def dynamics(ensemble, barostat="isotropic"):
    atoms = bulk("Si", "diamond", a=5.43)
    atoms.calc = calculator()
    atoms.set_momenta(np.random.default_rng(0).normal(size=(2, 3)) * 0.1)
    params = MDConfig(ensemble=ensemble, barostat=barostat, temperature_K=300.0).params(len(atoms))
    return _make_dynamics(atoms, params, np.random.default_rng(0))


ALL = [("nve", "isotropic"), ("langevin", "isotropic"), ("nvt", "isotropic"), ("npt", "isotropic"),
       ("npt", "anisotropic")]


@pytest.mark.parametrize("ensemble, barostat", ALL)
def test_every_private_attribute_we_rely_on_exists(ensemble, barostat):
    dyn = dynamics(ensemble, barostat)
    name = type(dyn).__name__
    assert name in STATE, f"ASE now builds {name} for {ensemble}: restart support must be checked"
    state = integrator_state(dyn)  # raises SimulationError naming any attribute this ASE lacks
    assert set(state["state"]) == set(STATE[name])
    for attr in CACHED.get(name, ()):
        assert isinstance(getattr(dyn, attr), np.ndarray), f"{name}.{attr} is no longer the cached array"


@pytest.mark.parametrize("ensemble, barostat", [("nvt", "isotropic"), ("npt", "isotropic"), ("npt", "anisotropic")])
def test_state_round_trips_and_caches_follow_the_atoms(ensemble, barostat):
    source = dynamics(ensemble, barostat)
    source.run(3)
    saved = integrator_state(source)
    target = dynamics(ensemble, barostat)
    target.atoms.set_positions(source.atoms.get_positions())
    target.atoms.set_momenta(source.atoms.get_momenta())
    restore_integrator_state(target, saved)
    assert integrator_state(target) == saved
    np.testing.assert_array_equal(target._q, source.atoms.get_positions())
    np.testing.assert_array_equal(target._p, source.atoms.get_momenta())


def test_a_missing_attribute_is_a_loud_error():
    dyn = dynamics("nvt")
    del dyn._thermostat._eta  # what a rename in ASE looks like to us
    with pytest.raises(SimulationError, match="_eta: this ASE version lacks it"):
        integrator_state(dyn)
    with pytest.raises(SimulationError, match="cannot restart a MTKNPT run"):
        restore_integrator_state(dynamics("nve"), {"class": "MTKNPT", "state": {}})
