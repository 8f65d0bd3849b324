"""Harmonic phonons by phonopy finite displacements, with forces from batched DeNS forwards.

The six phonopy steps, each a small function: build ``Phonopy`` (:func:`make_phonopy`),
generate displacements and compute their forces (:func:`displacement_forces`), produce force
constants (:func:`force_constants`), then band structure (:func:`bands`), DOS (:func:`dos`) and
thermal properties (:func:`thermal`), plus an imaginary-mode check (:func:`stability`).

Files written to ``out_dir``: ``phonopy_params.yaml`` (structure, displacements, forces and
force constants; ``phonopy.load`` reads it), ``band.yaml``, ``total_dos.dat`` (phonopy formats),
``thermal_properties.yaml``, ``band.png``, ``dos.png``, ``thermal_properties.png`` and
``phonons_summary.yaml``.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from ase import Atoms

from .common import SimulationError
from .summary import write_task_summary

logger = logging.getLogger(__name__)

SUMMARY = "phonons_summary.yaml"


def default_supercell(atoms: Atoms, min_length_Ang: float = 10.0) -> tuple[int, int, int]:
    """Smallest diagonal supercell whose three perpendicular widths are all ≥ ``min_length_Ang``."""
    widths = 1.0 / np.linalg.norm(atoms.cell.reciprocal(), axis=1)  # distances between opposite faces
    return tuple(max(1, math.ceil(min_length_Ang / w - 1e-8)) for w in widths)


def to_phonopy_atoms(atoms: Atoms):
    """ASE ``Atoms`` -> ``PhonopyAtoms`` (cell, fractional positions, symbols, masses)."""
    from phonopy.structure.atoms import PhonopyAtoms

    return PhonopyAtoms(symbols=atoms.get_chemical_symbols(), cell=atoms.cell.array,
                        scaled_positions=atoms.get_scaled_positions(), masses=atoms.get_masses())


def to_ase_atoms(cell) -> Atoms:
    """``PhonopyAtoms`` -> ASE ``Atoms`` (periodic)."""
    return Atoms(symbols=cell.symbols, cell=cell.cell, scaled_positions=cell.scaled_positions,
                 masses=cell.masses, pbc=True)


def make_phonopy(atoms: Atoms, supercell: Sequence[int]):
    """Step 1: a ``Phonopy`` object for ``atoms`` with a diagonal supercell and automatic primitive cell."""
    from phonopy import Phonopy

    try:  # phonopy >= 4 warns that "auto" may differ from v3's identity default; "auto" is our choice
        from phonopy.structure.cells import PrimitiveMatrixAutoDefaultWarning
    except ImportError:
        PrimitiveMatrixAutoDefaultWarning = None
    with warnings.catch_warnings():
        if PrimitiveMatrixAutoDefaultWarning is not None:
            warnings.simplefilter("ignore", PrimitiveMatrixAutoDefaultWarning)
        return Phonopy(to_phonopy_atoms(atoms), supercell_matrix=np.diag(supercell), primitive_matrix="auto")


def displacement_forces(phonon, calc, *, displacement_Ang: float, batch_size: int = 32) -> int:
    """Steps 2-3: generate displacements and set their forces (batched forwards); returns how many."""
    phonon.generate_displacements(distance=displacement_Ang)
    supercells = [to_ase_atoms(c) for c in phonon.supercells_with_displacements]
    results = calc.batch_evaluate(supercells, batch_size=batch_size, stress=False)
    phonon.forces = np.array([r["forces"] for r in results])
    return len(supercells)


def force_constants(phonon, *, symmetrize: bool = False) -> None:
    """Step 4: force constants from the displacement forces (optionally symmetrized)."""
    phonon.produce_force_constants(show_drift=False)
    if symmetrize:
        phonon.symmetrize_force_constants(show_drift=False)


def _band_paths(phonon, npoints: int):
    """Band q-points along seekpath's path if seekpath is installed, else along ASE's special-point path."""
    from phonopy.phonon.band_structure import get_band_qpoints_and_path_connections

    try:
        import seekpath  # noqa: F401
    except ImportError:
        seekpath = None
    if seekpath is not None:
        return None
    from ase.dft.kpoints import parse_path_string

    bandpath = to_ase_atoms(phonon.primitive).cell.bandpath(npoints=0)
    segments = parse_path_string(bandpath.path)
    paths = [[bandpath.special_points[label] for label in seg] for seg in segments]
    labels = ["$\\Gamma$" if label == "G" else label for seg in segments for label in seg]
    qpoints, connections = get_band_qpoints_and_path_connections(paths, npoints=npoints)
    return qpoints, connections, labels


def bands(phonon, *, npoints: int = 51):
    """Step 5a: band structure along an automatic path; returns phonopy's ``BandStructure``."""
    path = _band_paths(phonon, npoints)
    if path is None:
        phonon.auto_band_structure(npoints=npoints)
    else:
        qpoints, connections, labels = path
        phonon.run_band_structure(qpoints, path_connections=connections, labels=labels)
    return phonon.band_structure


def dos(phonon, *, mesh: float | Sequence[int] = 30.0):
    """Step 5b: Γ-centred mesh and total DOS; returns phonopy's ``TotalDos``."""
    phonon.run_mesh(mesh, is_gamma_center=True)
    phonon.run_total_dos()
    return phonon.total_dos


def thermal(phonon, *, t_min_K: float = 0.0, t_max_K: float = 1000.0, t_step_K: float = 10.0):
    """Step 6: F (kJ/mol), S and C_v (J/K/mol) against T (K) on the mesh of :func:`dos` (``ThermalProperties``)."""
    # the three zero-frequency acoustic modes at Γ carry no thermal weight
    phonon.run_thermal_properties(t_min=t_min_K, t_max=t_max_K, t_step=t_step_K, exclude_gamma_acoustic=True)
    return phonon.thermal_properties


def gamma_frequencies(phonon) -> np.ndarray:
    """The 3N frequencies (THz) at Γ, sorted (imaginary ones negative)."""
    phonon.run_qpoints([[0.0, 0.0, 0.0]])
    return np.asarray(phonon.qpoints.frequencies[0])


def stability(phonon, band, *, tolerance_THz: float = 0.05, gamma_radius: float = 0.05) -> dict:
    """Lowest frequency on the mesh and band path, and whether the structure is dynamically stable.

    The three acoustic modes (those closest to zero) at q-points within ``gamma_radius``
    (1/Å, without 2π) of Γ are excepted; anything else below ``-tolerance_THz`` makes the structure unstable.
    """
    qpoints = np.concatenate([phonon.mesh.qpoints, *band.qpoints])
    freqs = np.concatenate([phonon.mesh.frequencies, *band.frequencies])
    reciprocal = np.linalg.inv(phonon.primitive.cell).T  # rows: b_i with a_i . b_j = delta_ij
    near_gamma = np.linalg.norm(qpoints @ reciprocal, axis=1) < gamma_radius
    checked = freqs.copy()
    # acoustic modes near Γ: the three closest to zero (imaginary optical modes may lie below them)
    rows = np.flatnonzero(near_gamma)
    acoustic = np.argsort(np.abs(freqs[rows]), axis=1)[:, :3]
    checked[rows[:, None], acoustic] = np.inf
    lowest = int(np.argmin(checked.min(axis=1)))
    minimum = float(checked.min())
    return {
        "lowest_frequency_THz": float(freqs.min()),
        "lowest_frequency_excluding_gamma_acoustic_THz": minimum,
        "lowest_at_qpoint": qpoints[lowest].tolist(),
        "gamma_frequencies_THz": gamma_frequencies(phonon).tolist(),
        "dynamically_stable": bool(minimum >= -tolerance_THz),
        "tolerance_THz": tolerance_THz,
    }


def write_phonon_files(phonon, out_dir: Path, plots: bool = True) -> dict:
    """phonopy YAML/DAT files and PNG plots of bands, DOS and thermal properties."""
    files = {"params": out_dir / "phonopy_params.yaml", "band": out_dir / "band.yaml",
             "dos": out_dir / "total_dos.dat", "thermal": out_dir / "thermal_properties.yaml"}
    phonon.save(files["params"])
    phonon.write_yaml_band_structure(filename=files["band"])
    phonon.write_total_dos(filename=files["dos"])
    phonon.write_yaml_thermal_properties(filename=files["thermal"])
    if plots:  # phonopy plots through pyplot: the backend is the caller's (the CLI picks Agg)
        for name, plot in (("band", phonon.plot_band_structure), ("dos", phonon.plot_total_dos),
                           ("thermal_properties", phonon.plot_thermal_properties)):
            plt = plot()
            if name == "band":  # phonopy leaves the unit off the axis label
                plt.gcf().axes[0].set_ylabel("Frequency (THz)")
            files[f"{name}_plot"] = out_dir / f"{name}.png"
            plt.savefig(files[f"{name}_plot"], dpi=120)
            plt.close("all")
    return {k: str(v) for k, v in files.items()}


def run_phonons(atoms: Atoms, calc=None, *, supercell: Sequence[int] | None = None, min_length_Ang: float = 10.0,
                displacement_Ang: float = 0.01, relax: bool = False, relax_fmax: float = 0.01, relax_steps: int = 500,
                symmetrize: bool = False, npoints: int = 51, mesh: float | Sequence[int] = 30.0, t_min_K: float = 0.0,
                t_max_K: float = 1000.0, t_step_K: float = 10.0, tolerance_THz: float = 0.05, batch_size: int = 32,
                out_dir: str | Path | None = None, plots: bool = True, inputs: dict | None = None) -> dict:
    """Phonon band structure, DOS, thermal properties and a stability check with phonopy.

    Parameters
    ----------
    atoms
        A 3-D periodic structure (relaxed in place when ``relax``).
    calc
        The calculator; ``None`` keeps ``atoms.calc``.
    supercell
        Diagonal supercell, three integers; default: :func:`default_supercell` with ``min_length_Ang`` (Å).
    displacement_Ang
        Finite displacement (Å).
    relax, relax_fmax, relax_steps
        Relax the positions first (FIRE; ``relax_fmax`` in eV/Å); stops with an error if it does not converge.
    symmetrize
        Symmetrize the force constants (translational invariance and index permutation).
    npoints
        q-points per band-path segment.
    mesh
        Mesh for DOS/thermal properties: three integers or a length (Å) as phonopy takes it.
    t_min_K, t_max_K, t_step_K
        Temperatures of the thermal properties (K).
    tolerance_THz
        Imaginary frequencies (shown as negative) below ``-tolerance_THz`` flag instability.
    batch_size
        Displaced supercells per forward pass.
    out_dir, plots
        Where to write phonopy files, plots and the summary (``None``: nothing), and whether to plot.
    inputs
        Extra entries for the summary's ``inputs``.

    Returns
    -------
    dict
        ``supercell``, ``n_displacements``, ``n_branches``, the :func:`stability` entries,
        ``thermal_at_300K`` (F kJ/mol, S and C_v J/K/mol), ``phonopy`` (the Phonopy object,
        not written to the summary) and ``files``.
    """
    if calc is not None:
        atoms.calc = calc
    supercell = _checked_supercell(atoms, supercell, min_length_Ang, displacement_Ang)
    timings, t0 = {}, time.perf_counter()
    if relax:
        _relax_first(atoms, relax_fmax, relax_steps)
        timings["relax"] = time.perf_counter() - t0
    phonon = make_phonopy(atoms, supercell)
    t1 = time.perf_counter()
    n_disp = displacement_forces(phonon, atoms.calc, displacement_Ang=displacement_Ang, batch_size=batch_size)
    timings["forces"] = time.perf_counter() - t1
    force_constants(phonon, symmetrize=symmetrize)
    band = bands(phonon, npoints=npoints)
    dos(phonon, mesh=mesh)
    props = thermal(phonon, t_min_K=t_min_K, t_max_K=t_max_K, t_step_K=t_step_K)
    check = stability(phonon, band, tolerance_THz=tolerance_THz)
    timings["total"] = time.perf_counter() - t0
    results = _results(phonon, band, props, check, supercell, n_disp)
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        results["files"] = write_phonon_files(phonon, out_dir, plots)
        results["files"]["summary"] = str(out_dir / SUMMARY)
        settings = {"supercell": list(supercell), "displacement_Ang": displacement_Ang, "relax": relax,
                    "symmetrize": symmetrize, "mesh": mesh, "npoints": npoints, "tolerance_THz": tolerance_THz}
        write_task_summary(out_dir, SUMMARY, task="phonons", calc=atoms.calc, inputs=inputs, settings=settings,
                           timings=timings, results=results)
    results["phonopy"] = phonon
    return results


def _checked_supercell(atoms: Atoms, supercell, min_length_Ang: float, displacement_Ang: float) -> tuple[int, ...]:
    """The supercell to use, after checking the structure and settings (nothing has run yet)."""
    if not atoms.pbc.all():
        raise ValueError("phonons need a cell that is periodic in all three directions")
    if not displacement_Ang > 0:
        raise ValueError(f"displacement must be > 0 Å, got {displacement_Ang}")
    supercell = tuple(int(n) for n in (supercell or default_supercell(atoms, min_length_Ang)))
    if len(supercell) != 3 or min(supercell) < 1:
        raise ValueError(f"supercell must be three positive integers, got {supercell}")
    return supercell


def _relax_first(atoms: Atoms, fmax: float, steps: int) -> None:
    from .relax import run_relax

    relaxed = run_relax(atoms, fmax=fmax, steps=steps)
    if not relaxed["converged"]:
        raise SimulationError(f"the relaxation before phonons did not converge in {steps} steps")


def _results(phonon, band, props, check: dict, supercell: tuple[int, ...], n_disp: int) -> dict:
    (logger.info if check["dynamically_stable"] else logger.warning)(
        "lowest frequency %.4g THz (excluding acoustic modes near Γ: %.4g THz): %s", check["lowest_frequency_THz"],
        check["lowest_frequency_excluding_gamma_acoustic_THz"],
        "dynamically stable" if check["dynamically_stable"] else "DYNAMICALLY UNSTABLE")
    temps = np.asarray(props.temperatures)
    at300 = int(np.argmin(np.abs(temps - 300.0)))
    return {
        "supercell": list(supercell), "n_displacements": n_disp, "n_atoms_primitive": len(phonon.primitive),
        "n_branches": int(band.frequencies[0].shape[1]), **check,
        "thermal_at_300K": {"temperature_K": float(temps[at300]),
                            "free_energy_kJ_per_mol": float(props.free_energy[at300]),
                            "entropy_J_per_K_mol": float(props.entropy[at300]),
                            "heat_capacity_J_per_K_mol": float(props.heat_capacity[at300])},
        "files": {},
    }
