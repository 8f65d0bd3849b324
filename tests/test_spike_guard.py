"""The spike guard: a batch whose loss is far above the recent ones does not get a step."""

import dataclasses
import logging
import math

import pytest
from ase.io import write

from dens_calc.checkpoint import atomic_torch_save, read_checkpoint
from dens_calc.train import ConfigError, SpikeGuard, TrainingDiverged, train
from train_helpers import emt_frames, tiny_config


def test_guard_judges_by_the_median_of_recent_accepted_losses():
    guard = SpikeGuard(factor=10.0, window=4, warmup=3)
    assert not guard.is_spike(1e30)  # too little history: only non-finite losses are skipped
    assert guard.is_spike(math.nan) and guard.is_spike(math.inf)
    for loss in (1.0, 2.0, 3.0):
        guard.accepted(loss)
    assert guard.threshold() == pytest.approx(20.0)
    assert guard.is_spike(20.5) and not guard.is_spike(19.5)
    for loss in (100.0, 100.0, 100.0):  # the window moves: the loss may legitimately rise (late stage)
        guard.accepted(loss)
    assert guard.threshold() == pytest.approx(1000.0)
    assert not SpikeGuard(factor=None).is_spike(1e30) and SpikeGuard(factor=None).is_spike(math.nan)


def test_losses_that_are_not_finite_count_towards_divergence_without_a_factor():
    guard = SpikeGuard(factor=None, max_in_a_row=2)
    guard.rejected()
    with pytest.raises(TrainingDiverged, match="2 batches in a row had a loss that was not finite$"):
        guard.rejected()


def test_guard_stops_training_after_too_many_skips_in_a_row_and_round_trips():
    guard = SpikeGuard(factor=10.0, warmup=1, max_in_a_row=3)
    guard.accepted(1.0)
    guard.rejected(), guard.rejected()
    with pytest.raises(TrainingDiverged, match="3 batches in a row"):
        guard.rejected()
    copy = SpikeGuard(factor=10.0, warmup=1)
    copy.load_state_dict(guard.state_dict())
    assert list(copy.recent) == [1.0] and copy.skipped == 3 and copy.in_a_row == 0


def test_spike_factor_must_exceed_one_or_be_zero_for_off(tmp_path):
    with pytest.raises(ConfigError, match="spike_factor"):
        tiny_config(tmp_path, "x.xyz", spike_factor=0.5)
    assert tiny_config(tmp_path, "x.xyz", spike_factor=0).spike_factor is None


@pytest.fixture(scope="module")
def one_bad_frame(tmp_path_factory):
    """12 EMT Cu cells, one with forces ×1e4 (a corrupt label), and 3 clean validation cells."""
    folder = tmp_path_factory.mktemp("spike")
    frames = emt_frames(12, seed=3)
    frames[5].calc.results["forces"] = frames[5].calc.results["forces"] * 1e4
    write(str(folder / "train.xyz"), frames)
    write(str(folder / "valid.xyz"), emt_frames(3, seed=4))
    return folder


def _config(folder, out, **overrides):
    return tiny_config(out, folder / "train.xyz", valid_file=str(folder / "valid.xyz"), batch_size=1,
                       max_epochs=4, dens={"enabled": False}, **overrides)


def test_the_bad_batch_is_skipped_logged_and_kept_out_of_the_epoch_mean(tmp_path, one_bad_frame, caplog):
    with caplog.at_level(logging.WARNING, logger="dens_calc.train.loop"):
        guarded = train(_config(one_bad_frame, tmp_path / "guarded"))
    skipped = [row["train_skipped_steps"] for row in guarded.history]
    # epochs 1-2 fill the guard's history (20 accepted losses); from then on the bad frame is skipped once an epoch
    assert skipped[0] == 0 and sum(skipped) >= 2
    assert "skipped the step of a batch" in caplog.text and "structures ['train.xyz:5']" in caplog.text
    unguarded = train(_config(one_bad_frame, tmp_path / "unguarded", spike_factor=None))
    assert all(row["train_skipped_steps"] == 0 for row in unguarded.history)
    # the epoch mean is of the accepted batches only: without the guard one frame dominates it
    assert guarded.history[-1]["train_total"] * 100 < unguarded.history[-1]["train_total"]
    state = read_checkpoint(tmp_path / "guarded" / "run" / "last.pt")["train_state"]["spike_guard"]
    assert state["skipped"] == sum(skipped) and len(state["recent"]) > 20


class _BrokenFor:
    """``training_loss`` whose loss is NaN for the calls numbered in ``bad`` (a model that diverges there)."""

    def __init__(self, real, bad):
        self.real, self.bad, self.losses = real, bad, []

    def __call__(self, *args, **kwargs):
        loss, parts = self.real(*args, **kwargs)
        self.losses.append(parts["total"])
        if len(self.losses) in self.bad:
            return loss * math.nan, {**parts, "total": math.nan}
        return loss, parts


def test_a_diverged_epoch_is_retried_from_its_start_at_half_the_lr(tmp_path, monkeypatch, caplog):
    import dens_calc.train.loop as loop

    data = tmp_path / "train.xyz"
    write(str(data), emt_frames(12, seed=5))
    # 9 batches an epoch: epoch 4 is calls 28-36; 5 NaNs in a row from call 30 break it
    broken = _BrokenFor(loop.training_loss, bad=set(range(30, 35)))
    monkeypatch.setattr(loop, "training_loss", broken)
    # a constant LR after warm-up (plateau schedule, patience > epochs) shows the back-off exactly
    config = tiny_config(tmp_path, data, batch_size=1, max_epochs=4, dens={"enabled": False}, lr=1e-3,
                         scheduler="plateau")
    with caplog.at_level(logging.WARNING, logger="dens_calc.train.loop"):
        result = train(config)
    assert caplog.text.count("epoch 4 diverged") == 1
    assert "rolled back to the start of epoch 4 and halved the peak LR to 0.0005" in caplog.text
    # the retried epoch starts from exactly the weights and batch order of the first attempt
    assert broken.losses[35 - 1] == broken.losses[28 - 1]
    assert broken.losses[36 - 1] != broken.losses[29 - 1]  # then it steps at half the LR
    assert result.epochs == 4 and all(math.isfinite(row["train_total"]) for row in result.history)
    assert [row["lr"] for row in result.history] == pytest.approx([1e-3, 1e-3, 1e-3, 0.5e-3])
    schedule = read_checkpoint(tmp_path / "run" / "last.pt")["train_state"]["schedule"]
    assert schedule["lr_scale"] == 0.5  # saved: a resume keeps the back-off ...

    monkeypatch.setattr(loop, "training_loss", broken.real)
    again = train(dataclasses.replace(config, max_epochs=5), resume=tmp_path / "run")
    assert again.history[-1]["lr"] == pytest.approx(0.5e-3)
    # ... unless the resume names its own peak LR
    last = read_checkpoint(tmp_path / "run" / "last.pt")
    newer = train(dataclasses.replace(config, max_epochs=6, lr=2e-3), resume=tmp_path / "run")
    assert newer.history[-1]["lr"] == pytest.approx(2e-3)
    # a last.pt written before the guard existed (no guard state, no LR scale) still resumes
    del last["train_state"]["spike_guard"], last["train_state"]["schedule"]["lr_scale"]
    atomic_torch_save(last, tmp_path / "run" / "last.pt")
    assert train(dataclasses.replace(config, max_epochs=6), resume=tmp_path / "run").epochs == 6


def test_training_stops_when_halving_the_lr_does_not_help(tmp_path, monkeypatch):
    import dens_calc.train.loop as loop

    data = tmp_path / "train.xyz"
    write(str(data), emt_frames(12, seed=5))
    monkeypatch.setattr(loop, "training_loss", _BrokenFor(loop.training_loss, bad=set(range(30, 10_000))))
    config = tiny_config(tmp_path, data, batch_size=1, max_epochs=6, dens={"enabled": False})
    with pytest.raises(TrainingDiverged, match="halved 3 times"):
        train(config)
    assert read_checkpoint(tmp_path / "run" / "last.pt")["train_state"]["epoch"] >= 2  # the good epochs are kept


def test_a_run_that_diverges_in_its_first_epoch_still_leaves_a_model(tmp_path, monkeypatch):
    import dens_calc.train.loop as loop

    data = tmp_path / "train.xyz"
    write(str(data), emt_frames(12, seed=5))
    monkeypatch.setattr(loop, "training_loss", _BrokenFor(loop.training_loss, bad=set(range(1, 10_000))))
    with pytest.raises(TrainingDiverged):
        train(tiny_config(tmp_path, data, batch_size=1, max_epochs=2, dens={"enabled": False}))
    assert (tmp_path / "run" / "model.pt").exists()


def _train_with_validation_blowing_up(tmp_path, monkeypatch, caplog, at: set[int]):
    """4 epochs of 9 batches; the validations numbered in ``at`` report a loss ×1e6 (weights broken in
    an epoch's last steps).  Returns the result and the epoch count before each validation."""
    import dens_calc.train.loop as loop

    data = tmp_path / "train.xyz"
    write(str(data), emt_frames(12, seed=5))
    real, calls = loop.validate, []

    def validate(run):
        calls.append(run.epoch)
        valid = real(run)
        return {**valid, "loss": valid["loss"] * 1e6} if len(calls) in at else valid

    monkeypatch.setattr(loop, "validate", validate)
    config = tiny_config(tmp_path, data, batch_size=1, max_epochs=4, dens={"enabled": False}, scheduler="plateau",
                         lr=1e-3)
    with caplog.at_level(logging.WARNING, logger="dens_calc.train.loop"):
        return train(config), calls


def test_an_epoch_whose_validation_blows_up_is_retried(tmp_path, monkeypatch, caplog):
    """The last steps of an epoch can break the weights without any batch showing it."""
    result, calls = _train_with_validation_blowing_up(tmp_path, monkeypatch, caplog, at={3})
    assert "epoch 3 diverged (validation loss" in caplog.text and "to the start of epoch 3" in caplog.text
    assert calls == [0, 1, 2, 2, 3]  # epoch 3 (run.epoch 2 before it) ran twice
    assert [row["lr"] for row in result.history] == pytest.approx([1e-3, 1e-3, 0.5e-3, 0.5e-3])
    assert max(row["valid_loss"] for row in result.history) < 1e3 * min(row["valid_loss"] for row in result.history)


def test_a_second_failure_in_a_row_goes_back_one_more_epoch(tmp_path, monkeypatch, caplog):
    """Weights can break an epoch before the one that shows it: retrying from that epoch's start fails again."""
    result, calls = _train_with_validation_blowing_up(tmp_path, monkeypatch, caplog, at={3, 4})
    assert "rolled back to the start of epoch 3 and halved" in caplog.text
    assert "rolled back to the start of epoch 2 and halved" in caplog.text
    assert calls == [0, 1, 2, 2, 1, 2, 3]  # epoch 3 twice, then epochs 2-4 again
    assert [row["lr"] for row in result.history] == pytest.approx([1e-3, 0.25e-3, 0.25e-3, 0.25e-3])
