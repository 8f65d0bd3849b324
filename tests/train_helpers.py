"""Tiny labelled data (ASE EMT) and tiny training configs for the training tests."""

import numpy as np
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write

TINY_MODEL = {"r_max": 3.0, "num_channels": 8, "l_max": 1, "num_layers": 2, "radial_hidden": 8}


def emt_frames(n: int, *, symbol: str = "Cu", a: float = 3.6, seed: int = 0, stress: bool = True):
    """``n`` rattled 4-atom fcc cells labelled with EMT (energy, forces, stress)."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n):
        atoms = bulk(symbol, "fcc", a=a, cubic=True)
        atoms.rattle(0.1, seed=int(rng.integers(1_000_000)))
        atoms.calc = EMT()
        results = {"energy": atoms.get_potential_energy(), "forces": atoms.get_forces()}
        if stress:
            results["stress"] = atoms.get_stress()
        atoms.calc = SinglePointCalculator(atoms, **results)
        frames.append(atoms)
    return frames


def write_emt(path, n: int = 8, **kwargs):
    write(str(path), emt_frames(n, **kwargs))
    return path


def tiny_config(tmp_path, train_file, **overrides):
    from dens_calc.train import TrainConfig

    base = dict(train_file=str(train_file), valid_fraction=0.25, out_dir=str(tmp_path / "run"), model=dict(TINY_MODEL),
                max_epochs=2, batch_size=3, progress=False, dtype="float64", dens={"enabled": True, "p": 0.5, "ratio": 0.5})
    base.update(overrides)
    return TrainConfig.from_dict(base)


def emt_batch(n: int = 4, *, seed: int = 0, cutoff: float = 3.0):
    """A float64 training batch of ``n`` labelled EMT Cu cells (graphs with ``cutoff``)."""
    import torch

    from dens_calc.data import atoms_to_graph, collate, extract_labels

    return collate([atoms_to_graph(a, [29], cutoff, dtype=torch.float64, labels=extract_labels(a)[0])
                    for a in emt_frames(n, seed=seed)])
