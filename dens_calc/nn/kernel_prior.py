"""A fixed energy term: a sparse polynomial kernel on each atom's power spectrum (a GAP-like base of a Δ-model).

Per atom i, x_i are the power-spectrum invariants of ``nn.quadratic_prior`` (one species, l ≤ ``l_max``, ``n_max``
Gaussians) and z_i = (x_i − μ) / s their standardised form (μ, s: the training atoms' mean and spread).  The energy is

    e_i = w0 + Σ_m α_m (1 + z_i · z_m / K)^ζ + β · x_i,

with M sparse environments z_m picked among the training atoms and K invariants per atom.  As in GAP, the kernel's
cost grows with M, not with K², so the radial basis can be fine (8 Gaussians, 260 invariants) where the quadratic
term's K² products would be ~34,000 columns.  The linear term in the unstandardised x carries the density
magnitude (GAP's two-body term).  Why standardised rather than normalised spectra: normalised bcc Mo spectra are
nearly parallel (x̂_i · x̂_m ≈ 1 for every pair), the columns nearly collinear, and the fit under-fits its own
training frames (``benchmarks/results/mo_kernel``).

The weights come from a least-squares fit (``train.kernel_base``), not from training.
"""

from __future__ import annotations

import torch
from torch import nn

from .quadratic_prior import num_linear_features, power_spectrum_features


class SparseKernelPowerSpectrum(nn.Module):
    """e_i = w0 + α · k(z_i, Z) + β · x_i per atom (eV); sparse points, standardisation and weights are buffers."""

    def __init__(self, r_max: float, l_max: int, n_max: int, num_sparse: int, zeta: int):
        super().__init__()
        if l_max < 0 or n_max < 2 or num_sparse < 1 or zeta < 1:
            raise ValueError(f"the kernel term needs l_max >= 0, n_max >= 2, num_sparse >= 1 and zeta >= 1, got "
                             f"{l_max}, {n_max}, {num_sparse}, {zeta}")
        self.r_max, self.l_max, self.n_max, self.zeta = r_max, l_max, n_max, zeta
        k = num_linear_features(l_max, n_max)
        self.register_buffer("mean", torch.zeros(k, dtype=torch.float64))
        self.register_buffer("std", torch.ones(k, dtype=torch.float64))
        self.register_buffer("sparse", torch.zeros(num_sparse, k, dtype=torch.float64))
        self.register_buffer("weights", torch.zeros(1 + num_sparse + k, dtype=torch.float64))

    def forward(self, edge_vectors: torch.Tensor, receiver: torch.Tensor, n_atoms: int) -> torch.Tensor:
        dtype = edge_vectors.dtype
        x = power_spectrum_features(edge_vectors, receiver, n_atoms, self.r_max, self.l_max, self.n_max)
        z = (x - self.mean.to(dtype)) / self.std.to(dtype)
        kernel = (1.0 + z @ self.sparse.to(dtype).T / z.shape[1]) ** self.zeta  # [N, M]
        w = self.weights.to(dtype)
        m = self.sparse.shape[0]
        return w[0] + kernel @ w[1:1 + m] + x @ w[1 + m:]


__all__ = ["SparseKernelPowerSpectrum"]
