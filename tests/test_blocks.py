"""The fast sparse kernels of the network blocks agree with their dense definitions."""

import pytest
import torch

from dens_calc.nn.blocks import SquareProduct
from dens_calc.nn.irreps import square_coupling_table


@pytest.mark.parametrize("l_max", [1, 2, 3])
def test_square_product_equals_dense_coupling_table(l_max):
    torch.manual_seed(0)
    d, channels, species_count = (l_max + 1) ** 2, 5, 3
    block = SquareProduct(l_max, channels, species_count).double()
    a = torch.randn(7, d, channels, dtype=torch.float64)
    species = torch.tensor([0, 1, 2, 0, 1, 2, 2])
    paths, table = square_coupling_table(l_max)
    # B[n, k, c] = sum_p w[Z_n, p, c] sum_ij T[p, k, i, j] A[n, i, c] A[n, j, c]
    dense = table.view(len(paths), d, d, d)
    expected = torch.einsum("pkij,nic,njc,npc->nkc", dense, a, a, block.weight[species])
    torch.testing.assert_close(block(a, species), expected, rtol=1e-12, atol=1e-12)
