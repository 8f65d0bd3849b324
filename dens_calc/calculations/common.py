"""Shared helpers: reading structures, choosing and loading a model, units, errors."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from ase import Atoms
from ase.data import chemical_symbols

from ..data.elements import check_elements, elements_of, symbols
from ..data.labels import StructureError, read_structure_file  # noqa: F401  (StructureError: re-exported)

logger = logging.getLogger(__name__)

#: Units of every quantity we write; stored as ``atoms.info["dens_units"]`` in outputs.
UNITS = {
    "energy": "eV",
    "forces": "eV/Ang",
    "stress": "eV/Ang^3",
    "time": "ps",
    "temperature": "K",
    "pressure": "GPa",
    "volume": "Ang^3",
    "frequency": "THz",
}


class SimulationError(RuntimeError):
    """A simulation that cannot start or had to stop; the message says why (one line)."""


class ModelSelectionError(ValueError):
    """No model given and none of the bundled models covers the structure's elements."""


def read_structure(path: str | Path, *, index: int | str = -1) -> Atoms | list[Atoms]:
    """The last frame of a structure file (``index=":"``: every frame), via the one reader
    :func:`~dens_calc.data.labels.read_structure_file` (raises :class:`StructureError`)."""
    return read_structure_file(path, index=index)


def bundled_model_species() -> dict[str, list[int]]:
    """Name -> atomic numbers covered, for every bundled model: single models first, then committees (which cost
    the sum of their members per call), each group in name order."""
    from ..models import bundled_model_info, bundled_models

    infos = {name: bundled_model_info(name) for name in bundled_models()}
    order = sorted(infos, key=lambda name: "members" in infos[name])  # stable: name order within each group
    return {name: list(infos[name].get("model_config", {}).get("species", [])) for name in order}


def select_model(structures: Atoms | Iterable[Atoms], model: str | Path | None = None) -> str | Path:
    """The model to use: ``model`` if given, else the first bundled model covering every element (single models
    before committees, see :func:`bundled_model_species`).

    Raises
    ------
    ModelSelectionError
        If ``model`` is None and no bundled model covers the elements (the message lists the
        bundled models and their elements).
    """
    if model is not None:
        return model
    needed = elements_of(structures)
    available = bundled_model_species()
    for name, species in available.items():
        if needed <= set(species):
            logger.info("using bundled model '%s' (elements %s)", name, symbols(species))
            return name
    if not available:
        raise ModelSelectionError("no model given and no bundled models are installed; pass --model PATH")
    listing = "; ".join(f"{name} ({symbols(species)})" for name, species in available.items())
    raise ModelSelectionError(
        f"no model given and no bundled model covers all of {symbols(needed)}; bundled models: {listing}"
    )


def load_calculator(structures: Atoms | Iterable[Atoms], *, model=None, device: str = "auto", dtype: str = "float32"):
    """Choose (:func:`select_model`), load and check a :class:`~dens_calc.DeNSCalculator` for ``structures``."""
    from ..calculators import DeNSCalculator

    calc = DeNSCalculator(select_model(structures, model), device=device, dtype=dtype)
    check_elements(structures, calc.species)
    return calc


def gives_stress(calc) -> bool:
    """Whether ``calc`` gives stress: not a DeNS direct-force model; another calculator if it implements it."""
    if hasattr(calc, "force_mode"):
        return calc.force_mode == "conservative"
    return "stress" in getattr(calc, "implemented_properties", ())


def model_summary(calc) -> dict:
    """What identifies the model in a summary: source, checkpoint hash, device, dtype, elements, cutoff."""
    info = {k: calc.parameters.get(k) for k in ("model", "checkpoint_sha256", "device", "dtype")}
    info.update(elements=[chemical_symbols[z] for z in calc.species], cutoff_Ang=float(calc.cutoff))
    return info


def results_frame(atoms: Atoms, results: dict, info: dict | None = None) -> Atoms:
    """A copy of ``atoms`` that carries energy/forces/stress as ASE calculator results.

    The copy is what we write to extxyz trajectories: ``ase.io.read`` gives it back with a
    ``SinglePointCalculator``.  ``info`` entries are added to ``atoms.info``, and so is a committee's
    ``energy_std`` (eV).
    """
    from ase.calculators.singlepoint import SinglePointCalculator

    frame = atoms.copy()
    frame.info.update(info or {})
    keep = {k: results[k] for k in ("energy", "free_energy", "forces", "stress") if k in results}
    frame.calc = SinglePointCalculator(frame, **keep)
    if "energy_std" in results:  # a committee's spread: where it is large, the energy is an extrapolation
        frame.info["energy_std"] = float(results["energy_std"])
    return frame


def make_supercell(atoms: Atoms, supercell: Iterable[int] | None) -> Atoms:
    """``atoms`` repeated by three positive integers (a copy; ``None`` keeps it as is)."""
    if supercell is None:
        return atoms.copy()
    reps = tuple(int(n) for n in supercell)
    if len(reps) != 3 or min(reps) < 1:
        raise ValueError(f"supercell must be three positive integers, got {reps}")
    return atoms.repeat(reps)
