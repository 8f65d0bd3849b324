"""dens_calc.train.kernel_base and nn.kernel_prior: columns, Jacobian, fit, stress, training with the base."""

import numpy as np
import pytest
import torch
from base_helpers import assert_stress_is_strain_derivative, jittered_bcc

from dens_calc.train import kernel_base, quadratic_base


def _frames(count: int, seed: int):
    return jittered_bcc(count, seed)


def _random_base(frames, seed: int, num_sparse: int = 6, zeta: int = 2, n_max: int = 3, l_max: int = 2):
    """A kernel base whose sparse environments are atoms of ``frames`` and whose weights are random."""
    x = np.concatenate([kernel_base.atom_invariants(a, 3.5, l_max, n_max) for a in frames])
    mean, std = x.mean(axis=0), x.std(axis=0)
    rng = np.random.default_rng(seed)
    sparse = ((x - mean) / std)[rng.choice(len(x), num_sparse, replace=False)]
    weights = rng.normal(0, 0.01, 1 + num_sparse + x.shape[1])
    return kernel_base.KernelBase(mean, std, sparse, weights, l_max, n_max, zeta, 0.0, 0.0)


def test_columns_and_their_jacobian_give_the_module_energy_and_forces():
    frames = _frames(3, 1)
    base = _random_base(frames, 2, zeta=3)
    predicted = quadratic_base.predict(frames, base, 3.5)
    for atoms, result in zip(frames, predicted):
        cols = kernel_base.kernel_columns(atoms, {"energy": 0.0, "forces": np.zeros((len(atoms), 3))}, base, 3.5)
        assert result["energy"] == pytest.approx(base.weights[0] * len(atoms) + cols["x"] @ base.weights[1:],
                                                 rel=1e-12, abs=1e-12)
        forces = -(cols["jac"].T @ base.weights[1:])
        np.testing.assert_allclose(result["forces"].ravel(), forces, rtol=1e-9, atol=1e-12)
        assert np.abs(forces).max() > 1e-3


def test_fit_recovers_a_kernel_model_and_its_stress_is_the_strain_derivative():
    frames = _frames(14, 3)
    truth = _random_base(frames, 4)
    labels = quadratic_base.predict(frames, truth, 3.5)
    # the fit picks its own sparse environments (farthest points): the truth's kernel is then only approximated,
    # but with as many environments as atoms-in-a-few-frames the fit reproduces its energies and forces closely
    base = kernel_base.fit_kernel_base(frames, labels, 3.5, l_max=2, n_max=3, num_sparse=40, zeta=2, folds=3)
    assert len(base.cv) == 9 and base.summary()["kind"] == "kernel"
    got = quadratic_base.predict(frames[:2], base, 3.5)
    for g, t in zip(got, labels[:2]):
        assert g["energy"] / 8 == pytest.approx(t["energy"] / 8, abs=2e-3)
        assert np.abs(g["forces"] - t["forces"]).mean() < 0.1 * np.abs(t["forces"]).mean()
    assert_stress_is_strain_derivative(lambda a: quadratic_base.predict([a], truth, 3.5)[0]["energy"], frames[0],
                                       labels[0]["stress"])


def test_farthest_points_spread_out_and_refusals():
    unit = np.eye(4)[[0, 0, 0, 1, 1, 2, 3]]  # seven unit vectors, four distinct
    picked = kernel_base.farthest_points(unit, 4)
    assert sorted({tuple(unit[i]) for i in picked}) == sorted({tuple(r) for r in np.eye(4)})
    with pytest.raises(ValueError, match="atoms"):
        kernel_base.farthest_points(unit, 8)
    frames = _frames(3, 5)
    labels = [{"energy": 0.0, "forces": np.zeros((len(a), 3))} for a in frames]
    mixed = [a.copy() for a in frames]
    mixed[0].numbers[0] = 74
    with pytest.raises(ValueError, match="single-element"):
        kernel_base.fit_kernel_base(mixed, labels, 3.5, l_max=2, n_max=3, num_sparse=4)
    with pytest.raises(MemoryError, match="sparse"):
        kernel_base.fit_kernel_base(frames, labels, 3.5, l_max=2, n_max=3, num_sparse=4, max_bytes=1e3)


def test_training_with_a_kernel_base_saves_it_in_the_model_and_resumes(tmp_path):
    import dataclasses

    from train_helpers import tiny_config, write_emt

    from dens_calc.checkpoint import load_model
    from dens_calc.train import train
    from dens_calc.train.data import load_labelled

    train_file = write_emt(tmp_path / "train.xyz", 12, seed=1)
    valid_file = write_emt(tmp_path / "valid.xyz", 3, seed=2)
    config = tiny_config(tmp_path, train_file, valid_file=str(valid_file), max_epochs=1, dens={"enabled": False},
                         model={"r_max": 3.0, "num_channels": 8, "l_max": 1, "num_layers": 1, "radial_hidden": 8,
                                "prior_l_max": 2, "prior_kind": "kernel"},
                         prior_cv_folds=3, kernel_n_max=3, kernel_num_sparse=10, kernel_zeta=2)
    train(config)
    model, metadata = load_model(tmp_path / "run", dtype=torch.float64)
    summary = metadata["quadratic_base"]
    assert summary["kind"] == "kernel" and summary["num_sparse"] == 10
    assert (model.config.prior_kind, model.config.prior_n_max, model.config.prior_num_sparse) == ("kernel", 3, 10)
    data = load_labelled(str(train_file), config)
    expected = kernel_base.fit_kernel_base(data.frames, data.labels, 3.0, 2, 3, 10, 2, folds=3)
    assert summary == expected.summary()
    for name in ("mean", "std", "sparse", "weights"):
        np.testing.assert_allclose(getattr(model.prior, name).numpy(), getattr(expected, name), rtol=1e-6,
                                   atol=1e-9)
    train(dataclasses.replace(config, max_epochs=2), resume=tmp_path / "run")
    resumed, resumed_metadata = load_model(tmp_path / "run" / "last.pt", dtype=torch.float64)
    assert resumed_metadata["epoch"] == 2 and resumed_metadata["quadratic_base"] == summary
    np.testing.assert_array_equal(resumed.prior.sparse.numpy(), model.prior.sparse.numpy())


def test_a_kernel_base_without_its_degree_is_refused(tmp_path):
    from dens_calc.train.config import ConfigError, TrainConfig

    with pytest.raises(ConfigError, match="--quadratic-base"):
        TrainConfig(train_file=str(tmp_path / "x.xyz"), out_dir=str(tmp_path / "run"), model={"prior_kind": "kernel"})
    with pytest.raises(ValueError, match="prior_kind"):
        from dens_calc.nn.model import ModelConfig

        ModelConfig(species=[42], atomic_energies=[0.0], prior_l_max=2, prior_kind="gaussian")
