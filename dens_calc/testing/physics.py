"""Physics assertions: equivariance, forces = -grad E, stress = strain derivative."""

from __future__ import annotations

import numpy as np
from ase import Atoms


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


def random_rotation(seed: int = 0, improper: bool = False) -> np.ndarray:
    """A random 3x3 rotation matrix (times -1 for an improper rotation)."""
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    return -q if improper else q


def _rotated(atoms: Atoms, rot: np.ndarray) -> Atoms:
    out = atoms.copy()
    out.positions = atoms.positions @ rot.T
    if atoms.pbc.any():
        out.set_cell(atoms.cell.array @ rot.T, scale_atoms=False)
    return out


def assert_rotation_equivariant(atoms: Atoms, calc, rot: np.ndarray, *, atol: float = 1e-8) -> None:
    """E invariant, F -> F R^T and stress -> R S R^T under a rotation of the whole system."""
    from ase.stress import full_3x3_to_voigt_6_stress, voigt_6_to_full_3x3_stress

    a, b = atoms.copy(), _rotated(atoms, rot)
    a.calc, b.calc = calc, calc
    e_a, e_b = a.get_potential_energy(), b.get_potential_energy()
    assert abs(e_a - e_b) <= atol * max(1.0, abs(e_a)), f"energy not invariant: {e_a} vs {e_b}"
    f_a, f_b = a.get_forces(), b.get_forces()
    np.testing.assert_allclose(f_b, f_a @ rot.T, atol=atol * max(1.0, np.abs(f_a).max()))
    if atoms.pbc.all():
        s_a = voigt_6_to_full_3x3_stress(a.get_stress())
        expected = full_3x3_to_voigt_6_stress(rot @ s_a @ rot.T)
        np.testing.assert_allclose(b.get_stress(), expected, atol=atol * max(1.0, np.abs(s_a).max()))


def assert_forces_match_finite_differences(atoms: Atoms, calc, *, delta: float = 1e-4, rtol: float = 1e-6) -> None:
    """Forces equal the negative central-difference gradient of the energy (float64 models)."""
    a = atoms.copy()
    a.calc = calc
    forces = a.get_forces()
    numeric = np.zeros_like(forces)
    for i in range(len(a)):
        for k in range(3):
            pos = atoms.positions.copy()
            pos[i, k] += delta
            a.positions = pos
            e_plus = a.get_potential_energy()
            pos[i, k] -= 2 * delta
            a.positions = pos
            e_minus = a.get_potential_energy()
            numeric[i, k] = -(e_plus - e_minus) / (2 * delta)
    rel = np.abs(forces - numeric).max() / max(np.abs(forces).max(), 1e-12)
    assert rel < rtol, f"relative force error {rel:.2e} (max |F| {np.abs(forces).max():.3e})"


def assert_stress_matches_finite_differences(atoms: Atoms, calc, *, delta: float = 1e-5, rtol: float = 1e-5) -> None:
    """Stress equals (1/V) dE/d(strain) by central differences (ASE's numeric_stress)."""
    from ase.stress import voigt_6_to_full_3x3_stress

    a = atoms.copy()
    a.calc = calc
    stress = voigt_6_to_full_3x3_stress(a.get_stress())
    cell0, volume = atoms.cell.array.copy(), atoms.get_volume()
    numeric = np.zeros((3, 3))
    for i in range(3):
        for j in range(3):
            energies = []
            for sign in (1, -1):
                strain = np.eye(3)
                strain[i, j] += sign * delta
                a.set_cell(cell0 @ strain, scale_atoms=True)
                energies.append(a.get_potential_energy())
            numeric[i, j] = (energies[0] - energies[1]) / (2 * delta * volume)
    numeric = 0.5 * (numeric + numeric.T)
    scale = max(np.abs(stress).max(), 1e-12)
    rel = np.abs(stress - numeric).max() / scale
    assert rel < rtol, f"relative stress error {rel:.2e}\nanalytic\n{stress}\nnumeric\n{numeric}"
