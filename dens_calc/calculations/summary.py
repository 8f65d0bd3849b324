"""Run summaries: a YAML file with inputs, versions, model, timings and results."""

from __future__ import annotations

import datetime
import platform
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ..files import atomic_write_text
from .common import model_summary

def versions() -> dict[str, str]:
    """Versions of dens-calc and the libraries whose numbers end up in the results."""
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for dist in ("dens-calc", "torch", "e3nn", "ase", "phonopy", "numpy"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def to_plain(value: Any) -> Any:
    """Convert numpy scalars/arrays, paths and tuples into plain YAML-safe Python types."""
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value


def write_summary(path: str | Path, *, task: str, inputs: dict, model: dict, timings: dict, results: dict) -> Path:
    """Write ``summary.yaml``-style provenance for one run and return its path.

    Parameters
    ----------
    path
        The YAML file to write (replaced atomically).
    task
        ``"md"``, ``"relax"``, ``"phonons"`` or ``"singlepoint"``.
    inputs, model, timings, results
        Plain dicts (numpy values are converted); timings in seconds.
    """
    doc = {
        "task": task,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "versions": versions(),
        "inputs": inputs,
        "model": model,
        "timings_s": timings,
        "results": results,
    }
    return atomic_write_text(path, yaml.safe_dump(to_plain(doc), sort_keys=False))


def write_task_summary(out_dir: str | Path, filename: str, *, task: str, calc, inputs: dict | None, settings: dict,
                       timings: dict, results: dict) -> str:
    """The summary at the end of md, relax, phonons and singlepoint: the caller's ``inputs`` plus
    the task's ``settings``, what identifies ``calc``, timings and results; returns its path."""
    model = model_summary(calc) if hasattr(calc, "species") else {"calculator": type(calc).__name__}
    path = write_summary(Path(out_dir) / filename, task=task, inputs={**(inputs or {}), **settings}, model=model,
                         timings=timings, results=results)
    return str(path)
