"""benchmarks/power_spectrum_residuals.py: the quadratic model's energy, forces and stress, and the residual files."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from ase.build import bulk

BENCH = Path(__file__).parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))
_spec = importlib.util.spec_from_file_location("power_spectrum_residuals", BENCH / "power_spectrum_residuals.py")
psr = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(psr)

SETTINGS = {"r_max": 3.5, "l_max": 2, "n_max": 2}


def _mo_cell(seed: int):
    atoms = bulk("Mo", "bcc", a=3.16, cubic=True).repeat((2, 1, 1))
    atoms.positions += np.random.default_rng(seed).normal(0, 0.1, atoms.positions.shape)
    return atoms


def _quadratic_features(atoms):
    torch.set_default_dtype(torch.float64)
    try:
        return psr.lps.featurise([atoms], SETTINGS["r_max"], SETTINGS["l_max"], SETTINGS["n_max"], quadratic=True)[0]
    finally:
        torch.set_default_dtype(torch.float32)


def test_prediction_is_the_fitted_linear_form_and_its_derivatives():
    atoms = _mo_cell(0)
    atoms.info["REF_energy"], atoms.arrays["REF_forces"] = 0.0, np.zeros((len(atoms), 3))
    feats = _quadratic_features(atoms)
    w = np.random.default_rng(1).normal(0, 0.1, 1 + feats["x"].size)
    (res,) = psr.predict([atoms], w, **SETTINGS)
    assert res["energy"] == pytest.approx(w[0] * len(atoms) + feats["x"] @ w[1:], rel=1e-10)
    np.testing.assert_allclose(res["forces"].ravel(), -(feats["jac"].T @ w[1:]), rtol=1e-8, atol=1e-10)
    # stress: (1/V) dE/dε by central differences of a homogeneous strain (ASE sign)
    h, volume, fd = 1e-5, atoms.get_volume(), np.zeros((3, 3))
    for a, b in [(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]:
        energies = []
        for sign in (1, -1):
            eps = np.zeros((3, 3))
            eps[a, b] = eps[b, a] = sign * h / (1 if a == b else 2)
            strained = atoms.copy()
            strained.set_cell(atoms.cell.array @ (np.eye(3) + eps), scale_atoms=True)
            energies.append(psr.predict([strained], w, **SETTINGS)[0]["energy"])
        fd[a, b] = fd[b, a] = (energies[0] - energies[1]) / (2 * h) / volume  # shear: ε_ab = ε_ba = h/2
    voigt = np.array([fd[0, 0], fd[1, 1], fd[2, 2], fd[1, 2], fd[0, 2], fd[0, 1]])
    np.testing.assert_allclose(res["stress"], voigt, rtol=1e-5, atol=1e-9)


def test_choice_is_by_validation_only():
    rows = [{"force_weight": fw, "valid": {"E_mae_meV_atom": e, "F_mae_meV_A": f}, "test": {"E_mae_meV_atom": t}}
            for fw, e, f, t in [(0.03, 3.0, 100.0, 0.1), (0.01, 2.0, 110.0, 9.0), (0.003, 1.9, 150.0, 0.1)]]
    assert psr.choose(rows)["force_weight"] == 0.01  # 2/1.9 + 110/100 = 2.15 beats 2.58 and 2.50
