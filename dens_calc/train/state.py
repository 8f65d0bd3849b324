"""Training state that must survive a restart: EMA weights, LR schedule, RNG streams, the spike guard."""

from __future__ import annotations

import copy
import math
import statistics
from collections import deque

import torch


class EMA:
    """Exponential moving average of parameters and buffers (used for validation and saving)."""

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = float(decay)
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.num_updates = 0

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.num_updates += 1
        decay = min(self.decay, (1.0 + self.num_updates) / (10.0 + self.num_updates))
        for ema_p, p in zip(self.model.parameters(), model.parameters()):
            ema_p.mul_(decay).add_(p.detach(), alpha=1.0 - decay)
        for ema_b, b in zip(self.model.buffers(), model.buffers()):
            ema_b.copy_(b)

    def state_dict(self) -> dict:
        return {"num_updates": self.num_updates, "weights": {k: v.detach().cpu() for k, v in self.model.state_dict().items()}}

    def load_state_dict(self, state: dict) -> None:
        self.num_updates = int(state["num_updates"])
        self.model.load_state_dict(state["weights"])


class LRSchedule:
    """Linear warm-up, then cosine decay to ``min_ratio`` (per step) or reduce-on-plateau (per epoch)."""

    def __init__(self, optimizer, *, base_lr: float, warmup_steps: int, total_steps: int, kind: str = "cosine",
                 min_ratio: float = 0.01, plateau_patience: int = 10, plateau_factor: float = 0.5):
        self.optimizer = optimizer
        self.base_lr, self.kind, self.min_ratio = base_lr, kind, min_ratio
        self.warmup_steps, self.total_steps = max(0, warmup_steps), max(1, total_steps)
        self.plateau_patience, self.plateau_factor = plateau_patience, plateau_factor
        self.step_count, self.plateau_scale, self.best, self.bad_epochs = 0, 1.0, math.inf, 0
        self.lr_scale = 1.0  # lowered by the loop when training diverges (rollback and LR back-off)
        self._apply()

    def factor(self) -> float:
        warm = min(1.0, (self.step_count + 1) / self.warmup_steps) if self.warmup_steps else 1.0
        if self.kind == "plateau":
            return warm * self.plateau_scale
        progress = min(1.0, self.step_count / self.total_steps)
        return warm * (self.min_ratio + (1 - self.min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))

    def _apply(self) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = self.base_lr * self.lr_scale * self.factor()

    def step(self) -> None:
        self.step_count += 1
        self._apply()

    def set_lr_scale(self, scale: float) -> None:
        """Scale the whole schedule (peak and floor) from now on, e.g. after a divergence."""
        self.lr_scale = float(scale)
        self._apply()

    def epoch_end(self, valid_loss: float) -> None:
        if self.kind != "plateau":
            return
        if valid_loss < self.best:
            self.best, self.bad_epochs = valid_loss, 0
        else:
            self.bad_epochs += 1
            if self.bad_epochs > self.plateau_patience:
                self.plateau_scale *= self.plateau_factor
                self.bad_epochs = 0
        self._apply()

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def state_dict(self) -> dict:
        return {"step_count": self.step_count, "plateau_scale": self.plateau_scale, "best": self.best,
                "bad_epochs": self.bad_epochs, "total_steps": self.total_steps, "lr_scale": self.lr_scale}

    def load_state_dict(self, state: dict) -> None:
        self.step_count, self.plateau_scale = int(state["step_count"]), float(state["plateau_scale"])
        self.best, self.bad_epochs = float(state["best"]), int(state["bad_epochs"])
        self.lr_scale = float(state.get("lr_scale", 1.0))  # absent in older last.pt files
        self._apply()


def rng_state(generators: dict[str, torch.Generator]) -> dict:
    """RNG states as uint8 tensors (loadable with ``weights_only=True``)."""
    return {"torch": torch.get_rng_state(), **{k: g.get_state() for k, g in generators.items()}}


def set_rng_state(generators: dict[str, torch.Generator], state: dict) -> None:
    torch.set_rng_state(state["torch"])
    for k, g in generators.items():
        g.set_state(state[k])


class TrainingDiverged(RuntimeError):
    """Training has diverged: batch after batch far above the recent losses, or a validation loss far
    above the best (the loop rolls back; raised to the caller once the LR back-offs are used up)."""


class SpikeGuard:
    """Skips the optimizer step of a batch whose loss is far above the recent typical loss.

    A step is skipped when its loss is not finite (always, also with ``factor`` None) or exceeds
    ``factor`` × the median of the last ``window`` accepted losses (judged after ``warmup`` of them).  Ordinary batches stay within ~10×
    the median, and the late stage raises the loss by at most its energy factor (×100), so the
    default factor of 1000 does not touch normal training, while a corrupt label costs one skipped
    step per epoch.  ``max_in_a_row`` skips in a row mean the model itself is broken (on the
    six-element Zuo set at LR 7.9e-3 one ordinary step made the next batches' losses 1e5-1e7 against
    a median of 0.17): :class:`TrainingDiverged` is raised and the loop rolls back (``loop.roll_back``).
    """

    def __init__(self, factor: float | None, window: int = 100, warmup: int = 20, max_in_a_row: int = 5):
        self.factor, self.warmup, self.max_in_a_row = factor, warmup, max_in_a_row
        self.recent: deque[float] = deque(maxlen=window)
        self.skipped = 0
        self.in_a_row = 0

    def threshold(self) -> float:
        median = statistics.median(self.recent) if len(self.recent) >= self.warmup else 0.0
        # a median of exactly 0 (a perfect fit) gives no scale to judge by
        return self.factor * median if self.factor is not None and median > 0 else math.inf

    def is_spike(self, loss: float) -> bool:
        return not math.isfinite(loss) or loss > self.threshold()

    def accepted(self, loss: float) -> None:
        self.recent.append(float(loss))
        self.in_a_row = 0

    def rejected(self) -> None:
        self.skipped += 1
        self.in_a_row += 1
        if self.in_a_row >= self.max_in_a_row:
            raise TrainingDiverged(
                f"{self.in_a_row} batches in a row had a loss that was not finite"
                + (f" or above {self.factor:g}x the recent median "
                   f"({statistics.median(self.recent) if self.recent else float('nan'):.4g})" if self.factor else ""))

    def state_dict(self) -> dict:
        return {"recent": list(self.recent), "skipped": self.skipped}

    def load_state_dict(self, state: dict) -> None:
        self.recent.clear()
        self.recent.extend(float(x) for x in state["recent"])
        self.skipped, self.in_a_row = int(state["skipped"]), 0
