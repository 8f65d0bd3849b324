"""DeNS corruption: select samples, pick atoms, add Gaussian noise, build targets.

Everything random comes from an explicit ``torch.Generator`` so runs (and resumed runs) are
reproducible.  Shapes: N atoms in the batch, B graphs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .config import DeNSConfig


@dataclass
class Corruption:
    """A corrupted batch: noisy positions, which atoms moved, and the noise targets."""

    positions: torch.Tensor  # [N, 3] noisy positions (equal to the clean ones where not picked)
    picked: torch.Tensor  # [N] bool, atoms that were corrupted
    selected: torch.Tensor  # [B] bool, graphs that are DeNS samples
    sigma: torch.Tensor  # [B] noise scale used per graph (Å)
    target: torch.Tensor  # [N, 3] noise target eps / sigma (eps / sigma_max when multi-scale); 0 elsewhere


def sigma_grid(cfg: DeNSConfig) -> torch.Tensor:
    """The geometric grid of multi-scale σ values, from ``sigma_min`` to ``sigma_max`` (Å)."""
    if cfg.num_sigmas == 1:
        return torch.tensor([cfg.sigma_max], dtype=torch.float64)
    return torch.exp(torch.linspace(math.log(cfg.sigma_min), math.log(cfg.sigma_max), cfg.num_sigmas, dtype=torch.float64))


def select_samples(cfg: DeNSConfig, num_graphs: int, generator: torch.Generator) -> torch.Tensor:
    """[B] bool: which graphs are DeNS samples (per structure, or all/none per batch)."""
    if cfg.selection == "batch":
        draw = torch.rand(1, generator=generator) < cfg.p
        return draw.expand(num_graphs).clone()
    return torch.rand(num_graphs, generator=generator) < cfg.p


def draw_sigmas(cfg: DeNSConfig, num_graphs: int, generator: torch.Generator) -> torch.Tensor:
    """[B] σ per graph: the fixed σ, or uniform draws from the multi-scale grid."""
    if not cfg.multi_scale:
        return torch.full((num_graphs,), cfg.sigma, dtype=torch.float64)
    grid = sigma_grid(cfg)
    return grid[torch.randint(len(grid), (num_graphs,), generator=generator)]


def corrupt(
    cfg: DeNSConfig,
    positions: torch.Tensor,
    batch: torch.Tensor,
    num_graphs: int,
    fixed: torch.Tensor | None,
    generator: torch.Generator,
    eligible: torch.Tensor | None = None,
) -> Corruption:
    """Corrupt a batch as DeNS prescribes; random numbers are drawn on the CPU from ``generator``.

    ``eligible`` [B] bool: graphs that may be DeNS samples (see :func:`eligible_graphs`); the
    draws do not depend on it, so filtering does not shift the random stream.
    """
    n = positions.shape[0]
    batch_cpu = batch.cpu()
    selected = select_samples(cfg, num_graphs, generator)  # [B]
    if eligible is not None:
        selected &= eligible.cpu().bool()
    sigma = draw_sigmas(cfg, num_graphs, generator)  # [B]
    picked = (torch.rand(n, generator=generator) < cfg.ratio) & selected[batch_cpu]  # [N]
    if fixed is not None:
        picked &= ~fixed.cpu().bool()
    eps = torch.randn(n, 3, generator=generator, dtype=torch.float64) * sigma[batch_cpu, None]  # [N, 3]
    eps = eps * picked[:, None]
    denominator = cfg.sigma_max if cfg.multi_scale else cfg.sigma
    device, dtype = positions.device, positions.dtype
    return Corruption(
        positions=positions + eps.to(device=device, dtype=dtype),
        picked=picked.to(device),
        selected=selected.to(device),
        sigma=sigma.to(device=device, dtype=dtype),
        target=(eps / denominator).to(device=device, dtype=dtype),
    )


def eligible_graphs(cfg: DeNSConfig, forces: torch.Tensor, has_forces: torch.Tensor, batch: torch.Tensor,
                    num_graphs: int) -> torch.Tensor:
    """[B] bool: graphs with force labels (the force encoding needs them) and, with
    ``max_force_norm``, no labelled force above it (far-from-equilibrium frames are left out)."""
    ok = has_forces.bool().clone()
    if cfg.max_force_norm is not None:
        largest = forces.new_zeros(num_graphs).scatter_reduce(0, batch, forces.norm(dim=-1), reduce="amax")
        ok &= largest <= cfg.max_force_norm
    return ok


def lambda_dens_at(cfg: DeNSConfig, progress: float) -> float:
    """λ_DeNS at training progress in [0, 1]: constant, or linearly decayed to 0."""
    if not cfg.lambda_decay:
        return cfg.lambda_dens
    return cfg.lambda_dens * max(0.0, 1.0 - progress)
