"""Which elements structures hold, and the one check that a model knows them all."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols


def elements_of(structures: Atoms | Iterable[Atoms]) -> set[int]:
    """Atomic numbers present in one structure or a list of structures."""
    if isinstance(structures, Atoms):
        structures = [structures]
    return {int(z) for atoms in structures for z in np.unique(atoms.numbers)}


def symbols(numbers: Iterable[int]) -> str:
    """``"H, C, O"``: sorted chemical symbols, for messages."""
    return ", ".join(chemical_symbols[z] for z in sorted(numbers))


def check_elements(structures: Atoms | Iterable[Atoms], species: Sequence[int]) -> None:
    """Raise ``ValueError`` naming the elements of ``structures`` that are not in ``species``."""
    unknown = elements_of(structures) - set(species)
    if unknown:
        raise ValueError(f"element(s) {symbols(unknown)} not known to the model (model elements: {symbols(species)})")
