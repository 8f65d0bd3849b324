"""The power-spectrum invariants (``descriptor_l_max``): the model contract, and what the block computes."""

import numpy as np
import pytest
import torch

from dens_calc.testing import model_energy, tiny_model
from dens_calc.testing.contract import ModelContract


class TestPowerSpectrumModel(ModelContract):
    @pytest.fixture(scope="class")
    def model(self):
        return tiny_model(correlation=3, descriptor_l_max=6, descriptor_channels=3)


def _block(l_max=4, channels=3, species=2):
    from dens_calc.nn.blocks import PowerSpectrum

    torch.manual_seed(0)
    return PowerSpectrum(l_max, num_basis=5, radial_channels=channels, num_species=species, out_channels=4,
                         avg_num_neighbors=4.0).double()


def _inputs(vectors, species_of_sender):
    from dens_calc.nn.blocks import BesselBasis

    vectors = torch.as_tensor(vectors, dtype=torch.float64)
    basis = BesselBasis(4.0, 5).double()(vectors.norm(dim=-1))
    sender = torch.arange(1, len(vectors) + 1)
    species = torch.tensor([0, *species_of_sender])
    receiver = torch.zeros(len(vectors), dtype=torch.long)
    return vectors, basis, species, sender, receiver


def test_power_spectrum_matches_its_definition():
    # p[k, k', l] = sum_m c[k, lm] c[k', lm] / (2l + 1), written out for one atom with three neighbours
    from e3nn import o3

    block = _block()
    vectors = [[1.1, 0.3, -0.4], [-0.2, 1.9, 0.5], [0.7, -0.8, 2.2]]
    vec, basis, species, sender, receiver = _inputs(vectors, [0, 1, 1])
    with torch.no_grad():
        block.linear.weight.copy_(torch.eye(4, block.linear.in_features, dtype=torch.float64))
        out = block(vec, basis, species, sender, receiver, num_nodes=4)
        radial = torch.stack([basis[e] @ block.radial[species[sender[e]]] for e in range(3)])  # [E, K]
        sh = o3.spherical_harmonics(list(range(5)), vec, normalize=True, normalization="component")
        c = (radial[:, :, None] * sh[:, None, :]).sum(0) / 2.0  # 1 / sqrt(avg_num_neighbors)
        c0 = c[:, 0]
        expected = [c0[0] * c0[0], c0[0] * c0[1], c0[0] * c0[2], c0[1] * c0[1]]  # l = 0, upper triangle
    assert torch.allclose(out[0], torch.stack(expected), atol=1e-12)
    # atoms that receive no edge get exactly zero
    assert torch.equal(out[1:], torch.zeros_like(out[1:]))


def test_power_spectrum_sees_angles_beyond_the_network_l_max():
    # two neighbour shells that differ only in their l = 4 content: a cube's 8 corners and an octahedron's 6
    # vertices scaled so both have the same l = 0 density; a model whose scalars saw l <= 2 only could not
    # tell them apart by these invariants at l <= 2, the power spectrum at l = 4 does
    cube = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)]) / np.sqrt(3) * 2.0
    octa = np.concatenate([np.eye(3), -np.eye(3)]) * 2.0
    block = _block(channels=1, species=1)
    block.linear = torch.nn.Identity()  # the raw invariants: one radial channel, l = 0..4
    feats = []
    for shell in (cube, octa):
        vec, basis, species, sender, receiver = _inputs(shell, [0] * len(shell))
        with torch.no_grad():
            feats.append(block(vec, basis, species, sender, receiver, num_nodes=1)[0])
    cube_p, octa_p = (f / f[0] for f in feats)  # normalise by the l = 0 invariant: shell size drops out
    assert torch.allclose(cube_p[1:4], octa_p[1:4], atol=1e-12)  # both have no l = 1, 2, 3 content
    assert abs(cube_p[4] - octa_p[4]) > 1e-3


def test_descriptor_model_energy_changes_and_zero_map_gives_the_plain_model(ethanol):
    plain = tiny_model(seed=4)
    with_descriptor = tiny_model(seed=4, descriptor_l_max=6)
    extra = set(with_descriptor.state_dict()) - set(plain.state_dict())
    assert extra and all(k.startswith("descriptor.") for k in extra)
    with_descriptor.load_state_dict({**with_descriptor.state_dict(), **plain.state_dict()})
    energies = [model_energy(ethanol, model) for model in (plain, with_descriptor)]
    assert abs(energies[0] - energies[1]) > 1e-6
    with torch.no_grad():
        with_descriptor.descriptor.linear.weight.zero_()
    assert model_energy(ethanol, with_descriptor) == pytest.approx(energies[0], abs=1e-10)


def test_descriptor_config_is_validated():
    from dens_calc.nn.model import ModelConfig

    with pytest.raises(ValueError, match="descriptor_l_max"):
        ModelConfig(species=[1], atomic_energies=[0.0], descriptor_l_max=9)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_polynomial_harmonics_equal_e3nn(dtype):
    from e3nn import o3

    from dens_calc.nn.blocks import spherical_harmonics_polynomial

    vectors = torch.randn(50, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 3.0
    expected = o3.spherical_harmonics(list(range(7)), vectors, normalize=True, normalization="component")
    actual = spherical_harmonics_polynomial(vectors.to(dtype), 6).double()
    assert torch.allclose(actual, expected, atol=1e-10 if dtype == torch.float64 else 2e-5)


def test_descriptor_model_round_trips_through_a_checkpoint(tmp_path, si_cell):
    from dens_calc.checkpoint import load_model, save_model

    model = tiny_model(species=(14,), descriptor_l_max=6, descriptor_channels=2)
    save_model(model, tmp_path / "m")
    loaded, _ = load_model(tmp_path / "m", dtype=torch.float64)
    assert loaded.config.descriptor_l_max == 6 and loaded.config.descriptor_channels == 2
    assert model_energy(si_cell, loaded) == pytest.approx(model_energy(si_cell, model), abs=1e-10)


def test_add_elements_extends_the_descriptor(si_cell):
    from dens_calc.train.finetune import extend_species

    model = tiny_model(species=(14,), descriptor_l_max=4)
    bigger = extend_species(model, [8])
    assert bigger.descriptor.radial.shape[0] == 2
    # the known element's energies are unchanged
    assert model_energy(si_cell, bigger) == pytest.approx(model_energy(si_cell, model), abs=1e-10)
