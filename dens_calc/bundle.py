"""Copying a trained model into the repository's ``models/`` folder, with its test errors.

Kept apart from :mod:`dens_calc.models` (which only lists the bundled models) because it needs
:mod:`dens_calc.checkpoint`, which in turn resolves bundled model names through ``models``.
"""

from __future__ import annotations

import json
from pathlib import Path

from .checkpoint import load_model, resolve_checkpoint, save_model
from .models import MODELS_DIR


def _short_metrics(report: dict, tag: str) -> dict[str, float]:
    """``dens-calc eval --json`` metrics as flat ``<tag>_<E|F|S>_<mae|rmse>_<unit>`` entries."""
    names = {"energy_per_atom": ("E", "meV_atom"), "forces": ("F", "meV_A"), "stress": ("S", "meV_A3")}
    flat = {}
    for key, (short, unit) in names.items():
        if key in report.get("metrics", {}):
            for stat in ("mae", "rmse"):
                flat[f"{tag}_{short}_{stat}_{unit}"] = round(float(report["metrics"][key][stat]), 2)
    return flat


def bundle_model(run: str | Path, name: str, *, evals: dict[str, str | Path], test_set: str,
                 extra_metadata: dict | None = None, models_dir: str | Path | None = None) -> Path:
    """Copy a trained model into ``models/<name>/`` with its test errors in the metadata.

    ``evals`` maps a short tag (e.g. ``"test_300K"``) to a ``dens-calc eval --json`` report of the
    model; the errors land in ``metadata["test_errors"]`` (what ``dens-calc models`` lists).
    The model card ``README.md`` is written by hand next to it.
    """
    model, metadata = load_model(resolve_checkpoint(run))
    errors: dict[str, float] = {}
    for tag, report in evals.items():
        errors.update(_short_metrics(json.loads(Path(report).read_text()), tag))
    metadata = {**metadata, **(extra_metadata or {}), "test_errors": errors, "test_set": test_set}
    return save_model(model, Path(models_dir or MODELS_DIR) / name, metadata=metadata)
