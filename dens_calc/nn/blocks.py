"""Small equivariant building blocks working on the dense (N, D, C) feature layout."""

from __future__ import annotations

import functools
import math

import torch
from torch import nn

from .fused import FusedEdgeConvolution, fused_applies
from .irreps import degree_of_component, degree_slices, edge_coupling_table, square_coupling_table


class ExactConstant:
    """A derived constant (Clebsch–Gordan table, frequencies) held in float64 on the CPU.

    It is handed out converted to the dtype and device of the computation and cached.  As a
    registered buffer it would be rounded to float32 when a model built in float32 is later cast
    to float64, which breaks exact equivariance at the 1e-7 level.
    """

    def __init__(self, value: torch.Tensor):
        self.master = value.detach().to(torch.float64).cpu()
        self._cache: dict = {}

    def like(self, ref: torch.Tensor) -> torch.Tensor:
        key = (ref.device, ref.dtype)
        if key not in self._cache:
            self._cache[key] = self.master.to(device=ref.device, dtype=ref.dtype)
        return self._cache[key]


def polynomial_envelope(x: torch.Tensor, p: int) -> torch.Tensor:
    """DimeNet's smooth cutoff in x = r / r_cut: 1 at 0, and it and its first derivatives vanish at 1."""
    env = 1.0 - (p + 1.0) * (p + 2.0) / 2.0 * x**p + p * (p + 2.0) * x ** (p + 1) - p * (p + 1.0) / 2.0 * x ** (p + 2)
    return env * (x < 1.0)


class BesselBasis(nn.Module):
    """Radial Bessel functions sin(n pi r / r_max) / r times a smooth polynomial envelope.

    The envelope (DimeNet's polynomial of order ``p``) and its first derivatives vanish at
    ``r_max``, so energies and forces go smoothly to zero as a neighbour leaves the sphere.
    """

    def __init__(self, r_max: float, num_basis: int = 8, envelope_p: int = 6):
        super().__init__()
        self.r_max = float(r_max)
        self.p = int(envelope_p)
        self.frequencies = ExactConstant(math.pi * torch.arange(1, num_basis + 1, dtype=torch.float64) / r_max)

    def envelope(self, r: torch.Tensor) -> torch.Tensor:
        return polynomial_envelope(r / self.r_max, self.p)

    def forward(self, r: torch.Tensor) -> torch.Tensor:  # r: [E] -> [E, num_basis]
        r = r.unsqueeze(-1)
        prefactor = math.sqrt(2.0 / self.r_max)
        return prefactor * torch.sin(self.frequencies.like(r) * r) / r * self.envelope(r)


class EquivariantLinear(nn.Module):
    """Channel mixing applied separately to each degree l (never mixes l, so it is equivariant).

    ``bias`` adds a learnable offset to the l = 0 block only.
    """

    def __init__(self, l_max: int, c_in: int, c_out: int, bias: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(l_max + 1, c_in, c_out) / math.sqrt(c_in))
        self.bias = nn.Parameter(torch.zeros(c_out)) if bias else None
        self.register_buffer("component_degree", degree_of_component(l_max), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, D, C_in] -> [N, D, C_out]
        # one batched GEMM over the D components ([N, C_in] @ [C_in, C_out] each); a matmul per
        # degree on the strided slice x[:, s, :] would be run as N tiny products instead
        weight = torch.index_select(self.weight, 0, self.component_degree)  # [D, C_in, C_out]
        out = torch.bmm(x.transpose(0, 1), weight).transpose(0, 1)
        if self.bias is not None:
            out = torch.cat([out[:, :1, :] + self.bias, out[:, 1:, :]], dim=1)
        # node-major again: the per-edge gather h[sender] from a [D, N, C] layout is ~1.5x slower
        return out.contiguous()


class SoftRMSNorm(nn.Module):
    """x · gain / sqrt(1 + ms(x)) per node: bounds features without touching small ones.

    ``ms`` is the mean over channels and degrees of each degree's mean square over its 2l+1
    components (each degree counts equally, and a norm over m is rotation invariant, so the scale
    is invariant and the map equivariant).  Unlike a plain RMS norm the 1 in the root keeps it smooth
    and near the identity where features are small: an atom losing its last neighbour, or an l = 1
    feature passing through zero at a symmetric site, does not make the output jump.  Large
    features are scaled to O(1), which keeps the polynomial node products from amplifying them
    (the six-element Zuo model reached layer-2 products of 1e3 without it: docs/ARCHITECTURE.md).
    """

    def __init__(self, l_max: int, channels: int):
        super().__init__()
        self.gain = nn.Parameter(torch.ones(l_max + 1, channels))
        self.register_buffer("component_degree", degree_of_component(l_max), persistent=False)
        self.register_buffer("inv_multiplicity", 1.0 / (2.0 * torch.arange(l_max + 1) + 1.0), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, D, C] -> [N, D, C]
        n, _, c = x.shape
        per_degree = x.new_zeros(n, self.gain.shape[0], c).index_add_(1, self.component_degree, x * x)
        mean_square = (per_degree * self.inv_multiplicity.to(x.dtype)[:, None]).mean(dim=(1, 2))  # [N]
        scale = torch.rsqrt(1.0 + mean_square)[:, None, None] * torch.index_select(self.gain, 0, self.component_degree)
        return x * scale


class RadialMLP(nn.Module):
    """Maps the radial basis of each edge to per-path, per-channel tensor-product weights."""

    def __init__(self, num_basis: int, hidden: int, num_out: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(num_basis, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, num_out)
        )

    def forward(self, basis: torch.Tensor) -> torch.Tensor:
        return self.net(basis)


class EdgeConvolution(nn.Module):
    """Tensor product of sender features with edge spherical harmonics, radially weighted and summed
    over each atom's incoming edges.

    msg_ij[k, c] = sum_g a_g(r_ij)[c] * sum_i K_g(r_ij)[i, k] h_j[i, c], where
    K_g = sum_paths b_g,path(r_ij) * CG_path(Y(r_ij)) is a [D, D] matrix per edge.  The
    per-channel, per-path radial weights of a full channel-wise tensor product (NequIP/MACE
    "uvu") are thus factorised to rank ``radial_rank``: every channel keeps its own radial
    profile, while the per-edge tensors stay [E, D, C] wide instead of [E, paths x D, C].
    Returns agg_i = sum_j msg_ij as [N, D, C].  On the CPU the fused kernel of
    :mod:`dens_calc.nn.fused` computes the same without any [E, D, C] array.
    """

    def __init__(self, l_max: int, channels: int, num_basis: int, radial_hidden: int, radial_rank: int = 2):
        super().__init__()
        paths, cg = edge_coupling_table(l_max)
        self.num_paths = len(paths)
        self.channels = channels
        self.rank = radial_rank
        self.d = (l_max + 1) ** 2
        # [P*D_filter, D_in*D_out]; derived constants are not in checkpoints (weights only)
        self.cg = ExactConstant(cg.permute(1, 0, 2, 3).reshape(self.num_paths * self.d, self.d * self.d))
        # a scalar-only input needs only the paths (0, l, l)
        scalar_paths = [p for p, (l1, l2, l3) in enumerate(paths) if l1 == 0]
        # path (0, l, l) feeding each output component, looked up once here rather than every call
        scalar_path_of_component = torch.tensor(scalar_paths)[degree_of_component(l_max)]
        self.register_buffer("scalar_path_of_component", scalar_path_of_component, persistent=False)
        # the non-zero couplings (rows p, j, i, k) for the fused kernel: all inputs, and scalar inputs (i = 0)
        nonzero = (cg.abs() > 1e-12).nonzero()  # columns j, p, i, k
        index = nonzero[:, [1, 0, 2, 3]].T.contiguous()
        value = cg[tuple(nonzero.T)]
        scalar = index[2] == 0
        self.register_buffer("coupling_index", index, persistent=False)
        self.register_buffer("scalar_coupling_index", index[:, scalar].contiguous(), persistent=False)
        self.coupling_value = ExactConstant(value)
        self.scalar_coupling_value = ExactConstant(value[scalar])
        self.radial = RadialMLP(num_basis, radial_hidden, radial_rank * (channels + self.num_paths))

    def forward(
        self,
        h: torch.Tensor,
        sh: torch.Tensor,
        basis: torch.Tensor,
        envelope: torch.Tensor,
        sender: torch.Tensor,
        receiver: torch.Tensor,
        scalar_input: bool = False,
    ) -> torch.Tensor:
        e, g, c = sh.shape[0], self.rank, self.channels
        radial = self.radial(basis)  # [E, G*(C+P)]
        # the envelope multiplies the message itself, so it vanishes smoothly at r_max
        a = (radial[:, : g * c] * envelope.unsqueeze(-1)).view(e, g, c)  # [E, G, C]
        b = radial[:, g * c :].view(e, g, self.num_paths)  # [E, G, P]
        if scalar_input:  # only the l = 0 features are non-zero
            h = h[:, :1, :]
        if fused_applies(h):
            index, value = (
                (self.scalar_coupling_index, self.scalar_coupling_value)
                if scalar_input
                else (self.coupling_index, self.coupling_value)
            )
            return FusedEdgeConvolution.apply(h, b, sh, a, sender, receiver, index, value.like(h))
        return self._torch_path(h, b, sh, a, sender=sender, receiver=receiver, scalar_input=scalar_input)

    def _torch_path(self, h, b, sh, a, *, sender, receiver, scalar_input):
        """The reference implementation in torch ops (GPUs; the tests compare the kernel with it)."""
        e, g, d = sh.shape[0], self.rank, self.d
        if scalar_input:
            # only l1 = 0 paths contribute: msg[e,k,c] = h_j[c] * Y[e,k] * sum_g a[e,g,c] b[e,g,path(l_k)]
            hj = torch.index_select(h[:, 0, :], 0, sender)  # [E, C]
            bk = b[:, :, self.scalar_path_of_component] * sh.unsqueeze(1)  # [E, G, D]
            msgs = torch.bmm(bk.transpose(1, 2), a) * hj.unsqueeze(1)  # [E, D, C]
        else:
            hj = torch.index_select(h, 0, sender)  # [E, D, C]
            # K_g = sum_{p,j} b_gp Y_j CG[p,j]: one well-shaped GEMM over all edges and ranks
            b_outer_y = (b.unsqueeze(-1) * sh[:, None, None, :]).reshape(e * g, self.num_paths * d)  # [E*G, P*D]
            kernel = (b_outer_y @ self.cg.like(sh)).view(e, g, d, d)  # [E, G, D_in, D_out]
            # K_g acts on components and a_g on channels, so they commute: sum_g K_g (a_g * h_j)
            # is one bmm over the stacked (g, D_in) axis, with no [E, G, D, C] output to reduce
            kernel = kernel.permute(0, 3, 1, 2).reshape(e, d, g * d)  # [E, D_out, G*D_in]
            msgs = RankedKernelProduct.apply(kernel, a, hj)  # [E, D_out, C]
        return msgs.new_zeros(h.shape[0], d, msgs.shape[-1]).index_add_(0, receiver, msgs)


class RankedKernelProduct(torch.autograd.Function):
    """out[e,k,c] = sum_{g,i} K[e,k,g,i] a[e,g,c] h[e,i,c]: the per-edge message contraction.

    Plain autograd keeps the [E, G, D, C] product a (x) h for the backward pass and builds two
    more tensors of that size there (for the gradients of a and h), the largest arrays of the
    model.  Here the backward pass recomputes what it needs from K, a and h and reduces over g
    and i as it goes.  On the CPU both passes also run over blocks of ``edge_block`` edges, so
    each [block, G*D, C] temporary (about 1 MB at C = 64) stays in a core's L2 cache instead of
    streaming tens of MB through memory; the element-wise steps are memory-bound.  Measured on one
    CPU thread at the shapes of 32 / 64 aspirin frames (E = 9668 / 19382, G = 2, D = 9, C = 64):
    forward + backward 81 -> 52 ms / 183 -> 126 ms from the blocking (whole-call numbers in
    benchmarks/README.md).  With a graph being built (force training differentiates the backward
    again) the backward runs unblocked in differentiable torch ops; tests/test_blocks.py checks both.
    """

    edge_block = 256

    @classmethod
    def _blocks(cls, num_edges: int, device: torch.device):
        # a GPU wants one big launch, not hundreds of small ones
        step = num_edges if device.type != "cpu" else cls.edge_block
        return [(lo, min(lo + step, num_edges)) for lo in range(0, num_edges, max(step, 1))]

    @staticmethod
    def forward(ctx, kernel: torch.Tensor, a: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        # the inputs themselves are saved (not contiguous copies made here, which would be cut off
        # from the graph that a second derivative must follow)
        ctx.save_for_backward(kernel, a, h)
        kernel, a, h = kernel.contiguous(), a.contiguous(), h.contiguous()
        e, g, c = a.shape
        out = kernel.new_empty(e, kernel.shape[1], c)
        for lo, hi in RankedKernelProduct._blocks(e, kernel.device):
            scaled = (a[lo:hi].unsqueeze(2) * h[lo:hi].unsqueeze(1)).reshape(hi - lo, -1, c)  # [B, G*D_in, C]
            torch.bmm(kernel[lo:hi], scaled, out=out[lo:hi])
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        kernel, a, h = ctx.saved_tensors
        needs = ctx.needs_input_grad
        if torch.is_grad_enabled():  # a second derivative will follow: whole arrays, differentiable ops
            return RankedKernelProduct._gradients(kernel, a, h, grad_out, needs, in_place=False)
        kernel, a, h, grad_out = kernel.contiguous(), a.contiguous(), h.contiguous(), grad_out.contiguous()
        grads = [x.new_empty(x.shape) if need else None for x, need in zip((kernel, a, h), needs)]
        for lo, hi in RankedKernelProduct._blocks(a.shape[0], kernel.device):
            parts = RankedKernelProduct._gradients(
                kernel[lo:hi], a[lo:hi], h[lo:hi], grad_out[lo:hi], needs, in_place=True
            )
            for grad, part in zip(grads, parts):
                if grad is not None:
                    grad[lo:hi] = part
        return tuple(grads)

    @staticmethod
    def _gradients(kernel, a, h, grad_out, needs, in_place: bool):
        """Gradients of (K, a, h) for these edges; ``in_place`` reuses a temporary (no graph kept)."""
        need_kernel, need_a, need_h = needs
        e, g, c = a.shape
        d_in, d_out = h.shape[1], kernel.shape[1]
        grad_kernel = grad_a = grad_h = None
        if need_kernel:
            # dK[e,k,g,i] = sum_c (grad_out[e,k,c] a[e,g,c]) h[e,i,c]
            weighted = (grad_out.unsqueeze(1) * a.unsqueeze(2)).reshape(e, g * d_out, c)
            grad_kernel = torch.bmm(weighted, h.transpose(1, 2)).view(e, g, d_out, d_in)
            grad_kernel = grad_kernel.transpose(1, 2).reshape(e, d_out, g * d_in)
        if need_a or need_h:
            back = torch.bmm(kernel.transpose(1, 2), grad_out).view(e, g, d_in, c)  # K^T grad_out
            if need_h:
                # rank by rank: no [E, G, D, C] product (kept for a second derivative otherwise)
                grad_h = back[:, 0] * a[:, 0, None]
                for rank in range(1, g):
                    grad_h = torch.addcmul(grad_h, back[:, rank], a[:, rank, None])
            if need_a:
                product = back.mul_(h.unsqueeze(1)) if in_place else back * h.unsqueeze(1)
                grad_a = product.sum(2)
        return grad_kernel, grad_a, grad_h


class SquareProduct(nn.Module):
    """Element-dependent channel-wise square A (x) A -> B: raises the body order per layer.

    This plays the role of MACE's symmetric contraction at correlation order 2, at node cost.
    B[k] = sum_p w_p(Z) sum_ij T_p[k, i, j] A_i A_j is evaluated over the non-zero
    Clebsch–Gordan entries only (52 of the 5832 of the dense table at l_max = 2), with the
    symmetric pairs (i, j) and (j, i) merged, as gathers and one scatter-add.
    """

    def __init__(self, l_max: int, channels: int, num_species: int, symmetric: bool = True):
        super().__init__()
        paths, table = square_coupling_table(l_max)
        self.num_paths = len(paths)
        self.d = (l_max + 1) ** 2
        # symmetric=False: a product x (x) y of two different inputs (the cubic term), no merged pairs
        path, out, first, second, value = sparse_square_entries(table, self.d, merge=symmetric)
        for name, index in (("entry_path", path), ("entry_out", out), ("entry_i", first), ("entry_j", second)):
            self.register_buffer(name, index, persistent=False)
        self.entry_value = ExactConstant(value)
        self.weight = nn.Parameter(torch.randn(num_species, self.num_paths, channels) / math.sqrt(self.num_paths))

    def forward(self, a: torch.Tensor, species: torch.Tensor, other: torch.Tensor | None = None) -> torch.Tensor:
        """[N, D, C] -> [N, D, C]: the product of ``a`` with itself, or with ``other`` (``symmetric=False``)."""
        n, d, c = a.shape
        # [D, N*C]: every gather and the scatter then move whole contiguous rows
        flat = a.permute(1, 0, 2).reshape(d, n * c)
        second = flat if other is None else other.permute(1, 0, 2).reshape(d, n * c)
        # per-entry weights of each species first (a few KB), then one gather per node straight into
        # the [S, N*C] layout: no [N, S, C] product and transpose copy
        per_species = torch.index_select(self.weight, 1, self.entry_path) * self.entry_value.like(a)[:, None]
        weights = torch.index_select(per_species.transpose(0, 1).contiguous(), 1, species).view(-1, n * c)  # [S, N*C]
        terms = torch.index_select(flat, 0, self.entry_i) * torch.index_select(second, 0, self.entry_j) * weights
        out = flat.new_zeros(d, n * c).index_add_(0, self.entry_out, terms)
        return out.view(d, n, c).permute(1, 0, 2)


def sparse_square_entries(table: torch.Tensor, d: int, merge: bool = True):
    """Non-zero entries (path, out k, i, j, value) of a [P*D, D*D] square coupling table.

    A_i A_j is symmetric, so with ``merge`` the (i, j) and (j, i) entries become one (i <= j).
    """
    dense = table.view(-1, d, d, d)  # [P, k, i, j]
    merged: dict[tuple[int, int, int, int], float] = {}
    for p, k, i, j in (dense.abs() > 1e-12).nonzero().tolist():
        key = (p, k, min(i, j), max(i, j)) if merge else (p, k, i, j)
        merged[key] = merged.get(key, 0.0) + float(dense[p, k, i, j])
    keys = sorted(merged)
    columns = [torch.tensor([key[f] for key in keys], dtype=torch.long) for f in range(4)]
    return (*columns, torch.tensor([merged[key] for key in keys], dtype=torch.float64))


class ForceEncoding(nn.Module):
    """DeNS force encoding: (|f| / sqrt 3) Y^l(f/|f|) per degree, mapped 1 -> C channels.

    Atoms with ``mask == False`` get exactly zero (they are given no force).  The l = 0 block
    has a bias, as in the paper; it too is masked.
    """

    def __init__(self, l_max: int, channels: int):
        super().__init__()
        self.l_max = l_max
        self.slices = degree_slices(l_max)
        self.weight = nn.Parameter(torch.randn(l_max + 1, channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, forces: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:  # -> [N, D, C]
        from e3nn import o3

        norm = forces.norm(dim=-1, keepdim=True)
        unit = forces / norm.clamp_min(1e-12)
        sh = o3.spherical_harmonics(list(range(self.l_max + 1)), unit, normalize=False, normalization="component")
        sh = sh * norm / math.sqrt(3.0)  # [N, D]
        feats = torch.cat([sh[:, s, None] * self.weight[l] for l, s in enumerate(self.slices)], dim=1)
        feats = torch.cat([feats[:, :1, :] + self.bias, feats[:, 1:, :]], dim=1)
        return feats * mask.to(feats.dtype)[:, None, None]


class VectorHead(nn.Module):
    """Per-atom vector (l = 1) output from the l = 1 block of node features."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(channels) / math.sqrt(channels))

    def forward(self, h: torch.Tensor) -> torch.Tensor:  # [N, D, C] -> [N, 3]
        return h[:, 1:4, :] @ self.weight


class ZBLRepulsion(nn.Module):
    """Ziegler–Biersack–Littmark screened nuclear repulsion for every pair, as a physical prior.

    E_ij = k_e Z_i Z_j / r * phi(r / a_ij), a_ij = 0.46850 Å / (Z_i^0.23 + Z_j^0.23), switched off
    smoothly (polynomial envelope, p = 6) at the sum of the two covalent radii.  Training data
    seldom samples close approach (the Zuo 2020 Li set has no pair closer than 2.00 Å, 0.67 of the
    bond length), so a network alone is free to do anything there, and hot MD that gets there
    collapses; the prior makes close approach cost energy and the network learns the remainder.
    Returns one energy per directed edge.
    """

    COULOMB_EV_ANGSTROM = 14.399645  # e^2 / (4 pi eps0)
    SCREENING = ((0.18175, 3.19980), (0.50986, 0.94229), (0.28022, 0.40290), (0.02817, 0.20162))

    def __init__(self, species: list[int], envelope_p: int = 6):
        super().__init__()
        from ase.data import covalent_radii

        self.charge = ExactConstant(torch.tensor(species, dtype=torch.float64))
        self.radius = ExactConstant(torch.tensor([covalent_radii[z] for z in species], dtype=torch.float64))
        self.p = envelope_p

    def forward(self, r: torch.Tensor, species_i: torch.Tensor, species_j: torch.Tensor) -> torch.Tensor:
        charge, radius = self.charge.like(r), self.radius.like(r)
        zi, zj = charge[species_i], charge[species_j]
        x = r * (zi**0.23 + zj**0.23) / 0.46850
        phi = sum(c * torch.exp(-d * x) for c, d in self.SCREENING)
        cutoff = radius[species_i] + radius[species_j]
        return self.COULOMB_EV_ANGSTROM * zi * zj / r * phi * polynomial_envelope(r / cutoff, self.p)


@functools.cache
def _harmonic_polynomials(l_max: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Real spherical harmonics up to ``l_max`` (e3nn's, "component" normalisation) as polynomials.

    Y_lm of a unit vector is a homogeneous polynomial of degree l in (x, y, z), so Y = monomials @ C with
    the (l + 1)(l + 2) / 2 monomials of each degree.  C is read off e3nn's harmonics by least squares on
    random unit vectors (exact: the monomials of one degree are linearly independent on the sphere).
    Why: e3nn evaluates l ≤ 6 with hundreds of element-wise operations, 7.6 ms forward and backward for
    1,634 edges on one core; the matrix product is a handful.  Returns exponents [M, 3] and C [M, (l_max+1)^2].
    """
    from e3nn import o3

    exponents = [(a, b, degree - a - b) for degree in range(l_max + 1) for a in range(degree, -1, -1)
                 for b in range(degree - a, -1, -1)]
    exponents = torch.tensor(exponents)
    unit = torch.randn(4 * len(exponents), 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    unit = unit / unit.norm(dim=1, keepdim=True)
    target = o3.spherical_harmonics(list(range(l_max + 1)), unit, normalize=False, normalization="component")
    monomials = unit.unsqueeze(1).pow(exponents.unsqueeze(0)).prod(dim=-1)  # [V, M]
    coefficients = torch.zeros(len(exponents), target.shape[1], dtype=torch.float64)
    degree_of_monomial = exponents.sum(dim=1)
    for degree in range(l_max + 1):
        rows = (degree_of_monomial == degree).nonzero().squeeze(1)
        cols = slice(degree * degree, (degree + 1) ** 2)
        coefficients[rows, cols] = torch.linalg.lstsq(monomials[:, rows], target[:, cols]).solution
    return exponents, coefficients


def spherical_harmonics_polynomial(vectors: torch.Tensor, l_max: int, exponents: torch.Tensor | None = None,
                                   coefficients: torch.Tensor | None = None) -> torch.Tensor:
    """e3nn's real spherical harmonics of the directions of ``vectors`` [E, 3] -> [E, (l_max + 1)^2].

    ``exponents``/``coefficients``: the tables of :func:`_harmonic_polynomials`, already on the device and in the
    dtype of ``vectors`` (:class:`PowerSpectrum` keeps them); made here when not given.
    """
    if exponents is None or coefficients is None:
        exponents, coefficients = _harmonic_polynomials(l_max)
        exponents, coefficients = exponents.to(vectors.device), coefficients.to(vectors.device, vectors.dtype)
    unit = vectors / vectors.norm(dim=-1, keepdim=True)
    powers = [torch.ones_like(unit)]
    for _ in range(l_max):
        powers.append(powers[-1] * unit)
    powers = torch.stack(powers)  # [L + 1, E, 3]
    monomials = powers[exponents[:, 0], :, 0] * powers[exponents[:, 1], :, 1] * powers[exponents[:, 2], :, 2]  # [M, E]
    return monomials.transpose(0, 1) @ coefficients


class PowerSpectrum(nn.Module):
    """Invariants of high angular resolution: each atom's neighbour-density power spectrum (SOAP's).

    c_i[k, lm] = Σ_j R_k(r_ij; Z_j) Y_lm(r̂_ij) with learned radial channels R_k (a species-dependent mix
    of the Bessel basis), and p_i[k, k', l] = Σ_m c_i[k, lm] c_i[k', lm] / (2l + 1).  The network's
    own features stop at l_max ≤ 3 because its tensor products cost (l_max + 1)^6; these cost one set of
    spherical harmonics up to ``l_max`` per edge and a sum over m per atom, so l = 6 is cheap.  Why at
    all: on the Mo test set a model *linear* in p, fitted by least squares, has a force MAE of 112 meV/Å with
    l ≤ 6, 117 with l ≤ 4 and 162 with l ≤ 2, against 104.5 for our 82k-parameter network
    (``benchmarks/linear_power_spectrum.py``; docs/ARCHITECTURE.md, "High-l invariants").  The output is added to
    the network's initial scalar channels; an atom without neighbours gets exactly zero.
    """

    def __init__(self, l_max: int, num_basis: int, radial_channels: int, num_species: int, out_channels: int,
                 avg_num_neighbors: float):
        super().__init__()
        self.l_max = int(l_max)
        self.radial_channels = int(radial_channels)
        # Bessel values at neighbour distances are ~0.1 (rms 0.05-0.1 on bcc Mo within 5 Å): the factor 10 starts
        # the radial channels at O(1), so the invariants, and the scalars they add to, start at O(0.1-1)
        # indexed [species of the neighbour, basis, channel]: species first, so `--add-elements` can extend it
        self.radial = nn.Parameter(torch.randn(num_species, num_basis, radial_channels) * (10.0 / math.sqrt(num_basis)))
        upper = torch.triu_indices(radial_channels, radial_channels)
        self.register_buffer("pair_index", upper[0] * radial_channels + upper[1], persistent=False)
        num_features = (self.l_max + 1) * upper.shape[1]
        self.linear = nn.Linear(num_features, out_channels, bias=False)
        # the density is a sum over ~avg_num_neighbors edges; this keeps the l = 0 invariants O(1)
        self.density_scale = 1.0 / math.sqrt(avg_num_neighbors)
        exponents, coefficients = _harmonic_polynomials(self.l_max)
        self.register_buffer("harmonic_exponents", exponents, persistent=False)  # integers: safe as a buffer
        self.harmonic_coefficients = ExactConstant(coefficients)

    def forward(self, edge_vectors, basis, species, sender, receiver, num_nodes: int) -> torch.Tensor:  # -> [N, C]
        k = self.radial_channels
        sh = spherical_harmonics_polynomial(edge_vectors, self.l_max, self.harmonic_exponents,
                                            self.harmonic_coefficients.like(edge_vectors))  # [E, (L+1)^2]
        radial = torch.einsum("eb,sbk->esk", basis, self.radial)  # [E, S, K]
        radial = radial[torch.arange(radial.shape[0], device=radial.device), species[sender]]  # [E, K]
        density = basis.new_zeros(num_nodes, k, sh.shape[1])
        density = density.index_add(0, receiver, radial.unsqueeze(-1) * sh.unsqueeze(1)) * self.density_scale
        features = []
        for l in range(self.l_max + 1):
            block = density[:, :, l * l:(l + 1) * (l + 1)]
            pairs = torch.einsum("nkm,njm->nkj", block, block).reshape(num_nodes, k * k) / (2 * l + 1)
            features.append(pairs[:, self.pair_index])
        return self.linear(torch.cat(features, dim=-1))
