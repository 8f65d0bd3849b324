"""Molecular dynamics with ASE's integrators: NVE, Langevin, Nosé–Hoover chain NVT and MTK NPT.

Files written to ``out_dir`` (all readable while the run is going):

``md.extxyz``
    every ``interval`` steps: positions, momenta, energy, forces, stress (3-D periodic cells, where
    the model gives it)
    and ``step``/``time_ps``/``temperature_K`` in ``atoms.info``; flushed after each frame.
``md.log``
    a whitespace-separated table (``numpy.loadtxt`` reads it): step, time (ps), E_pot, E_kin,
    E_tot (eV), T (K), P (GPa; NaN for non-periodic cells and for models that give no stress, such
    as direct-force models), V (Å³, NaN for non-periodic cells).
``md_restart.json``
    the full state at the last recorded step (positions, momenta, cell, integrator internals,
    random-number generator, step counter, file sizes) as JSON: :func:`run_md` with
    ``restart=True`` continues from it and reproduces the uninterrupted trajectory exactly.
``md_energy.png``, ``md_summary.yaml``
    written at the end (also when the guard stops the run).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import numpy as np
from ase import Atoms, units
from ase.io import write

from ..calculators.dens import NonFiniteOutputError
from ..data.neighbors import pair_distances
from .common import UNITS, SimulationError, gives_stress, results_frame
from .md_restart import RESTART, RESTART_FORMAT, load_restart, restore_atoms, restore_dynamics, save_restart
from .summary import write_task_summary

logger = logging.getLogger(__name__)

Ensemble = Literal["nve", "langevin", "nvt", "npt"]
Barostat = Literal["isotropic", "anisotropic"]

TRAJECTORY, LOG, PLOT, SUMMARY = "md.extxyz", "md.log", "md_energy.png", "md_summary.yaml"
LOG_COLUMNS = ("step", "time_ps", "Epot_eV", "Ekin_eV", "Etot_eV", "T_K", "P_GPa", "V_Ang3")
__all__ = ["LOG_COLUMNS", "RESTART", "RESTART_FORMAT", "Barostat", "Ensemble", "MDConfig", "plot_energies", "run_md"]


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
    if params["ensemble"] == "npt" and not gives_stress(atoms.calc):
        raise ValueError("npt needs stress, which this model does not give (a direct-force model): use nve, "
                         "langevin or nvt, or a conservative model (dens-calc finetune --forces conservative)")


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
        from ase.md.langevin import Langevin

        friction = params["friction_per_fs"] / units.fs
        return Langevin(atoms, timestep=dt, temperature_K=temp, friction=friction, fixcm=False, rng=rng)
    from ase.md.nose_hoover_chain import MTKNPT, IsotropicMTKNPT, NoseHooverChainNVT

    if ensemble == "nvt":
        return NoseHooverChainNVT(atoms, timestep=dt, temperature_K=temp, tdamp=tdamp)
    cls = IsotropicMTKNPT if params["barostat"] == "isotropic" else MTKNPT
    return cls(atoms, timestep=dt, temperature_K=temp, pressure_au=params["pressure_GPa"] * units.GPa,
               tdamp=tdamp, pdamp=pdamp)


def _run_constraints(atoms: Atoms, params: dict) -> list:
    """The constraints during the run: the user's, and for Langevin without any a ``FixCom``."""
    if params["ensemble"] == "langevin" and not atoms.constraints:
        from ase.constraints import FixCom

        return [FixCom()]  # zero total momentum, as ASE recommends over fixcm=True
    return list(atoms.constraints)  # user constraints (e.g. FixAtoms) already pin the system: keep them


def _pressure_GPa(atoms: Atoms, with_stress: bool) -> float:
    if not with_stress:
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

    def __init__(self, out_dir: Path | None, restart: bool, with_stress: bool):
        self.out_dir, self.with_stress = out_dir, with_stress
        self.rows: list[tuple] = []
        self.spreads: list[float] = []  # a committee's energy std per recorded frame (eV/atom)
        if out_dir is not None and not restart:
            (out_dir / TRAJECTORY).write_text("")
            header = " ".join(f"{c:>14s}" for c in LOG_COLUMNS)
            (out_dir / LOG).write_text("#" + header[1:] + "\n")

    def record(self, dyn, atoms: Atoms, rng, params: dict) -> tuple:
        step = int(dyn.nsteps)
        time_ps = step * params["timestep_fs"] / 1000.0
        epot, ekin = atoms.get_potential_energy(), atoms.get_kinetic_energy()
        volume = atoms.get_volume() if atoms.pbc.all() else float("nan")
        pressure = _pressure_GPa(atoms, self.with_stress)
        row = (step, time_ps, epot, ekin, epot + ekin, atoms.get_temperature(), pressure, volume)
        self.rows.append(row)
        if "energy_std" in atoms.calc.results:
            self.spreads.append(atoms.calc.results["energy_std"] / len(atoms))
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
        save_restart(self.out_dir, dyn, atoms, rng, params, (TRAJECTORY, LOG))
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

    from ..runtime import progress_disabled

    return tqdm(total=total, initial=start, disable=progress_disabled(enabled), unit="step", dynamic_ncols=True,
                desc=f"MD ({timestep_fs} fs/step)")


@dataclass(frozen=True)
class MDConfig:
    """Settings of an MD run: saved in ``md_restart.json``, and a restart must keep them.

    Attributes
    ----------
    ensemble
        ``"nve"`` (velocity Verlet), ``"langevin"``, ``"nvt"`` (Nosé–Hoover chain) or ``"npt"``
        (MTK barostat with a Nosé–Hoover chain thermostat; ``barostat`` picks isotropic or
        anisotropic cell fluctuations).
    temperature_K
        Target temperature (K) and that of the Maxwell–Boltzmann initial velocities.
    timestep_fs
        Time step (fs).
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
    """

    ensemble: Ensemble = "nve"
    temperature_K: float = 300.0
    timestep_fs: float = 1.0
    friction_per_fs: float = 0.01
    pressure_GPa: float = 0.0
    tdamp_fs: float | None = None
    pdamp_fs: float | None = None
    barostat: Barostat = "isotropic"
    seed: int = 0
    interval: int = 10

    def params(self, natoms: int) -> dict:
        """The settings as the plain dict the restart file and summary store (with the atom count)."""
        return {
            "ensemble": self.ensemble, "timestep_fs": float(self.timestep_fs),
            "temperature_K": float(self.temperature_K), "friction_per_fs": float(self.friction_per_fs),
            "pressure_GPa": float(self.pressure_GPa), "tdamp_fs": self.tdamp_fs, "pdamp_fs": self.pdamp_fs,
            "barostat": self.barostat, "seed": int(self.seed), "interval": int(self.interval), "natoms": natoms,
        }


def run_md(atoms: Atoms, calc=None, *, ensemble: Ensemble = "nve", temperature_K: float = 300.0,
           timestep_fs: float = 1.0, steps: int = 1000, friction_per_fs: float = 0.01, pressure_GPa: float = 0.0,
           tdamp_fs: float | None = None, pdamp_fs: float | None = None, barostat: Barostat = "isotropic",
           seed: int = 0, interval: int = 10, initial_velocities: bool = True, out_dir: str | Path | None = None,
           restart: bool = False, min_distance_Ang: float = 0.5, max_temperature_K: float | None = None,
           progress: bool = False, inputs: dict | None = None) -> dict:
    """Run molecular dynamics with an ASE integrator and a DeNS (or any ASE) calculator.

    Parameters
    ----------
    atoms
        The system; it is modified in place (positions, momenta, cell for NPT; its constraints are
        restored at the end, also when the run fails).
    calc
        The calculator; ``None`` keeps ``atoms.calc``.
    ensemble, temperature_K, timestep_fs, friction_per_fs, pressure_GPa, tdamp_fs, pdamp_fs, barostat, seed, interval
        The run's settings: see :class:`MDConfig`.
    steps
        Total number of steps (with ``restart``, the total including the steps already done).
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
    progress, inputs
        Show a tqdm progress bar with steps/s and ns/day; extra entries for the summary's ``inputs``.

    Returns
    -------
    dict
        ``steps`` done in total, ``time_ps``, ``final`` (last log row as a dict), ``mean_temperature_K``,
        ``etot_drift_eV_per_atom`` (last minus first recorded E_tot this call, per atom),
        ``steps_per_s``, ``ns_per_day``, ``stopped`` and ``files``; with a committee also
        ``committee_energy_std_meV_atom`` (mean and max of its members' spread over the recorded frames; each
        trajectory frame carries its own as ``info["energy_std"]``, eV).

    Raises
    ------
    ValueError
        For invalid settings (also NPT with a model that gives no stress), before any step.
    SimulationError
        When the guard stops the run (files written so far stay valid) or a restart is impossible.
    """
    if calc is not None:
        atoms.calc = calc
    config = MDConfig(ensemble, temperature_K, timestep_fs, friction_per_fs, pressure_GPa, tdamp_fs, pdamp_fs,
                      barostat, seed, interval)
    params = config.params(len(atoms))
    _validate(atoms, params, steps)
    if restart and out_dir is None:
        raise ValueError("restart needs out_dir (the folder of the run to continue)")
    out_dir = None if out_dir is None else Path(out_dir)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    user_constraints = list(atoms.constraints)
    try:
        run = _prepare(atoms, params, steps=steps, out_dir=out_dir, restart=restart,
                       initial_velocities=initial_velocities, min_distance_Ang=min_distance_Ang,
                       max_temperature_K=max_temperature_K)
        logger.info("MD %s: %d atoms, %g fs, steps %d -> %d", ensemble, len(atoms), timestep_fs, run.start, steps)
        stop_message, elapsed = _integrate(run, progress)
    finally:
        atoms.set_constraint(user_constraints)  # the caller's Atoms keep their own constraints
    results = _results(run, elapsed, stop_message)
    if out_dir is not None:
        results["files"] = _report(out_dir, run, inputs, elapsed, results)
    if stop_message is not None:
        logger.error(stop_message)
        raise SimulationError(stop_message)
    return results

@dataclass
class _MDRun:
    """Everything the stepping loop and the report need."""

    atoms: Atoms
    dyn: object
    rng: np.random.Generator
    params: dict
    recorder: _Recorder
    steps: int
    start: int
    restart: bool
    min_distance_Ang: float
    max_temperature_K: float


def _prepare(atoms: Atoms, params: dict, *, steps: int, out_dir: Path | None, restart: bool,
             initial_velocities: bool, min_distance_Ang: float, max_temperature_K: float | None) -> _MDRun:
    """Restored or fresh state, the integrator and the recorder (``atoms`` carries the run's constraints)."""
    rng = np.random.default_rng(params["seed"])
    state = load_restart(out_dir, atoms, params) if restart else None
    if state is not None:
        restore_atoms(state, atoms, out_dir)
        if state["step"] >= steps:
            raise SimulationError(f"nothing to do: the saved run is at step {state['step']} >= steps={steps}")
    elif initial_velocities:
        _maxwell_boltzmann(atoms, params["temperature_K"], rng)
    atoms.set_constraint(_run_constraints(atoms, params))
    dyn = _make_dynamics(atoms, params, rng)
    if state is not None:
        restore_dynamics(dyn, state, rng)
    with_stress = bool(atoms.pbc.all()) and gives_stress(atoms.calc)
    if atoms.pbc.all() and not with_stress:
        logger.info("the model gives no stress (direct forces): the log has no pressure (NaN)")
    max_t = max_temperature_K or 10.0 * max(params["temperature_K"], 300.0)
    return _MDRun(atoms, dyn, rng, params, _Recorder(out_dir, restart, with_stress), steps, int(dyn.nsteps),
                  restart, min_distance_Ang, max_t)


def _integrate(run: _MDRun, progress: bool) -> tuple[str | None, float]:
    """Step to ``run.steps``, guarding and recording; returns why it stopped early (or None) and the time."""
    timestep_fs, interval = run.params["timestep_fs"], run.params["interval"]
    stop_message, t0 = None, time.perf_counter()
    bar = _progress_bar(progress, run.steps, run.start, timestep_fs)
    try:
        for _ in run.dyn.irun(run.steps - run.start):
            step = int(run.dyn.nsteps)
            if step == run.start and run.restart:
                continue  # the restored state was recorded by the previous run
            _guard(run.atoms, step, run.min_distance_Ang, run.max_temperature_K, step % min(interval, 10) == 0)
            if step % interval == 0 or step == run.steps:
                run.recorder.record(run.dyn, run.atoms, run.rng, run.params)
            if step > run.start:
                bar.update(1)
                if step % interval == 0:
                    rate = (step - run.start) / max(time.perf_counter() - t0, 1e-9)
                    bar.set_postfix(ns_per_day=f"{rate * timestep_fs * 1e-6 * 86400:.3g}", refresh=False)
    except SimulationError as exc:
        stop_message = str(exc)
    except NonFiniteOutputError as exc:
        stop_message = f"MD stopped at step {run.dyn.nsteps + 1}: {exc}"
    finally:
        bar.close()
    return stop_message, time.perf_counter() - t0


def _results(run: _MDRun, elapsed: float, stop_message: str | None) -> dict:
    rows = np.array(run.recorder.rows) if run.recorder.rows else np.full((1, len(LOG_COLUMNS)), np.nan)
    rate = (int(run.dyn.nsteps) - run.start) / max(elapsed, 1e-9)
    return {
        "steps": int(rows[-1, 0]) if run.recorder.rows else run.start,
        "time_ps": float(rows[-1, 1]),
        "final": dict(zip(LOG_COLUMNS, rows[-1].tolist())),
        "mean_temperature_K": float(rows[:, 5].mean()),
        "etot_drift_eV_per_atom": float((rows[-1, 4] - rows[0, 4]) / len(run.atoms)),
        "steps_per_s": rate,
        "ns_per_day": rate * run.params["timestep_fs"] * 1e-6 * 86400,
        "stopped": stop_message,
        "files": {},
        **_spread_summary(run.recorder.spreads),
    }


def _spread_summary(spreads: list[float]) -> dict:
    """A committee's energy spread over the recorded frames (meV/atom): a rise says the run left the kinds of
    structure its members were trained on."""
    if not spreads:
        return {}
    values = 1000.0 * np.asarray(spreads)
    return {"committee_energy_std_meV_atom": {"mean": float(values.mean()), "max": float(values.max())}}


def _report(out_dir: Path, run: _MDRun, inputs: dict | None, elapsed: float, results: dict) -> dict:
    """Energy plot and summary at the end of a run; returns the files written."""
    files = {"trajectory": out_dir / TRAJECTORY, "log": out_dir / LOG, "restart": out_dir / RESTART}
    if (out_dir / LOG).stat().st_size and np.atleast_2d(np.loadtxt(out_dir / LOG)).size:
        files["plot"] = plot_energies(out_dir / LOG, out_dir / PLOT)
    files = {k: str(v) for k, v in files.items()}
    files["summary"] = str(out_dir / SUMMARY)
    settings = {**run.params, "steps": run.steps, "restart": run.restart}
    write_task_summary(out_dir, SUMMARY, task="md", calc=run.atoms.calc, inputs=inputs, settings=settings,
                       timings={"md": elapsed}, results={**results, "files": files})
    return files
