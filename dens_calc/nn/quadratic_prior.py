"""A fixed energy term quadratic in each atom's neighbour-density power spectrum (the base of a Δ-model).

Per atom i, c[n, lm] = Σ_j G_n(r_ij) f_cut(r_ij) Y_lm(r̂_ij), with ``n_max`` Gaussians G_n between 1.5 Å and the
cutoff and a cosine cutoff; its invariants are x_i = [c[n, 00], p[n, n', l]] with p = Σ_m c[n, lm] c[n', lm] /
(2l + 1) (SOAP's power spectrum, one species), and the energy is e_i = w0 + Σ_a w_a x_ia + Σ_{a<=b} w_ab x_ia x_ib,
as quadratic SNAP is in the bispectrum.  The weights are not trained with the network: they come from a
least-squares fit (``benchmarks/power_spectrum_residuals.py``), and a network trained on label − this term is
added to it.  On Zuo Mo this term puts the (211) facet, absent from training, where its label is while our
networks miss it (``docs/ARCHITECTURE.md``, "A quadratic power-spectrum base").

It runs in the model's dtype: on the Zuo Mo test frames, float32 weights and features change its energy by at most
0.003 meV/atom against float64.
"""

from __future__ import annotations

import math

import torch
from torch import nn

INNER_RADIUS = 1.5  # Å: the first Gaussian's centre (no two atoms come closer in the data it was made for)


def edge_density(vectors: torch.Tensor, r_max: float, l_max: int, n_max: int) -> torch.Tensor:
    """Each edge's G_n(r) f_cut(r) Y_lm(r̂), [edges, n_max, (l_max + 1)²]: what it adds to its atom's density."""
    from e3nn import o3

    r = vectors.norm(dim=1)
    centres = torch.linspace(INNER_RADIUS, r_max, n_max, dtype=r.dtype, device=r.device)
    width = (r_max - INNER_RADIUS) / (n_max - 1)
    cutoff = 0.5 * (torch.cos(math.pi * r / r_max) + 1.0)
    radial = torch.exp(-0.5 * ((r[:, None] - centres) / width) ** 2) * cutoff[:, None]  # [E, n]
    sh = o3.spherical_harmonics(list(range(l_max + 1)), vectors, normalize=True, normalization="component")
    return radial[:, :, None] * sh[:, None, :]


def invariants(density: torch.Tensor, l_max: int) -> torch.Tensor:
    """[c[n, 00], p[n, n', l]] of densities c [atoms, n_max, (l_max + 1)²]."""
    n_max = density.shape[1]
    upper = torch.triu_indices(n_max, n_max, device=density.device)
    features = [density[:, :, 0]]
    for l in range(l_max + 1):
        block = density[:, :, l * l:(l + 1) * (l + 1)]
        features.append(torch.einsum("anm,akm->ank", block, block)[:, upper[0], upper[1]] / (2 * l + 1))
    return torch.cat(features, dim=1)


def power_spectrum_features(vectors: torch.Tensor, owners: torch.Tensor, n_atoms: int, r_max: float, l_max: int,
                            n_max: int) -> torch.Tensor:
    """Each atom's [c[n, 00], p[n, n', l]] ([atoms, n_max + (l_max + 1) n_max (n_max + 1) / 2]) from the vectors of
    its edges (``owners[e]``: the atom edge e starts at)."""
    per_edge = edge_density(vectors, r_max, l_max, n_max)
    density = per_edge.new_zeros(n_atoms, *per_edge.shape[1:])
    density.index_add_(0, torch.as_tensor(owners, device=vectors.device), per_edge)
    return invariants(density, l_max)


def with_products(features: torch.Tensor) -> torch.Tensor:
    """Each atom's features and their pairwise products (upper triangle, row by row)."""
    upper = torch.triu_indices(features.shape[1], features.shape[1], device=features.device)
    return torch.cat([features, features[:, upper[0]] * features[:, upper[1]]], dim=1)


def num_linear_features(l_max: int, n_max: int) -> int:
    """Invariants per atom: n_max densities c[n, 00] and the power spectrum p[n <= n', l]."""
    return n_max + (l_max + 1) * n_max * (n_max + 1) // 2


def num_quadratic_features(l_max: int, n_max: int) -> int:
    linear = num_linear_features(l_max, n_max)
    return linear + linear * (linear + 1) // 2


class QuadraticPowerSpectrum(nn.Module):
    """e_i = w[0] + w[1:] · [x_i, x_i ⊗ x_i] per atom (eV); the weights are a buffer, saved with the model."""

    def __init__(self, r_max: float, l_max: int, n_max: int):
        super().__init__()
        if l_max < 0 or n_max < 2:
            raise ValueError(f"the quadratic power spectrum needs l_max >= 0 and n_max >= 2, got {l_max}, {n_max}")
        self.r_max, self.l_max, self.n_max = r_max, l_max, n_max
        self.register_buffer("weights", torch.zeros(1 + num_quadratic_features(l_max, n_max), dtype=torch.float64))

    def forward(self, edge_vectors: torch.Tensor, receiver: torch.Tensor, n_atoms: int) -> torch.Tensor:
        features = power_spectrum_features(edge_vectors, receiver, n_atoms, self.r_max, self.l_max, self.n_max)
        weights = self.weights.to(edge_vectors.dtype)
        return weights[0] + with_products(features) @ weights[1:]


__all__ = ["QuadraticPowerSpectrum", "edge_density", "invariants", "num_linear_features", "num_quadratic_features",
           "power_spectrum_features", "with_products"]
