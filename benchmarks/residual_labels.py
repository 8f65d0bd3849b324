#!/usr/bin/env python
"""Labels minus a base model's predictions: the training data of a Δ-model (base + residual network).

    python benchmarks/residual_labels.py --base runs/base/model.pt data/train.xyz data/valid.xyz --out-dir runs/delta

Writes ``<out-dir>/<name>`` for every input file, the same frames with ``REF_energy``, ``REF_forces`` and (where
labelled) ``REF_stress`` replaced by label − base prediction (float64, the calculator's conservative forces
and stress).  A network trained on those files and added to the base (``dens-calc committee BASE NET
--weights 1,1``) predicts the labels; the base's share of the energy surface is then
whatever it extrapolates well (e.g. a small, energy-first, local model), and the network learns the rest.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def residual_frames(base: str, path: str) -> list:
    """Frames of ``path`` whose labels are the label minus ``base``'s prediction."""
    from dens_calc.train.evaluate import predict_file

    frames, labels, results, _ = predict_file(base, path, dtype="float64")
    return minus_predictions(frames, labels, results)


def minus_predictions(frames, labels, results) -> list:
    """Copies of ``frames`` labelled with ``labels`` minus ``results`` (calculator-style dicts: energy, forces,
    Voigt stress), under REF_* keys."""
    from ase.stress import voigt_6_to_full_3x3_stress

    from dens_calc.data.labels import DEFAULT_KEYS

    # every key the label reader accepts goes, so that no original label survives beside its residual
    stale = {k.lower() for keys in DEFAULT_KEYS.values() for k in keys}
    out = []
    for atoms, lab, res in zip(frames, labels, results):
        new = atoms.copy()
        new.calc = None
        for store in (new.info, new.arrays):
            for key in [k for k in store if k.lower() in stale]:
                del store[key]
        new.info["REF_energy"] = float(lab["energy"] - res["energy"])
        if "forces" in lab:
            new.arrays["REF_forces"] = np.asarray(lab["forces"], float) - np.asarray(res["forces"], float)
        if "stress" in lab and "stress" in res:
            ref = np.asarray(lab["stress"], float)
            ref = ref if ref.shape == (3, 3) else voigt_6_to_full_3x3_stress(ref)
            new.info["REF_stress"] = ref - voigt_6_to_full_3x3_stress(np.asarray(res["stress"], float))
        out.append(new)
    return out


def main() -> None:
    from ase.io import write

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="the base model (checkpoint, model directory or bundled name)")
    parser.add_argument("files", nargs="+", help="labelled extxyz files")
    parser.add_argument("--out-dir", type=Path, required=True)
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for path in args.files:
        frames = residual_frames(args.base, path)
        target = args.out_dir / Path(path).name
        write(target, frames, format="extxyz")
        e = np.array([a.info["REF_energy"] / len(a) for a in frames]) * 1000
        print(f"{target}: {len(frames)} frames, residual energy {e.mean():+.2f} ± {e.std():.2f} meV/atom")


if __name__ == "__main__":
    main()
