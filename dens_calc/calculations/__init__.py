"""Simulations with a DeNS potential: single points, relaxations, molecular dynamics, phonons.

Each module holds one task as a function that takes the structure as its only positional
argument, returns a results dict and writes files only when given an output directory.
The ``dens-calc`` commands are thin wrappers over these functions.
"""

from importlib import import_module

_EXPORTS = {
    "SimulationError": "common", "load_calculator": "common", "read_structure": "common",
    "select_model": "common", "run_md": "md", "run_phonons": "phonons", "run_relax": "relax",
    "run_singlepoint": "singlepoint",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    # lazy, so that importing one task does not import phonopy, matplotlib, ...
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(name)
