"""Shared bits of the example scripts: the --model argument and a fallback tiny random model."""

from __future__ import annotations

import argparse
import logging


def parse_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--model", default=None,
                        help="checkpoint, model directory or bundled name (default: a bundled model covering "
                             "the elements, else a tiny random model that only demonstrates the workflow)")
    parser.add_argument("--out", default=None, help="output folder")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    return args


def calculator(atoms, model, device: str, dtype: str = "float64"):
    """The requested/bundled model; without one, a random tiny model (numbers are meaningless)."""
    from dens_calc import DeNSCalculator
    from dens_calc.calculations.common import ModelSelectionError, load_calculator
    from dens_calc.testing import tiny_model

    try:
        return load_calculator(atoms, model=model, device=device, dtype=dtype)
    except ModelSelectionError as exc:
        logging.warning("%s -- falling back to a tiny RANDOM model: the results only show the workflow", exc)
        return DeNSCalculator(tiny_model(), device=device, dtype=dtype)
