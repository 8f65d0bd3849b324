"""Structures -> labelled graphs: reading, neighbour lists, batching, E0s."""

from .e0s import e0s_are_determined, e0s_from_isolated_atoms, fit_e0s
from .elements import check_elements, elements_of
from .graph import atoms_to_graph, collate, species_indices, validate_atoms
from .labels import (DataError, LabelKeys, StructureError, check_labels, config_type, extract_labels,
                     read_structure_file, read_structures)
from .neighbors import neighbor_list

__all__ = [
    "atoms_to_graph",
    "collate",
    "species_indices",
    "validate_atoms",
    "neighbor_list",
    "read_structures",
    "read_structure_file",
    "StructureError",
    "check_elements",
    "elements_of",
    "extract_labels",
    "check_labels",
    "config_type",
    "LabelKeys",
    "DataError",
    "fit_e0s",
    "e0s_are_determined",
    "e0s_from_isolated_atoms",
]
