"""Safe checkpoints: weights + a versioned JSON-able config, never pickled code.

A checkpoint is one file holding a dict of plain types and tensors, written with
``torch.save`` and read with ``torch.load(weights_only=True)``::

    {"format_version": 1, "dens_calc_version": "...", "model_config": {...},
     "model_state": {name: tensor}, "metadata": {...}, optional resume state}

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
    path = Path(path)
    target = path / CHECKPOINT_NAME if path.suffix != ".pt" else path
    payload = {
        "format_version": FORMAT_VERSION,
        "dens_calc_version": __version__,
        "model_config": model.config.to_dict(),
        "model_state": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "metadata": {"dtype": str(next(model.parameters()).dtype).removeprefix("torch."), **(metadata or {})},
    }
    if extra:
        payload.update(extra)
    atomic_torch_save(payload, target)
    if target.name == CHECKPOINT_NAME:
        config_json = {k: payload[k] for k in ("format_version", "dens_calc_version", "model_config", "metadata")}
        atomic_write_text(target.with_name("config.json"), json.dumps(config_json, indent=2, default=str))
    return target


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
    if not isinstance(payload, dict) or "format_version" not in payload or "model_state" not in payload:
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
    model = model.to(device).eval()
    return model, dict(payload.get("metadata", {}))
