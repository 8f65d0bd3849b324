"""Structures -> labelled graphs: reading, neighbour lists, batching, E0s."""

from .e0s import e0s_are_determined, e0s_from_isolated_atoms, fit_e0s
from .graph import atoms_to_graph, collate, species_indices, validate_atoms
from .labels import DataError, LabelKeys, check_labels, extract_labels, read_structures
from .neighbors import neighbor_list

__all__ = [
    "atoms_to_graph",
    "collate",
    "species_indices",
    "validate_atoms",
    "neighbor_list",
    "read_structures",
    "extract_labels",
    "check_labels",
    "LabelKeys",
    "DataError",
    "fit_e0s",
    "e0s_are_determined",
    "e0s_from_isolated_atoms",
]
