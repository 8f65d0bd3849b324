"""Bundled models shipped in the repository's ``models/`` folder."""

from __future__ import annotations

import json
from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"


def bundled_models() -> dict[str, Path]:
    """Name -> checkpoint path of every bundled model (folders of ``models/`` with a model.pt)."""
    if not MODELS_DIR.is_dir():
        return {}
    return {p.parent.name: p for p in sorted(MODELS_DIR.glob("*/model.pt"))}


def bundled_model_path(name: str) -> Path | None:
    return bundled_models().get(name)


def bundled_model_info(name: str) -> dict:
    """The ``config.json`` of a bundled model (elements, cutoff, metadata such as test errors)."""
    path = bundled_models()[name].with_name("config.json")
    return json.loads(path.read_text()) if path.exists() else {}


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
    from .checkpoint import load_model, resolve_checkpoint, save_model

    model, metadata = load_model(resolve_checkpoint(run))
    errors: dict[str, float] = {}
    for tag, report in evals.items():
        errors.update(_short_metrics(json.loads(Path(report).read_text()), tag))
    metadata = {**metadata, **(extra_metadata or {}), "test_errors": errors, "test_set": test_set}
    return save_model(model, Path(models_dir or MODELS_DIR) / name, metadata=metadata)
