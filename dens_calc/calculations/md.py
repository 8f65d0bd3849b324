"""Molecular dynamics with ASE's integrators: NVE, Langevin, Nosé–Hoover chain NVT and MTK NPT.

Files written to ``out_dir`` (all readable while the run is going):

``md.extxyz``
    every ``interval`` steps: positions, momenta, energy, forces, stress (3-D periodic cells)
    and ``step``/``time_ps``/``temperature_K`` in ``atoms.info``; flushed after each frame.
``md.log``
    a whitespace-separated table (``numpy.loadtxt`` reads it): step, time (ps), E_pot, E_kin,
    E_tot (eV), T (K), P (GPa, NaN for non-periodic cells), V (Å³, NaN for non-periodic cells).
``md_restart.json``
    the full state at the last recorded step (positions, momenta, cell, integrator internals,
    random-number generator, step counter, file sizes) as JSON: :func:`run_md` with
    ``restart=True`` continues from it and reproduces the uninterrupted trajectory exactly.
``md_energy.png``, ``md_summary.yaml``
    written at the end (also when the guard stops the run).
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Literal, get_args

import numpy as np
from ase import Atoms, units
from ase.io import write

from ..data.neighbors import pair_distances
from ..files import atomic_write_text
from .common import UNITS, SimulationError, model_summary, results_frame
from .summary import write_summary

logger = logging.getLogger(__name__)

Ensemble = Literal["nve", "langevin", "nvt", "npt"]
Barostat = Literal["isotropic", "anisotropic"]

TRAJECTORY, LOG, RESTART, PLOT, SUMMARY = "md.extxyz", "md.log", "md_restart.json", "md_energy.png", "md_summary.yaml"
RESTART_FORMAT = 1
LOG_COLUMNS = ("step", "time_ps", "Epot_eV", "Ekin_eV", "Etot_eV", "T_K", "P_GPa", "V_Ang3")

# Integrator internals beyond positions/momenta/cell that a bit-exact restart needs.  ASE has no
# public API for thermostat/barostat state, so these are its (private) attribute names.
_INTEGRATOR_STATE = {
    "VelocityVerlet": (),
    "Langevin": (),  # its only state is the random-number generator, saved separately
    "NoseHooverChainNVT": ("_thermostat._eta", "_thermostat._p_eta"),
    "IsotropicMTKNPT": (
        "_eps", "_p_eps", "_cell0", "_volume0",
        "_thermostat._eta", "_thermostat._p_eta", "_barostat._xi", "_barostat._p_xi",
    ),
    "MTKNPT": ("_h", "_p_g", "_thermostat._eta", "_thermostat._p_eta", "_barostat._xi", "_barostat._p_xi"),
}
# run parameters that must not change when a run is continued
_RESTART_KEYS = ("ensemble", "timestep_fs", "temperature_K", "friction_per_fs", "pressure_GPa", "tdamp_fs",
                 "pdamp_fs", "barostat", "seed", "interval", "natoms")


def _validate(atoms: Atoms, params: dict, steps: int) -> None:
    if params["ensemble"] not in get_args(Ensemble):
        raise ValueError(f"ensemble must be one of {get_args(Ensemble)}, got {params['ensemble']!r}")
    if params["barostat"] not in get_args(Barostat):
        raise ValueError(f"barostat must be one of {get_args(Barostat)}, got {params['barostat']!r}")
    if not (isinstance(steps, (int, np.integer)) and steps >= 1):
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if not math.isfinite(params["temperature_K"]) or params["temperature_K"] < 0:
        raise ValueError(f"temperature must be >= 0 K, got {params['temperature_K']}")
    if not params["timestep_fs"] > 0:
        raise ValueError(f"timestep must be > 0 fs, got {params['timestep_fs']}")
    if params["interval"] < 1:
        raise ValueError(f"interval must be >= 1, got {params['interval']}")
    if params["ensemble"] == "langevin" and not params["friction_per_fs"] > 0:
        raise ValueError(f"friction must be > 0 1/fs, got {params['friction_per_fs']}")
    if params["ensemble"] in ("langevin", "nvt", "npt") and params["temperature_K"] <= 0:
        raise ValueError(f"the {params['ensemble']} thermostat needs a temperature > 0 K")
    if params["ensemble"] == "npt" and not atoms.pbc.all():
        raise ValueError("npt needs a cell that is periodic in all three directions")


def _make_dynamics(atoms: Atoms, params: dict, rng: np.random.Generator):
    """The ASE integrator for ``params['ensemble']`` (times converted from fs to ASE units)."""
    dt = params["timestep_fs"] * units.fs
    ensemble, temp = params["ensemble"], params["temperature_K"]
    tdamp = (params["tdamp_fs"] or 100 * params["timestep_fs"]) * units.fs
    pdamp = (params["pdamp_fs"] or 1000 * params["timestep_fs"]) * units.fs
    if ensemble == "nve":
        from ase.md.verlet import VelocityVerlet

        return VelocityVerlet(atoms, timestep=dt)
    if ensemble == "langevin":
        from ase.constraints import FixCom
        from ase.md.langevin import Langevin

        if not atoms.constraints:  # user constraints (e.g. FixAtoms) already pin the system: keep them
            atoms.set_constraint(FixCom())  # zero total momentum, as ASE recommends over fixcm=True
        friction = params["friction_per_fs"] / units.fs
        return Langevin(atoms, timestep=dt, temperature_K=temp, friction=friction, fixcm=False, rng=rng)
    from ase.md.nose_hoover_chain import IsotropicMTKNPT, MTKNPT, NoseHooverChainNVT

    if ensemble == "nvt":
        return NoseHooverChainNVT(atoms, timestep=dt, temperature_K=temp, tdamp=tdamp)
    cls = IsotropicMTKNPT if params["barostat"] == "isotropic" else MTKNPT
    return cls(atoms, timestep=dt, temperature_K=temp, pressure_au=params["pressure_GPa"] * units.GPa,
               tdamp=tdamp, pdamp=pdamp)


def _state_attrs(dyn) -> tuple[str, ...]:
    name = type(dyn).__name__
    if name not in _INTEGRATOR_STATE:
        raise SimulationError(f"no restart support for integrator {name}")
    return _INTEGRATOR_STATE[name]


def _get_attr(obj, dotted: str):
    for part in dotted.split("."):
        if not hasattr(obj, part):
            raise SimulationError(f"cannot save/restore {type(obj).__name__}.{part}: this ASE version lacks it")
        obj = getattr(obj, part)
    return obj


def _set_attr(obj, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    for part in parents:
        obj = getattr(obj, part)
    if not hasattr(obj, last):
        raise SimulationError(f"cannot restore {type(obj).__name__}.{last}: this ASE version lacks it")
    setattr(obj, last, value)


def _encode(value) -> dict:
    if isinstance(value, np.ndarray):
        return {"array": value.tolist()}
    return {"scalar": float(value)}


def _decode(item: dict):
    return np.array(item["array"], dtype=float) if "array" in item else float(item["scalar"])


def _atoms_state(atoms: Atoms) -> dict:
    return {
        "numbers": atoms.numbers.tolist(), "positions": atoms.positions.tolist(),
        "momenta": atoms.get_momenta().tolist(), "masses": atoms.get_masses().tolist(),
        "cell": atoms.cell.array.tolist(), "pbc": atoms.pbc.tolist(),
    }


def _save_restart(path: Path, dyn, atoms: Atoms, rng, params: dict, out_dir: Path) -> None:
    """Write the complete state as JSON (floats round-trip exactly) via a temp file + os.replace."""
    state = {
        "format": "dens-calc-md-restart", "format_version": RESTART_FORMAT, "step": int(dyn.nsteps),
        "params": params, "atoms": _atoms_state(atoms), "rng": rng.bit_generator.state,
        "integrator": {"class": type(dyn).__name__,
                       "state": {k: _encode(_get_attr(dyn, k)) for k in _state_attrs(dyn)}},
        "file_sizes": {name: (out_dir / name).stat().st_size for name in (TRAJECTORY, LOG)},
    }
    atomic_write_text(path, json.dumps(state))


def _load_restart(out_dir: Path, atoms: Atoms, params: dict) -> dict:
    path = out_dir / RESTART
    if not path.is_file():
        raise SimulationError(f"cannot restart: no {RESTART} in '{out_dir}'")
    try:
        state = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SimulationError(f"cannot restart: {path} is unreadable ({exc})") from exc
    if state.get("format") != "dens-calc-md-restart" or state.get("format_version", 99) > RESTART_FORMAT:
        raise SimulationError(f"cannot restart: {path} is not a dens-calc MD restart file of a supported version")
    changed = [f"{k} ({state['params'].get(k)} -> {params[k]})" for k in _RESTART_KEYS
               if state["params"].get(k) != params[k]]
    if changed:
        raise SimulationError(f"cannot restart with different settings: {', '.join(changed)}")
    if state["atoms"]["numbers"] != atoms.numbers.tolist():
        raise SimulationError("cannot restart: the structure's atoms differ from the saved run's")
    return state


def _restore(state: dict, atoms: Atoms, out_dir: Path) -> None:
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


def _restore_dynamics(dyn, state: dict, rng) -> None:
    if state["integrator"]["class"] != type(dyn).__name__:
        raise SimulationError(f"cannot restart a {state['integrator']['class']} run with {type(dyn).__name__}")
    for key, item in state["integrator"]["state"].items():
        _set_attr(dyn, key, _decode(item))
    rng.bit_generator.state = state["rng"]
    dyn.nsteps = int(state["step"])
    # integrators that cache positions/momenta at construction must see the restored ones
    for attr, value in (("_q", dyn.atoms.get_positions()), ("_p", dyn.atoms.get_momenta())):
        if hasattr(dyn, attr):
            setattr(dyn, attr, value)


def _pressure_GPa(atoms: Atoms) -> float:
    if not atoms.pbc.all():
        return float("nan")
    stress = atoms.get_stress(voigt=True, include_ideal_gas=True)
    return float(-stress[:3].mean() / units.GPa)


def _guard(atoms: Atoms, step: int, min_distance: float, max_temperature_K: float, check_distances: bool) -> None:
    """Stop the run (SimulationError) on non-finite values, atoms too close or a temperature runaway."""
    energy = atoms.get_potential_energy()
    if not (math.isfinite(energy) and np.isfinite(atoms.get_forces()).all() and np.isfinite(atoms.positions).all()):
        raise SimulationError(f"MD stopped at step {step}: non-finite energy, forces or positions")
    temperature = atoms.get_temperature()
    if temperature > max_temperature_K:
        raise SimulationError(
            f"MD stopped at step {step}: temperature {temperature:.0f} K exceeds the {max_temperature_K:.0f} K limit "
            "(runaway; try a smaller timestep)"
        )
    if check_distances and len(atoms) > 1:
        dist = pair_distances(atoms, min_distance)
        if len(dist):
            raise SimulationError(
                f"MD stopped at step {step}: two atoms are {dist.min():.3f} Å apart (< {min_distance} Å); "
                "the potential is being sampled far outside its training data"
            )


class _Recorder:
    """Writes trajectory frames, log rows and restart states; all files flushed as it goes."""

    def __init__(self, out_dir: Path | None, restart: bool):
        self.out_dir = out_dir
        self.rows: list[tuple] = []
        if out_dir is not None and not restart:
            (out_dir / TRAJECTORY).write_text("")
            header = " ".join(f"{c:>14s}" for c in LOG_COLUMNS)
            (out_dir / LOG).write_text("#" + header[1:] + "\n")

    def record(self, dyn, atoms: Atoms, rng, params: dict) -> tuple:
        step = int(dyn.nsteps)
        time_ps = step * params["timestep_fs"] / 1000.0
        epot, ekin = atoms.get_potential_energy(), atoms.get_kinetic_energy()
        volume = atoms.get_volume() if atoms.pbc.all() else float("nan")
        row = (step, time_ps, epot, ekin, epot + ekin, atoms.get_temperature(), _pressure_GPa(atoms), volume)
        self.rows.append(row)
        if self.out_dir is None:
            return row
        frame = results_frame(atoms, atoms.calc.results, {
            "step": step, "time_ps": time_ps, "temperature_K": row[5], "dens_units": UNITS,
        })
        frame.set_constraint()
        with open(self.out_dir / TRAJECTORY, "a") as handle:
            write(handle, frame, format="extxyz")
        with open(self.out_dir / LOG, "a") as handle:
            handle.write(f"{step:14d} " + " ".join(f"{v:14.8g}" for v in row[1:]) + "\n")
        _save_restart(self.out_dir / RESTART, dyn, atoms, rng, params, self.out_dir)
        return row


def plot_energies(log_path: str | Path, png_path: str | Path) -> Path:
    """Plot E_pot, E_tot and temperature against time from an ``md.log`` table."""
    from matplotlib.figure import Figure  # the object API: no pyplot, no process-wide backend

    data = np.atleast_2d(np.loadtxt(log_path))
    fig = Figure(figsize=(6, 5))
    ax_e, ax_t = fig.subplots(2, 1, sharex=True)
    ax_e.plot(data[:, 1], data[:, 2], label="E_pot")
    ax_e.plot(data[:, 1], data[:, 4], label="E_tot")
    ax_e.set_ylabel("energy (eV)")
    ax_e.legend()
    ax_t.plot(data[:, 1], data[:, 5], color="C3")
    ax_t.set_ylabel("T (K)")
    ax_t.set_xlabel("time (ps)")
    fig.tight_layout()
    fig.savefig(png_path, dpi=120)
    return Path(png_path)


def _maxwell_boltzmann(atoms: Atoms, temperature_K: float, rng) -> None:
    """Maxwell–Boltzmann momenta at ``temperature_K`` with zero total momentum."""
    from ase.md import velocitydistribution as vd

    if hasattr(vd, "thermalize_momenta"):  # ase >= 3.29
        vd.thermalize_momenta(atoms, temperature_K, rng=rng)
    else:
        vd.MaxwellBoltzmannDistribution(atoms, temperature_K=temperature_K, rng=rng)
    vd.Stationary(atoms)


def _progress_bar(enabled: bool, total: int, start: int, timestep_fs: float):
    from tqdm import tqdm

    return tqdm(total=total, initial=start, disable=not enabled, unit="step", dynamic_ncols=True,
                desc=f"MD ({timestep_fs} fs/step)")


def run_md(
    atoms: Atoms,
    calc=None,
    *,
    ensemble: Ensemble = "nve",
    temperature_K: float = 300.0,
    timestep_fs: float = 1.0,
    steps: int = 1000,
    friction_per_fs: float = 0.01,
    pressure_GPa: float = 0.0,
    tdamp_fs: float | None = None,
    pdamp_fs: float | None = None,
    barostat: Barostat = "isotropic",
    seed: int = 0,
    interval: int = 10,
    initial_velocities: bool = True,
    out_dir: str | Path | None = None,
    restart: bool = False,
    min_distance_Ang: float = 0.5,
    max_temperature_K: float | None = None,
    progress: bool = False,
    inputs: dict | None = None,
) -> dict:
    """Run molecular dynamics with an ASE integrator and a DeNS (or any ASE) calculator.

    Parameters
    ----------
    atoms
        The system; it is modified in place (positions, momenta, cell for NPT).
    calc
        The calculator; ``None`` keeps ``atoms.calc``.
    ensemble
        ``"nve"`` (velocity Verlet), ``"langevin"``, ``"nvt"`` (Nosé–Hoover chain) or ``"npt"``
        (MTK barostat with a Nosé–Hoover chain thermostat; ``barostat`` picks isotropic or
        anisotropic cell fluctuations).
    temperature_K
        Target temperature (K) and that of the Maxwell–Boltzmann initial velocities.
    timestep_fs, steps
        Time step (fs) and total number of steps (with ``restart``, the total including the
        steps already done).
    friction_per_fs
        Langevin friction (1/fs).
    pressure_GPa
        NPT external pressure (GPa).
    tdamp_fs, pdamp_fs
        Nosé–Hoover thermostat / MTK barostat time scales (fs); default 100 and 1000 time steps.
    seed
        Seeds the initial velocities and the Langevin noise.
    interval
        Record (trajectory frame, log row, restart state) every ``interval`` steps and at the end.
    initial_velocities
        Draw Maxwell–Boltzmann velocities with zero total momentum; ``False`` keeps the momenta
        that ``atoms`` carries.
    out_dir
        Where to write md.extxyz, md.log, md_restart.json, md_energy.png and md_summary.yaml
        (nothing is written when ``None``).
    restart
        Continue from ``out_dir/md_restart.json`` (same settings required) up to ``steps``.
    min_distance_Ang, max_temperature_K
        Guard: stop when two atoms come closer than this (Å) or the temperature exceeds this (K;
        default ten times ``max(temperature_K, 300)``).
    progress
        Show a tqdm progress bar with steps/s and ns/day.
    inputs
        Extra entries for the summary's ``inputs`` (e.g. the structure file name).

    Returns
    -------
    dict
        ``steps`` done in total, ``time_ps``, ``final`` (last log row as a dict), ``mean_temperature_K``,
        ``etot_drift_eV_per_atom`` (last minus first recorded E_tot this call, per atom),
        ``steps_per_s``, ``ns_per_day`` and ``files``.

    Raises
    ------
    ValueError
        For invalid settings.
    SimulationError
        When the guard stops the run (files written so far stay valid) or a restart is impossible.
    """
    if calc is not None:
        atoms.calc = calc
    params = {
        "ensemble": ensemble, "timestep_fs": float(timestep_fs), "temperature_K": float(temperature_K),
        "friction_per_fs": float(friction_per_fs), "pressure_GPa": float(pressure_GPa), "tdamp_fs": tdamp_fs,
        "pdamp_fs": pdamp_fs, "barostat": barostat, "seed": int(seed), "interval": int(interval),
        "natoms": len(atoms),
    }
    _validate(atoms, params, steps)
    if restart and out_dir is None:
        raise ValueError("restart needs out_dir (the folder of the run to continue)")
    out_dir = None if out_dir is None else Path(out_dir)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    max_temperature_K = max_temperature_K or 10.0 * max(temperature_K, 300.0)
    rng = np.random.default_rng(seed)

    state = _load_restart(out_dir, atoms, params) if restart else None
    if state is not None:
        _restore(state, atoms, out_dir)
        if state["step"] >= steps:
            raise SimulationError(f"nothing to do: the saved run is at step {state['step']} >= steps={steps}")
    elif initial_velocities:
        _maxwell_boltzmann(atoms, temperature_K, rng)
    dyn = _make_dynamics(atoms, params, rng)
    if state is not None:
        _restore_dynamics(dyn, state, rng)
    start = int(dyn.nsteps)
    recorder = _Recorder(out_dir, restart)
    logger.info("MD %s: %d atoms, %g fs, steps %d -> %d", ensemble, len(atoms), timestep_fs, start, steps)

    stop_message, t0 = None, time.perf_counter()
    bar = _progress_bar(progress, steps, start, timestep_fs)
    try:
        for _ in dyn.irun(steps - start):
            step = int(dyn.nsteps)
            if step == start and restart:
                continue  # the restored state was recorded by the previous run
            _guard(atoms, step, min_distance_Ang, max_temperature_K, step % min(interval, 10) == 0)
            if step % interval == 0 or step == steps:
                recorder.record(dyn, atoms, rng, params)
            if step > start:
                bar.update(1)
                if step % interval == 0:
                    rate = (step - start) / max(time.perf_counter() - t0, 1e-9)
                    bar.set_postfix(ns_per_day=f"{rate * timestep_fs * 1e-6 * 86400:.3g}", refresh=False)
    except SimulationError as exc:
        stop_message = str(exc)
    except RuntimeError as exc:  # DeNSCalculator raises RuntimeError for non-finite model outputs
        if "non-finite" not in str(exc):
            raise
        stop_message = f"MD stopped at step {dyn.nsteps + 1}: {exc}"
    finally:
        bar.close()
    elapsed = time.perf_counter() - t0

    rate = (int(dyn.nsteps) - start) / max(elapsed, 1e-9)
    rows = np.array(recorder.rows) if recorder.rows else np.full((1, len(LOG_COLUMNS)), np.nan)
    results = {
        "steps": int(rows[-1, 0]) if recorder.rows else start,
        "time_ps": float(rows[-1, 1]),
        "final": dict(zip(LOG_COLUMNS, rows[-1].tolist())),
        "mean_temperature_K": float(rows[:, 5].mean()),
        "etot_drift_eV_per_atom": float((rows[-1, 4] - rows[0, 4]) / len(atoms)),
        "steps_per_s": rate,
        "ns_per_day": rate * timestep_fs * 1e-6 * 86400,
        "stopped": stop_message,
        "files": {},
    }
    if out_dir is not None:
        results["files"] = _finish_files(out_dir, atoms, params, steps, restart, inputs, elapsed, results)
    if stop_message is not None:
        logger.error(stop_message)
        raise SimulationError(stop_message)
    return results


def _finish_files(out_dir: Path, atoms, params, steps, restart, inputs, elapsed, results) -> dict:
    files = {"trajectory": out_dir / TRAJECTORY, "log": out_dir / LOG, "restart": out_dir / RESTART}
    if (out_dir / LOG).stat().st_size and np.atleast_2d(np.loadtxt(out_dir / LOG)).size:
        files["plot"] = plot_energies(out_dir / LOG, out_dir / PLOT)
    files["summary"] = out_dir / SUMMARY
    summary_inputs = {**(inputs or {}), **params, "steps": steps, "restart": restart}
    model = model_summary(atoms.calc) if hasattr(atoms.calc, "species") else {"calculator": type(atoms.calc).__name__}
    write_summary(files["summary"], task="md", inputs=summary_inputs, model=model,
                  timings={"md": elapsed}, results={**results, "files": files})
    return {k: str(v) for k, v in files.items()}
