"""DeNS model pieces: force encoding and the two vector heads."""

import torch

from dens_calc.data import atoms_to_graph, collate
from dens_calc.nn.model import evaluate
from dens_calc.testing import random_rotation


def _graph(model, atoms):
    return collate([atoms_to_graph(atoms, model.species, model.config.r_max, dtype=torch.float64)])


def test_no_encoded_atoms_equals_plain_model(model64, ethanol):
    """All-masked encoding must give exactly the model without encoding (fast first layer too)."""
    g = _graph(model64, ethanol)
    plain = evaluate(model64, g, vector_heads=True)
    forces = torch.randn(len(ethanol), 3, dtype=torch.float64)
    masked = evaluate(model64, g, encoded_forces=forces, encoding_mask=torch.zeros(len(ethanol), dtype=torch.bool), vector_heads=True)
    for key in ("energy", "forces", "direct_forces", "noise"):
        torch.testing.assert_close(plain[key], masked[key], rtol=0, atol=1e-12)


def test_encoding_changes_output_and_is_equivariant(model64, ethanol):
    g = _graph(model64, ethanol)
    forces = torch.randn(len(ethanol), 3, dtype=torch.float64)
    mask = torch.rand(len(ethanol)) < 0.5
    enc = evaluate(model64, g, encoded_forces=forces, encoding_mask=mask, vector_heads=True)
    plain = evaluate(model64, g, vector_heads=True)
    assert (enc["energy"] - plain["energy"]).abs().item() > 1e-6

    rot = torch.tensor(random_rotation(7), dtype=torch.float64)
    rotated = ethanol.copy()
    rotated.positions = ethanol.positions @ rot.numpy().T
    g_rot = _graph(model64, rotated)
    enc_rot = evaluate(model64, g_rot, encoded_forces=forces @ rot.T, encoding_mask=mask, vector_heads=True)
    torch.testing.assert_close(enc_rot["energy"], enc["energy"], rtol=1e-9, atol=1e-10)
    for key in ("forces", "direct_forces", "noise"):
        torch.testing.assert_close(enc_rot[key], enc[key] @ rot.T, rtol=1e-7, atol=1e-8)


def test_encoding_feature_definition(model64):
    """l = 0 feature is |f| / sqrt(3) times Y00 = 1 (component normalisation)."""
    enc = model64.force_encoding
    f = torch.tensor([[3.0, 0.0, 4.0]], dtype=torch.float64)
    out = enc(f, torch.ones(1, dtype=torch.bool))
    expected = 5.0 / 3**0.5 * enc.weight[0] + enc.bias
    torch.testing.assert_close(out[0, 0], expected)
    # l = 1 block is |f|/sqrt3 * sqrt3 * f_hat = f, times the weight
    torch.testing.assert_close(out[0, 1:4], f[0, :, None] * enc.weight[1])
