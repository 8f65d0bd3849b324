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


def is_pretrained(name: str) -> bool:
    """A bundled pretraining checkpoint (``hcno-xtb-pretrained``): a starting point for fine-tuning, with no
    DFT test set."""
    return name.endswith("-pretrained")


def bundled_model_path(name: str) -> Path | None:
    return bundled_models().get(name)


def bundled_model_info(name: str) -> dict:
    """The ``config.json`` of a bundled model (elements, cutoff, metadata such as test errors)."""
    path = bundled_models()[name].with_name("config.json")
    return json.loads(path.read_text()) if path.exists() else {}
