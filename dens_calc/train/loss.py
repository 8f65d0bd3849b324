"""Energy/force/stress loss and the DeNS denoising terms.

Two kinds (``TrainConfig.loss``), both averaged over the structures / atoms of a batch:

- ``"mse"`` (default): ``λ_E (ΔE/N)²`` per structure and, per atom, the mean squared component
  of a vector error ``w_i ‖Δvec_i‖² / 3`` — MACE's "weighted" loss.  It optimises what the test
  RMSE measures: large errors (hot, strained frames) get a large gradient.
- ``"norm"``: ``λ_E |ΔE|/N`` and ``w_i ‖Δvec_i‖₂``, robust to outliers, closer to an MAE.

For an ordinary atom the vector is the force (w = λ_F); for an atom corrupted by DeNS it is the
predicted noise against ε/σ (w = λ_DeNS).  With ``separate_means`` (default, the paper's MD17
script) the force term is averaged over the unpicked atoms with force labels and the noise term
over the picked atoms; otherwise both are summed and divided by all atoms of the batch (OC20).
Energies and forces are divided by the model's ``scale`` so that the loss is in normalised units;
the noise target is already unit-free.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from ..nn.model import evaluate
from .config import TrainConfig
from .dens import Corruption, corrupt, eligible_graphs


@dataclass
class LossWeights:
    energy: float = 1.0
    forces: float = 10.0
    stress: float = 0.0
    dens: float = 5.0
    energy_on_noisy: bool = True
    kind: str = "mse"
    separate_means: bool = True
    forces_on_noisy: bool = True

    @classmethod
    def from_config(cls, config: TrainConfig, lambda_dens: float, progress: float = 0.0) -> "LossWeights":
        """Weights at training ``progress`` in [0, 1] (the late stage raises the energy weight)."""
        energy = config.energy_weight * config.energy_factor_at(progress)
        dens = config.dens
        return cls(energy=energy, forces=config.forces_weight, stress=config.stress_weight or 0.0,
                   dens=lambda_dens, kind=config.loss, energy_on_noisy=dens.energy_on_noisy,
                   forces_on_noisy=dens.forces_on_noisy, separate_means=dens.separate_means)

    def scalar(self, error: torch.Tensor) -> torch.Tensor:
        """Penalty of absolute scalar errors."""
        return error.square() if self.kind == "mse" else error

    def vector(self, error: torch.Tensor) -> torch.Tensor:
        """Penalty per row of [N, 3] vector errors: mean squared component, or the L2 norm."""
        return error.square().sum(dim=-1) / 3.0 if self.kind == "mse" else error.norm(dim=-1)


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

    # per-structure weights (config_type_weights); graphs built without labels have none
    w_graph = graph.weight if "weight" in graph else pred["energy"].new_ones(num_graphs)  # [B]
    e_mask = graph.has_energy & (~selected if not weights.energy_on_noisy else torch.ones_like(selected))
    e_err = w_graph * weights.scalar((pred["energy"] - graph.energy).abs() / n_atoms / scale)  # [B]
    energy = weights.energy * (e_err * e_mask).sum() / num_graphs

    f_mask = graph.has_forces[graph.batch] & ~picked  # [N]
    if not weights.forces_on_noisy:  # DeNS samples then train the noise head only
        f_mask = f_mask & ~selected[graph.batch]
    f_err = w_graph[graph.batch] * weights.vector((pred["forces"] - graph.forces) / scale)  # [N]
    all_atoms = max(1, graph.batch.numel())
    f_count = f_mask.sum().clamp(min=1) if weights.separate_means else all_atoms
    forces = weights.forces * (f_err * f_mask).sum() / f_count
    dens = pred["energy"].new_zeros(())
    if picked.any():
        noise_err = weights.vector(pred["noise"] - corruption.target)  # [N]
        dens = weights.dens * (noise_err * picked).sum() / (picked.sum() if weights.separate_means else all_atoms)

    stress = pred["energy"].new_zeros(())
    if weights.stress > 0 and "stress" in pred:
        s_mask = graph.has_stress & ~selected  # [B]
        volume = torch.linalg.det(graph.cell.view(-1, 3, 3)).abs()  # [B]
        virial_err = (pred["stress"] - graph.stress).abs() * (volume / n_atoms / scale)[:, None, None]  # [B, 3, 3]
        s_err = w_graph * weights.scalar(virial_err).mean(dim=(1, 2))  # [B]
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
        # in units of the RMS force: raw eV/Å of hot structures (xTB pretraining data: up to 19 eV/Å)
        # feed the square and cubic node products and made the noise loss explode (epoch 3: 133 vs ~0.3)
        encoded, mask = graph.forces / float(model.config.scale), corruption.picked
    direct = config.forces == "direct"
    want_stress = (config.stress_weight or 0.0) > 0 and bool(graph.has_stress.any())
    out = evaluate(
        model, graph, compute_forces=not direct, compute_stress=want_stress, training=training,
        encoded_forces=encoded, encoding_mask=mask, vector_heads=direct, noise=active,
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
    progress: float = 0.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Loss of one training batch, with DeNS corruption when ``config.dens.enabled``."""
    dens_cfg = config.dens
    corruption = None
    if dens_cfg.enabled and dens_cfg.p > 0:
        if generator is None:
            raise ValueError("DeNS needs a torch.Generator for its random draws")
        eligible = eligible_graphs(dens_cfg, graph.forces, graph.has_forces, graph.batch, graph.num_graphs)
        corruption = corrupt(dens_cfg, graph.pos, graph.batch, graph.num_graphs, graph.fixed, generator, eligible)
        if not corruption.selected.any():
            corruption = None
    weights = LossWeights.from_config(config, dens_cfg.lambda_dens if lambda_dens is None else lambda_dens, progress)
    pred = predict(model, graph, config, corruption)
    terms = loss_terms(pred, graph, weights, scale=float(model.config.scale), corruption=corruption)
    parts = {k: float(v.detach()) for k, v in terms.items()}
    parts["dens_atoms"] = int(corruption.picked.sum()) if corruption is not None else 0
    return terms["total"], parts
