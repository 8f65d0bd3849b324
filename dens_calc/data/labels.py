"""Reading labelled structures from any file ``ase.io.read`` understands."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.constraints import FixAtoms

# keys tried, in order, when the user does not name one
DEFAULT_KEYS = {
    "energy": ("energy", "REF_energy", "dft_energy", "total_energy"),
    "forces": ("forces", "REF_forces", "dft_forces"),
    "stress": ("stress", "REF_stress", "dft_stress", "virial"),
}


class DataError(ValueError):
    """Bad training/evaluation data; the message names file and frame."""


class StructureError(DataError):
    """A structure file that is missing, unreadable or empty."""


@dataclass
class LabelKeys:
    """Where labels live: ``atoms.info``/``atoms.arrays`` keys, or ``atoms.calc.results``."""

    energy: str | None = None
    forces: str | None = None
    stress: str | None = None


def read_structure_file(path: str | Path, *, index: int | str = ":", format: str | None = None) -> Atoms | list[Atoms]:
    """The one structure reader: ``ase.io.read`` with every failure turned into a one-line error.

    Parameters
    ----------
    path
        Any file that ``ase.io.read`` understands (CIF, POSCAR, extxyz, ASE trajectory, ...).
    index, format
        As ``ase.io.read`` takes them: ``":"`` (every frame, a list), ``-1`` (the last frame), ...

    Raises
    ------
    StructureError
        If the file is missing, cannot be parsed, or holds no frames or a frame without atoms.
    """
    from ase.io import read

    path = Path(path)
    if not path.is_file():
        raise StructureError(f"{path}: no such file")
    try:
        frames = read(str(path), index=index, format=format)
    except Exception as exc:  # ase.io raises many unrelated types for bad files; re-raised with context
        reason = str(exc).splitlines()[0] if str(exc) else ""
        raise StructureError(f"{path}: cannot read structures ({type(exc).__name__}: {reason})") from exc
    as_list = frames if isinstance(frames, list) else [frames]
    if not as_list:
        raise StructureError(f"{path}: file contains no structures")
    if any(len(atoms) == 0 for atoms in as_list):
        raise StructureError(f"{path}: holds a frame without atoms")
    return frames


def read_structures(path: str | Path, index: str = ":", format: str | None = None) -> list[Atoms]:
    """Every frame of ``path`` (:func:`read_structure_file`) as a list."""
    frames = read_structure_file(path, index=index, format=format)
    return frames if isinstance(frames, list) else [frames]


def config_type(atoms: Atoms) -> str | None:
    """The structure's kind, ``atoms.info["config_type"]`` (extxyz convention, as MACE reads it), as text."""
    value = atoms.info.get("config_type")
    return None if value is None else str(value)


def _lookup(atoms: Atoms, name: str, key: str | None, per_atom: bool):
    candidates = (key,) if key else DEFAULT_KEYS[name]
    for k in candidates:
        store = atoms.arrays if per_atom else atoms.info
        if k in store:
            return k, store[k]
    calc = atoms.calc
    if calc is not None and key in (None, name):
        results = getattr(calc, "results", {})
        if name in results:
            return f"calc.{name}", results[name]
    return None, None


def extract_labels(atoms: Atoms, keys: LabelKeys | None = None) -> tuple[dict, dict]:
    """Labels of one frame as plain numpy values, plus the key each came from.

    ``virial`` (extxyz convention, eV) is converted to stress = -virial / V.
    """
    keys = keys or LabelKeys()
    labels, sources = {}, {}
    for name, per_atom in (("energy", False), ("forces", True), ("stress", False)):
        k, value = _lookup(atoms, name, getattr(keys, name), per_atom)
        if k is None:
            continue
        value = np.asarray(value, dtype=float)
        if k == "virial":
            value = -value.reshape(3, 3) / atoms.get_volume()
        labels[name], sources[name] = (float(value) if name == "energy" else value), k
    fixed = np.zeros(len(atoms), dtype=bool)
    for constraint in atoms.constraints:
        if isinstance(constraint, FixAtoms):
            fixed[constraint.index] = True
    labels["fixed"] = fixed
    return labels, sources


def check_labels(frames: list[Atoms], path: str | Path, need: tuple[str, ...], keys: LabelKeys | None = None) -> list[dict]:
    """Extract labels of every frame; raise ``DataError`` naming file and frame on any problem."""
    out, first_sources = [], None
    for idx, atoms in enumerate(frames):
        labels, sources = extract_labels(atoms, keys)
        for name in need:
            if name not in labels:
                raise DataError(f"{path}, frame {idx}: missing '{name}' label (looked for {DEFAULT_KEYS[name]})")
        if first_sources is None:
            first_sources = sources
        elif {k: sources.get(k) for k in need} != {k: first_sources.get(k) for k in need}:
            raise DataError(f"{path}, frame {idx}: label keys {sources} differ from frame 0's {first_sources}")
        for name in ("energy", "forces", "stress"):
            if name in labels and not np.all(np.isfinite(labels[name])):
                raise DataError(f"{path}, frame {idx}: non-finite '{name}' label")
        if "forces" in labels and np.shape(labels["forces"]) != (len(atoms), 3):
            raise DataError(f"{path}, frame {idx}: forces have shape {np.shape(labels['forces'])}, expected ({len(atoms)}, 3)")
        out.append(labels)
    return out
