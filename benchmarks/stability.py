#!/usr/bin/env python
"""MD stability check of a model: a long thermostatted run, then an NVE continuation.

Runs Langevin NVT at ``--temperature`` for ``--nvt-ps``, continues from the final positions and
velocities in NVE for ``--nve-ps``, and reports: whether the run finished (the MD guard stops it when
two atoms come closer than ``--min-distance``, checked every 10 steps), the smallest interatomic
distance over all recorded frames, the mean temperature, and the total-energy drift of the NVE part
(slope of a linear fit, meV/atom/ps).  Writes ``stability.json`` and the two MD folders to ``--out``.

    python benchmarks/stability.py --model models/si-zuo2020-small --system si64 --temperature 1000 \\
        --nvt-ps 20 --nve-ps 2 --timestep 1 --out runs/stability_si
    python benchmarks/stability.py --model models/3bpa-dens --system 3bpa --temperature 600 \\
        --nvt-ps 10 --nve-ps 2 --timestep 0.5 --out runs/stability_3bpa
    python benchmarks/stability.py --model models/mo-zuo2020-small --system bulk:Mo:3.168:3 --temperature 1000 \\
        --nvt-ps 5 --nve-ps 1 --timestep 1 --out runs/stability_mo
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
BPA_START = REPO.parent / "shared" / "data" / "3BPA" / "test_300K.xyz"


def build_system(name: str):
    import ase.io
    from ase.build import bulk

    if name == "si64":
        return bulk("Si", "diamond", a=5.47, cubic=True).repeat(2)
    if name.startswith("bulk:"):  # bulk:SYMBOL:A[:N] = ASE's cubic cell of SYMBOL at lattice constant A, N^3 copies
        _, symbol, a, *repeat = name.split(":")
        return bulk(symbol, a=float(a), cubic=True).repeat(int(repeat[0]) if repeat else 2)
    if name == "3bpa":
        atoms = ase.io.read(BPA_START, 0)
        atoms.calc = None
        return atoms
    return ase.io.read(name)


def min_distance(frames) -> float:
    from dens_calc.data.neighbors import pair_distances

    smallest = np.inf
    for atoms in frames:
        d = pair_distances(atoms, 3.0)  # any bond is shorter
        if d.size:
            smallest = min(smallest, float(d.min()))
    return smallest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--system", required=True,
                        help="si64, 3bpa, bulk:SYMBOL:A[:N] (cubic cell at lattice constant A, N×N×N) or a file")
    parser.add_argument("--temperature", type=float, required=True)
    parser.add_argument("--nvt-ps", type=float, required=True)
    parser.add_argument("--nve-ps", type=float, default=2.0)
    parser.add_argument("--timestep", type=float, default=0.5, help="fs")
    parser.add_argument("--friction", type=float, default=0.01, help="Langevin friction (1/fs)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"], help="of the NVT run")
    parser.add_argument("--nve-dtype", default="float64", choices=["float32", "float64"],
                        help="of the NVE continuation (float64 keeps round-off out of the drift)")
    parser.add_argument("--min-distance", type=float, default=0.7, help="Å; the run stops below it")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--interval", type=int, default=20)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    import ase.io
    import torch

    from dens_calc import DeNSCalculator
    from dens_calc.calculations.common import SimulationError
    from dens_calc.calculations.md import LOG_COLUMNS, run_md

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    atoms = build_system(args.system)
    atoms.calc = DeNSCalculator(args.model, device="cpu", dtype=args.dtype)
    report = {"model": args.model, "system": args.system, "natoms": len(atoms), "nvt_dtype": args.dtype,
              "nve_dtype": args.nve_dtype,
              "temperature_K": args.temperature, "timestep_fs": args.timestep, "date": time.strftime("%Y-%m-%d")}
    common = {"timestep_fs": args.timestep, "interval": args.interval, "min_distance_Ang": args.min_distance}
    t0 = time.perf_counter()
    try:
        nvt = run_md(atoms, ensemble="langevin", temperature_K=args.temperature, friction_per_fs=args.friction,
                     steps=round(args.nvt_ps * 1000 / args.timestep), out_dir=out / "nvt", **common)
        atoms.calc = DeNSCalculator(args.model, device="cpu", dtype=args.nve_dtype)
        nve = run_md(atoms, ensemble="nve", temperature_K=args.temperature, initial_velocities=False,
                     steps=round(args.nve_ps * 1000 / args.timestep), out_dir=out / "nve", **common)
    except SimulationError as exc:
        report.update(stable=False, error=str(exc))
    else:
        log = np.loadtxt(out / "nve" / "md.log", ndmin=2)
        time_ps, etot = log[:, LOG_COLUMNS.index("time_ps")], log[:, LOG_COLUMNS.index("Etot_eV")]
        slope = np.polyfit(time_ps, etot, 1)[0] / len(atoms)
        frames = ase.io.read(out / "nvt" / "md.extxyz", ":") + ase.io.read(out / "nve" / "md.extxyz", ":")
        report.update(
            stable=True,
            nvt_ps=nvt["time_ps"], nve_ps=nve["time_ps"],
            nvt_mean_temperature_K=nvt["mean_temperature_K"], nve_mean_temperature_K=nve["mean_temperature_K"],
            min_distance_Ang=min_distance(frames), frames_checked=len(frames),
            nve_drift_meV_per_atom_per_ps=1000 * slope,
            nve_etot_fluctuation_meV_per_atom=1000 * float(etot.std()) / len(atoms),
            nvt_steps_per_s=nvt["steps_per_s"],
        )
    report["wall_s"] = time.perf_counter() - t0
    out.mkdir(parents=True, exist_ok=True)
    (out / "stability.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
