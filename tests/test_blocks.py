"""The fast sparse kernels of the network blocks agree with their dense definitions."""

import pytest
import torch

from dens_calc.nn.blocks import RankedKernelProduct, SquareProduct
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


@pytest.mark.parametrize("rank", [1, 2])
def test_ranked_kernel_product_value_gradient_and_double_gradient(rank):
    torch.manual_seed(1)
    edges, d, channels = 3, 4, 2
    kernel = torch.randn(edges, d, rank * d, dtype=torch.float64, requires_grad=True)
    a = torch.randn(edges, rank, channels, dtype=torch.float64, requires_grad=True)
    h = torch.randn(edges, d, channels, dtype=torch.float64, requires_grad=True)
    expected = torch.einsum("ekgi,egc,eic->ekc", kernel.view(edges, d, rank, d), a, h)
    torch.testing.assert_close(RankedKernelProduct.apply(kernel, a, h), expected, rtol=1e-12, atol=1e-12)
    # the hand-written backward, and its own derivative (force training differentiates it again)
    assert torch.autograd.gradcheck(RankedKernelProduct.apply, (kernel, a, h))
    assert torch.autograd.gradgradcheck(RankedKernelProduct.apply, (kernel, a, h))


def test_ranked_kernel_product_in_place_backward_matches_graph_building_backward():
    torch.manual_seed(2)
    kernel = torch.randn(6, 4, 8, requires_grad=True)
    a, h = torch.randn(6, 2, 5, requires_grad=True), torch.randn(6, 4, 5, requires_grad=True)
    grad_out = torch.randn(6, 4, 5)
    out = RankedKernelProduct.apply(kernel, a, h)
    plain = torch.autograd.grad(out, (kernel, a, h), grad_out, retain_graph=True)
    with_graph = torch.autograd.grad(out, (kernel, a, h), grad_out, create_graph=True)
    for x, y in zip(plain, with_graph):
        torch.testing.assert_close(x, y.detach())


def test_ranked_kernel_product_blocked_over_edges_matches_one_block(monkeypatch):
    torch.manual_seed(3)
    kernel = torch.randn(11, 4, 8, dtype=torch.float64, requires_grad=True)
    a = torch.randn(11, 2, 5, dtype=torch.float64, requires_grad=True)
    h = torch.randn(11, 4, 5, dtype=torch.float64, requires_grad=True)
    grad_out = torch.randn(11, 4, 5, dtype=torch.float64)

    def value_and_grads():
        out = RankedKernelProduct.apply(kernel, a, h)
        return (out, *torch.autograd.grad(out, (kernel, a, h), grad_out))

    monkeypatch.setattr(RankedKernelProduct, "edge_block", 1000)
    one_block = value_and_grads()
    monkeypatch.setattr(RankedKernelProduct, "edge_block", 3)  # 11 edges: blocks of 3, 3, 3, 2
    for x, y in zip(value_and_grads(), one_block):
        torch.testing.assert_close(x, y, rtol=1e-12, atol=1e-12)


def test_ranked_kernel_product_accepts_non_contiguous_inputs():
    torch.manual_seed(4)
    kernel = torch.randn(5, 8, 4, dtype=torch.float64).transpose(1, 2).requires_grad_(True)  # [5, 4, 8], strided
    a = torch.randn(2, 5, 3, dtype=torch.float64).transpose(0, 1).requires_grad_(True)  # [5, 2, 3], strided
    h = torch.randn(5, 4, 3, dtype=torch.float64, requires_grad=True)
    expected = torch.einsum("ekgi,egc,eic->ekc", kernel.reshape(5, 4, 2, 4), a, h)
    torch.testing.assert_close(RankedKernelProduct.apply(kernel, a, h), expected, rtol=1e-12, atol=1e-12)
    assert torch.autograd.gradcheck(RankedKernelProduct.apply, (kernel, a, h))
    assert torch.autograd.gradgradcheck(RankedKernelProduct.apply, (kernel, a, h))
