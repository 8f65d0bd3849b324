"""Irreps bookkeeping and Clebsch–Gordan tables for the dense (N, D, C) feature layout.

Node features are stored as one tensor ``x[N, D, C]``: ``D = (l_max + 1)**2`` spherical
components (l-major, m within l in e3nn's order) times ``C`` channels.  Only the "natural"
parities 0e, 1o, 2e, 3o are kept, so every coupling path (l1, l2 -> l3) must satisfy
``l1 + l2 + l3`` even; the model is then O(3)-equivariant (energies are also reflection
invariant, as physics requires).

The tables are built once with e3nn's ``wigner_3j`` (in e3nn's real basis, consistent with
``e3nn.o3.spherical_harmonics``) and stored as buffers, so the hot path is plain torch.
"""

from __future__ import annotations

from functools import lru_cache

import torch


def num_components(l_max: int) -> int:
    """Number of spherical components for degrees 0..l_max."""
    return (l_max + 1) ** 2


def degree_slices(l_max: int) -> list[slice]:
    """Slice of the D axis holding degree ``l`` for each l = 0..l_max."""
    return [slice(l * l, (l + 1) ** 2) for l in range(l_max + 1)]


def degree_of_component(l_max: int) -> torch.Tensor:
    """Degree l of each of the D spherical components (long tensor [D])."""
    return torch.cat([torch.full((2 * l + 1,), l, dtype=torch.long) for l in range(l_max + 1)])


def coupling_paths(l_in: int, l_filter: int, l_out: int) -> list[tuple[int, int, int]]:
    """All parity-allowed paths (l1, l2, l3) with l1<=l_in, l2<=l_filter, l3<=l_out."""
    paths = []
    for l1 in range(l_in + 1):
        for l2 in range(l_filter + 1):
            for l3 in range(abs(l1 - l2), min(l1 + l2, l_out) + 1):
                if (l1 + l2 + l3) % 2 == 0:
                    paths.append((l1, l2, l3))
    return paths


@lru_cache(maxsize=None)
def _wigner_3j(l1: int, l2: int, l3: int) -> torch.Tensor:
    from e3nn import o3

    # component normalisation: a unit-variance input gives unit-variance output per path
    return o3.wigner_3j(l1, l2, l3, dtype=torch.float64) * (2 * l3 + 1) ** 0.5


def edge_coupling_table(l_max: int) -> tuple[tuple[tuple[int, int, int], ...], torch.Tensor]:
    """Coupling table for ``h_j (x) Y(r_ij) -> message`` with all degrees up to ``l_max``.

    Returns the paths (l1, l2, l3) and a tensor ``cg`` of shape [D_filter, P, D_in, D_out] such
    that ``M_p[e] = Y[e] @ cg[:, p]`` is the [D_in, D_out] matrix of path p on edge e.
    """
    paths = coupling_paths(l_max, l_max, l_max)
    d = num_components(l_max)
    slices = degree_slices(l_max)
    cg = torch.zeros(d, len(paths), d, d, dtype=torch.float64)
    for p, (l1, l2, l3) in enumerate(paths):
        # wigner_3j is indexed [m1, m2, m3]; we want [m2 (filter), m1 (input), m3 (output)]
        cg[slices[l2], p, slices[l1], slices[l3]] = _wigner_3j(l1, l2, l3).permute(1, 0, 2)
    return tuple(paths), cg


def square_coupling_table(l_max: int) -> tuple[tuple[tuple[int, int, int], ...], torch.Tensor]:
    """Table for the node-wise product ``A (x) A -> B`` (channel-wise, symmetric paths only).

    Returns the paths and a tensor of shape [P * D, D * D] mapping flattened outer products
    ``A_i A_j`` to each path's output.  Antisymmetric paths (l1 == l2 with odd l3) vanish for
    a square and are skipped.
    """
    d = num_components(l_max)
    slices = degree_slices(l_max)
    paths = [
        (l1, l2, l3)
        for (l1, l2, l3) in coupling_paths(l_max, l_max, l_max)
        if l1 <= l2 and not (l1 == l2 and l3 % 2 == 1)
    ]
    mats = []
    for l1, l2, l3 in paths:
        block = torch.zeros(d, d, d, dtype=torch.float64)  # [D_i, D_j, D_out]
        block[slices[l1], slices[l2], slices[l3]] = _wigner_3j(l1, l2, l3)
        mats.append(block.reshape(d * d, d).T)  # [D_out, D*D]
    table = torch.cat(mats, dim=0)  # [P*D_out, D*D]
    return tuple(paths), table
