#!/usr/bin/env python
"""How wrong are DeNS's clean-structure targets at the corrupted geometry?

Corrupts test frames as DeNS does (each atom picked with ratio r, moved by N(0, σ²)) and compares a
trained conservative model's energy and forces at the noisy geometry with those at the clean one: the
energy change is the error of the "clean energy" target, the force change on unpicked atoms the error of
their "clean forces" target.

    python benchmarks/dens_label_shift.py --model runs/ablation_aspirin/nodens \\
        ../shared/data/rmd17_aspirin/rmd17_aspirin_test.xyz --frames 50 --sigma 0.05 --ratio 0.25
"""

from __future__ import annotations

import argparse

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file")
    parser.add_argument("--model", required=True)
    parser.add_argument("--frames", type=int, default=50)
    parser.add_argument("--sigma", type=float, default=0.05)
    parser.add_argument("--ratio", type=float, default=0.25)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import ase.io

    from dens_calc import DeNSCalculator

    calc = DeNSCalculator(args.model, device="cpu", dtype="float64")
    rng = np.random.default_rng(args.seed)
    energy_shift, force_shift, force_max = [], [], []
    for atoms in ase.io.read(args.file, f":{args.frames}"):
        atoms.calc = None
        picked = rng.random(len(atoms)) < args.ratio
        if not picked.any() or picked.all():
            continue
        noisy = atoms.copy()
        noisy.positions[picked] += rng.normal(0.0, args.sigma, (int(picked.sum()), 3))
        clean, moved = calc.batch_evaluate([atoms, noisy])
        energy_shift.append(abs(moved["energy"] - clean["energy"]) / len(atoms))
        change = np.linalg.norm(moved["forces"][~picked] - clean["forces"][~picked], axis=1)
        force_shift.append(change.mean())
        force_max.append(change.max())
    print(f"{len(energy_shift)} frames, σ = {args.sigma} Å, r = {args.ratio}: |E(noisy) - E(clean)| mean "
          f"{1000 * np.mean(energy_shift):.1f} meV/atom (median {1000 * np.median(energy_shift):.1f}); force change "
          f"on unpicked atoms: mean |ΔF| {1000 * np.mean(force_shift):.0f} meV/Å, largest {1000 * max(force_max):.0f} meV/Å")


if __name__ == "__main__":
    main()
