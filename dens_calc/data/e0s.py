"""Isolated-atom reference energies (E0s): from a file of isolated atoms, or a least-squares fit."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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


def fit_e0s(
    frames: Sequence[Atoms],
    energies: Sequence[float],
    species: Sequence[int],
    prior: Mapping[int, float] | float | None = None,
) -> dict[int, float]:
    """Least-squares E0 per element so that sum_i E0[Z_i] best matches the total energies.

    When the compositions do not determine every E0 (MD of one molecule: one composition, one
    equation), the undetermined directions are taken from ``prior`` (a value per element, or one
    value for all): the result is the least-squares solution closest to it.  ``prior=None`` means 0
    (the minimum-norm solution).  Either way the mean energy per atom is removed exactly.
    """
    index = {z: k for k, z in enumerate(species)}
    counts = composition_matrix(frames, species)
    if prior is None or isinstance(prior, (int, float)):
        start = np.full(len(species), float(prior or 0.0))
    else:
        start = np.array([float(prior[z]) for z in species])
    target = np.asarray(energies, dtype=float) - counts @ start
    solution, *_ = np.linalg.lstsq(counts, target, rcond=None)
    return {z: float(start[k] + solution[k]) for z, k in index.items()}


def composition_matrix(frames: Sequence[Atoms], species: Sequence[int]) -> np.ndarray:
    """[frames, species] atom counts."""
    index = {z: k for k, z in enumerate(species)}
    counts = np.zeros((len(frames), len(species)))
    for row, atoms in enumerate(frames):
        for z in atoms.numbers:
            counts[row, index[int(z)]] += 1
    return counts


def e0s_are_determined(frames: Sequence[Atoms], species: Sequence[int]) -> bool:
    """True when the compositions of ``frames`` fix every element's E0 (full column rank)."""
    return bool(np.linalg.matrix_rank(composition_matrix(frames, species)) == len(species))
