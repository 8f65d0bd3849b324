"""Physics assertions for any ASE calculator: equivariance, forces = -grad E, stress = strain
derivative (finite differences by ``ase.calculators.fd``), batching, extensivity, locality, cutoff.

Tolerances are relative to the largest magnitude compared (at least 1); :mod:`.contract` holds
the values per dtype.  No pytest needed: failures are ``AssertionError``.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.stress import full_3x3_to_voigt_6_stress, voigt_6_to_full_3x3_stress


def tiny_model(species=(1, 6, 7, 8, 14, 29), *, seed: int = 0, l_max: int = 2, channels: int = 8, r_max: float = 4.0,
               layers: int = 2, **config):
    """A small randomly initialised model for tests and examples (energies are meaningless).

    ``config``: further :class:`~dens_calc.nn.model.ModelConfig` fields (e.g. ``correlation=3``).
    """
    import torch

    from ..nn.model import DeNSPotential, ModelConfig

    torch.manual_seed(seed)
    cfg = ModelConfig(
        species=list(species), atomic_energies=[-0.1 * z for z in species], r_max=r_max, num_channels=channels,
        l_max=l_max, num_layers=layers, radial_hidden=16, avg_num_neighbors=10.0, **config,
    )
    model = DeNSPotential(cfg)
    # random init leaves the invariant readout tiny; make outputs O(1) so tests are sensitive
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1.5)
    return model.double()


def model_energy(atoms: Atoms, model, dtype: str = "float64") -> float:
    """Potential energy (eV) of a copy of ``atoms`` under ``model`` (a :class:`~dens_calc.nn.model.DeNSPotential`)."""
    from ..calculators.dens import DeNSCalculator

    a = atoms.copy()
    a.calc = DeNSCalculator(model, device="cpu", dtype=dtype)
    return float(a.get_potential_energy())


def random_rotation(seed: int = 0, improper: bool = False) -> np.ndarray:
    """A random 3x3 rotation matrix (times -1 for an improper rotation)."""
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    return -q if improper else q


def _evaluated(atoms: Atoms, calc) -> dict:
    """Energy, forces and (3-D periodic cells, where the calculator gives it) stress of a copy."""
    a = atoms.copy()
    a.calc = calc
    out = {"energy": a.get_potential_energy(), "forces": a.get_forces()}
    if atoms.pbc.all() and "stress" in a.calc.results:
        out["stress"] = a.get_stress()
    return out


def _close(actual, expected, rtol: float, what: str) -> None:
    actual, expected = np.asarray(actual, float), np.asarray(expected, float)
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=0, atol=rtol * scale, err_msg=what)


def _transformed(atoms: Atoms, rot: np.ndarray, shift: np.ndarray) -> Atoms:
    out = atoms.copy()
    out.positions = atoms.positions @ rot.T + shift
    if atoms.pbc.any():
        out.set_cell(atoms.cell.array @ rot.T, scale_atoms=False)
    return out


def assert_equivariant(atoms: Atoms, calc, *, rtol: float, seed: int = 0) -> None:
    """E invariant, F -> F R^T, stress -> R S R^T under rotations and reflections (with a
    translation), and E, F follow a permutation of the atoms."""
    ref = _evaluated(atoms, calc)
    rng = np.random.default_rng(seed)
    for improper in (False, True):
        rot = random_rotation(seed, improper=improper)
        got = _evaluated(_transformed(atoms, rot, rng.normal(size=3)), calc)
        kind = "reflection" if improper else "rotation"
        _close(got["energy"], ref["energy"], rtol, f"energy not invariant under a {kind}")
        _close(got["forces"], ref["forces"] @ rot.T, rtol, f"forces not equivariant under a {kind}")
        if "stress" in ref:
            expected = full_3x3_to_voigt_6_stress(rot @ voigt_6_to_full_3x3_stress(ref["stress"]) @ rot.T)
            _close(got["stress"], expected, rtol, f"stress not equivariant under a {kind}")
    order = rng.permutation(len(atoms))
    got = _evaluated(atoms[order], calc)
    _close(got["energy"], ref["energy"], rtol, "energy changes with the order of the atoms")
    _close(got["forces"], ref["forces"][order], rtol, "forces do not follow a permutation of the atoms")


def assert_rotation_equivariant(atoms: Atoms, calc, rot: np.ndarray, *, atol: float = 1e-8) -> None:
    """E invariant, F -> F R^T and stress -> R S R^T under one given rotation of the whole system."""
    ref, got = _evaluated(atoms, calc), _evaluated(_transformed(atoms, rot, np.zeros(3)), calc)
    _close(got["energy"], ref["energy"], atol, "energy not invariant")
    _close(got["forces"], ref["forces"] @ rot.T, atol, "forces not equivariant")
    if "stress" in ref:
        expected = full_3x3_to_voigt_6_stress(rot @ voigt_6_to_full_3x3_stress(ref["stress"]) @ rot.T)
        _close(got["stress"], expected, atol, "stress not equivariant")


def _relative_error(actual, expected) -> float:
    actual, expected = np.asarray(actual, float), np.asarray(expected, float)
    return float(np.abs(actual - expected).max() / max(np.abs(actual).max(), 1e-12))


def assert_forces_match_finite_differences(atoms: Atoms, calc, *, delta: float = 1e-4, rtol: float = 1e-6) -> None:
    """Forces equal the central-difference gradient of the energy (``ase.calculators.fd``)."""
    from ase.calculators.fd import calculate_numerical_forces

    a = atoms.copy()
    a.calc = calc
    forces, numeric = a.get_forces(), calculate_numerical_forces(a, eps=delta)
    rel = _relative_error(forces, numeric)
    assert rel < rtol, f"relative force error {rel:.2e} (max |F| {np.abs(forces).max():.3e})"


def assert_stress_matches_finite_differences(atoms: Atoms, calc, *, delta: float = 1e-5, rtol: float = 1e-5) -> None:
    """Stress equals (1/V) dE/d(strain) by central differences (``ase.calculators.fd``)."""
    from ase.calculators.fd import calculate_numerical_stress

    a = atoms.copy()
    a.calc = calc
    stress, numeric = a.get_stress(), calculate_numerical_stress(a, eps=delta)
    rel = _relative_error(stress, numeric)
    assert rel < rtol, f"relative stress error {rel:.2e}\nanalytic {stress}\nnumeric {numeric}"


def assert_batch_equals_single(structures: list[Atoms], calc, *, rtol: float) -> None:
    """``calc.batch_evaluate`` of several structures equals evaluating them one by one."""
    batched = calc.batch_evaluate(structures, batch_size=len(structures))
    for k, (atoms, got) in enumerate(zip(structures, batched)):
        ref = _evaluated(atoms, calc)
        for key, value in ref.items():
            _close(got[key], value, rtol, f"batched {key} of structure {k} differs from a single evaluation")


def assert_size_extensive(atoms: Atoms, calc, *, rtol: float) -> None:
    """A 2x1x1 supercell of a periodic structure: twice the energy, the same forces and stress."""
    ref, sup = _evaluated(atoms, calc), _evaluated(atoms.repeat((2, 1, 1)), calc)
    _close(sup["energy"], 2 * ref["energy"], rtol, "energy is not extensive")
    _close(sup["forces"], np.tile(ref["forces"], (2, 1)), rtol, "forces change in a supercell")
    if "stress" in ref:
        _close(sup["stress"], ref["stress"], rtol, "stress changes in a supercell")


def assert_separable(first: Atoms, second: Atoms, calc, *, rtol: float, distance_Ang: float = 40.0) -> None:
    """Two molecules far apart: energies add and forces are each molecule's own."""
    far = second.copy()
    far.positions += [distance_Ang, 0.0, 0.0]
    a, b, both = _evaluated(first, calc), _evaluated(second, calc), _evaluated(first + far, calc)
    _close(both["energy"], a["energy"] + b["energy"], rtol, "energies of distant molecules do not add")
    _close(both["forces"], np.vstack([a["forces"], b["forces"]]), rtol, "distant molecules feel each other")


def assert_smooth_at_cutoff(numbers: tuple[int, int], r_max: float, calc, *, rtol: float) -> None:
    """A dimer's energy and forces approach the separated atoms' continuously at ``r_max``."""
    def dimer(r):
        return _evaluated(Atoms(numbers=list(numbers), positions=[[0, 0, 0], [r, 0, 0]]), calc)

    inside, outside = dimer(r_max - 1e-3), dimer(r_max + 1e-3)
    apart = sum(_evaluated(Atoms(numbers=[z]), calc)["energy"] for z in numbers)
    _close(outside["energy"], apart, rtol, "atoms beyond the cutoff interact")
    _close(outside["forces"], np.zeros((2, 3)), rtol, "forces beyond the cutoff")
    _close(inside["energy"], outside["energy"], rtol, "energy jumps at the cutoff")
    _close(inside["forces"], np.zeros((2, 3)), 100 * rtol, "forces do not vanish at the cutoff")
