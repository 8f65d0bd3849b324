"""Phonons API: 3N branches, acoustic sum rule at Γ, files readable by phonopy."""

import numpy as np
import pytest
import yaml
from ase.build import bulk, molecule
from sim_helpers import calculator, one_thread  # noqa: F401

from dens_calc.calculations.phonons import default_supercell, run_phonons


@pytest.fixture(scope="module")
def si_phonons(tmp_path_factory):
    out = tmp_path_factory.mktemp("phonons")
    res = run_phonons(bulk("Si", "diamond", a=5.43), calculator(), supercell=(2, 2, 2), mesh=(6, 6, 6),
                      t_max_K=500, t_step_K=50, out_dir=out)
    return res, out


def test_branches_and_gamma_acoustic_modes(si_phonons):
    res, _ = si_phonons
    assert res["n_atoms_primitive"] == 2 and res["n_branches"] == 6  # 3N
    gamma = np.array(res["gamma_frequencies_THz"])
    assert gamma.shape == (6,)
    acoustic = np.sort(np.abs(gamma))[:3]
    assert acoustic.max() < 1e-3, gamma  # translation invariance: three zero modes at Γ
    assert res["n_displacements"] >= 1


def test_gamma_frequencies_match_ase_phonons(si_phonons, tmp_path):
    """An independent reference: ASE's own finite-difference phonons on the same model and supercell."""
    from ase import units
    from ase.phonons import Phonons

    res, _ = si_phonons
    reference = Phonons(bulk("Si", "diamond", a=5.43), calculator(), supercell=(2, 2, 2), delta=0.01,
                        name=str(tmp_path / "ase-phonons"))
    reference.run()
    reference.read(acoustic=True)
    energies_eV = reference.band_structure([[0.0, 0.0, 0.0]])[0]
    thz = np.sort(energies_eV / (units._hplanck / units._e) / 1e12)  # E = h nu
    optical = np.sort(res["gamma_frequencies_THz"])[3:]
    assert optical.min() > 0.1  # a real vibration, not three zeros again
    np.testing.assert_allclose(optical, thz[3:], rtol=1e-3)


class _Stub:
    """Just what :func:`stability` reads from phonopy, with hand-chosen frequencies (THz)."""

    def __init__(self, mesh_q, mesh_f, band_q, band_f):
        from types import SimpleNamespace

        self.mesh = SimpleNamespace(qpoints=np.array(mesh_q, float), frequencies=np.array(mesh_f, float))
        self.band = SimpleNamespace(qpoints=[np.array(band_q, float)], frequencies=[np.array(band_f, float)])
        self.primitive = SimpleNamespace(cell=np.eye(3) * 4.0)
        self.qpoints = SimpleNamespace(frequencies=np.array([mesh_f[0]], float))

    def run_qpoints(self, q):
        pass


@pytest.mark.parametrize("mesh_f, band_f, stable, lowest", [
    # slightly imaginary acoustic modes at Γ are excepted; an optical mode elsewhere is not
    ([[-0.02, 0.0, 0.01, 5.0, 5.0, 6.0], [1.0, 1.0, 2.0, 5.0, 5.0, 6.0]], [[0.5, 0.5, 1.0, 5.0, 5.0, 6.0]], True, 0.5),
    ([[0.0, 0.0, 0.0, 5.0, 5.0, 6.0], [-0.3, 1.0, 2.0, 5.0, 5.0, 6.0]], [[0.5, 0.5, 1.0, 5.0, 5.0, 6.0]], False, -0.3),
    # an imaginary optical mode at Γ, below the acoustic ones, is caught
    ([[-2.0, 0.0, 0.0, 0.01, 5.0, 6.0], [1.0, 1.0, 2.0, 5.0, 5.0, 6.0]], [[0.5, 0.5, 1.0, 5.0, 5.0, 6.0]], False, -2.0),
])
def test_stability_verdict_on_known_frequencies(mesh_f, band_f, stable, lowest):
    from dens_calc.calculations.phonons import stability

    stub = _Stub([[0, 0, 0], [0.5, 0, 0]], mesh_f, [[0.25, 0.25, 0]], band_f)
    check = stability(stub, stub.band, tolerance_THz=0.05)
    assert check["dynamically_stable"] is stable
    assert check["lowest_frequency_excluding_gamma_acoustic_THz"] == pytest.approx(lowest)


def test_files_readable_by_phonopy(si_phonons):
    import phonopy

    res, out = si_phonons
    loaded = phonopy.load(out / "phonopy_params.yaml")
    assert loaded.force_constants.shape[1:] == (16, 3, 3)
    band = yaml.safe_load((out / "band.yaml").read_text())
    assert band["natom"] == 2 and len(band["phonon"][0]["band"]) == 6
    thermal = yaml.safe_load((out / "thermal_properties.yaml").read_text())
    assert len(thermal["thermal_properties"]) == 11
    assert np.loadtxt(out / "total_dos.dat").shape[1] == 2
    for name in ("band.png", "dos.png", "thermal_properties.png"):
        assert (out / name).stat().st_size > 0
    summary = yaml.safe_load((out / "phonons_summary.yaml").read_text())
    assert summary["results"]["n_branches"] == 6 and "phonopy" not in summary["results"]


def test_default_supercell():
    assert default_supercell(bulk("Si", "diamond", a=5.43)) == (4, 4, 4)  # widths 3.13 Å
    assert default_supercell(bulk("Si", "diamond", a=5.43, cubic=True), 10.0) == (2, 2, 2)


def test_phonons_need_periodic_cell():
    with pytest.raises(ValueError, match="periodic"):
        run_phonons(molecule("H2O"), calculator())
