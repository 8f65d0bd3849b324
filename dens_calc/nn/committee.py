"""A committee: several trained potentials evaluated together, energy = the members' mean.

Forces and stress stay exact derivatives of that mean energy, so a committee is as conservative as its
members (MD, relaxations, phonons work unchanged) at the sum of their call costs.  Averaging models that
err differently lowers the error: on the Zuo Mo test set, four models of different cutoff and L_max gave a
force MAE 9-17 % below each member's (benchmarks/README.md).

Members may differ in architecture (cutoff, L_max, channels, layers) but must know the same elements in the
same order.  The committee's ``config`` is its widest-cutoff member's, so callers build one neighbour list at
that cutoff; each member keeps only the edges inside its own cutoff.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .model import DeNSPotential, ModelConfig


class Committee(nn.Module):
    """Mean energy of ``members`` (conservative inference only: no direct-force or DeNS heads)."""

    def __init__(self, members: Sequence[DeNSPotential]):
        super().__init__()
        if len(members) < 2:
            raise ValueError(f"a committee needs at least two models, got {len(members)}")
        species = list(members[0].config.species)
        for k, member in enumerate(members[1:], start=1):
            if list(member.config.species) != species:
                raise ValueError(f"committee member {k} knows elements {list(member.config.species)}, member 0 "
                                 f"{species}: all members must know the same elements in the same order")
        self.members = nn.ModuleList(members)

    @property
    def config(self) -> ModelConfig:
        """The widest member's config: its cutoff is the one the neighbour list needs."""
        return max((m.config for m in self.members), key=lambda c: c.r_max)

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
        return {"energy": torch.stack(energies).mean(0), "node_energy": torch.stack(node_energies).mean(0)}

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


__all__ = ["Committee"]
