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


@dataclass
class LabelKeys:
    """Where labels live: ``atoms.info``/``atoms.arrays`` keys, or ``atoms.calc.results``."""

    energy: str | None = None
    forces: str | None = None
    stress: str | None = None


def read_structures(path: str | Path, index: str = ":", format: str | None = None) -> list[Atoms]:
    """Read every frame of ``path`` with ASE; clear errors for missing/empty/unreadable files."""
    from ase.io import read

    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    try:
        frames = read(str(path), index=index, format=format)
    except Exception as exc:  # ASE raises many types for unreadable input
        raise DataError(f"{path}: cannot read structures ({type(exc).__name__}: {exc})") from exc
    frames = frames if isinstance(frames, list) else [frames]
    if not frames:
        raise DataError(f"{path}: file contains no structures")
    return frames


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
