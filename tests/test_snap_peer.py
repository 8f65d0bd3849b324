"""benchmarks/snap_peer.py without LAMMPS: old SNAP parameter files made loadable, labels read, MAEs summed."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk

_spec = importlib.util.spec_from_file_location("snap_peer", Path(__file__).parents[1] / "benchmarks" / "snap_peer.py")
snap_peer = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(snap_peer)


def test_obsolete_keywords_are_dropped_and_the_rest_kept(tmp_path):
    param = tmp_path / "in" / "SNAPotential.snapparam"
    param.parent.mkdir()
    param.write_text("rcutfac 5.2\ntwojmax 6\n\ndiagonalstyle 3\nquadraticflag 1\nbzeroflag 0\n")
    out = snap_peer.modern_param_file(param, tmp_path)
    assert out.read_text().split("\n") == ["rcutfac 5.2", "twojmax 6", "quadraticflag 1", "bzeroflag 0", ""]


def test_labels_come_from_the_ref_keys_of_the_converted_files():
    atoms = bulk("Mo", "bcc", a=3.16, cubic=True)
    atoms.info["REF_energy"] = -21.7
    atoms.arrays["REF_forces"] = np.arange(6.0).reshape(2, 3)
    energy, forces = snap_peer.labels(atoms)
    assert energy == -21.7 and forces.tolist() == [[0, 1, 2], [3, 4, 5]]


def test_force_mae_is_over_all_components_not_a_mean_of_frame_means():
    rows = [{"config_type": "a", "atoms": 1, "energy_error_meV_atom": 2.0, "force_abs_sum_meV_A": 30.0},
            {"config_type": "b", "atoms": 3, "energy_error_meV_atom": -4.0, "force_abs_sum_meV_A": 180.0}]
    s = snap_peer.summary(rows)
    assert s["all"]["energy_mae_meV_atom"] == pytest.approx(3.0)
    assert s["all"]["force_mae_meV_A"] == pytest.approx(210.0 / 12)  # 17.5; the mean of frame means would be 15
    assert s["b"]["force_mae_meV_A"] == pytest.approx(180.0 / 9)
    assert set(s) == {"all", "a", "b"}
