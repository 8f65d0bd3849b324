"""Reading labelled structures in many formats, label keys, E0s, and graph building."""

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, molecule
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.constraints import FixAtoms
from ase.io import write

from dens_calc.data import (
    DataError,
    LabelKeys,
    atoms_to_graph,
    check_labels,
    e0s_from_isolated_atoms,
    extract_labels,
    fit_e0s,
    neighbor_list,
    read_structures,
)


def _labelled_cu(seed=0):
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
    atoms.rattle(0.05, seed=seed)
    atoms.calc = EMT()
    atoms.get_potential_energy()
    atoms.get_stress()
    return atoms


@pytest.mark.parametrize("suffix, fmt", [(".xyz", "extxyz"), (".traj", "traj"), (".db", "db")])
def test_labels_round_trip_through_formats(tmp_path, suffix, fmt):
    frames = [_labelled_cu(k) for k in range(2)]
    path = tmp_path / f"frames{suffix}"
    write(path, frames, format=fmt)
    read = read_structures(path)
    labels = check_labels(read, path, need=("energy", "forces", "stress"))
    for atoms, lab in zip(frames, labels):
        assert lab["energy"] == pytest.approx(atoms.get_potential_energy(), abs=1e-8)
        np.testing.assert_allclose(lab["forces"], atoms.get_forces(), atol=1e-8)
        np.testing.assert_allclose(np.asarray(lab["stress"]).ravel()[:3], atoms.get_stress()[:3], atol=1e-8)


@pytest.mark.parametrize("fmt, name", [("cif", "s.cif"), ("vasp", "POSCAR")])
def test_structure_only_formats(tmp_path, fmt, name):
    write(tmp_path / name, bulk("Si", "diamond", a=5.43), format=fmt)
    (atoms,) = read_structures(tmp_path / name)
    assert len(atoms) == 2 and atoms.pbc.all()
    with pytest.raises(DataError, match="frame 0: missing 'energy'"):
        check_labels([atoms], tmp_path / name, need=("energy",))


def test_custom_and_ref_keys_and_virial():
    atoms = molecule("H2O")
    atoms.info["REF_energy"] = -14.2
    atoms.arrays["REF_forces"] = np.ones((3, 3))
    labels, sources = extract_labels(atoms)
    assert labels["energy"] == -14.2 and sources == {"energy": "REF_energy", "forces": "REF_forces"}
    atoms.info["my_e"] = 1.5
    labels, _ = extract_labels(atoms, LabelKeys(energy="my_e"))
    assert labels["energy"] == 1.5

    cell = Atoms("Cu", cell=[2.0, 2.0, 2.0], pbc=True)
    cell.info["virial"] = np.diag([8.0, 8.0, 8.0])  # eV; stress = -virial / V
    labels, _ = extract_labels(cell)
    np.testing.assert_allclose(labels["stress"], -np.eye(3))


def test_bad_labels_name_file_and_frame(tmp_path):
    good, bad = _labelled_cu(0), _labelled_cu(1)
    bad.calc = SinglePointCalculator(bad, energy=np.nan, forces=np.zeros((len(bad), 3)))
    with pytest.raises(DataError, match=r"x.xyz, frame 1: non-finite 'energy'"):
        check_labels([good, bad], "x.xyz", need=("energy", "forces"))
    mixed = molecule("H2O")
    mixed.info["REF_energy"] = 1.0
    mixed.arrays["REF_forces"] = np.zeros((3, 3))
    plain = molecule("H2O")
    plain.calc = SinglePointCalculator(plain, energy=1.0, forces=np.zeros((3, 3)))
    with pytest.raises(DataError, match="frame 1: label keys"):
        check_labels([mixed, plain], "m.xyz", need=("energy", "forces"))
    (tmp_path / "empty.xyz").write_text("")
    with pytest.raises(DataError, match="empty.xyz"):
        read_structures(tmp_path / "empty.xyz")
    with pytest.raises(DataError, match="no such file"):
        read_structures(tmp_path / "missing.xyz")


def test_fixed_atoms_are_reported():
    atoms = molecule("CH4")
    atoms.set_constraint(FixAtoms(indices=[0, 2]))
    labels, _ = extract_labels(atoms)
    assert labels["fixed"].tolist() == [True, False, True, False, False]


def test_e0s_from_file_and_least_squares(tmp_path):
    isolated = [Atoms("H"), Atoms("O")]
    for atoms, e in zip(isolated, (-13.6, -2041.0)):
        atoms.calc = SinglePointCalculator(atoms, energy=e)
    write(tmp_path / "iso.xyz", isolated)
    assert e0s_from_isolated_atoms(tmp_path / "iso.xyz", [1, 8]) == {1: -13.6, 8: -2041.0}
    with pytest.raises(DataError, match="no isolated-atom energy for C"):
        e0s_from_isolated_atoms(tmp_path / "iso.xyz", [1, 6, 8])
    frames = [molecule("H2O"), molecule("H2"), molecule("O2")]
    energies = [2 * -13.6 + -2041.0, 2 * -13.6, 2 * -2041.0]
    fitted = fit_e0s(frames, energies, [1, 8])
    assert fitted[1] == pytest.approx(-13.6) and fitted[8] == pytest.approx(-2041.0)


def test_neighbour_list_matches_ase_with_many_images():
    from ase.neighborlist import neighbor_list as ase_neighbor_list

    atoms = bulk("Cu", "fcc", a=3.6)  # primitive cell, 1 atom; 6 Å cutoff reaches many images
    atoms.rattle(0.02, seed=1)
    edge_index, shifts = neighbor_list(atoms, 6.0)
    i, d = ase_neighbor_list("id", atoms, 6.0)
    assert edge_index.shape[1] == len(i)
    vectors = atoms.positions[edge_index[0]] - atoms.positions[edge_index[1]] + shifts @ atoms.cell.array
    np.testing.assert_allclose(np.sort(np.linalg.norm(vectors, axis=1)), np.sort(d), atol=1e-10)


def test_graph_carries_labels_and_mixed_pbc():
    slab = bulk("Cu", "fcc", a=3.6, cubic=True)
    slab.pbc = [True, True, False]
    graph = atoms_to_graph(slab, [29], 4.0, dtype=torch.float64, labels={"energy": -1.0, "forces": np.zeros((4, 3))})
    assert graph.energy.dtype == torch.float64 and bool(graph.has_energy) and not bool(graph.has_stress)
    assert graph.pbc.tolist() == [[True, True, False]]
    assert graph.edge_index.shape[0] == 2 and graph.shifts[:, 2].abs().max() == 0


def test_pair_distances_match_ase_for_molecules_in_boxes_and_small_cells():
    import numpy as np
    from ase import Atoms
    from ase.build import bulk
    from ase.neighborlist import neighbor_list as ase_neighbor_list

    from dens_calc.data.neighbors import pair_distances

    water = Atoms("OH2", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]], cell=[50, 50, 50], pbc=False)
    for atoms, cutoff in ((water, 1.2), (bulk("Cu", "fcc", 3.6), 3.0), (bulk("Si", "diamond", 5.43), 4.0)):
        reference = np.sort(ase_neighbor_list("d", atoms, cutoff))[::2]  # ASE lists each pair twice
        np.testing.assert_allclose(np.sort(pair_distances(atoms, cutoff)), reference, atol=1e-10)


def test_one_structure_reader_and_one_element_check(tmp_path):
    from ase.build import bulk

    from dens_calc.calculations import common
    from dens_calc.data import StructureError, atoms_to_graph, check_elements, read_structures

    assert common.StructureError is StructureError and issubclass(StructureError, DataError)
    (tmp_path / "bad.xyz").write_text("not a structure\n1 2 3\n")
    for reader in (common.read_structure, read_structures):
        with pytest.raises(StructureError, match="missing.xyz: no such file"):
            reader(tmp_path / "missing.xyz")
        with pytest.raises(StructureError, match="bad.xyz: cannot read structures"):
            reader(tmp_path / "bad.xyz")
    expected = r"element\(s\) Cu not known to the model \(model elements: H, O\)"
    with pytest.raises(ValueError, match=expected):
        check_elements([bulk("Cu")], [1, 8])
    with pytest.raises(ValueError, match=expected):
        atoms_to_graph(bulk("Cu"), [1, 8], 3.0)
