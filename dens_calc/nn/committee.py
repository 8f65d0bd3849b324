"""A committee: several trained potentials evaluated together, energy = the members' mean (or a weighted sum).

Forces and stress stay exact derivatives of that mean energy, so a committee is as conservative as its
members (MD, relaxations, phonons work unchanged) at the sum of their call costs.  Averaging models that
err differently lowers the error: on the Zuo Mo test set, four models of different cutoff and L_max gave a
force MAE 9-17 % below each member's (benchmarks/README.md).

Members may differ in architecture (cutoff, L_max, channels, layers) but must know the same elements in the
same order.  The committee's ``config`` is its widest-cutoff member's, so callers build one neighbour list at
that cutoff; each member keeps only the edges inside its own cutoff.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from .model import DeNSPotential, ModelConfig


class Committee(nn.Module):
    """Weighted sum of ``members``' energies, by default their mean (conservative inference only: no
    direct-force or DeNS heads).  ``forward`` also returns each member's energy (``member_energy``,
    [members, graphs]): their spread is the committee's own warning that a structure is unlike its training data.

    ``weights`` (one per member, default ``1/n`` each) need not sum to one: a Δ-model is a base model plus a
    network trained on the base's residuals, weights ``(1, 1)``.
    """

    def __init__(self, members: Sequence[DeNSPotential], weights: Sequence[float] | None = None):
        super().__init__()
        if len(members) < 2:
            raise ValueError(f"a committee needs at least two models, got {len(members)}")
        species = list(members[0].config.species)
        for k, member in enumerate(members[1:], start=1):
            if list(member.config.species) != species:
                raise ValueError(f"committee member {k} knows elements {list(member.config.species)}, member 0 "
                                 f"{species}: all members must know the same elements in the same order")
        weights = [1.0 / len(members)] * len(members) if weights is None else [float(w) for w in weights]
        if len(weights) != len(members) or not all(math.isfinite(w) for w in weights):
            raise ValueError(f"need one finite weight per member ({len(members)}), got {weights}")
        self.members = nn.ModuleList(members)
        self.member_weights = weights

    @property
    def config(self) -> ModelConfig:
        """The widest member's config: its cutoff is the one the neighbour list needs."""
        return max((m.config for m in self.members), key=lambda c: c.r_max)

    @property
    def is_mean(self) -> bool:
        """True when the energy is the plain mean of the members (then their spread measures disagreement;
        for a base plus a residual network, weights (1, 1), it does not)."""
        n = len(self.member_weights)
        return all(math.isclose(w, 1.0 / n, rel_tol=1e-9) for w in self.member_weights)

    @property
    def species(self) -> list[int]:
        return list(self.members[0].config.species)

    def forward(self, positions, species, edge_index, edge_vectors, batch, num_graphs, encoded_forces=None,
                encoding_mask=None, vector_heads: bool = False, noise: bool | None = None) -> dict[str, torch.Tensor]:
        if encoded_forces is not None or vector_heads or noise:
            raise ValueError("a committee gives conservative energies, forces and stress only (no direct-force "
                             "head, DeNS noise or force encoding); use one member for those")
        lengths = edge_vectors.norm(dim=-1)
        widest = self.config.r_max
        energies, node_energies = [], []
        for member in self.members:
            if member.config.r_max < widest:
                # the member was trained on neighbours inside its own cutoff only
                keep = lengths < member.config.r_max
                out = member(positions, species, edge_index[:, keep], edge_vectors[keep], batch, num_graphs)
            else:
                out = member(positions, species, edge_index, edge_vectors, batch, num_graphs)
            energies.append(out["energy"])
            node_energies.append(out["node_energy"])
        w = torch.tensor(self.member_weights, dtype=energies[0].dtype, device=energies[0].device)
        member_energy = torch.stack(energies)
        return {"energy": torch.einsum("m,m...->...", w, member_energy),
                "node_energy": torch.einsum("m,m...->...", w, torch.stack(node_energies)),
                "member_energy": member_energy}

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


__all__ = ["Committee"]
