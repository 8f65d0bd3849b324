"""The fast collate gives exactly what torch_geometric's Batch.from_data_list gives."""

import numpy as np
import pytest
import torch
from ase.build import bulk, molecule
from torch_geometric.data import Batch

from dens_calc.data import atoms_to_graph, collate


@pytest.mark.parametrize("with_labels", [False, True])
def test_collate_matches_from_data_list(with_labels):
    structures = [bulk("Cu", "fcc", a=3.6, cubic=True), molecule("H2O"), bulk("Cu", "fcc", a=3.6) * (2, 1, 1)]
    graphs = []
    for atoms in structures:
        labels = {"energy": 1.0, "forces": np.zeros((len(atoms), 3))} if with_labels else None
        graphs.append(atoms_to_graph(atoms, [1, 8, 29], 4.0, dtype=torch.float64, labels=labels))
    ours, ref = collate(graphs), Batch.from_data_list(graphs)
    assert sorted(ours.keys()) == sorted(ref.keys())
    assert ours.num_graphs == ref.num_graphs == 3
    for key in ref.keys():
        if torch.is_tensor(ref[key]):
            assert ours[key].dtype == ref[key].dtype and torch.equal(ours[key], ref[key]), key
        else:
            assert ours[key] == ref[key], key
