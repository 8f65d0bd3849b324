"""``train(config) -> TrainResult``: the DeNS training loop, built from small steps.

Per epoch: shuffled batches (an explicit generator), DeNS loss, AdamW step with gradient
clipping (a batch with a loss spike gets no step), EMA update; then validation with the EMA
weights, an atomic ``last.pt`` (full resume state) and, on improvement, ``best.pt`` and the model
directory ``model.pt``.  An epoch that diverges is retried at half the LR from its start (from an
earlier epoch's start if it fails again: ``EpochStarts``).
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import logging
import math
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..checkpoint import atomic_torch_save, read_checkpoint, save_model
from ..data import DataError, collate
from ..data.labels import DEFAULT_KEYS
from ..files import atomic_write
from ..runtime import denormals_flushed
from . import distributed as ddp
from .config import DEFAULT_EPOCHS, DEFAULT_STRESS_WEIGHT, TrainConfig, write_config
from .dens import lambda_dens_at
from .loss import LossWeights, loss_terms, predict, training_loss
from .setup import Prepared, prepare
from .state import EMA, LRSchedule, SpikeGuard, TrainingDiverged, rng_state, set_rng_state

log = logging.getLogger(__name__)
LAST, BEST = "last.pt", "best.pt"


@dataclass
class TrainResult:
    out_dir: Path
    epochs: int
    best_epoch: int
    best_valid: dict
    stopped: str
    history: list[dict] = field(default_factory=list)

    @property
    def model_path(self) -> Path:
        return self.out_dir / "model.pt"


@dataclass
class Run:
    """Mutable state of a run (everything ``last.pt`` stores)."""

    config: TrainConfig
    prep: Prepared
    model: torch.nn.Module
    ema: EMA
    optimizer: torch.optim.Optimizer
    schedule: LRSchedule
    generators: dict
    guard: SpikeGuard
    rank: int = 0
    world: int = 1
    epoch: int = 0
    best_loss: float = math.inf
    best_epoch: int = -1
    # True once the best checkpoint is chosen by the late-stage loss (see ``selection_loss``)
    best_in_late_stage: bool = False
    bad_epochs: int = 0
    history: list = field(default_factory=list)
    elapsed_s: float = 0.0
    epoch_times: list = field(default_factory=list)  # seconds of each epoch of this invocation

    @property
    def main(self) -> bool:
        return self.rank == 0


def steps_per_epoch(num_train: int, config: TrainConfig, world: int) -> int:
    per_rank = num_train // world if world > 1 else num_train
    return max(1, math.ceil(per_rank / config.batch_size))


def build_run(config: TrainConfig, *, resume: str | Path | None = None) -> Run:
    from ..runtime import resolve_device

    device = ddp.local_device(resolve_device(config.device))
    rank, world = ddp.setup(device)
    prep = prepare(config, device=device, resume=resume)
    config = with_stress_weight(config, prep.train_graphs)
    model = prep.model
    optimizer = build_optimizer(config, model)
    n_steps = steps_per_epoch(len(prep.train_graphs), config, world)
    # a time-fitted schedule starts as if spanning DEFAULT_EPOCHS (epoch 1 is warm-up anyway) and
    # is retargeted to the time budget after every epoch (``fit_schedule_to_time``)
    epochs = config.max_epochs if config.max_epochs is not None else DEFAULT_EPOCHS
    schedule = LRSchedule(
        optimizer, base_lr=config.lr, warmup_steps=int(round(config.warmup_epochs * n_steps)),
        total_steps=epochs * n_steps, kind=config.scheduler, min_ratio=config.min_lr_ratio,
        plateau_patience=config.plateau_patience, plateau_factor=config.plateau_factor,
    )
    generators = {"shuffle": torch.Generator().manual_seed(config.seed),
                  "dens": torch.Generator().manual_seed(config.seed + 1000 * (rank + 1))}
    run = Run(config, prep, model, EMA(model, config.ema_decay), optimizer, schedule, generators,
              SpikeGuard(config.spike_factor), rank, world)
    if resume is not None:
        restore(run, Path(resume) / LAST)
    return run


def with_stress_weight(config: TrainConfig, graphs: list) -> TrainConfig:
    """``stress_weight=None`` (the default) means: train on stress when the training data have stress labels.

    Stress is learned on the structures that have a label and masked on the others, so data sets of
    mixed origin (e.g. one file with stresses, one without) train as they are.
    """
    labelled = sum(bool(g.has_stress) for g in graphs)
    if config.stress_weight is None:
        config = dataclasses.replace(config, stress_weight=DEFAULT_STRESS_WEIGHT if labelled else 0.0)
    elif config.stress_weight > 0 and not labelled:
        raise DataError(f"stress weight {config.stress_weight:g} but no training structure has a stress label "
                        f"(looked for {DEFAULT_KEYS['stress']}; see --stress-key)")
    if labelled and config.stress_weight > 0:
        log.info("%d of %d training structures have stress labels: stress weight %g%s", labelled, len(graphs),
                 config.stress_weight, "" if labelled == len(graphs) else " (the others train on E and F only)")
    return config


def build_optimizer(config: TrainConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    """Adam (L2 weight decay, as MACE) or AdamW (decoupled decay), optionally AMSGrad."""
    params = [p for p in model.parameters() if p.requires_grad]
    kind = torch.optim.Adam if config.optimizer == "adam" else torch.optim.AdamW
    return kind(params, lr=config.lr, weight_decay=config.weight_decay, amsgrad=config.amsgrad)


def fit_schedule_to_time(run: Run, remaining_s: float) -> None:
    """Retarget the LR schedule to end with the last epoch that fits in ``remaining_s``.

    The epoch time is the mean of the epochs of this invocation so far (training + validation),
    so the estimate improves as training goes; the schedule's progress moves smoothly.
    """
    epochs_here = max(1, len(run.epoch_times))
    mean_epoch_s = sum(run.epoch_times) / epochs_here
    epochs_left = max(0, int(remaining_s // mean_epoch_s))
    n_steps = steps_per_epoch(len(run.prep.train_graphs), run.config, run.world)
    run.schedule.total_steps = max(1, run.schedule.step_count + epochs_left * n_steps)


def progress_of(run: Run) -> float:
    """Fraction of the LR schedule done (λ_DeNS decay and the late loss stage follow it)."""
    return min(1.0, run.schedule.step_count / max(1, run.schedule.total_steps))


def restore(run: Run, path: Path) -> None:
    """Load the resume state written by :func:`save_last`."""
    payload = read_checkpoint(path)
    load_train_state(run, payload["train_state"])
    if run.schedule.lr_scale != 1.0 and payload["train_config"]["lr"] != run.config.lr:
        # a new --lr on resume is the LR the user wants: it replaces the automatic back-off
        log.info("peak LR %g given on resume replaces the backed-off %g", run.config.lr,
                 payload["train_config"]["lr"] * run.schedule.lr_scale)
        run.schedule.set_lr_scale(1.0)
    log.info("resumed from %s at epoch %d", path, run.epoch)


def load_train_state(run: Run, state: dict) -> None:
    """Put a run back to ``state`` (from :func:`train_state`, on disk or in memory)."""
    run.model.load_state_dict(state["raw_model"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.schedule.load_state_dict(state["schedule"])
    if run.config.time_fitted and "total_steps" in state["schedule"]:
        # a time-fitted schedule's length was estimated, not derived from the config: keep it
        run.schedule.total_steps = int(state["schedule"]["total_steps"])
    run.ema.load_state_dict(state["ema"])
    set_rng_state(run.generators, state["rng"])
    if "spike_guard" in state:  # absent in older last.pt files: the guard starts afresh
        run.guard.load_state_dict(state["spike_guard"])
    if run.rank > 0:
        # only rank 0's streams are saved (the shuffle stream is shared by all ranks); other ranks
        # get fresh, distinct DeNS streams: multi-process resumes are statistically, not bitwise, exact
        run.generators["dens"].manual_seed(run.config.seed + 1000 * (run.rank + 1) + 7919 * int(state["epoch"]))
    run.epoch, run.best_loss, run.best_epoch = int(state["epoch"]), float(state["best_loss"]), int(state["best_epoch"])
    run.best_in_late_stage = bool(state.get("best_in_late_stage", False))  # absent in older last.pt files
    run.bad_epochs, run.history, run.elapsed_s = int(state["bad_epochs"]), list(state["history"]), float(state["elapsed_s"])


# a diverged epoch is retried at half the peak LR, at most this many times per run; the k-th failure in a
# row goes back k epoch starts (the weights can break before the epoch that shows it)
MAX_LR_BACKOFFS = 3


class EpochStarts:
    """The training state at the start of the last few epochs, to roll back to when training diverges."""

    def __init__(self, depth: int = MAX_LR_BACKOFFS):
        self.states: deque[dict] = deque(maxlen=depth)
        self.failures = 0  # divergences since the last epoch that completed cleanly

    def remember(self, run: Run) -> None:
        if not self.states or self.states[-1]["epoch"] != run.epoch:
            self.states.append(copy.deepcopy(train_state(run)))

    def completed(self) -> None:
        self.failures = 0

    def go_back(self) -> dict:
        """The state to retry from: the current epoch's start on a first failure, one epoch earlier on
        a second in a row, and so on (newer states are dropped)."""
        self.failures += 1
        for _ in range(min(self.failures, len(self.states)) - 1):
            self.states.pop()
        return copy.deepcopy(self.states[-1])  # loading must not alias tensors a later rollback reuses


def roll_back(run: Run, starts: EpochStarts, why: TrainingDiverged) -> None:
    """Recover from a diverged epoch: back to an earlier state, with half the learning rate.

    Skipping the bad batches does not help once the weights are broken (every later batch is bad
    too); going back to a good state and taking smaller steps does: on the six-element Zuo set,
    epoch 46 diverged at peak LR 1e-2 and, from the same state at 5e-3, improved on the best
    validation loss (0.158 against 0.165).  Epoch 50 of the same run (at 5e-3) diverged again from
    its start at 2.5e-3 and 1.25e-3: the weights were already broken when it began, hence the
    deeper retries.
    """
    scale, failing = run.schedule.lr_scale, run.epoch + 1
    load_train_state(run, starts.go_back())  # also when giving up: the weights saved then are not the broken ones
    if scale <= 0.5**MAX_LR_BACKOFFS:
        raise TrainingDiverged(
            f"{why}: training diverged again after the peak LR was halved {MAX_LR_BACKOFFS} times "
            f"(to {run.config.lr * scale:.3g}). Check the data (the skipped structures are logged) or train "
            "with a lower --lr; best.pt and model.pt hold the best epoch, last.pt the last completed one.") from why
    run.schedule.set_lr_scale(scale * 0.5)
    log.warning("epoch %d diverged (%s): rolled back to the start of epoch %d and halved the peak LR to %.3g",
                failing, why, run.epoch + 1, run.config.lr * run.schedule.lr_scale)


def validation_blew_up(run: Run, valid: dict) -> str | None:
    """Why the validation loss says the weights are broken (not finite, or above the spike factor × the
    best so far), else None.  On zuo6 at LR 5e-3 every batch of epoch 50 was ordinary (mean loss 0.14)
    and its validation loss was 6.6e4 against a best of 0.154: the last steps had broken the weights."""
    loss, factor = valid["loss"], run.guard.factor
    best = min((row["valid_loss"] for row in run.history), default=math.inf)
    if not math.isfinite(loss):
        return f"validation loss {loss}"
    if factor and math.isfinite(best) and loss > factor * best:
        return f"validation loss {loss:.4g} above {factor:g}x the best so far ({best:.4g})"
    return None


def train_epoch(run: Run, deadline: float | None) -> tuple[dict, bool]:
    """One pass over this rank's shard; returns mean loss parts and whether time ran out."""
    from tqdm.auto import tqdm

    from ..runtime import progress_disabled

    cfg, model = run.config, run.model
    graphs = run.prep.train_graphs
    order = torch.randperm(len(graphs), generator=run.generators["shuffle"]).tolist()
    order = ddp.shard(order, run.rank, run.world)
    batches = [order[i : i + cfg.batch_size] for i in range(0, len(order), cfg.batch_size)]
    sums: dict[str, float] = {}
    model.train()
    of = "" if cfg.time_fitted else f"/{cfg.epoch_budget}"
    bar = tqdm(batches, desc=f"epoch {run.epoch + 1}{of}", leave=False,
               disable=progress_disabled(cfg.progress and run.main))
    timed_out, accepted, skipped_before = False, 0, run.guard.skipped
    for idx in bar:
        batch = collate([graphs[i] for i in idx]).to(run.prep.device)
        progress = progress_of(run)
        loss, parts = training_loss(model, batch, cfg, generator=run.generators["dens"],
                                    lambda_dens=lambda_dens_at(cfg.dens, progress), progress=progress)
        spike = run.guard.is_spike(parts["total"])
        if ddp.any_flag(spike):  # every rank skips together; each names its own batch if it spiked
            skip_step(run, idx, parts["total"], spike)
        else:
            optimizer_step(run, loss)
            run.guard.accepted(parts["total"])
            accepted += 1
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + v
        bar.set_postfix(loss=f"{parts['total']:.4g}", lr=f"{run.schedule.lr:.2e}")
        if ddp.any_flag(deadline is not None and time.monotonic() > deadline):
            timed_out = True
            break
    mean = {k: v / max(1, accepted) for k, v in sums.items()}
    mean["lambda_dens"] = lambda_dens_at(cfg.dens, progress_of(run))
    mean["skipped_steps"] = run.guard.skipped - skipped_before
    return mean, timed_out


def skip_step(run: Run, idx: list[int], loss: float, spiked_here: bool) -> None:
    """Leave the weights, optimizer moments and EMA as they are; the LR schedule keeps time."""
    if spiked_here:
        names = [run.prep.train_names[i] for i in idx] if run.prep.train_names else idx
        log.warning("epoch %d: skipped the step of a batch with loss %.4g (threshold %.4g = %s x the recent median); "
                    "structures %s", run.epoch + 1, loss, run.guard.threshold(), run.config.spike_factor, names)
    run.schedule.step()
    run.guard.rejected()


def optimizer_step(run: Run, loss: torch.Tensor) -> None:
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    params = [p for p in run.model.parameters() if p.requires_grad]
    ddp.average_gradients(params)
    if run.config.grad_clip:
        torch.nn.utils.clip_grad_norm_(params, run.config.grad_clip)
    run.optimizer.step()
    run.schedule.step()
    run.ema.update(run.model)


def validate(run: Run) -> dict:
    """Validation with the EMA weights and no DeNS: loss, E MAE (meV/atom), F MAE/RMSE (meV/Å)."""
    cfg, model = run.config, run.ema.model
    graphs = ddp.shard(list(range(len(run.prep.valid_graphs))), run.rank, run.world) if run.world > 1 else range(len(run.prep.valid_graphs))
    graphs = [run.prep.valid_graphs[i] for i in graphs]
    acc = torch.zeros(7, dtype=torch.float64)  # loss*B, |dE|/N sum, B, |dF| sum, dF^2 sum, F components, late loss*B
    weights = LossWeights.from_config(cfg, 0.0)
    late_weights = LossWeights.from_config(cfg, 0.0, progress=1.0)  # the weights the late stage ends with
    need_grad = cfg.forces == "conservative" or (cfg.stress_weight or 0.0) > 0
    for start in range(0, len(graphs), cfg.valid_batch_size):
        batch = collate(graphs[start : start + cfg.valid_batch_size]).to(run.prep.device)
        with torch.set_grad_enabled(need_grad):
            pred = predict(model, batch, cfg, None, training=False)
            terms = loss_terms(pred, batch, weights, scale=float(model.config.scale))
            late = loss_terms(pred, batch, late_weights, scale=float(model.config.scale))["total"]
        n_atoms = torch.bincount(batch.batch, minlength=batch.num_graphs)
        d_e = ((pred["energy"] - batch.energy).abs() / n_atoms).detach().double().cpu()
        d_f = (pred["forces"] - batch.forces).detach().double().cpu()
        acc += torch.tensor([float(terms["total"].detach()) * batch.num_graphs, d_e.sum(), batch.num_graphs,
                             d_f.abs().sum(), (d_f**2).sum(), d_f.numel(), float(late.detach()) * batch.num_graphs],
                            dtype=torch.float64)
    acc = ddp.sum_tensor(acc)
    b, m = max(acc[2].item(), 1.0), max(acc[5].item(), 1.0)
    return {"loss": acc[0].item() / b, "e_mae_meV_atom": 1000 * acc[1].item() / b,
            "f_mae_meV_A": 1000 * acc[3].item() / m, "f_rmse_meV_A": 1000 * math.sqrt(acc[4].item() / m),
            "late_loss": acc[6].item() / b}


def in_late_stage(run: Run) -> bool:
    """True once the late stage (raised energy weight) has started and changes the loss."""
    cfg = run.config
    return cfg.late_energy_factor != 1.0 and progress_of(run) >= cfg.late_start


def selection_loss(run: Run, valid: dict) -> float:
    """The validation loss the best checkpoint is chosen by.

    Before the late stage: the base weights.  From its start on: the weights it ends with, and
    only among late-stage epochs (the best is reset when it starts), as MACE keeps its SWA-stage
    checkpoints apart.  Choosing by the force-dominated base loss undid the stage: on Zuo Ge (40
    min) it kept the epoch where the stage began, test E MAE 7.05 meV/atom against 2.83 for the
    final weights, at 39.2 vs 39.9 meV/Å force MAE.
    """
    if not (run.best_in_late_stage or in_late_stage(run)):  # sticky: a retargeted schedule may step back
        return valid["loss"]
    if not run.best_in_late_stage:
        run.best_in_late_stage, run.best_loss = True, math.inf
    return valid["late_loss"]


def model_metadata(run: Run, valid: dict | None) -> dict:
    cfg = run.config
    return {"forces": cfg.forces, "epoch": run.epoch, "valid": valid or {}, "trained_with": "dens-calc train",
            "dens": cfg.dens.__dict__ if cfg.dens.enabled else "off", "train_file": cfg.train_file,
            "finetuned_from": cfg.from_model,
            "replay": {"file": cfg.replay_file, "fraction": cfg.replay_fraction} if cfg.replay_file else None,
            "quadratic_base": run.prep.quadratic_base}


def train_state(run: Run) -> dict:
    """Everything a resume needs (``last.pt``'s ``train_state``).  Holds references to live tensors:
    deep-copy it to keep it in memory while training goes on."""
    return {
        "epoch": run.epoch, "raw_model": {k: v.detach().cpu() for k, v in run.model.state_dict().items()},
        "optimizer": run.optimizer.state_dict(), "schedule": run.schedule.state_dict(), "ema": run.ema.state_dict(),
        "rng": rng_state(run.generators), "spike_guard": run.guard.state_dict(), "best_loss": run.best_loss,
        "best_epoch": run.best_epoch, "best_in_late_stage": run.best_in_late_stage,
        "bad_epochs": run.bad_epochs, "history": run.history, "elapsed_s": run.elapsed_s,
    }


def save_last(run: Run, out: Path) -> None:
    last_valid = run.history[-1] if run.history else None
    save_model(run.ema.model, out / LAST, metadata=model_metadata(run, last_valid),
               extra={"train_state": train_state(run), "train_config": run.config.to_dict()})


def save_best(run: Run, out: Path, valid: dict) -> None:
    save_model(run.ema.model, out / BEST, metadata=model_metadata(run, valid))
    save_model(run.ema.model, out, metadata=model_metadata(run, valid))


def write_csv(history: list[dict], path: Path) -> None:
    if not history:
        return
    keys = list(dict.fromkeys(k for row in history for k in row))
    with atomic_write(path, newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=keys)
        writer.writeheader()
        writer.writerows(history)


def end_epoch(run: Run, out: Path, parts: dict, valid: dict, seconds: float) -> None:
    """Bookkeeping after a full epoch: history, best model, early stopping counter, checkpoints."""
    run.epoch += 1
    selected = selection_loss(run, valid)
    # a change in the 9th digit is rounding, not learning: it must not reset early stopping
    improved = selected < run.best_loss * (1.0 - 1e-9)
    if improved:
        run.best_loss, run.best_epoch, run.bad_epochs = selected, run.epoch, 0
    else:
        run.bad_epochs += 1
    run.schedule.epoch_end(valid["loss"])
    row = {"epoch": run.epoch, "lr": run.schedule.lr, **{f"train_{k}": v for k, v in parts.items()},
           **{f"valid_{k}": v for k, v in valid.items()}, "time_s": round(seconds, 3)}
    run.history.append(row)
    if run.main:
        if improved:
            save_best(run, out, valid)
        save_last(run, out)
        write_csv(run.history, out / "metrics.csv")
        log.info("epoch %d: train loss %.4g, valid loss %.4g, E MAE %.2f meV/atom, F MAE %.2f meV/Å%s",
                 run.epoch, parts.get("total", float("nan")), valid["loss"], valid["e_mae_meV_atom"],
                 valid["f_mae_meV_A"], " (best)" if improved else "")


def stop_reason(run: Run, deadline: float | None, last_epoch_s: float, stop_at: int) -> str | None:
    cfg = run.config
    if run.epoch >= cfg.epoch_budget:
        return "max_epochs"
    if run.epoch >= stop_at:
        return "stop_after"
    if cfg.patience is not None and run.bad_epochs >= cfg.patience:
        return "early_stopping"
    if ddp.any_flag(deadline is not None and time.monotonic() + last_epoch_s > deadline):
        return "time_limit"
    return None


def train(config: TrainConfig, *, resume: str | Path | None = None, stop_after: int | None = None) -> TrainResult:
    """Train (or fine-tune, when ``config.from_model`` is set) and return where the model went.

    ``resume``: an output directory with ``last.pt``; training continues exactly where it
    stopped.  ``stop_after``: stop after this many epochs in this call (the schedule still
    spans ``config.max_epochs``).  With ``time_limit`` and no ``max_epochs`` the LR schedule
    spans this call's time budget: it is retargeted after every epoch so that it ends with the
    last epoch that fits (a resumed run fits the rest of its schedule into the new time limit).
    Subnormal floats are flushed to zero while it runs (:func:`dens_calc.runtime.flush_denormals`).
    """
    with denormals_flushed():
        return _train(config, resume, stop_after)


def _train(config: TrainConfig, resume: str | Path | None, stop_after: int | None) -> TrainResult:
    # the budget counts the set-up too: reading data, building graphs and fitting a quadratic base (~1.5 min for
    # 175 Mo frames) are part of the wall-clock time a user gave
    start = time.monotonic()
    run = build_run(config, resume=resume)
    out = Path(config.out_dir)
    if run.main:
        out.mkdir(parents=True, exist_ok=True)
        write_config(config, out / "config.yaml")
    deadline = start + 60.0 * config.time_limit if config.time_limit else None
    stop_at = run.epoch + stop_after if stop_after is not None else math.inf
    try:
        stopped = train_epochs(run, out, deadline, stop_at)
    except TrainingDiverged:
        finish(run, out, "diverged")  # model.pt exists even if no epoch completed
        raise
    finish(run, out, stopped)
    best = next((h for h in run.history if h["epoch"] == run.best_epoch), {})
    return TrainResult(out, run.epoch, run.best_epoch, best, stopped, run.history)


def train_epochs(run: Run, out: Path, deadline: float | None, stop_at: float) -> str:
    """Epochs until a stop reason; returns it."""
    last_epoch_s, starts = 0.0, EpochStarts()
    while (stopped := stop_reason(run, deadline, last_epoch_s, stop_at)) is None:
        t0 = time.monotonic()
        starts.remember(run)
        try:
            parts, timed_out = train_epoch(run, deadline)
        except TrainingDiverged as why:
            roll_back(run, starts, why)
            continue
        if timed_out:
            return "time_limit"
        valid = validate(run)
        broken = validation_blew_up(run, valid)
        if broken:  # the last steps of the epoch broke the weights; its batches could not show it
            roll_back(run, starts, TrainingDiverged(broken))
            continue
        starts.completed()
        last_epoch_s = time.monotonic() - t0
        run.elapsed_s += last_epoch_s
        run.epoch_times.append(last_epoch_s)
        if run.config.time_fitted:
            fit_schedule_to_time(run, deadline - time.monotonic())
        end_epoch(run, out, parts, valid, last_epoch_s)
    return stopped


def finish(run: Run, out: Path, stopped: str) -> None:
    """Make sure a usable model exists even if no epoch completed; log why training stopped."""
    if run.main and not (out / "model.pt").exists():
        save_model(run.ema.model, out, metadata={**model_metadata(run, None), "incomplete": True})
    if run.main:
        log.info("training stopped (%s) after %d epoch(s); best epoch %d; model in %s",
                 stopped, run.epoch, run.best_epoch, out / "model.pt")
    ddp.teardown()


def load_resume_config(resume: str | Path) -> TrainConfig:
    """The configuration a run in ``resume`` was started with (from its ``last.pt``)."""
    return TrainConfig.from_dict(read_checkpoint(Path(resume) / LAST)["train_config"])


__all__ = ["train", "TrainResult", "load_resume_config", "atomic_torch_save"]
