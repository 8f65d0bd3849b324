"""Isolated-atom reference energies (E0s): from a file of isolated atoms, or a least-squares fit."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols

from .labels import DataError, extract_labels, read_structures


def e0s_from_isolated_atoms(path: str | Path, species: Sequence[int]) -> dict[int, float]:
    """Read single-atom frames with energies; every element of ``species`` must be present."""
    e0s = {}
    for idx, atoms in enumerate(read_structures(path)):
        if len(atoms) != 1:
            continue
        labels, _ = extract_labels(atoms)
        if "energy" not in labels:
            raise DataError(f"{path}, frame {idx}: isolated atom without an energy")
        e0s[int(atoms.numbers[0])] = labels["energy"]
    missing = [chemical_symbols[z] for z in species if z not in e0s]
    if missing:
        raise DataError(f"{path}: no isolated-atom energy for {', '.join(missing)}")
    return {z: e0s[z] for z in species}


def fit_e0s(frames: Sequence[Atoms], energies: Sequence[float], species: Sequence[int]) -> dict[int, float]:
    """Least-squares E0 per element so that sum_i E0[Z_i] best matches the total energies.

    With a single composition the system is rank-deficient; ``lstsq`` then returns the
    minimum-norm solution, which still removes the mean energy per atom exactly.
    """
    index = {z: k for k, z in enumerate(species)}
    counts = np.zeros((len(frames), len(species)))
    for row, atoms in enumerate(frames):
        for z in atoms.numbers:
            counts[row, index[int(z)]] += 1
    solution, *_ = np.linalg.lstsq(counts, np.asarray(energies, dtype=float), rcond=None)
    return {z: float(solution[k]) for z, k in index.items()}
