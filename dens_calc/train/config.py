"""Training configuration: one dataclass per concern, read from YAML, unknown keys are errors."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_args

import yaml

from ..nn.model import ModelConfig

ForcesMode = Literal["direct", "conservative"]
Selection = Literal["structure", "batch"]
Scheduler = Literal["cosine", "plateau"]
LossKind = Literal["mse", "norm"]
Optimizer = Literal["adam", "adamw"]

# epochs the LR schedule spans when neither --max-epochs nor --time-limit says otherwise
DEFAULT_EPOCHS = 100
# stress weight used when the training data carry stress labels and none is given
DEFAULT_STRESS_WEIGHT = 1.0

# architecture keys a training config may set (species/E0s/normalisation come from the data)
ARCHITECTURE_KEYS = ("r_max", "num_channels", "l_max", "num_layers", "num_basis", "envelope_p",
                     "radial_hidden", "radial_rank", "readout_hidden", "pair_repulsion", "correlation", "noise_block",
                     "product_norm", "descriptor_l_max", "descriptor_channels", "prior_l_max",
                     "prior_kind")


class ConfigError(ValueError):
    """An invalid configuration (unknown key, bad value)."""


@dataclass
class DeNSConfig:
    """Denoising non-equilibrium structures (see ``docs``/README "Training with DeNS").

    ``p``: probability that a structure (``selection="structure"``) or a whole batch
    (``"batch"``) is a DeNS sample.  ``ratio``: per-atom probability r that an atom of a DeNS
    sample is corrupted (atoms fixed by ``FixAtoms`` never are).  ``sigma`` (Å): noise std; with
    ``multi_scale`` σ is drawn per structure from ``num_sigmas`` geometric values in
    [``sigma_min``, ``sigma_max``] and the target is ε/σ_max.  ``lambda_dens``: weight of the noise
    term, decayed linearly to 0 over training when ``lambda_decay``.  ``energy_on_noisy``: keep the
    (clean) energy term on DeNS samples (the paper does; fairchem's eSEN variant drops it).
    ``forces_on_noisy``: keep the clean-force term of the unpicked atoms of DeNS samples (the
    paper does); off with ``energy_on_noisy`` off, a DeNS sample trains only the noise prediction.
    ``separate_means``: average the force term over the unpicked atoms and the noise term over the
    picked atoms of the batch, separately (the paper's MD17 script); otherwise one mean over all
    atoms (the OC20 trainer).  ``max_force_norm`` (eV/Å): only structures whose largest labelled
    force is at most this become DeNS samples (EquiformerV3 on OAM: 2.5); None: all.

    λ_DeNS is weighed against our force term, ``forces_weight`` × (ΔF / RMS force)²: a published
    λ corresponds to about λ_published × forces_weight / λ_F,published here (MD17: λ 5 with λ_F 80,
    hence the default 5 × 10 / 80 = 0.625; the noise target ε/σ and our scaled forces both have
    unit RMS per component).
    """

    # off by default: at equal training time it has not yet made our models better (benchmarks/README.md)
    enabled: bool = False
    p: float = 0.25
    selection: Selection = "structure"
    ratio: float = 0.25
    sigma: float = 0.05
    multi_scale: bool = False
    sigma_min: float = 0.01
    sigma_max: float = 0.5
    num_sigmas: int = 50
    lambda_dens: float = 0.625
    lambda_decay: bool = True
    force_encoding: bool = True
    energy_on_noisy: bool = True
    forces_on_noisy: bool = True
    separate_means: bool = True
    max_force_norm: float | None = None

    def __post_init__(self) -> None:
        _check_choice("dens.selection", self.selection, Selection)
        for name in ("p", "ratio"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"dens.{name} must be in [0, 1], got {getattr(self, name)}")
        if self.sigma <= 0 or self.sigma_min <= 0 or self.sigma_max < self.sigma_min:
            raise ConfigError("dens: need sigma > 0 and 0 < sigma_min <= sigma_max")
        if self.num_sigmas < 1 or self.lambda_dens < 0:
            raise ConfigError("dens: need num_sigmas >= 1 and lambda_dens >= 0")
        if self.max_force_norm is not None and self.max_force_norm <= 0:
            raise ConfigError(f"dens.max_force_norm must be positive (eV/Å), got {self.max_force_norm}")


@dataclass
class TrainConfig:
    """Everything one training (or fine-tuning) run needs; CLI flags map to the same fields."""

    train_file: str | None = None
    valid_file: str | None = None
    valid_fraction: float = 0.05
    out_dir: str = "run"
    energy_key: str | None = None
    forces_key: str | None = None
    stress_key: str | None = None
    e0s: Any = "fit"  # "fit", a file of isolated atoms, or {symbol: eV}
    # architecture keys (ARCHITECTURE_KEYS); missing ones take the ModelConfig defaults
    model: dict = field(default_factory=dict)
    forces: ForcesMode = "conservative"
    dens: DeNSConfig = field(default_factory=DeNSConfig)
    # "mse": squared errors (energy per atom, force components; MACE's "weighted" loss);
    # "norm": |dE|/N and the per-atom L2 norm of the force error (less weight on large errors)
    loss: LossKind = "mse"
    energy_weight: float = 1.0
    forces_weight: float = 10.0
    stress_weight: float | None = None  # None: DEFAULT_STRESS_WEIGHT if the training data have stress labels, else 0
    # every loss term of a structure multiplied by the weight of its atoms.info["config_type"] (others: 1);
    # as MACE's config_type_weights: rare kinds of structure (surfaces among bulk AIMD) get a say in the fit.
    # A mapping, or "Surface=5,Vacancy=2" from the command line.
    config_type_weights: Any = field(default_factory=dict)
    # late stage (MACE's SWA stage): from this fraction of training on, the energy weight is
    # multiplied by ``late_energy_factor`` (1: off), reached geometrically over ``late_ramp`` of
    # training (0: at once; an abrupt x100 throws the force fit back for several epochs)
    late_start: float = 0.75
    late_energy_factor: float = 100.0
    late_ramp: float = 0.1
    batch_size: int = 5
    valid_batch_size: int = 16
    optimizer: Optimizer = "adamw"
    amsgrad: bool = False
    lr: float = 1e-2
    min_lr_ratio: float = 0.01
    weight_decay: float = 1e-6
    scheduler: Scheduler = "cosine"
    warmup_epochs: float = 1.0
    plateau_patience: int = 10
    plateau_factor: float = 0.5
    ema_decay: float = 0.99
    grad_clip: float | None = 10.0
    # skip the step of a batch whose loss exceeds this x the median of recent batches; a loss that
    # is not finite is always skipped; 0 or None: only those.  See SpikeGuard in state.py.
    spike_factor: float | None = 1000.0
    # None: with a time limit the schedule spans the time budget (epochs estimated as training
    # goes), otherwise DEFAULT_EPOCHS
    max_epochs: int | None = None
    # None: no early stopping.  The LR schedule spans the budget, and the best validation
    # checkpoint is kept anyway; stopping on a plateau at peak LR throws away the decay phase,
    # where small data sets improve most (aspirin, 50 frames: stopped at half the time, LR 0.5x peak).
    patience: int | None = None
    time_limit: float | None = None  # minutes
    graph_skin: float | None = None  # Å added to the training cutoff so noisy atoms keep their neighbours; None: 3σ with DeNS
    seed: int = 0
    dtype: Literal["float32", "float64"] = "float32"
    device: str = "auto"
    progress: bool = True
    # fine-tuning
    from_model: str | None = None
    add_elements: bool = False
    freeze_layers: int = 0
    refit_e0s: bool = True
    # replay: frames of the pretraining data mixed into the fine-tuning set with their forces only
    # (their energies are of another level of theory), so the model stays sane away from the new data
    replay_file: str | None = None
    replay_fraction: float = 0.5  # replay frames per new training frame
    # the quadratic power-spectrum base (model.prior_l_max >= 0): Gaussians per radial basis it may use, chosen
    # with its force weight and ridge by K-fold cross-validation on the training set (train.quadratic_base)
    prior_n_max_choices: list = field(default_factory=lambda: [3, 4])
    prior_cv_folds: int = 5
    # the kernel base (model.prior_kind "kernel"): Gaussians, sparse environments and exponent (train.kernel_base;
    # Zuo Mo: 8 Gaussians CV E / F 2.13 / 93.4 against the quadratic base's 2.24 / 99.6 at n_max 4)
    kernel_n_max: int = 8
    kernel_num_sparse: int = 1000
    kernel_zeta: int = 2

    def __post_init__(self) -> None:
        if isinstance(self.dens, dict):
            self.dens = DeNSConfig(**_checked(self.dens, DeNSConfig, "dens"))
        _check_choice("forces", self.forces, ForcesMode)
        _check_choice("scheduler", self.scheduler, Scheduler)
        _check_choice("loss", self.loss, LossKind)
        _check_choice("optimizer", self.optimizer, Optimizer)
        self.config_type_weights = parse_config_type_weights(self.config_type_weights)
        if not 0.0 <= self.late_start <= 1.0 or self.late_energy_factor <= 0 or not 0.0 <= self.late_ramp <= 1.0:
            raise ConfigError("need 0 <= late_start <= 1, late_energy_factor > 0 and 0 <= late_ramp <= 1")
        if self.time_limit is not None and self.time_limit <= 0:
            raise ConfigError(f"time_limit must be positive (minutes), got {self.time_limit}")
        _check_choice("dtype", self.dtype, Literal["float32", "float64"])
        unknown = set(self.model) - set(ARCHITECTURE_KEYS)
        if unknown:
            raise ConfigError(f"unknown model keys {sorted(unknown)}; allowed: {list(ARCHITECTURE_KEYS)}")
        if not 0.0 <= self.valid_fraction < 1.0:
            raise ConfigError(f"valid_fraction must be in [0, 1), got {self.valid_fraction}")
        if self.batch_size < 1 or (self.max_epochs is not None and self.max_epochs < 0) or self.lr <= 0:
            raise ConfigError("need batch_size >= 1, max_epochs >= 0 and lr > 0")
        if self.spike_factor == 0:
            self.spike_factor = None
        if self.spike_factor is not None and not self.spike_factor > 1.0:
            raise ConfigError(f"spike_factor must be > 1 (or 0: skip only losses that are not finite), "
                              f"got {self.spike_factor}")
        if (self.graph_skin is not None and self.graph_skin < 0) or self.freeze_layers < 0:
            raise ConfigError("graph_skin and freeze_layers must be >= 0")
        if self.replay_fraction <= 0:
            raise ConfigError(f"replay_fraction must be positive, got {self.replay_fraction}")
        if self.replay_file and not self.from_model:
            raise ConfigError("replay (replay_file) is for fine-tuning: it needs a model to start from (from_model)")
        self.prior_n_max_choices = [int(n) for n in self.prior_n_max_choices]
        if self.kernel_n_max < 2 or self.kernel_num_sparse < 1 or self.kernel_zeta < 1:
            raise ConfigError("need kernel_n_max >= 2, kernel_num_sparse >= 1 and kernel_zeta >= 1")
        if not self.prior_n_max_choices or min(self.prior_n_max_choices) < 2 or self.prior_cv_folds < 2:
            raise ConfigError("need prior_n_max_choices >= 2 (at least one) and prior_cv_folds >= 2")
        if architecture(self).get("prior_l_max", -1) >= 0 and self.from_model:
            raise ConfigError("a quadratic base (prior_l_max) is fitted for a new model, not when fine-tuning")
        if architecture(self).get("prior_kind") == "kernel" and architecture(self).get("prior_l_max", -1) < 0:
            raise ConfigError("a kernel base (prior_kind 'kernel', --base-kind kernel) needs its degree: set "
                              "prior_l_max (--quadratic-base 6)")
        if architecture(self)["l_max"] < 1 and (self.forces == "direct" or self.dens.enabled):
            raise ConfigError("direct forces and DeNS predict vectors from l = 1 features: need l_max >= 1")

    def energy_factor_at(self, progress: float) -> float:
        """Multiplier of the energy weight at training ``progress`` in [0, 1] (the late stage)."""
        if progress < self.late_start:
            return 1.0
        ramped = 1.0 if self.late_ramp <= 0 else min(1.0, (progress - self.late_start) / self.late_ramp)
        return self.late_energy_factor**ramped

    @property
    def time_fitted(self) -> bool:
        """True when the LR schedule spans the time budget instead of a number of epochs."""
        return self.max_epochs is None and self.time_limit is not None

    @property
    def epoch_budget(self) -> float:
        """Most epochs this run may take (``inf`` when only the time limit bounds it)."""
        if self.max_epochs is not None:
            return self.max_epochs
        return float("inf") if self.time_limit is not None else DEFAULT_EPOCHS

    def effective_graph_skin(self) -> float:
        """The neighbour-list skin used for training graphs (Å).

        By default 3σ (3σ_max for multi-scale noise) when DeNS is on, so that an atom pushed inside
        the cutoff by the noise still has its edge; 0 without DeNS.
        """
        if self.graph_skin is not None:
            return self.graph_skin
        if not (self.dens.enabled and self.dens.p > 0):
            return 0.0
        return 3.0 * (self.dens.sigma_max if self.dens.multi_scale else self.dens.sigma)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        return cls(**_checked(data, cls, "config"))

    def updated(self, **overrides) -> "TrainConfig":
        """A copy with the non-``None`` overrides applied (``dens`` may be a partial dict)."""
        data = self.to_dict()
        dens = overrides.pop("dens", None) or {}
        data.update({k: v for k, v in overrides.items() if v is not None})
        data["dens"].update({k: v for k, v in dens.items() if v is not None})
        return TrainConfig.from_dict(data)


def parse_config_type_weights(value) -> dict[str, float]:
    """``{"Surface": 5.0}`` from a mapping or from ``"Surface=5,Vacancy=2"``; weights must be >= 0."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        pairs = {}
        for item in value.split(","):
            name, sep, weight = item.partition("=")
            if not sep or not name.strip():
                raise ConfigError(f"config_type_weights: expected NAME=WEIGHT[,NAME=WEIGHT...], got {value!r}")
            pairs[name.strip()] = weight.strip()
        value = pairs
    if not isinstance(value, dict):
        raise ConfigError(f"config_type_weights: expected a mapping, got {type(value).__name__}")
    out = {}
    for name, weight in value.items():
        try:
            out[str(name)] = float(weight)
        except (TypeError, ValueError):
            raise ConfigError(f"config_type_weights: weight of {name!r} is not a number: {weight!r}") from None
        if not out[str(name)] >= 0.0:
            raise ConfigError(f"config_type_weights: weight of {name!r} must be >= 0, got {weight!r}")
    return out


def _checked(data: dict, cls, where: str) -> dict:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}")
    return dict(data)


def _check_choice(name: str, value, literal) -> None:
    if value not in get_args(literal):
        raise ConfigError(f"{name} must be one of {list(get_args(literal))}, got {value!r}")


def load_config(path: str | Path) -> TrainConfig:
    """Read a YAML config; every key must be a field of :class:`TrainConfig` (``dens:`` nested)."""
    text = Path(path).read_text()
    data = yaml.safe_load(text) or {}
    try:
        return TrainConfig.from_dict(data)
    except TypeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def write_config(config: TrainConfig, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))


# where a new model's default differs from ModelConfig's.  ModelConfig keeps correlation 2 because
# checkpoints saved before the cubic term existed have no "correlation" key and must load as they were
# trained; new models get the cubic term, which lowered the test force RMSE in every 40-minute A/B
# (Si -2.8 %, 3BPA -2.0 / -2.5 %, aspirin -0.7 %; docs/ARCHITECTURE.md) for ~20 % more time per call
TRAINING_ARCHITECTURE = {"correlation": 3}


def architecture(config: TrainConfig) -> dict:
    """Architecture keys of a new model: ``config.model`` over the training defaults."""
    defaults = {f.name: f.default for f in fields(ModelConfig) if f.name in ARCHITECTURE_KEYS}
    return {**defaults, **TRAINING_ARCHITECTURE, **config.model}
