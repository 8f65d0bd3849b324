#!/usr/bin/env python
"""Lattice constant, bulk modulus and Γ phonons of an elemental crystal, for the model cards.

    python benchmarks/crystal_physics.py --model models/si-zuo2020-small --element Si --out runs/physics_si

The crystal is ASE's reference structure of the element (``ase.build.bulk(symbol, cubic=True)``: diamond
Si/Ge, fcc Cu/Ni, bcc Mo/Li), so the same command serves every bundled Zuo-2020 model.  Steps, all
float64 and with this package's own API (what ``dens-calc relax`` / ``phonons`` run):

1. relax the cubic cell with symmetry kept (``run_relax(cell=True, fix_symmetry=True)``) -> a;
2. energies at seven volumes within ±3 % strain of a, Birch–Murnaghan fit (``ase.eos``) -> B (GPa);
3. phonopy on a supercell of the relaxed conventional cell (``run_phonons``) -> frequencies at Γ
   (the largest is the optical mode of a diamond crystal) and the dynamical-stability check;
4. the DFT reference for B from the data itself: the Zuo-2020 "Elastic" cells (train and test files)
   strained by ±2 % (Li: ±1 %) along one axis give C11 and C12 by central differences of their PBE stresses,
   B = (C11 + 2 C12) / 3; the model's stresses on the very same cells give its own C11, C12, B.

Writes ``physics.json`` to ``--out`` and prints it.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np
from ase.build import bulk
from ase.eos import EquationOfState
from ase.units import GPa

from dens_calc import DeNSCalculator
from dens_calc.calculations.phonons import run_phonons
from dens_calc.calculations.relax import run_relax


def lattice_constant(atoms, fmax: float) -> float:
    result = run_relax(atoms, cell=True, fix_symmetry=True, fmax=fmax, steps=1000)
    if not result["converged"]:
        raise SystemExit(f"cell relaxation did not converge to fmax {fmax} eV/Å")
    return float(np.cbrt(atoms.get_volume()))  # cubic conventional cell


def bulk_modulus_GPa(atoms, calc, max_strain: float = 0.03, points: int = 7) -> dict:
    volumes, energies = [], []
    for s in np.linspace(-max_strain, max_strain, points):
        strained = atoms.copy()
        strained.set_cell(atoms.cell * (1.0 + s), scale_atoms=True)
        strained.calc = calc
        volumes.append(strained.get_volume())
        energies.append(strained.get_potential_energy())
    eos = EquationOfState(volumes, energies, eos="birchmurnaghan")
    v0, _, b = eos.fit()
    return {"B_GPa": float(b / GPa), "V0_A3_per_atom": float(v0 / len(atoms)), "max_strain": max_strain,
            "points": points}


ZUO = Path(__file__).resolve().parents[2] / "shared" / "data" / "zuo2020_mlearn" / "converted_extxyz"


def normal_strain_cells(element: str, max_strain: float = 0.02) -> tuple[float, dict[int, dict[float, object]]]:
    """(strain, axis -> {±strain: Atoms}) of the Zuo "Elastic" cells strained along one axis only.

    The strain is the largest one the data have at both signs on every axis, up to ``max_strain``
    (Si, Ge, Mo: 2 %; Li: 1 %), else on at least one axis (Cu, Ni: 2 %, along x only).
    """
    import ase.io

    cells: dict[float, dict[int, dict[float, object]]] = {}
    for name in (f"{element}_train.xyz", f"{element}_test.xyz"):
        for atoms in ase.io.read(ZUO / name, ":"):
            match = re.search(r"mode (\d+), strain ([-0-9.]+)", atoms.info.get("description", ""))
            if atoms.info.get("config_type") != "Elastic" or match is None:
                continue
            eps = float(match.group(2))
            if abs(eps) > max_strain + 1e-9 or not np.allclose(atoms.cell.angles(), 90.0):
                continue
            lengths = atoms.cell.lengths()
            axis = int(np.argmax(np.abs(lengths - np.median(lengths))))  # the one axis that differs
            cells.setdefault(round(abs(eps), 6), {}).setdefault(axis, {})[eps] = atoms
    pairs = {eps: {axis: p for axis, p in axes.items() if len(p) == 2} for eps, axes in cells.items()}
    complete = [eps for eps, axes in pairs.items() if len(axes) == 3]
    # a cubic crystal's axes are equivalent: one axis with both signs gives C11 and C12 (Cu, Ni: only mode 1 has ±2 %)
    complete = complete or [eps for eps, axes in pairs.items() if axes]
    if not complete:
        return 0.0, {}
    strain = max(complete)
    return strain, pairs[strain]


def cubic_moduli(cells: dict, stress_of, strain: float = 0.02) -> dict:
    """C11, C12, B (GPa) by central differences of ``stress_of(atoms)`` (ASE sign, Voigt, eV/Å³)."""
    c11, c12 = [], []
    for axis, pair in cells.items():
        d_sigma = (np.asarray(stress_of(pair[strain])) - np.asarray(stress_of(pair[-strain])))[:3] / (2 * strain)
        c11.append(d_sigma[axis])
        c12 += [d_sigma[k] for k in range(3) if k != axis]
    c11_gpa, c12_gpa = float(np.mean(c11)) / GPa, float(np.mean(c12)) / GPa
    return {"C11_GPa": c11_gpa, "C12_GPa": c12_gpa, "B_GPa": (c11_gpa + 2 * c12_gpa) / 3, "axes": len(cells)}


def elastic_reference(element: str, calc) -> dict:
    strain, cells = normal_strain_cells(element)
    if not cells:
        return {}

    def predicted(atoms):
        atoms = atoms.copy()
        atoms.calc = calc
        return atoms.get_stress(voigt=True)

    return {"cells": f"Zuo 2020 Elastic cells strained ±{100 * strain:g} % along one axis (train + test files)",
            "strain": strain, "dft": cubic_moduli(cells, lambda a: a.get_stress(voigt=True), strain),
            "model": cubic_moduli(cells, predicted, strain)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--element", required=True)
    parser.add_argument("--supercell", type=int, default=2, help="repeats of the conventional cell for phonons")
    parser.add_argument("--fmax", type=float, default=1e-3)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    calc = DeNSCalculator(args.model, dtype="float64")
    atoms = bulk(args.element, cubic=True)
    atoms.calc = calc
    a = lattice_constant(atoms, args.fmax)
    eos = bulk_modulus_GPa(atoms, calc)
    phon = run_phonons(atoms, calc, supercell=(args.supercell,) * 3, out_dir=args.out / "phonons")
    gamma = np.asarray(phon["gamma_frequencies_THz"])  # computed by its stability check
    result = {
        "model": args.model, "element": args.element, "structure": "ase.build.bulk(cubic=True)",
        "atoms_in_cell": len(atoms), "lattice_constant_A": a, **eos,
        "phonon_supercell": [args.supercell] * 3, "gamma_THz": [round(float(f), 4) for f in gamma],
        "gamma_max_THz": float(gamma.max()), "dynamically_stable": bool(phon["dynamically_stable"]),
        "lowest_frequency_THz": float(phon["lowest_frequency_THz"]),
        "elastic_vs_dft": elastic_reference(args.element, calc),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "physics.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
