"""Least-squares fit of the sparse-kernel base of a Δ-model (``ModelConfig.prior_kind = "kernel"``).

The base (``nn.kernel_prior``), e_i = w0 + Σ_m α_m (1 + z_i · z_m / K)^ζ + β · x_i, is linear in its weights once the
sparse environments z_m and the standardisation are fixed, so it is fitted with the quadratic base's normal
equations and cross-validation (``train.quadratic_base``): a frame's columns are Σ_i k(z_i, z_m) and Σ_i x_i, and
their Jacobian in the positions follows from each atom's invariant Jacobian by the chain rule.

Steps: the training atoms' invariants (no derivatives) give μ, s and M sparse environments by farthest-point
sampling (diverse environments, surfaces and hot frames included, rather than M random bulk ones); then each
frame's columns and their Jacobian; then force weight and ridge by K-fold CV.  Memory stays at (M + K) × 3N per
frame: the per-atom Jacobians are dropped as soon as a frame's columns are built.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import torch

from ..nn.kernel_prior import SparseKernelPowerSpectrum
from ..nn.quadratic_prior import power_spectrum_features
from .quadratic_base import (
    FORCE_WEIGHTS,
    RIDGES,
    NormalEquations,
    atom_features_and_jacobian,
    best_by_score,
    cross_validate,
    edges,
)

log = logging.getLogger(__name__)


def atom_invariants(atoms, r_max: float, l_max: int, n_max: int) -> np.ndarray:
    """Each atom's power-spectrum invariants [N, K] (float64)."""
    sender, centre, offsets = edges(atoms, r_max)
    positions = torch.as_tensor(atoms.positions, dtype=torch.float64)
    vectors = positions[sender] - positions[centre] + offsets
    return power_spectrum_features(vectors, centre, len(atoms), r_max, l_max, n_max).numpy()


def standardised(invariants: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, spread (1 where a column is constant) and the standardised rows of the training atoms' invariants."""
    mean, std = invariants.mean(axis=0), invariants.std(axis=0)
    std[std == 0] = 1.0
    return mean, std, (invariants - mean) / std


def unit_rows(rows: np.ndarray) -> np.ndarray:
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


def farthest_points(unit: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    """Indices of ``count`` rows of the unit vectors ``unit``, each the farthest (1 − cosine) from those before it."""
    if count > len(unit):
        raise ValueError(f"{count} sparse environments asked for, but the training set has {len(unit)} atoms")
    chosen = [int(np.random.default_rng(seed).integers(len(unit)))]
    distance = 1.0 - unit @ unit[chosen[0]]
    for _ in range(count - 1):
        chosen.append(int(np.argmax(distance)))
        distance = np.minimum(distance, 1.0 - unit @ unit[chosen[-1]])
    return np.array(chosen)


@dataclass
class KernelBase:
    """A fitted kernel base: standardisation, sparse environments, weights, settings and the CV table."""

    mean: np.ndarray
    std: np.ndarray
    sparse: np.ndarray
    weights: np.ndarray
    l_max: int
    n_max: int
    zeta: int
    force_weight: float
    ridge: float
    cv: list[dict] = field(default_factory=list)

    def module(self, r_max: float) -> SparseKernelPowerSpectrum:
        term = SparseKernelPowerSpectrum(r_max, self.l_max, self.n_max, len(self.sparse), self.zeta)
        for name in ("mean", "std", "sparse", "weights"):
            getattr(term, name).copy_(torch.as_tensor(getattr(self, name), dtype=torch.float64))
        return term

    def summary(self) -> dict:
        chosen = next(r for r in self.cv if (r["force_weight"], r["ridge"]) == (self.force_weight, self.ridge))
        return {"kind": "kernel", "l_max": self.l_max, "n_max": self.n_max, "num_sparse": len(self.sparse),
                "zeta": self.zeta, "force_weight": self.force_weight, "ridge": self.ridge,
                "cv_E_mae_meV_atom": round(chosen["E_mae_meV_atom"], 3),
                "cv_F_mae_meV_A": round(chosen["F_mae_meV_A"], 2)}


def kernel_columns(atoms, label: dict, base: KernelBase, r_max: float) -> dict:
    """One frame's summed columns [1 + ... without the constant: M + K] and their Jacobian [M + K, 3N], with labels."""
    x, jac = (t.numpy() for t in atom_features_and_jacobian(atoms, r_max, base.l_max, base.n_max))
    k = x.shape[1]
    z = (x - base.mean) / base.std
    inner = 1.0 + z @ base.sparse.T / k  # [N, M]
    # d k_im / d r = ζ inner_im^(ζ-1) (z_m / (K s)) · d x_i / d r: one batched product per atom (5× faster than
    # building the [N, M, K] gradient first)
    along = np.matmul(base.sparse / (k * base.std), jac)  # [N, M, 3N]
    weight = base.zeta * inner ** (base.zeta - 1)  # [N, M]
    columns = np.concatenate([(inner ** base.zeta).sum(axis=0), x.sum(axis=0)])
    jacobian = np.concatenate([np.einsum("im,imp->mp", weight, along), jac.sum(axis=0)])
    return {"n": len(atoms), "x": columns, "jac": jacobian, "energy": float(label["energy"]),
            "forces": np.asarray(label["forces"], dtype=np.float64).ravel()}


def fit_kernel_base(frames, labels, r_max: float, l_max: int = 6, n_max: int = 8, num_sparse: int = 1000,
                    zeta: int = 2, folds: int = 5, force_weights=FORCE_WEIGHTS, ridges=RIDGES,
                    max_bytes: float = 8e9) -> KernelBase:
    """Fit the kernel base on ``frames`` (energy and force labels), choosing force weight and ridge by K-fold CV."""
    if len({int(z) for a in frames for z in a.numbers}) != 1:
        raise ValueError("the kernel power-spectrum base is for single-element data")
    invariants = [atom_invariants(a, r_max, l_max, n_max) for a in frames]
    every = np.concatenate(invariants)
    columns = num_sparse + every.shape[1]
    need = 8.0 * (sum(columns * 3 * len(a) for a in frames) + 4 * (columns + 1) ** 2)
    if need > max_bytes:
        raise MemoryError(f"the kernel base with {num_sparse} sparse environments would need {need / 1e9:.1f} GB "
                          f"for {len(frames)} frames (limit {max_bytes / 1e9:.0f} GB): use fewer")
    mean, std, standard = standardised(every)
    sparse = standard[farthest_points(unit_rows(standard), num_sparse)]
    base = KernelBase(mean, std, sparse, np.zeros(1 + columns), l_max, n_max, zeta, 0.0, 0.0)
    feats = [kernel_columns(a, lab, base, r_max) for a, lab in zip(frames, labels)]
    base.cv = cross_validate(feats, force_weights, ridges, folds=folds)
    for row in base.cv:
        log.info("kernel base (n_max %d, %d sparse, ζ %d), force weight %g, ridge %g: %d-fold CV E %.2f meV/atom, "
                 "F %.1f meV/Å", n_max, num_sparse, zeta, row["force_weight"], row["ridge"], folds,
                 row["E_mae_meV_atom"], row["F_mae_meV_A"])
    chosen = best_by_score(base.cv)
    base.force_weight, base.ridge = chosen["force_weight"], chosen["ridge"]
    base.weights = NormalEquations(feats).solve(base.force_weight, base.ridge)
    return base


__all__ = ["KernelBase", "atom_invariants", "farthest_points", "fit_kernel_base", "kernel_columns", "standardised",
           "unit_rows"]
