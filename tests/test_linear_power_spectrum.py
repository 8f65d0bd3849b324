"""benchmarks/linear_power_spectrum.py: the least-squares fit recovers a model that is linear in its features."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from ase.build import bulk

_spec = importlib.util.spec_from_file_location(
    "linear_power_spectrum", Path(__file__).parents[1] / "benchmarks" / "linear_power_spectrum.py")
linear_power_spectrum = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(linear_power_spectrum)


def _frames(count: int, seed: int):
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(count):
        atoms = bulk("Mo", "bcc", a=3.16 * (1 + 0.01 * k), cubic=True).repeat((2, 1, 1))
        atoms.positions += rng.normal(0, 0.1, atoms.positions.shape)
        atoms.info.update(description=f"frame {k}", REF_energy=0.0)  # labels are replaced below
        atoms.arrays["REF_forces"] = np.zeros((len(atoms), 3))
        frames.append(atoms)
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
