"""Training data: read and check labelled structures, split, E0s, normalisation, graphs."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from ase import Atoms
from ase.data import atomic_numbers

from ..data import (DataError, LabelKeys, atoms_to_graph, check_labels, config_type, e0s_are_determined,
                    e0s_from_isolated_atoms, fit_e0s, read_structures)
from ..data.elements import elements_of, symbols
from .config import TrainConfig

log = logging.getLogger(__name__)


@dataclass
class LabelledSet:
    """Frames of one file with their checked labels (``source`` names the file for errors)."""

    frames: list[Atoms]
    labels: list[dict]
    source: str
    index: list[int] | None = None  # frame numbers in the file (after a split)
    # energies of the single-atom frames of the file (taken out of the training frames): E0s
    isolated: dict[int, float] = field(default_factory=dict)

    def frame_number(self, k: int) -> int:
        return self.index[k] if self.index is not None else k

    def subset(self, indices) -> "LabelledSet":
        return LabelledSet([self.frames[i] for i in indices], [self.labels[i] for i in indices], self.source,
                           [self.frame_number(i) for i in indices], dict(self.isolated))

    def __len__(self) -> int:
        return len(self.frames)


def needed_labels(config: TrainConfig) -> tuple[str, ...]:
    """Labels every frame must have; stress is optional per frame (masked where missing, see
    ``loop.with_stress_weight``)."""
    return ("energy", "forces")


def is_isolated_atom(atoms: Atoms) -> bool:
    """A lone atom in vacuum, or marked so (a 1-atom periodic cell is a crystal otherwise)."""
    marked = str(atoms.info.get("config_type", "")).lower() == "isolatedatom"
    return len(atoms) == 1 and (marked or not atoms.pbc.any())


def load_labelled(path: str | Path, config: TrainConfig) -> LabelledSet:
    """Read every frame and check labels up front (raises a one-line ``DataError``).

    Single-atom frames of non-periodic cells (``config_type=IsolatedAtom`` in MACE's files) are
    isolated-atom reference energies, not training structures: they go to ``isolated``.
    """
    keys = LabelKeys(config.energy_key, config.forces_key, config.stress_key)
    frames = read_structures(path)
    isolated_at = [k for k, atoms in enumerate(frames) if is_isolated_atom(atoms)]
    isolated, index = {}, None
    if isolated_at and len(isolated_at) < len(frames):
        lone = [frames[k] for k in isolated_at]
        for k, labels in zip(isolated_at, check_labels(lone, path, ("energy",), keys)):
            isolated[int(frames[k].numbers[0])] = labels["energy"]
        log.info("%s: %d isolated-atom frame(s) (%s) used as E0s, not as training structures", path,
                 len(isolated_at), symbols(isolated))
        lone_at = set(isolated_at)
        kept = [k for k in range(len(frames)) if k not in lone_at]
        frames, index = [frames[k] for k in kept], kept  # frame numbers stay those of the file
    labels = check_labels(frames, path, needed_labels(config), keys)
    return LabelledSet(frames, labels, str(path), index, isolated=isolated)


def load_replay(config: TrainConfig, count: int) -> LabelledSet:
    """``count`` frames of ``config.replay_file`` (seeded draw) with their force labels only.

    Replay keeps a fine-tuned model close to its pretraining away from the new data.  The energy
    labels are dropped: the pretraining data are of another level of theory, whose energy reference
    the refitted E0s no longer match; forces carry no reference and constrain the shape of the
    surface.  Stress is dropped for the same reason.
    """
    keys = LabelKeys(config.energy_key, config.forces_key, config.stress_key)
    frames = [a for a in read_structures(config.replay_file) if not is_isolated_atom(a)]
    if not frames:
        raise DataError(f"{config.replay_file}: no replay structures (only isolated atoms?)")
    picked = np.sort(np.random.default_rng(config.seed).permutation(len(frames))[: max(1, min(count, len(frames)))])
    chosen = [frames[i] for i in picked]
    labels = [{"forces": lab["forces"]} for lab in check_labels(chosen, config.replay_file, ("forces",), keys)]
    return LabelledSet(chosen, labels, str(config.replay_file), picked.tolist())


def split(train: LabelledSet, fraction: float, seed: int) -> tuple[LabelledSet, LabelledSet]:
    """Random train/validation split (at least one validation frame when fraction > 0)."""
    n = len(train)
    n_valid = max(1, int(round(fraction * n))) if fraction > 0 else 0
    if n_valid >= n:
        raise DataError(f"{train.source}: {n} frame(s) are too few for a validation fraction of {fraction}")
    order = np.random.default_rng(seed).permutation(n)
    return train.subset(sorted(order[n_valid:])), train.subset(sorted(order[:n_valid]))


def check_species(data: LabelledSet, species: list[int], what: str = "the model") -> None:
    """Every element must be known; unlike :func:`~dens_calc.data.check_elements` for a calculator,
    the error names the file and frame, which is what a user fixing training data needs."""
    allowed = set(species)
    for idx, atoms in enumerate(data.frames):
        unknown = elements_of(atoms) - allowed
        if unknown:
            raise DataError(f"{data.source}, frame {data.frame_number(idx)}: element(s) {symbols(unknown)} not in {what}")


def species_of(*sets: LabelledSet) -> list[int]:
    return sorted(elements_of([atoms for s in sets for atoms in s.frames]))


def resolve_e0s(config: TrainConfig, train: LabelledSet, species: list[int]) -> dict[int, float]:
    """E0s from ``config.e0s``: ``"fit"`` (least squares), a file of isolated atoms, or a mapping."""
    spec = config.e0s
    if isinstance(spec, dict):
        e0s = {atomic_numbers[str(k)] if not str(k).isdigit() else int(k): float(v) for k, v in spec.items()}
        check_species(train, list(e0s), "the E0s given in the config")
        return {z: e0s[z] for z in species}
    if spec in (None, "fit"):
        return fitted_e0s(train, species)
    e0s = e0s_from_isolated_atoms(spec, species)
    check_species(train, list(e0s), f"the E0s file {spec}")
    return e0s


def fitted_e0s(train: LabelledSet, species: list[int]) -> dict[int, float]:
    """E0s when none are given: the data's isolated atoms, else a least-squares fit.

    If the compositions leave E0s undetermined (MD of one molecule), the fit makes them as equal as
    the data allow (mean energy per atom) and says so: such E0s fit this data, but not other
    compositions (fine-tuning refits them; ``--e0s isolated_atoms.xyz`` avoids the problem).
    """
    energies = [lab["energy"] for lab in train.labels]
    missing = [z for z in species if z not in train.isolated]
    if not missing:
        return {z: train.isolated[z] for z in species}
    known = {z: e for z, e in train.isolated.items() if z in species}
    if known:
        # the isolated atoms present fix their E0s; fit the others to what remains
        energies = [e - sum(known.get(int(z), 0.0) for z in atoms.numbers) for e, atoms in zip(energies, train.frames)]
        frames = [atoms[[int(z) in missing for z in atoms.numbers]] for atoms in train.frames]
    else:
        frames = train.frames
    per_atom = float(np.sum(energies) / max(1, sum(len(a) for a in frames)))
    fitted = fit_e0s(frames, energies, missing, prior=per_atom)
    if not e0s_are_determined(frames, missing):
        log.warning("%s: the compositions do not determine E0s for %s (too few distinct compositions); using the "
                    "least-squares E0s closest to the mean energy per atom (%.4f eV). Energies of other compositions "
                    "will be off: give isolated-atom energies with --e0s FILE (or single-atom frames in the data).",
                    train.source, symbols(missing), per_atom)
    return {**known, **fitted}


def normalisation(train: LabelledSet, e0s: dict[int, float]) -> tuple[float, float]:
    """(scale, shift): RMS force component and mean per-atom energy after E0s."""
    residual = [(lab["energy"] - sum(e0s[int(z)] for z in at.numbers)) / len(at) for at, lab in zip(train.frames, train.labels)]
    shift = float(np.mean(residual))
    forces = np.concatenate([np.asarray(lab["forces"]).ravel() for lab in train.labels])
    scale = float(np.sqrt(np.mean(forces**2))) if forces.size else 0.0
    if not np.isfinite(scale) or scale < 1e-6:
        scale = float(np.std(residual)) or 1.0
    return scale, shift


def build_graphs(data: LabelledSet, species: list[int], cutoff: float, dtype: torch.dtype,
                 config_type_weights: dict[str, float] | None = None) -> list:
    """Labelled graphs; a structure whose ``config_type`` is in ``config_type_weights`` gets that loss weight."""
    weights = config_type_weights or {}
    graphs = []
    for idx, (atoms, labels) in enumerate(zip(data.frames, data.labels)):
        kind = config_type(atoms)
        if kind in weights:
            labels = {**labels, "weight": weights[kind]}
        try:
            graphs.append(atoms_to_graph(atoms, species, cutoff, dtype=dtype, labels=labels))
        except ValueError as exc:
            raise DataError(f"{data.source}, frame {data.frame_number(idx)}: {exc}") from exc
    return graphs


def check_config_types(weights: dict[str, float], *sets: LabelledSet) -> None:
    """Warn about weighted config types that no structure has (a typo would silently weight nothing)."""
    present = {config_type(a) for data in sets for a in data.frames} - {None}
    missing = sorted(set(weights) - present)
    if missing:
        log.warning("config_type_weights: no structure has config_type %s (present: %s)",
                    ", ".join(missing), ", ".join(sorted(present)) or "none")
    elif weights:
        log.info("config_type_weights: %s", ", ".join(f"{k} x{v:g}" for k, v in weights.items()))


def average_neighbors(graphs: list, r_max: float) -> float:
    """Mean number of neighbours within ``r_max`` (graphs may carry a skin beyond it)."""
    from ..nn.model import edge_vectors_from_graph

    edges = atoms = 0
    for g in graphs:
        vec = edge_vectors_from_graph(g.pos, g.cell.view(-1, 3, 3), g.shifts, g.edge_index, torch.zeros(g.num_nodes, dtype=torch.long))
        edges += int((vec.norm(dim=-1) < r_max).sum())
        atoms += g.num_nodes
    return max(1.0, edges / max(1, atoms))
