"""The DeNS equivariant potential: configuration, network and energy/force/stress evaluation."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Literal

import torch
from torch import nn

from .blocks import (
    BesselBasis,
    EdgeConvolution,
    EquivariantLinear,
    ForceEncoding,
    PowerSpectrum,
    SoftRMSNorm,
    SquareProduct,
    VectorHead,
    ZBLRepulsion,
)
from .kernel_prior import SparseKernelPowerSpectrum
from .quadratic_prior import QuadraticPowerSpectrum


@dataclass
class ModelConfig:
    """Hyper-parameters that, together with the weights, fully define a model.

    ``species`` are atomic numbers; ``atomic_energies`` the isolated-atom energies E0 (eV) in
    the same order.  Energies are ``E = sum_i (scale * e_i + shift) + sum_i E0[Z_i]``.
    """

    species: list[int]
    atomic_energies: list[float]
    r_max: float = 5.0
    num_channels: int = 64
    l_max: int = 2
    num_layers: int = 2
    num_basis: int = 8
    envelope_p: int = 6
    radial_hidden: int = 64
    radial_rank: int = 2
    readout_hidden: int = 16
    avg_num_neighbors: float = 20.0
    scale: float = 1.0
    shift: float = 0.0
    # ZBL nuclear repulsion added to the energy below the sum of covalent radii (MACE's option too)
    pair_repulsion: bool = False
    # body order of the node product per layer: 2 = A + A(x)A, 3 adds (A(x)A)(x)A (MACE's correlation 3)
    correlation: int = 2
    # DeNS noise head on its own interaction block (the reference's design) instead of a linear
    # read-out of the trunk's l = 1 features; run only when the noise is asked for (DeNS training)
    noise_block: bool = False
    # the node products see the messages through SoftRMSNorm (bounded, smooth); the linear path keeps
    # them as they are.  Off: the products of features of order 1e3 made six-element training fragile
    product_norm: bool = False
    # largest degree of the power-spectrum invariants added to the initial scalar features (0: none);
    # cheap at l = 6, where the network's own features stop at l_max (see blocks.PowerSpectrum)
    descriptor_l_max: int = 0
    # learned radial channels of that power spectrum: (L + 1) K (K + 1) / 2 invariants per atom
    descriptor_channels: int = 8
    # a fixed energy term quadratic in the power spectrum up to this degree (-1: none), with ``prior_n_max``
    # Gaussians; its weights come from a least-squares fit, not from training (nn.quadratic_prior): the base of a
    # Δ-model whose network learned label - base
    prior_l_max: int = -1
    prior_n_max: int = 3
    # "quadratic" (nn.quadratic_prior) or "kernel": a sparse polynomial kernel on the standardised power spectrum
    # with ``prior_num_sparse`` environments and exponent ``prior_zeta`` (nn.kernel_prior)
    prior_kind: Literal["quadratic", "kernel"] = "quadratic"
    prior_num_sparse: int = 0
    prior_zeta: int = 2

    def __post_init__(self) -> None:
        if len(self.species) != len(self.atomic_energies):
            raise ValueError("species and atomic_energies must have the same length")
        if len(set(self.species)) != len(self.species):
            raise ValueError(f"duplicate species in {self.species}")
        if not 0 <= self.l_max <= 3:
            raise ValueError(f"l_max must be in 0..3, got {self.l_max}")
        if self.num_layers < 1:
            raise ValueError("num_layers must be >= 1")
        if self.r_max <= 0:
            raise ValueError("r_max must be positive")
        if self.correlation not in (2, 3):
            raise ValueError(f"correlation must be 2 or 3, got {self.correlation}")
        if not 0 <= self.descriptor_l_max <= 8:
            raise ValueError(f"descriptor_l_max must be in 0..8 (0: no power spectrum), got {self.descriptor_l_max}")
        if self.descriptor_channels < 1:
            raise ValueError("descriptor_channels must be >= 1")
        if self.prior_l_max >= 0 and len(self.species) != 1:
            raise ValueError("the quadratic power-spectrum prior is for single-element models (its features do not "
                             f"tell species apart); this model has {len(self.species)} elements")
        if self.prior_kind not in ("quadratic", "kernel"):
            raise ValueError(f"prior_kind must be 'quadratic' or 'kernel', got {self.prior_kind!r}")
        if not -1 <= self.prior_l_max <= 8 or self.prior_n_max < 2:
            raise ValueError(f"need -1 <= prior_l_max <= 8 (-1: no prior) and prior_n_max >= 2, got "
                             f"{self.prior_l_max}, {self.prior_n_max}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        return cls(**data)


class InteractionLayer(nn.Module):
    """One message-passing layer: convolution, aggregation, square product, residual update."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        c = cfg.num_channels
        self.linear_up = EquivariantLinear(cfg.l_max, c, c)
        self.conv = EdgeConvolution(cfg.l_max, c, cfg.num_basis, cfg.radial_hidden, cfg.radial_rank)
        self.product = SquareProduct(cfg.l_max, c, len(cfg.species))
        self.cubic = SquareProduct(cfg.l_max, c, len(cfg.species), symmetric=False) if cfg.correlation >= 3 else None
        self.norm = SoftRMSNorm(cfg.l_max, c) if cfg.product_norm else None
        self.linear_out = EquivariantLinear(cfg.l_max, c, c)
        self.inv_avg_neighbors = 1.0 / cfg.avg_num_neighbors

    def forward(self, h, species, sh, basis, envelope, sender, receiver, scalar_input=False):
        agg = self.conv(self.linear_up(h), sh, basis, envelope, sender, receiver, scalar_input) * self.inv_avg_neighbors
        a = self.norm(agg) if self.norm is not None else agg
        square = self.product(a, species)
        node = agg + square
        if self.cubic is not None:
            node = node + self.cubic(square, species, a)
        return h + self.linear_out(node)


class DeNSPotential(nn.Module):
    """E(3)-equivariant message-passing potential with the heads DeNS needs.

    - energy: per-atom readouts of the invariant channels of every layer;
    - ``direct_forces``: an l = 1 head (direct-force training / DeNS pre-training);
    - ``noise``: a separate l = 1 head predicting the DeNS noise (eps / sigma), optionally on its
      own interaction block (``noise_block``; training only);
    - force encoding: optional input forces added to the initial embedding (DeNS only).
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.config = cfg
        c = cfg.num_channels
        self.d = (cfg.l_max + 1) ** 2
        self.embedding = nn.Embedding(len(cfg.species), c)
        self.basis = BesselBasis(cfg.r_max, cfg.num_basis, cfg.envelope_p)
        self.layers = nn.ModuleList(InteractionLayer(cfg) for _ in range(cfg.num_layers))
        self.descriptor = (PowerSpectrum(cfg.descriptor_l_max, cfg.num_basis, cfg.descriptor_channels, len(cfg.species), c,
                                         cfg.avg_num_neighbors) if cfg.descriptor_l_max > 0 else None)
        self.readouts = nn.ModuleList(nn.Linear(c, 1, bias=False) for _ in range(cfg.num_layers - 1))
        self.final_readout = nn.Sequential(nn.Linear(c, cfg.readout_hidden), nn.SiLU(), nn.Linear(cfg.readout_hidden, 1))
        self.repulsion = ZBLRepulsion(cfg.species, cfg.envelope_p) if cfg.pair_repulsion else None
        self.prior = None
        if cfg.prior_l_max >= 0 and cfg.prior_kind == "kernel":
            self.prior = SparseKernelPowerSpectrum(cfg.r_max, cfg.prior_l_max, cfg.prior_n_max, cfg.prior_num_sparse,
                                                   cfg.prior_zeta)
        elif cfg.prior_l_max >= 0:
            self.prior = QuadraticPowerSpectrum(cfg.r_max, cfg.prior_l_max, cfg.prior_n_max)
        self.force_encoding = ForceEncoding(cfg.l_max, c)
        self.force_head = VectorHead(c)
        self.noise_block = InteractionLayer(cfg) if cfg.noise_block else None
        self.noise_head = VectorHead(c)

    @property
    def atomic_energies(self) -> torch.Tensor:
        """E0 per species (eV) in float64, read from the config: totals of hundreds to thousands of
        eV would lose meV resolution in float32."""
        return torch.tensor(self.config.atomic_energies, dtype=torch.float64, device=self.embedding.weight.device)

    @property
    def species(self) -> list[int]:
        return list(self.config.species)

    def forward(
        self,
        positions: torch.Tensor,
        species: torch.Tensor,
        edge_index: torch.Tensor,
        edge_vectors: torch.Tensor,
        batch: torch.Tensor,
        num_graphs: int,
        encoded_forces: torch.Tensor | None = None,
        encoding_mask: torch.Tensor | None = None,
        vector_heads: bool = False,
        noise: bool | None = None,
    ) -> dict[str, torch.Tensor]:
        """Energies (and optionally vector heads) for a batch of graphs.

        ``vector_heads`` adds ``direct_forces``; ``noise`` the DeNS noise (default: with the
        vector heads; inference of a direct-force model passes False and skips the noise block).

        ``species`` are indices into ``config.species``; ``edge_index[0]`` are senders j and
        ``edge_index[1]`` receivers i, with ``edge_vectors = r_j - r_i`` (images included).
        """
        from e3nn import o3

        sender, receiver = edge_index[0], edge_index[1]
        lengths = edge_vectors.norm(dim=-1)  # [E]
        sh = o3.spherical_harmonics(
            list(range(self.config.l_max + 1)), edge_vectors, normalize=True, normalization="component"
        )  # [E, D]
        basis = self.basis(lengths)  # [E, B]
        envelope = self.basis.envelope(lengths)  # [E]

        n = positions.shape[0]
        h = positions.new_zeros(n, self.d, self.config.num_channels)
        scalars = self.embedding(species)
        if self.descriptor is not None:
            scalars = scalars + self.descriptor(edge_vectors, basis, species, sender, receiver, n)
        h = torch.cat([scalars.unsqueeze(1), h[:, 1:, :]], dim=1)  # [N, D, C]
        if encoded_forces is not None:
            mask = encoding_mask if encoding_mask is not None else torch.ones(n, dtype=torch.bool, device=h.device)
            h = h + self.force_encoding(encoded_forces, mask)

        node_energy = positions.new_zeros(n)
        for i, layer in enumerate(self.layers):
            # without force encoding the first layer sees scalars only: a cheaper exact path
            h = layer(h, species, sh, basis, envelope, sender, receiver, scalar_input=(i == 0 and encoded_forces is None))
            head = self.readouts[i] if i < len(self.readouts) else self.final_readout
            node_energy = node_energy + head(h[:, 0, :]).squeeze(-1)

        node_energy = self.config.scale * node_energy + self.config.shift  # [N] model dtype
        if self.repulsion is not None:
            # each pair appears as two directed edges: half of its energy goes to each atom
            pair = 0.5 * self.repulsion(lengths, species[receiver], species[sender])
            node_energy = node_energy.index_add(0, receiver, pair)
        if self.prior is not None:
            node_energy = node_energy + self.prior(edge_vectors, receiver, n)
        # the reference energies are added in float64 (see ``atomic_energies``)
        node_energy = node_energy.double() + torch.index_select(self.atomic_energies, 0, species)
        energy = node_energy.new_zeros(num_graphs).index_add_(0, batch, node_energy)
        out = {"node_energy": node_energy, "energy": energy}
        noise = vector_heads if noise is None else noise
        if vector_heads or noise:
            out.update(self._vector_outputs(h, vector_heads, noise, (species, sh, basis, envelope, sender, receiver)))
        return out

    def _vector_outputs(self, h, direct: bool, noise: bool, graph_inputs: tuple) -> dict[str, torch.Tensor]:
        """``direct_forces`` and/or ``noise`` [N, 3] from the final node features."""
        if self.config.l_max < 1:
            raise ValueError("direct forces and DeNS noise need l = 1 features: l_max must be >= 1")
        out = {}
        if direct:
            out["direct_forces"] = self.force_head(h)
        if noise:
            if self.noise_block is not None:
                h = self.noise_block(h, *graph_inputs)
            out["noise"] = self.noise_head(h)
        return out

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def edge_vectors_from_graph(positions, cell, shifts, edge_index, batch):
    """r_j - r_i + S @ cell for every edge, differentiable in positions and cell."""
    sender, receiver = edge_index[0], edge_index[1]
    offsets = torch.einsum("ek,ekl->el", shifts, cell[batch[receiver]])
    return positions[sender] - positions[receiver] + offsets


def evaluate(model: DeNSPotential, graph, **kwargs) -> dict[str, torch.Tensor]:
    """Energy, conservative forces (-dE/dr) and stress ((1/V) dE/d strain) for a batch; see
    :func:`evaluate_with_inputs` for the options."""
    return evaluate_with_inputs(model, graph, **kwargs)[0]


def evaluate_with_inputs(
    model: DeNSPotential,
    graph,
    *,
    compute_forces: bool = True,
    compute_stress: bool = False,
    training: bool = False,
    encoded_forces: torch.Tensor | None = None,
    encoding_mask: torch.Tensor | None = None,
    vector_heads: bool = False,
    noise: bool | None = None,
    keep_graph: bool = False,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor | None]]:
    """Energy, conservative forces (-dE/dr) and stress ((1/V) dE/d strain) for a batch.

    ``graph`` is a torch_geometric ``Data``/``Batch`` from :mod:`dens_calc.data`.  Stress is
    returned as [B, 3, 3] in eV/A^3 (ASE sign: positive = tensile); graphs with zero volume get
    NaN and must not ask for it.  ``training=True`` keeps the graph for a second backward pass.
    Also returns the leaves derivatives were taken with respect to (``positions``, ``strain``: None when
    not computed), for callers that differentiate further (the read-out refit); ``keep_graph=True`` keeps
    the forward graph for them without the second-order graph that ``training`` builds.
    """
    pos_leaf = graph.pos
    if compute_forces and not pos_leaf.requires_grad:
        pos_leaf = pos_leaf.detach().requires_grad_(True)
    positions = pos_leaf
    cell = graph.cell.view(-1, 3, 3)
    num_graphs = cell.shape[0]
    strain = None
    if compute_stress:
        # symmetric strain applied to positions and cell: its gradient is the virial
        strain = torch.zeros(num_graphs, 3, 3, dtype=positions.dtype, device=positions.device, requires_grad=True)
        sym = 0.5 * (strain + strain.transpose(1, 2))
        positions = positions + torch.einsum("ni,nij->nj", positions, sym[graph.batch])
        cell = cell + torch.bmm(cell, sym)
    vectors = edge_vectors_from_graph(positions, cell, graph.shifts, graph.edge_index, graph.batch)
    out = model(
        positions,
        graph.species,
        graph.edge_index,
        vectors,
        graph.batch,
        num_graphs,
        encoded_forces=encoded_forces,
        encoding_mask=encoding_mask,
        vector_heads=vector_heads,
        noise=noise,
    )
    inputs = ([pos_leaf] if compute_forces else []) + ([strain] if compute_stress else [])
    if inputs:
        grads = torch.autograd.grad(
            out["energy"].sum(), inputs, create_graph=training, retain_graph=training or keep_graph, allow_unused=True
        )
        grads = [g if g is not None else torch.zeros_like(x) for g, x in zip(grads, inputs)]
        if compute_forces:
            out["forces"] = -grads[0]
        if compute_stress:
            volume = torch.linalg.det(graph.cell.view(-1, 3, 3)).abs()
            # graphs without a 3-D cell get NaN stress; callers report stress only for 3-D cells
            volume = torch.where(volume > 0, volume, torch.full_like(volume, float("nan")))
            out["stress"] = grads[-1] / volume[:, None, None]
    return out, {"positions": pos_leaf if compute_forces else None, "strain": strain}


__all__ = ["ModelConfig", "DeNSPotential", "evaluate", "evaluate_with_inputs", "edge_vectors_from_graph"]
