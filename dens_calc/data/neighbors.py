"""Neighbour lists with periodic images (vesin), for any mix of periodic directions."""

from __future__ import annotations

import numpy as np
from ase import Atoms


def _vesin_system(atoms: Atoms) -> dict:
    """Points, box and periodicity as vesin wants them; a fully non-periodic structure gets a zero
    box, so vesin ignores whatever cell the file carried (e.g. a 50 Å box around a molecule)."""
    pbc = np.asarray(atoms.pbc, dtype=bool)
    box = np.asarray(atoms.cell.array, dtype=np.float64) if pbc.any() else np.zeros((3, 3))
    return {"points": np.ascontiguousarray(atoms.positions, dtype=np.float64), "box": box, "periodic": pbc}


def neighbor_list(atoms: Atoms, cutoff: float) -> tuple[np.ndarray, np.ndarray]:
    """Directed pairs (sender j, receiver i) within ``cutoff`` and their integer cell shifts.

    Returns ``edge_index`` [2, E] (int64) and ``shifts`` [E, 3] (float, in units of the cell)
    such that ``r_j - r_i + shifts @ cell`` is the edge vector.  Works for non-periodic,
    periodic and mixed boundary conditions, including cells smaller than the cutoff (every
    periodic image within the cutoff appears as its own edge).
    """
    from vesin import NeighborList

    calculator = NeighborList(cutoff=float(cutoff), full_list=True)
    i, j, shifts = calculator.compute(**_vesin_system(atoms), quantities="ijS")
    # vesin's vector is r_j - r_i + S @ box with (i, j) = (centre, neighbour)
    edge_index = np.stack([j, i]).astype(np.int64)
    return edge_index, shifts.astype(np.float64)


def pair_distances(atoms: Atoms, cutoff: float) -> np.ndarray:
    """Distances (Å) of all atom pairs closer than ``cutoff``, periodic images included.

    Unlike ASE's ``neighbor_list``, which bins the (meaningless) box of a non-periodic molecule and
    takes ~1 s for a 27-atom molecule in a 50 Å box, this takes ~2 ms (vesin ignores that box).
    """
    from vesin import NeighborList

    calculator = NeighborList(cutoff=float(cutoff), full_list=False)
    (distances,) = calculator.compute(**_vesin_system(atoms), quantities="d")
    return np.asarray(distances, dtype=np.float64)
