"""Energies, forces and stresses of every frame of a file, in batched forward passes.

Results are stored under ``dens_``-prefixed keys so that reference labels already in the
file (e.g. DFT energies and forces) are kept side by side: ``atoms.info["dens_energy"]`` (eV),
``atoms.arrays["dens_forces"]`` (eV/Å), ``atoms.info["dens_stress"]`` (Voigt, eV/Å³, 3-D periodic
frames) and ``atoms.arrays["dens_energies"]`` (per-atom energies, eV).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.io import write

from .common import UNITS
from .summary import write_task_summary

logger = logging.getLogger(__name__)

OUTPUT, SUMMARY = "singlepoint.extxyz", "singlepoint_summary.yaml"


def run_singlepoint(
    structures: Atoms | Sequence[Atoms],
    calc,
    *,
    batch_size: int = 32,
    out_dir: str | Path | None = None,
    inputs: dict | None = None,
) -> dict:
    """Evaluate every structure with ``calc.batch_evaluate`` and attach the results.

    Parameters
    ----------
    structures
        One structure or a list of frames; each gets ``dens_*`` results in ``info``/``arrays``.
    calc
        A :class:`~dens_calc.DeNSCalculator`.
    batch_size
        Structures per forward pass.
    out_dir
        Where to write ``singlepoint.extxyz`` and ``singlepoint_summary.yaml`` (``None``: nothing).
    inputs
        Extra entries for the summary's ``inputs``.

    Returns
    -------
    dict
        ``frames``, ``energies_eV`` (one per frame), ``max_force_eV_per_Ang`` (per frame),
        ``seconds_per_frame`` and ``files``.
    """
    frames = [structures] if isinstance(structures, Atoms) else list(structures)
    if not frames:
        raise ValueError("no structures to evaluate")
    t0 = time.perf_counter()
    outputs = calc.batch_evaluate(frames, batch_size=batch_size)
    elapsed = time.perf_counter() - t0
    for atoms, res in zip(frames, outputs):
        atoms.info["dens_energy"] = float(res["energy"])
        atoms.arrays["dens_forces"] = np.asarray(res["forces"])
        atoms.arrays["dens_energies"] = np.asarray(res["energies"])
        if "stress" in res:
            atoms.info["dens_stress"] = np.asarray(res["stress"])
        atoms.info["dens_units"] = UNITS
    results = {
        "frames": len(frames),
        "energies_eV": [float(r["energy"]) for r in outputs],
        "max_force_eV_per_Ang": [float(np.linalg.norm(r["forces"], axis=1).max()) for r in outputs],
        "seconds_per_frame": elapsed / len(frames),
        "files": {},
    }
    logger.info("evaluated %d frames in %.3g s", len(frames), elapsed)
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        write(out_dir / OUTPUT, frames, format="extxyz")
        results["files"] = {"structures": str(out_dir / OUTPUT), "summary": str(out_dir / SUMMARY)}
        write_task_summary(out_dir, SUMMARY, task="singlepoint", calc=calc, inputs=inputs,
                           settings={"batch_size": batch_size}, timings={"evaluate": elapsed}, results=results)
    return results
