"""``md_restart.json``: the complete state of an MD run at its last recorded step, and continuing from it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from ase import Atoms

from ..files import atomic_write_text
from .common import SimulationError
from .md_state import integrator_state, restore_integrator_state

RESTART = "md_restart.json"
RESTART_FORMAT = 1
# run parameters that must not change when a run is continued
RESTART_KEYS = ("ensemble", "timestep_fs", "temperature_K", "friction_per_fs", "pressure_GPa", "tdamp_fs",
                "pdamp_fs", "barostat", "seed", "interval", "natoms")


def _atoms_state(atoms: Atoms) -> dict:
    return {
        "numbers": atoms.numbers.tolist(), "positions": atoms.positions.tolist(),
        "momenta": atoms.get_momenta().tolist(), "masses": atoms.get_masses().tolist(),
        "cell": atoms.cell.array.tolist(), "pbc": atoms.pbc.tolist(),
    }


def save_restart(out_dir: Path, dyn, atoms: Atoms, rng, params: dict, files: tuple[str, ...]) -> None:
    """Write the complete state as JSON (floats round-trip exactly), with the sizes of ``files``."""
    state = {
        "format": "dens-calc-md-restart", "format_version": RESTART_FORMAT, "step": int(dyn.nsteps),
        "params": params, "atoms": _atoms_state(atoms), "rng": rng.bit_generator.state,
        "integrator": integrator_state(dyn),
        "file_sizes": {name: (out_dir / name).stat().st_size for name in files},
    }
    atomic_write_text(out_dir / RESTART, json.dumps(state))


def load_restart(out_dir: Path, atoms: Atoms, params: dict) -> dict:
    """The saved state, checked against this run's settings and atoms (``SimulationError`` if it cannot go on)."""
    path = out_dir / RESTART
    if not path.is_file():
        raise SimulationError(f"cannot restart: no {RESTART} in '{out_dir}'")
    try:
        state = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SimulationError(f"cannot restart: {path} is unreadable ({exc})") from exc
    if state.get("format") != "dens-calc-md-restart" or state.get("format_version", 99) > RESTART_FORMAT:
        raise SimulationError(f"cannot restart: {path} is not a dens-calc MD restart file of a supported version")
    changed = [f"{k} ({state['params'].get(k)} -> {params[k]})" for k in RESTART_KEYS
               if state["params"].get(k) != params[k]]
    if changed:
        raise SimulationError(f"cannot restart with different settings: {', '.join(changed)}")
    if state["atoms"]["numbers"] != atoms.numbers.tolist():
        raise SimulationError("cannot restart: the structure's atoms differ from the saved run's")
    return state


def restore_atoms(state: dict, atoms: Atoms, out_dir: Path) -> None:
    """Positions, momenta, cell of ``atoms`` from a restart state; truncate files to the saved step."""
    saved = state["atoms"]
    atoms.set_cell(np.array(saved["cell"]), scale_atoms=False)
    atoms.pbc = saved["pbc"]
    if not np.array_equal(atoms.get_masses(), saved["masses"]):
        atoms.set_masses(np.array(saved["masses"]))
    atoms.set_positions(np.array(saved["positions"]), apply_constraint=False)
    atoms.set_momenta(np.array(saved["momenta"]), apply_constraint=False)
    for name, size in state["file_sizes"].items():
        with open(out_dir / name, "r+b") as handle:  # drop anything written after the saved step
            handle.truncate(size)


def restore_dynamics(dyn, state: dict, rng) -> None:
    """Integrator internals, random-number stream and step counter from a restart state."""
    restore_integrator_state(dyn, state["integrator"])
    rng.bit_generator.state = state["rng"]
    dyn.nsteps = int(state["step"])
