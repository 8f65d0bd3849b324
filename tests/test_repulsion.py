"""The optional ZBL pair repulsion: its energy, smooth switch-off, forces/stress and config round trip."""

import math

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from dens_calc import DeNSCalculator
from dens_calc.nn.model import DeNSPotential, ModelConfig
from dens_calc.testing import tiny_model
from dens_calc.testing.physics import assert_forces_match_finite_differences, assert_stress_matches_finite_differences


def zbl_reference(z1: int, z2: int, r: float, r_cut: float) -> float:
    """ZBL universal potential (eV) written out from the published constants, times the p = 6 switch."""
    a = 0.46850 / (z1**0.23 + z2**0.23)
    x = r / a
    phi = (0.18175 * math.exp(-3.19980 * x) + 0.50986 * math.exp(-0.94229 * x)
           + 0.28022 * math.exp(-0.40290 * x) + 0.02817 * math.exp(-0.20162 * x))
    u = r / r_cut
    switch = 1 - 28 * u**6 + 48 * u**7 - 21 * u**8 if u < 1 else 0.0
    return 14.399645 * z1 * z2 / r * phi * switch


@pytest.fixture(scope="module")
def pair_models():
    plain = tiny_model()
    with_zbl = DeNSPotential(ModelConfig.from_dict({**plain.config.to_dict(), "pair_repulsion": True})).double()
    with_zbl.load_state_dict(plain.state_dict())  # the prior has no weights: same network
    return DeNSCalculator(plain, device="cpu", dtype="float64"), DeNSCalculator(with_zbl, device="cpu", dtype="float64")


@pytest.mark.parametrize("symbols, r", [("SiSi", 1.2), ("CuH", 0.9), ("HH", 0.35)])
def test_repulsion_adds_the_zbl_pair_energy(pair_models, symbols, r):
    from ase.data import atomic_numbers, covalent_radii

    plain, with_zbl = pair_models
    dimer = Atoms(symbols, positions=[[0, 0, 0], [0, 0, r]])
    z1, z2 = (atomic_numbers[s] for s in Atoms(symbols).get_chemical_symbols())
    expected = zbl_reference(z1, z2, r, covalent_radii[z1] + covalent_radii[z2])
    assert expected > 0.1  # close approach costs energy
    assert with_zbl.get_potential_energy(dimer) - plain.get_potential_energy(dimer) == pytest.approx(expected, rel=1e-10)


def test_repulsion_is_zero_beyond_the_sum_of_covalent_radii(pair_models):
    plain, with_zbl = pair_models
    crystal = bulk("Si", "diamond", a=5.43)  # bond 2.35 Å > 2 x 1.11 Å
    assert with_zbl.get_potential_energy(crystal) == pytest.approx(plain.get_potential_energy(crystal), abs=1e-12)
    np.testing.assert_allclose(with_zbl.get_forces(crystal), plain.get_forces(crystal), atol=1e-12)


def test_repulsion_forces_and_stress_are_derivatives_of_the_energy(pair_models):
    _, with_zbl = pair_models
    squeezed = bulk("Si", "diamond", a=4.6, cubic=True)  # bonds of 2.0 Å: inside the switch region
    squeezed.rattle(0.05, seed=4)
    assert_forces_match_finite_differences(squeezed, with_zbl)
    assert_stress_matches_finite_differences(squeezed, with_zbl)


def test_pair_repulsion_round_trips_and_old_configs_default_to_off(tmp_path):
    from dens_calc.checkpoint import load_model, save_model

    cfg = tiny_model().config.to_dict()
    old = {k: v for k, v in cfg.items() if k != "pair_repulsion"}
    assert ModelConfig.from_dict(old).pair_repulsion is False
    model = DeNSPotential(ModelConfig.from_dict({**cfg, "pair_repulsion": True}))
    save_model(model, tmp_path / "zbl")
    loaded, _ = load_model(tmp_path / "zbl")
    assert loaded.config.pair_repulsion is True and loaded.repulsion is not None
