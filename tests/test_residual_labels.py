"""benchmarks/residual_labels.py: base prediction + residual label = the original label, frame by frame."""

import importlib.util
from pathlib import Path

import numpy as np
from ase.build import bulk
from ase.io import write
from sim_helpers import one_thread  # noqa: F401  (tiny models: one thread is fastest)

from dens_calc.calculators import DeNSCalculator
from dens_calc.checkpoint import save_model
from dens_calc.testing import tiny_model

_spec = importlib.util.spec_from_file_location(
    "residual_labels", Path(__file__).parents[1] / "benchmarks" / "residual_labels.py")
residual_labels = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(residual_labels)


def test_base_plus_residual_gives_back_every_label(tmp_path):
    rng = np.random.default_rng(0)
    frames = []
    for k in range(3):
        atoms = bulk("Si", "diamond", a=5.43, cubic=True)
        atoms.rattle(0.05, seed=k)
        atoms.info.update(config_type="bulk", REF_energy=-40.0 + k, REF_stress=rng.normal(0, 0.01, (3, 3)))
        atoms.arrays["REF_forces"] = rng.normal(0, 0.5, (len(atoms), 3))
        atoms.info["dft_energy"] = 99.0  # a second label the reader would also accept: must not survive
        frames.append(atoms)
    write(tmp_path / "data.xyz", frames)
    base = save_model(tiny_model(species=(14,), r_max=3.0, seed=1), tmp_path / "base", metadata={"forces": "conservative"})
    residual = residual_labels.residual_frames(str(base), str(tmp_path / "data.xyz"))
    calc = DeNSCalculator(base, dtype="float64")
    for original, res in zip(frames, residual):
        atoms = original.copy()
        atoms.calc = calc
        assert res.info["config_type"] == "bulk" and "dft_energy" not in res.info
        np.testing.assert_allclose(atoms.get_potential_energy() + res.info["REF_energy"], original.info["REF_energy"],
                                   atol=1e-8)
        np.testing.assert_allclose(atoms.get_forces() + res.arrays["REF_forces"], original.arrays["REF_forces"], atol=1e-7)
        np.testing.assert_allclose(atoms.get_stress(voigt=False) + res.info["REF_stress"], original.info["REF_stress"],
                                   atol=1e-9)
