"""Energy/force/stress loss and the DeNS denoising terms.

On every structure: ``λ_E |ΔE| / N`` (energy per atom) and, per atom, the L2 norm of a vector
error, averaged over all atoms of the batch: ``mean_i w_i ‖Δvec_i‖₂``.  For an ordinary atom the
vector is the force (w = λ_F); for an atom corrupted by DeNS it is the predicted noise against
ε/σ (w = λ_DeNS).  Energies and forces are divided by the model's ``scale`` so that the loss is
in normalised units; the noise target is already unit-free.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from ..nn.model import evaluate
from .config import TrainConfig
from .dens import Corruption, corrupt


@dataclass
class LossWeights:
    energy: float = 1.0
    forces: float = 10.0
    stress: float = 0.0
    dens: float = 5.0
    energy_on_noisy: bool = True

    @classmethod
    def from_config(cls, config: TrainConfig, lambda_dens: float) -> "LossWeights":
        return cls(config.energy_weight, config.forces_weight, config.stress_weight, lambda_dens,
                   config.dens.energy_on_noisy)


def loss_terms(
    pred: dict[str, torch.Tensor],
    graph,
    weights: LossWeights,
    *,
    scale: float = 1.0,
    corruption: Corruption | None = None,
) -> dict[str, torch.Tensor]:
    """Weighted loss terms from predictions ``energy`` [B], ``forces`` [N,3], optional ``noise`` [N,3], ``stress`` [B,3,3].

    Returns ``energy``, ``vector`` (forces + noise), ``forces``, ``dens``, ``stress`` and ``total``.
    """
    num_graphs = pred["energy"].shape[0]
    n_atoms = torch.bincount(graph.batch, minlength=num_graphs).to(pred["energy"].dtype)  # [B]
    selected = corruption.selected if corruption is not None else torch.zeros_like(graph.has_energy)
    picked = corruption.picked if corruption is not None else torch.zeros_like(graph.batch, dtype=torch.bool)

    e_mask = graph.has_energy & (~selected if not weights.energy_on_noisy else torch.ones_like(selected))
    e_err = (pred["energy"] - graph.energy).abs() / n_atoms / scale  # [B]
    energy = weights.energy * (e_err * e_mask).sum() / num_graphs

    f_mask = graph.has_forces[graph.batch] & ~picked  # [N]
    f_err = (pred["forces"] - graph.forces).norm(dim=-1) / scale  # [N]
    forces = weights.forces * (f_err * f_mask).sum() / max(1, graph.batch.numel())
    dens = pred["energy"].new_zeros(())
    if picked.any():
        noise_err = (pred["noise"] - corruption.target).norm(dim=-1)  # [N]
        dens = weights.dens * (noise_err * picked).sum() / graph.batch.numel()

    stress = pred["energy"].new_zeros(())
    if weights.stress > 0 and "stress" in pred:
        s_mask = graph.has_stress & ~selected  # [B]
        volume = torch.linalg.det(graph.cell.view(-1, 3, 3)).abs()  # [B]
        s_err = (pred["stress"] - graph.stress).abs().mean(dim=(1, 2)) * volume / n_atoms / scale  # [B]
        stress = weights.stress * torch.where(s_mask, s_err, torch.zeros_like(s_err)).sum() / num_graphs
    total = energy + forces + dens + stress
    return {"total": total, "energy": energy, "forces": forces, "dens": dens, "stress": stress,
            "vector": forces + dens}


def predict(model, graph, config: TrainConfig, corruption: Corruption | None, *, training: bool = True) -> dict:
    """Energy, forces (direct head or -dE/dr), noise and stress for a (possibly corrupted) batch."""
    active = corruption is not None and bool(corruption.picked.any())
    if corruption is not None:
        graph = copy.copy(graph)
        graph.pos = corruption.positions
    encoded = mask = None
    if active and config.dens.force_encoding:
        encoded, mask = graph.forces, corruption.picked
    direct = config.forces == "direct"
    want_stress = config.stress_weight > 0 and bool(graph.has_stress.any())
    out = evaluate(
        model, graph, compute_forces=not direct, compute_stress=want_stress, training=training,
        encoded_forces=encoded, encoding_mask=mask, vector_heads=direct or active,
    )
    if direct:
        out["forces"] = out["direct_forces"]
    return out


def training_loss(
    model,
    graph,
    config: TrainConfig,
    *,
    generator: torch.Generator | None = None,
    lambda_dens: float | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Loss of one training batch, with DeNS corruption when ``config.dens.enabled``."""
    dens_cfg = config.dens
    corruption = None
    if dens_cfg.enabled and dens_cfg.p > 0:
        if generator is None:
            raise ValueError("DeNS needs a torch.Generator for its random draws")
        corruption = corrupt(dens_cfg, graph.pos, graph.batch, graph.num_graphs, graph.fixed, generator)
        if not corruption.selected.any():
            corruption = None
    weights = LossWeights.from_config(config, dens_cfg.lambda_dens if lambda_dens is None else lambda_dens)
    pred = predict(model, graph, config, corruption)
    terms = loss_terms(pred, graph, weights, scale=float(model.config.scale), corruption=corruption)
    parts = {k: float(v.detach()) for k, v in terms.items()}
    parts["dens_atoms"] = int(corruption.picked.sum()) if corruption is not None else 0
    return terms["total"], parts
