"""The quadratic power-spectrum prior (``prior_l_max``): the model contract, what it adds, and checkpoints."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from ase.build import bulk

from dens_calc.nn.quadratic_prior import num_quadratic_features
from dens_calc.testing import model_energy, tiny_model
from dens_calc.testing.contract import TOLERANCES, ModelContract

L_MAX, N_MAX = 4, 2


def prior_model(seed: int = 0):
    """A one-element tiny model with random prior weights, small enough that the prior does not swamp the network."""
    model = tiny_model(species=(42,), prior_l_max=L_MAX, prior_n_max=N_MAX)
    with torch.no_grad():
        weights = torch.randn(model.prior.weights.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        model.prior.weights.copy_(0.05 * weights)
    return model


def mo_cell():
    atoms = bulk("Mo", "bcc", a=3.16, cubic=True).repeat((2, 1, 1))
    atoms.rattle(0.1, seed=1)
    return atoms


class TestQuadraticPriorModel(ModelContract):
    @pytest.fixture(scope="class")
    def model(self):
        return prior_model()

    @pytest.fixture
    def tol(self, dtype) -> dict:
        # the prior's cosine cutoff (as SOAP's and SNAP's) makes forces vanish linearly at r_max, not as the
        # network's envelope does: 1e-3 Å inside the cutoff they are ~1e-5 eV/Å; continuity is tested below
        return {**TOLERANCES[dtype], "cutoff": max(TOLERANCES[dtype]["cutoff"], 1e-6)}


def test_prior_forces_are_continuous_at_the_cutoff():
    from ase import Atoms

    from dens_calc.calculators import DeNSCalculator

    model = prior_model()
    with torch.no_grad():  # the prior alone: the network's own envelope is tested by the contract
        for name, p in model.named_parameters():
            p.zero_()
    calc = DeNSCalculator(model, dtype="float64")
    r_max = model.config.r_max

    def force(gap):
        atoms = Atoms("Mo2", positions=[[0, 0, 0], [r_max - gap, 0, 0]])
        atoms.calc = calc
        return atoms.get_forces()[1, 0]

    assert force(-1e-3) == 0.0
    # forces fall to zero linearly in the distance to the cutoff (a continuous first derivative of the energy)
    assert force(2e-3) / force(1e-3) == pytest.approx(2.0, rel=1e-2)
    assert abs(force(1e-3)) > 0


def test_prior_adds_exactly_its_own_energy_and_zero_weights_change_nothing():
    from dens_calc.nn.model import DeNSPotential

    model = prior_model()
    plain = DeNSPotential(model.config.__class__(**{**model.config.to_dict(), "prior_l_max": -1})).double()
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("prior.")})
    atoms = mo_cell()
    # the prior's energy written out: benchmarks' least-squares code predicts with the same weights
    bench = Path(__file__).parents[1] / "benchmarks"
    sys.path.insert(0, str(bench))
    spec = importlib.util.spec_from_file_location("power_spectrum_residuals", bench / "power_spectrum_residuals.py")
    psr = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(psr)
    (prior,) = psr.predict([atoms], model.prior.weights.numpy(), model.config.r_max, L_MAX, N_MAX)
    assert model_energy(atoms, model) == pytest.approx(model_energy(atoms, plain) + prior["energy"], rel=1e-12)
    with torch.no_grad():
        model.prior.weights.zero_()
    assert model_energy(atoms, model) == pytest.approx(model_energy(atoms, plain), rel=1e-12)
    # 2 + 5 * 3 = 17 invariants per atom and their 17 * 18 / 2 = 153 products, plus the constant
    assert model.prior.weights.numel() == 1 + num_quadratic_features(L_MAX, N_MAX) == 1 + 17 + 153


def test_prior_round_trips_through_a_checkpoint_and_is_for_one_element(tmp_path):
    from dens_calc.checkpoint import load_model, save_model

    model = prior_model(seed=3)
    save_model(model, tmp_path / "m")
    payload = torch.load(tmp_path / "m" / "model.pt", map_location="cpu", weights_only=True)
    assert payload["model_config"]["prior_l_max"] == L_MAX
    loaded, _ = load_model(tmp_path / "m", dtype=torch.float64)
    np.testing.assert_array_equal(loaded.prior.weights.numpy(), model.prior.weights.numpy())
    assert model_energy(mo_cell(), loaded) == pytest.approx(model_energy(mo_cell(), model), abs=1e-10)
    with pytest.raises(ValueError, match="single-element"):
        tiny_model(species=(14, 42), prior_l_max=2)
