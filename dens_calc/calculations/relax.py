"""Geometry (and cell) relaxation with ASE's optimizers, FrechetCellFilter and FixSymmetry.

Files written to ``out_dir``: the relaxed structure (``<input stem>-relaxed<suffix>`` in the
input's format, or ``output_format``), ``relax.traj`` (ASE trajectory of every step),
``relax.log`` (the optimizer's log) and ``relax_summary.yaml``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Literal, get_args

import numpy as np
from ase import Atoms, units
from ase.io import write

from .common import UNITS, gives_stress, results_frame
from .summary import write_task_summary

logger = logging.getLogger(__name__)

Optimizer = Literal["FIRE", "BFGS", "LBFGS"]

TRAJECTORY, LOG, SUMMARY = "relax.traj", "relax.log", "relax_summary.yaml"
# suffixes for formats given by name whose usual file name ASE would not recognise
_SUFFIX = {"extxyz": ".xyz", "vasp": ".vasp", "espresso-in": ".pwi"}


def _optimizer_class(name: str):
    from ase import optimize

    if name.upper() not in {o.upper() for o in get_args(Optimizer)}:
        raise ValueError(f"optimizer must be one of {get_args(Optimizer)}, got {name!r}")
    return getattr(optimize, {o.upper(): o for o in get_args(Optimizer)}[name.upper()])


def relaxed_path(out_dir: Path, input_path: str | Path | None, output_format: str | None) -> tuple[Path, str]:
    """File name and ASE format of the relaxed structure (input format unless ``output_format``)."""
    from ase.io.formats import filetype

    if input_path is None:
        stem, suffix, fmt = "structure", ".xyz", output_format or "extxyz"
    else:
        input_path = Path(input_path)
        stem, suffix = input_path.stem or input_path.name, input_path.suffix
        fmt = output_format or filetype(input_path, read=False)
    if output_format is not None:
        suffix = _SUFFIX.get(output_format, f".{output_format}")
    return out_dir / f"{stem}-relaxed{suffix}", fmt


def run_relax(atoms: Atoms, calc=None, *, optimizer: Optimizer = "FIRE", fmax: float = 0.01, steps: int = 500,
              cell: bool = False, pressure_GPa: float = 0.0, fix_symmetry: bool = False,
              out_dir: str | Path | None = None, input_path: str | Path | None = None,
              output_format: str | None = None, inputs: dict | None = None) -> dict:
    """Relax atomic positions (and with ``cell`` the cell) until every force is below ``fmax``.

    Parameters
    ----------
    atoms
        The structure, relaxed in place (its constraints are restored at the end, also on failure).
    calc
        The calculator; ``None`` keeps ``atoms.calc``.
    optimizer
        ``"FIRE"``, ``"BFGS"`` or ``"LBFGS"`` (ASE's).
    fmax
        Convergence threshold on the largest atomic force (eV/Å); with ``cell`` also on the
        stress (``fmax`` eV/Å per atom, as FrechetCellFilter scales it).
    steps
        Maximum number of optimizer steps.
    cell
        Relax the cell too (``FrechetCellFilter``; needs a 3-D periodic cell and a model that gives stress).
    pressure_GPa
        External (scalar) pressure for the cell relaxation (GPa).
    fix_symmetry
        Keep the space group of the starting structure (ASE ``FixSymmetry``).
    out_dir, input_path, output_format
        Where to write files; the input file name and format name the relaxed structure;
        ``output_format`` overrides the format (any ``ase.io.write`` format).
    inputs
        Extra entries for the summary's ``inputs``.

    Returns
    -------
    dict
        ``converged``, ``steps``, ``energy_eV``, ``max_force_eV_per_Ang``, ``stress_eV_per_Ang3``
        (Voigt, 3-D periodic cells), ``volume_initial_Ang3``, ``volume_final_Ang3``,
        ``volume_change_percent`` and ``files``.
    """
    if calc is not None:
        atoms.calc = calc
    opt_class = _check_inputs(atoms, optimizer, fmax, steps, cell)
    out_dir = None if out_dir is None else Path(out_dir)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    results, elapsed = _optimize(atoms, opt_class, out_dir, fmax=fmax, steps=steps, cell=cell,
                                 pressure_GPa=pressure_GPa, fix_symmetry=fix_symmetry)
    results["files"] = {}
    if out_dir is not None:
        results["files"] = _write_outputs(atoms, out_dir, input_path, output_format)
        settings = {"optimizer": optimizer, "fmax": fmax, "steps": steps, "cell": cell,
                    "pressure_GPa": pressure_GPa, "fix_symmetry": fix_symmetry}
        results["files"]["summary"] = str(out_dir / SUMMARY)
        write_task_summary(out_dir, SUMMARY, task="relax", calc=atoms.calc, inputs=inputs, settings=settings,
                           timings={"relax": elapsed}, results=results)
    return results


def _check_inputs(atoms: Atoms, optimizer: str, fmax: float, steps: int, cell: bool):
    """The optimizer class, after checking every setting (nothing has run yet)."""
    opt_class = _optimizer_class(optimizer)
    if not fmax > 0:
        raise ValueError(f"fmax must be > 0 eV/Å, got {fmax}")
    if not (isinstance(steps, (int, np.integer)) and steps >= 1):
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if cell and not atoms.pbc.all():
        raise ValueError("a cell relaxation needs a cell that is periodic in all three directions")
    if cell and not gives_stress(atoms.calc):
        raise ValueError("a cell relaxation needs stress, which this model does not give (a direct-force model): "
                         "relax the positions only, or use a conservative model")
    return opt_class


def _optimize(atoms: Atoms, opt_class, out_dir: Path | None, *, fmax: float, steps: int, cell: bool,
              pressure_GPa: float, fix_symmetry: bool) -> tuple[dict, float]:
    """Run the optimizer; returns the results and the seconds it took.  The user's constraints come back
    in any case (results are taken before that, with the forces as the optimizer saw them)."""
    user_constraints = list(atoms.constraints)  # e.g. FixAtoms: kept, and restored afterwards
    volume0 = float(atoms.get_volume()) if atoms.pbc.all() else None
    kwargs = {"logfile": None}
    if out_dir is not None:
        kwargs = {"logfile": str(out_dir / LOG), "trajectory": str(out_dir / TRAJECTORY)}
    t0 = time.perf_counter()
    try:
        if fix_symmetry:
            from ase.constraints import FixSymmetry

            atoms.set_constraint([*user_constraints, FixSymmetry(atoms)])
        target = atoms
        if cell:
            from ase.filters import FrechetCellFilter

            target = FrechetCellFilter(atoms, scalar_pressure=pressure_GPa * units.GPa)
        with opt_class(target, **kwargs) as opt:
            converged = bool(opt.run(fmax=fmax, steps=steps))
            nsteps = int(opt.nsteps)
        elapsed = time.perf_counter() - t0
        return _results(atoms, converged, nsteps, volume0), elapsed
    finally:
        if fix_symmetry:
            atoms.set_constraint(user_constraints)


def _results(atoms: Atoms, converged: bool, nsteps: int, volume0: float | None) -> dict:
    forces = atoms.get_forces()
    results = {
        "converged": converged,
        "steps": nsteps,
        "energy_eV": float(atoms.get_potential_energy()),
        "max_force_eV_per_Ang": float(np.linalg.norm(forces, axis=1).max()),
    }
    if volume0 is not None:
        volume = float(atoms.get_volume())
        results.update(
            stress_eV_per_Ang3=atoms.get_stress().tolist(), volume_initial_Ang3=volume0, volume_final_Ang3=volume,
            volume_change_percent=100.0 * (volume / volume0 - 1.0),
        )
    logger.info("relaxation %s after %d steps: E = %.6f eV, max |F| = %.4g eV/Å",
                "converged" if converged else "NOT converged", nsteps, results["energy_eV"],
                results["max_force_eV_per_Ang"])
    return results


def _write_outputs(atoms: Atoms, out_dir: Path, input_path, output_format) -> dict:
    path, fmt = relaxed_path(out_dir, input_path, output_format)
    frame = results_frame(atoms, atoms.calc.results, {"dens_units": UNITS})
    try:
        write(path, frame, format=fmt)
    except (ValueError, TypeError, NotImplementedError) as exc:
        raise ValueError(f"cannot write the relaxed structure as '{fmt}': {exc}") from exc
    return {"structure": str(path), "trajectory": str(out_dir / TRAJECTORY), "log": str(out_dir / LOG)}
