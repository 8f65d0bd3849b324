"""benchmarks/linear_power_spectrum.py: the least-squares fit recovers a model that is linear in its features."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from ase.neighborlist import neighbor_list
from base_helpers import jittered_bcc

_spec = importlib.util.spec_from_file_location(
    "linear_power_spectrum", Path(__file__).parents[1] / "benchmarks" / "linear_power_spectrum.py")
linear_power_spectrum = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(linear_power_spectrum)


def _frames(count: int, seed: int):
    frames = jittered_bcc(count, seed)
    for k, atoms in enumerate(frames):
        atoms.info.update(description=f"frame {k}", REF_energy=0.0)  # labels are replaced below
        atoms.arrays["REF_forces"] = np.zeros((len(atoms), 3))
    return frames


def test_fit_recovers_labels_made_by_a_linear_model():
    torch.set_default_dtype(torch.float64)
    try:
        train = linear_power_spectrum.featurise(_frames(6, 0), r_max=3.5, l_max=2, n_max=3)
        test = linear_power_spectrum.featurise(_frames(2, 1), r_max=3.5, l_max=2, n_max=3)
    finally:
        torch.set_default_dtype(torch.float32)
    w_true = np.random.default_rng(2).normal(0, 1, 1 + train[0]["x"].size)
    for f in train + test:  # labels from the model itself, in the units the fit expects (eV, eV/Å)
        f["energy"] = w_true[0] * f["n"] + f["x"] @ w_true[1:]
        f["forces"] = -(f["jac"].T @ w_true[1:])
    w = linear_power_spectrum.fit(train, force_weight=1.0, ridge=1e-14)
    result = linear_power_spectrum.errors(test, w)
    assert result["E_mae_meV_atom"] == pytest.approx(0.0, abs=1e-5)
    assert result["F_mae_meV_A"] == pytest.approx(0.0, abs=1e-5)
    assert set(result["signed_E_meV_atom"]) == {"frame 0", "frame 1"}
    # and a wrong model is not fitted exactly: the test is sensitive
    assert linear_power_spectrum.errors(test, w + 0.01)["F_mae_meV_A"] > 1.0


def test_quadratic_features_are_the_linear_ones_and_their_pairwise_products():
    torch.set_default_dtype(torch.float64)
    try:
        atoms = _frames(1, 3)[0]
        linear = linear_power_spectrum.featurise([atoms], r_max=3.5, l_max=2, n_max=2)[0]
        quadratic = linear_power_spectrum.featurise([atoms], r_max=3.5, l_max=2, n_max=2, quadratic=True)[0]
        edges = neighbor_list("ijS", atoms, 3.5)
        per_atom = linear_power_spectrum.per_atom_features(torch.as_tensor(atoms.positions), atoms, edges, 3.5, 2, 2)
    finally:
        torch.set_default_dtype(torch.float32)
    k = linear["x"].size
    assert quadratic["x"].size == k + k * (k + 1) // 2
    np.testing.assert_allclose(quadratic["x"][:k], linear["x"], rtol=1e-12)
    p = per_atom.numpy()
    # products follow in upper-triangle order, (0, 0), (0, 1), ..., each summed over atoms
    np.testing.assert_allclose(quadratic["x"][k + 1], np.sum(p[:, 0] * p[:, 1]), rtol=1e-12)
    np.testing.assert_allclose(quadratic["x"][k], np.sum(p[:, 0] ** 2), rtol=1e-12)
    # the Jacobian of the summed products is their exact derivative (finite differences along one coordinate)
    shifted = atoms.copy()
    shifted.positions[0, 0] += 1e-5
    torch.set_default_dtype(torch.float64)
    try:
        moved = linear_power_spectrum.featurise([shifted], r_max=3.5, l_max=2, n_max=2, quadratic=True)[0]
    finally:
        torch.set_default_dtype(torch.float32)
    np.testing.assert_allclose((moved["x"] - quadratic["x"]) / 1e-5, quadratic["jac"][:, 0], rtol=1e-3, atol=1e-6)

