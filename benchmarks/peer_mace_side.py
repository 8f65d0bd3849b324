#!/usr/bin/env python
"""Peer side of ``side_by_side.py``; runs in the MACE venv (/tmp/peers-venv), never in ours.

    peer_mace_side.py eval MODEL TEST.xyz [TEST.xyz ...]        # float64, E/F(/S) errors
    peer_mace_side.py time MODEL STRUCTURE.xyz --dtype float32  # median ms per E+F(+S) call
    peer_mace_side.py forces MODEL FRAMES.xyz OUT.npy           # float64 forces of every atom, stacked

Errors are computed exactly as ``dens_calc.train.evaluate.metrics`` does (meV, meV/atom, meV/Å per
component, meV/Å³ per Voigt component; stress in ASE's sign convention).  Prints one
``RESULT {json}`` line.  Standard library + numpy + ase + mace only.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import median_ms  # noqa: E402


def calculator(model: str, dtype: str):
    import mace  # noqa: F401  (before e3nn: makes e3nn 0.4.4 loadable on torch >= 2.6)
    from mace.calculators import MACECalculator

    return MACECalculator(model_paths=model, device="cpu", default_dtype=dtype)


def _errors(diff: np.ndarray, unit: str) -> dict:
    diff = 1000.0 * np.asarray(diff, float)
    return {"mae": float(np.mean(np.abs(diff))), "rmse": float(np.sqrt(np.mean(diff**2))), "count": int(diff.size),
            "unit": unit}


def evaluate(model: str, path: str) -> dict:
    import ase.io
    from ase.stress import full_3x3_to_voigt_6_stress

    calc = calculator(model, "float64")
    frames = ase.io.read(path, ":")
    d_e, d_ea, d_f, d_s = [], [], [], []
    for atoms in frames:
        info = atoms.info
        e_ref = info.get("REF_energy", None)
        e_ref = atoms.get_potential_energy() if e_ref is None else e_ref
        f_ref = atoms.arrays.get("REF_forces", None)
        f_ref = atoms.get_forces() if f_ref is None else f_ref
        s_ref = info.get("REF_stress", None)
        work = atoms.copy()
        work.calc = calc
        e = work.get_potential_energy()
        d_e.append(e - e_ref)
        d_ea.append((e - e_ref) / len(atoms))
        d_f.append((work.get_forces() - f_ref).ravel())
        if s_ref is not None and atoms.pbc.all():
            s_ref = np.asarray(s_ref, float)
            s_ref = full_3x3_to_voigt_6_stress(s_ref) if s_ref.shape in ((3, 3), (9,)) and s_ref.size == 9 else s_ref
            d_s.append(work.get_stress() - s_ref.reshape(6))
    out = {"energy": _errors(d_e, "meV"), "energy_per_atom": _errors(d_ea, "meV/atom"),
           "forces": _errors(np.concatenate(d_f), "meV/Å")}
    if d_s:
        out["stress"] = _errors(np.concatenate(d_s), "meV/Å³")
    return {"file": path, "structures": len(frames), "metrics": out}


def save_forces(model: str, path: str, out: str) -> dict:
    import ase.io

    calc = calculator(model, "float64")
    forces = []
    for atoms in ase.io.read(path, ":"):
        work = atoms.copy()
        work.calc = calc
        forces.append(work.get_forces())
    np.save(out, np.concatenate(forces))
    return {"file": path, "out": out, "atoms": int(sum(len(f) for f in forces))}


def time_calls(model: str, structure: str, dtype: str, calls: int) -> dict:
    import ase.io
    import torch

    torch.set_num_threads(2)
    atoms = ase.io.read(structure, 0)
    atoms.calc = calculator(model, dtype)
    # MACECalculator always computes stress as well
    ms = median_ms(lambda: atoms.calc.calculate(atoms, ["energy", "forces"], ["positions"]), calls, 3)
    params = sum(p.numel() for p in atoms.calc.models[0].parameters())
    return {"ms_per_call": ms, "atoms": len(atoms), "dtype": dtype, "threads": 2, "parameters": int(params)}


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    ev = sub.add_parser("eval")
    ev.add_argument("model")
    ev.add_argument("tests", nargs="+")
    tm = sub.add_parser("time")
    tm.add_argument("model")
    tm.add_argument("structure")
    tm.add_argument("--dtype", default="float32")
    tm.add_argument("--calls", type=int, default=30)
    fo = sub.add_parser("forces")
    fo.add_argument("model")
    fo.add_argument("frames")
    fo.add_argument("out")
    args = parser.parse_args()
    if args.command == "eval":
        result = [evaluate(args.model, path) for path in args.tests]
    elif args.command == "forces":
        result = save_forces(args.model, args.frames, args.out)
    else:
        result = time_calls(args.model, args.structure, args.dtype, args.calls)
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
