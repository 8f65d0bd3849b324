"""Safe checkpoints: weights + a versioned JSON-able config, never pickled code.

A checkpoint is one file holding a dict of plain types and tensors, written with
``torch.save`` and read with ``torch.load(weights_only=True)``::

    {"format_version": 1, "dens_calc_version": "...", "model_config": {...},
     "model_state": {name: tensor}, "metadata": {...}, optional resume state}

A committee (:class:`~dens_calc.nn.committee.Committee`, several models whose mean energy is the
prediction) is one file of the same kind with its members' configs and weights in ``"members"``
(``[{"model_config", "model_state"}, ...]``) instead of ``"model_state"``; its ``"model_config"`` is the
widest-cutoff member's, for listings and element matching.

A model directory (``models/<name>/``) holds ``model.pt`` plus a human-readable
``config.json`` copy of the config and a model card ``README.md``.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch

from . import __version__
from .files import atomic_write, atomic_write_text
from .models import bundled_model_path
from .nn.committee import Committee
from .nn.model import DeNSPotential, ModelConfig

FORMAT_VERSION = 1
CHECKPOINT_NAME = "model.pt"


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read: missing, corrupt, truncated or from the future."""


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """Write ``obj`` to ``path`` via a temporary file and ``os.replace`` (never half-written)."""
    with atomic_write(path, "wb", fsync=True) as handle:
        torch.save(obj, handle)


def save_model(model: DeNSPotential, path: str | Path, *, metadata: dict | None = None, extra: dict | None = None) -> Path:
    """Save a model (weights on CPU, config, metadata) and, for a directory path, ``config.json``."""
    payload = {**_header(model, metadata), **_weights(model)}
    if extra:
        payload.update(extra)
    return _write(payload, path)


def save_committee(members: list[DeNSPotential], path: str | Path, *, metadata: dict | None = None,
                   weights: list[float] | None = None) -> Path:
    """Save models as one committee checkpoint (and, for a directory path, ``config.json``).

    ``weights``: the members' energy weights (default: the mean); stored only when given, so that equal-weight
    committees keep the layout older versions read.
    """
    committee = Committee(members, weights)  # checks the elements agree and the weights fit
    payload = {**_header(members[0], {"committee_size": len(members), **(metadata or {})}),
               "model_config": committee.config.to_dict(), "members": [_weights(m) for m in members]}
    extra = {"members": [m["model_config"] for m in payload["members"]]}
    if weights is not None:
        payload["member_weights"] = extra["member_weights"] = committee.member_weights
    return _write(payload, path, readable_extra=extra)


def _header(model: DeNSPotential, metadata: dict | None) -> dict:
    return {"format_version": FORMAT_VERSION, "dens_calc_version": __version__,
            "metadata": {"dtype": str(next(model.parameters()).dtype).removeprefix("torch."), **(metadata or {})}}


def _weights(model: DeNSPotential) -> dict:
    return {"model_config": model.config.to_dict(),
            "model_state": {k: v.detach().cpu() for k, v in model.state_dict().items()}}


def _write(payload: dict, path: str | Path, readable_extra: dict | None = None) -> Path:
    """``payload`` to ``path`` (a ``.pt`` file, or ``model.pt`` in a directory, which also gets ``config.json``)."""
    path = Path(path)
    target = path / CHECKPOINT_NAME if path.suffix != ".pt" else path
    atomic_torch_save(payload, target)
    if target.name == CHECKPOINT_NAME:
        config_json = {k: payload[k] for k in ("format_version", "dens_calc_version", "model_config", "metadata")}
        config_json.update(readable_extra or {})
        atomic_write_text(target.with_name("config.json"), json.dumps(config_json, indent=2, default=str))
    return target


def build_committee(sources: list[str | Path], path: str | Path, *, metadata: dict | None = None,
                    weights: list[float] | None = None) -> Path:
    """A committee checkpoint from trained models (files, model directories or bundled names).

    Each member's training metadata is kept under ``metadata["members"]``, so the provenance survives.
    """
    if len(sources) < 2:
        raise ValueError(f"a committee needs at least two models, got {len(sources)}")
    loaded = [load_model(source) for source in sources]
    provenance = [{"source": str(source), **member_metadata} for source, (_, member_metadata) in zip(sources, loaded)]
    forces = {m.get("forces", "conservative") for m in provenance}
    if forces != {"conservative"}:
        raise ValueError("committee members must be conservative models (trained with --forces conservative)")
    return save_committee([model for model, _ in loaded], path, weights=weights,
                          metadata={"forces": "conservative", **(metadata or {}), "members": provenance})


def resolve_checkpoint(model: str | Path) -> Path:
    """A checkpoint file from a file path, a model directory, or a bundled model name."""
    path = Path(model)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if path.is_file():
        return path
    bundled = bundled_model_path(str(model))
    if bundled is not None:
        return bundled
    raise CheckpointError(f"no checkpoint at '{model}' (not a file, a model directory, or a bundled model name)")


def read_checkpoint(path: str | Path) -> dict:
    """Load the raw checkpoint dict safely (``weights_only=True``) with clear errors."""
    path = resolve_checkpoint(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises RuntimeError/UnpicklingError/EOFError for bad files
        raise CheckpointError(f"{path}: not a readable dens-calc checkpoint (corrupt or truncated?): {exc}") from exc
    if not isinstance(payload, dict) or "format_version" not in payload or not (
            "model_state" in payload or "members" in payload):
        raise CheckpointError(f"{path}: not a dens-calc checkpoint (missing format_version/model_state)")
    version = payload["format_version"]
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {version} is newer than this dens-calc supports "
            f"({FORMAT_VERSION}); upgrade dens-calc"
        )
    if payload.get("dens_calc_version") != __version__:
        warnings.warn(
            f"{path} was written by dens-calc {payload.get('dens_calc_version')}, this is {__version__}",
            stacklevel=2,
        )
    return payload


def load_model(path: str | Path, *, device: str | torch.device = "cpu", dtype: torch.dtype | None = None) -> tuple[DeNSPotential, dict]:
    """Rebuild a model from a checkpoint on any device; returns the model (eval mode) and metadata."""
    payload = read_checkpoint(path)
    if "members" in payload:
        raise CheckpointError(f"{path} is a committee of {len(payload['members'])} models: it runs in the calculator "
                              "(DeNSCalculator, every dens-calc command that simulates); training, fine-tuning and "
                              "refitting take one of its members")
    return _build_model(payload, path, device, dtype), dict(payload.get("metadata", {}))


def load_potential(path: str | Path, *, device: str | torch.device = "cpu",
                   dtype: torch.dtype | None = None) -> tuple[DeNSPotential | Committee, dict]:
    """A model or a committee from a checkpoint (what the calculator runs), with the metadata."""
    payload = read_checkpoint(path)
    if "members" not in payload:
        return _build_model(payload, path, device, dtype), dict(payload.get("metadata", {}))
    members = [_build_model(member, f"{path} (member {k})", device, dtype)
               for k, member in enumerate(payload["members"])]
    try:
        committee = Committee(members, payload.get("member_weights"))
    except ValueError as exc:
        raise CheckpointError(f"{path}: {exc}") from exc
    return committee.eval(), dict(payload.get("metadata", {}))


def _build_model(payload: dict, path, device, dtype) -> DeNSPotential:
    """One model from its ``model_config`` and ``model_state`` entries."""
    try:
        config = ModelConfig.from_dict(payload["model_config"])
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: invalid model config: {exc}") from exc
    state = dict(payload["model_state"])
    state.pop("atomic_energies", None)  # format-1 files from before E0s were read from the config
    model = DeNSPotential(config)
    stored = next((t.dtype for t in state.values() if t.is_floating_point()), None)
    if stored is not None:
        model = model.to(stored)  # load at full stored precision, convert afterwards
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not match the config: {exc}") from exc
    if dtype is not None:
        model = model.to(dtype)
    return model.to(device).eval()
