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


def test_stability_report_is_consistent(si_phonons):
    res, _ = si_phonons
    assert res["lowest_frequency_THz"] <= res["lowest_frequency_excluding_gamma_acoustic_THz"]
    expected = res["lowest_frequency_excluding_gamma_acoustic_THz"] >= -res["tolerance_THz"]
    assert res["dynamically_stable"] == expected


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
