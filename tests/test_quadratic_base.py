"""dens_calc.train.quadratic_base: the hand-built Jacobian, the normal equations, cross-validation, the fit."""

import numpy as np
import pytest
import torch
from ase.neighborlist import neighbor_list
from base_helpers import assert_stress_is_strain_derivative, jittered_bcc

from dens_calc.nn.quadratic_prior import power_spectrum_features, with_products
from dens_calc.train import quadratic_base


def _frames(count: int, seed: int, element: str = "Mo"):
    return jittered_bcc(count, seed, element)


def _featurised(count, seed, n_max=2, w_true=None, noise_seed=None):
    """Featurised frames; labels from ``w_true`` (a model of these features) or random (no model fits them)."""
    frames = _frames(count, seed)
    zero = [{"energy": 0.0, "forces": np.zeros((len(a), 3))} for a in frames]
    feats = quadratic_base.featurise(frames, zero, r_max=3.5, l_max=2, n_max=n_max)
    rng = np.random.default_rng(noise_seed)
    for f in feats:
        if w_true is not None:
            f["energy"] = w_true[0] * f["n"] + f["x"] @ w_true[1:]
            f["forces"] = -(f["jac"].T @ w_true[1:])
        else:
            f["energy"], f["forces"] = rng.normal(), rng.normal(size=f["forces"].shape)
    return frames, feats


def test_product_rule_jacobian_equals_autograd_of_the_summed_products():
    atoms = _frames(1, 4)[0]
    atoms.positions[0] += 0.3  # not on a lattice: every derivative nonzero
    x, jac = quadratic_base.summed_features_and_jacobian(atoms, r_max=3.5, l_max=3, n_max=3)
    i, j, shifts = neighbor_list("ijS", atoms, 3.5)

    def summed(p):
        vectors = p[j] - p[i] + torch.as_tensor(shifts @ atoms.cell.array, dtype=torch.float64)
        return with_products(power_spectrum_features(vectors, torch.as_tensor(i), len(atoms), 3.5, 3, 3)).sum(dim=0)

    positions = torch.as_tensor(atoms.positions, dtype=torch.float64)
    reference = torch.autograd.functional.jacobian(summed, positions).reshape(len(x), -1)
    np.testing.assert_allclose(x.numpy(), summed(positions).numpy(), rtol=1e-12)
    np.testing.assert_allclose(jac.numpy(), reference.numpy(), rtol=1e-9, atol=1e-12)
    assert np.abs(reference.numpy()).max() > 1e-3


def test_cross_validation_prefers_the_true_model_and_scores_held_out_frames():
    n_features = 1 + quadratic_base.featurise(_frames(1, 0), [{"energy": 0, "forces": np.zeros((4, 3))}],
                                              3.5, 2, 2)[0]["x"].size
    w_true = np.random.default_rng(6).normal(0, 1, n_features)
    _, feats = _featurised(10, 5, w_true=w_true)
    exact, damped = quadratic_base.cross_validate(feats, force_weights=[1.0], ridges=[1e-14, 1e-1], folds=5)
    assert exact["ridge"] == 1e-14 and exact["F_mae_meV_A"] == pytest.approx(0.0, abs=0.05)
    assert damped["F_mae_meV_A"] > 1.0  # a heavy ridge cannot fit the held-out frames: the held-out error is real
    full = quadratic_base.NormalEquations(feats).solve(1.0, 1e-14)  # weights are not unique (products of l = 0
    energy, forces = quadratic_base.frame_errors(feats[0], full)  # invariants coincide); predictions are
    assert abs(energy) < 1e-4 and np.abs(forces).max() < 0.05


def test_out_of_fold_weights_are_the_fits_without_each_fold():
    _, feats = _featurised(6, 7, noise_seed=8)
    seen = []
    for part, weights in quadratic_base.out_of_fold_weights(feats, [(0.1, 1e-6)], folds=3):
        rest = [f for i, f in enumerate(feats) if i not in set(part)]
        expected = quadratic_base.NormalEquations(rest).solve(0.1, 1e-6)
        np.testing.assert_allclose(weights[(0.1, 1e-6)], expected, rtol=1e-6, atol=1e-9)
        seen.extend(part)
    assert sorted(seen) == list(range(6))  # every frame held out exactly once
    with pytest.raises(ValueError, match="folds"):
        next(quadratic_base.out_of_fold_weights(feats, [(0.1, 1e-6)], folds=7))


def test_fit_recovers_a_quadratic_model_and_predict_gives_its_energy_forces_and_stress():
    from dens_calc.nn.quadratic_prior import num_quadratic_features

    frames = _frames(16, 9)  # 16 x 24 force rows for 136 weights
    weights = np.random.default_rng(10).normal(0, 0.01, 1 + num_quadratic_features(1, 3))
    truth = quadratic_base.QuadraticBase(weights, l_max=1, n_max=3, force_weight=0.0, ridge=0.0)
    labels = quadratic_base.predict(frames, truth, r_max=3.5)
    base = quadratic_base.fit_quadratic_base(frames, labels, r_max=3.5, l_max=1, n_max_choices=(2, 3), folds=4)
    assert base.n_max == 3 and len(base.cv) == 2 * 9  # two bases, nine (force weight, ridge) pairs each
    got = quadratic_base.predict(frames[:2], base, r_max=3.5)
    for g, t in zip(got, labels[:2]):
        assert g["energy"] == pytest.approx(t["energy"], abs=2e-3 * len(frames[0]))
        np.testing.assert_allclose(g["forces"], t["forces"], atol=5e-3)
    # the stress is the strain derivative of the energy: finite differences of a uniform stretch
    assert_stress_is_strain_derivative(lambda a: quadratic_base.predict([a], truth, 3.5)[0]["energy"], frames[0],
                                       labels[0]["stress"])


def test_fit_refuses_two_elements_and_a_basis_too_big_for_memory():
    frames = _frames(3, 11)
    labels = [{"energy": 0.0, "forces": np.zeros((len(a), 3))} for a in frames]
    mixed = [a.copy() for a in frames]
    mixed[0].numbers[0] = 42 if mixed[0].numbers[0] != 42 else 74
    with pytest.raises(ValueError, match="single-element"):
        quadratic_base.fit_quadratic_base(mixed, labels, r_max=3.5, l_max=2)
    with pytest.raises(MemoryError, match="n_max 3"):
        quadratic_base.fit_quadratic_base(frames, labels, r_max=3.5, l_max=2, n_max_choices=(3,), max_bytes=1e3)


def test_training_with_a_quadratic_base_fits_it_first_and_saves_it_in_the_model(tmp_path):
    from train_helpers import tiny_config, write_emt

    from dens_calc.checkpoint import load_model, read_checkpoint
    from dens_calc.train import train
    from dens_calc.train.data import load_labelled

    train_file = write_emt(tmp_path / "train.xyz", 12, seed=1)
    valid_file = write_emt(tmp_path / "valid.xyz", 3, seed=2)
    config = tiny_config(tmp_path, train_file, valid_file=str(valid_file), max_epochs=1, dens={"enabled": False},
                         model={"r_max": 3.0, "num_channels": 8, "l_max": 1, "num_layers": 1, "radial_hidden": 8,
                                "prior_l_max": 2},
                         prior_n_max_choices=[2, 3], prior_cv_folds=3)
    train(config)
    model, metadata = load_model(tmp_path / "run", dtype=torch.float64)
    summary = metadata["quadratic_base"]
    assert model.config.prior_l_max == 2 and model.config.prior_n_max == summary["n_max"] in (2, 3)
    data = load_labelled(str(train_file), config)
    expected = quadratic_base.fit_quadratic_base(data.frames, data.labels, 3.0, 2, (2, 3), folds=3)
    assert summary == expected.summary()
    np.testing.assert_allclose(model.prior.weights.numpy(), expected.weights, rtol=1e-10, atol=1e-12)
    # the network's normalisation comes from what the base leaves: its shift is near zero, not the cohesive energy
    base_energy = np.mean([p["energy"] / len(a) for p, a in zip(quadratic_base.predict(data.frames, expected, 3.0),
                                                                  data.frames)])
    labels_per_atom = np.mean([lab["energy"] / len(a) for lab, a in zip(data.labels, data.frames)])
    network_mean = model.config.atomic_energies[0] + model.config.shift
    assert network_mean == pytest.approx(labels_per_atom - base_energy, abs=1e-6)
    # a resumed run keeps the base (weights restored from last.pt, not refitted) and its summary
    assert read_checkpoint(tmp_path / "run" / "last.pt")["metadata"]["quadratic_base"] == summary
    import dataclasses

    train(dataclasses.replace(config, max_epochs=2), resume=tmp_path / "run")
    resumed, resumed_metadata = load_model(tmp_path / "run" / "last.pt", dtype=torch.float64)
    assert resumed_metadata["epoch"] == 2 and resumed_metadata["quadratic_base"] == summary
    np.testing.assert_array_equal(resumed.prior.weights.numpy(), model.prior.weights.numpy())


def test_training_refuses_a_quadratic_base_for_two_elements(tmp_path):
    from ase.io import read, write
    from train_helpers import tiny_config, write_emt

    from dens_calc.data import DataError
    from dens_calc.train import train

    frames = read(write_emt(tmp_path / "cu.xyz", 6, seed=3), ":")
    frames[0].numbers[0] = 28  # one Ni atom
    write(tmp_path / "mixed.xyz", frames)
    config = tiny_config(tmp_path, tmp_path / "mixed.xyz", dens={"enabled": False},
                         model={"r_max": 3.0, "num_channels": 8, "l_max": 1, "num_layers": 1, "radial_hidden": 8,
                                "prior_l_max": 2}, prior_cv_folds=2)
    with pytest.raises(DataError, match="single-element"):
        train(config)
