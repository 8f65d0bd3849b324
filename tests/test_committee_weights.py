"""benchmarks/committee_weights.py: the linear programme finds the best convex weights of a committee."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

_spec = importlib.util.spec_from_file_location(
    "committee_weights", Path(__file__).parents[1] / "benchmarks" / "committee_weights.py")
committee_weights = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(committee_weights)
best_weights, maes = committee_weights.best_weights, committee_weights.maes


def test_opposite_errors_cancel_at_equal_weights():
    energy = np.array([[2.0, -2.0], [1.0, -1.0], [-3.0, 3.0]])
    forces = np.array([[10.0, -10.0], [-4.0, 4.0]])
    w = best_weights(energy, forces, energy_cost=1.0, force_cost=1.0)
    assert w == pytest.approx([0.5, 0.5], abs=1e-9)
    assert maes(w, energy, forces) == pytest.approx({"energy_per_atom": 0.0, "forces": 0.0}, abs=1e-9)


def test_weights_are_convex_and_pick_the_better_model():
    rng = np.random.default_rng(0)
    good, bad = rng.normal(0, 1, 20), rng.normal(3, 1, 20)  # bad: biased, same sign as good on average
    energy = np.column_stack([good, bad])
    forces = np.column_stack([rng.normal(0, 5, 60), rng.normal(0, 9, 60)])
    w = best_weights(energy, forces, energy_cost=1.0, force_cost=0.0)
    assert w.min() >= 0 and w.sum() == pytest.approx(1.0)
    # no convex combination beats the optimum found, on a fine grid
    grid = [maes(np.array([a, 1 - a]), energy, forces)["energy_per_atom"] for a in np.linspace(0, 1, 2001)]
    assert maes(w, energy, forces)["energy_per_atom"] <= min(grid) + 1e-9


def test_caps_trade_one_error_for_the_other_or_are_infeasible():
    # model 0: good energies, bad forces; model 1 the reverse
    energy = np.array([[1.0, 5.0], [-1.0, -5.0]])
    forces = np.array([[20.0, 2.0], [-20.0, -2.0]])
    w = best_weights(energy, forces, energy_cost=1.0, force_cost=0.0, max_forces=11.0)
    # forces MAE = 20 w0 + 2 w1 <= 11 -> w0 <= 0.5; energy MAE = w0 + 5 w1 is lowest at w0 = 0.5
    assert w == pytest.approx([0.5, 0.5], abs=1e-7)
    assert best_weights(energy, forces, energy_cost=0.0, force_cost=1.0, max_energy=0.5) is None
