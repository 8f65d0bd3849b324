"""``dens-calc train``, ``dens-calc finetune`` and ``dens-calc eval``: thin wrappers over :mod:`dens_calc.train`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .options import one_line_errors, setup_logging

# (option, TrainConfig field, help); DeNS options map into the nested ``dens`` section.  Types,
# choices and the "[default]" shown in --help come from the config dataclasses (``_click_kwargs``),
# so the help can never disagree with what training does.
COMMON = [
    ("--valid", "valid_file", "Validation file (default: split --valid-fraction off --train)."),
    ("--valid-fraction", "valid_fraction", "Fraction of --train used for validation when no --valid."),
    ("--config", None, "YAML config with any TrainConfig keys (flags override it; unknown keys are errors)."),
    ("--forces", "forces", "Forces as -dE/dr (conservative: MD, relaxations, phonons, stress) or from the direct "
                           "head (cheaper per step; no stress, DeNS pre-training)."),
    ("--max-epochs", "max_epochs", "Epochs the LR schedule spans. Default: with --time-limit the schedule spans the "
                                   "time budget (epochs estimated as training goes), otherwise 100."),
    ("--time-limit", "time_limit", "Wall-clock budget in MINUTES: the LR schedule fits into it (unless --max-epochs), "
                                   "training stops cleanly, saves, reports."),
    ("--batch-size", "batch_size", "Structures per batch (per process with torchrun)."),
    ("--loss", "loss", "mse: squared energy-per-atom and force-component errors (MACE's weighted loss); "
                       "norm: |dE|/N and per-atom force-error norms (MAE-like)."),
    ("--optimizer", "optimizer", "Adam (L2 weight decay) or AdamW (decoupled weight decay)."),
    ("--amsgrad/--no-amsgrad", "amsgrad", "AMSGrad variant of the optimizer."),
    ("--lr", "lr", "Peak learning rate."),
    ("--weight-decay", "weight_decay", "Weight decay."),
    ("--scheduler", "scheduler", "LR schedule after warm-up."),
    ("--warmup-epochs", "warmup_epochs", "Linear LR warm-up length in epochs."),
    ("--ema-decay", "ema_decay", "EMA decay of the weights used for validation and saving."),
    ("--grad-clip", "grad_clip", "Gradient-norm clipping threshold."),
    ("--spike-factor", "spike_factor", "Skip the step of a batch whose loss is above this many times the median of "
                                       "the recent batches, or not finite (logged; after 5 in a row, or a validation "
                                       "loss above this x the best, the epoch is retried from its start at half the "
                                       "LR, at most 3 times). 0: skip only losses that are not finite."),
    ("--patience", "patience", "Early stopping: stop after this many epochs without validation improvement "
                               "(default: off; the best checkpoint is kept either way)."),
    ("--energy-weight", "energy_weight", "λ_E, weight of the per-atom energy error."),
    ("--forces-weight", "forces_weight", "λ_F, weight of the force error."),
    ("--stress-weight", "stress_weight", "Weight of the stress (virial per atom) error, on the structures that "
                                         "have stress labels. Default: 1 when the training data have stress labels, else 0."),
    ("--config-type-weights", "config_type_weights", "Loss weight per atoms.info['config_type'], e.g. "
                                                   "'Surface=5,Vacancy=2' (others 1; default: none)."),
    ("--late-start", "late_start", "Fraction of training after which the late stage (--late-energy-factor) starts."),
    ("--late-energy-factor", "late_energy_factor", "Energy weight multiplier in the late stage (1: no late stage)."),
    ("--late-ramp", "late_ramp", "Fraction of training over which the late energy multiplier is reached "
                                 "geometrically (0: at once)."),
    ("--e0s", "e0s", "Isolated-atom energies: 'fit' (single-atom frames of --train if any, else a least-squares "
                     "fit) or a file of single-atom frames."),
    ("--energy-key", "energy_key", "atoms.info key of the energy label (default: energy, REF_energy, ...)."),
    ("--forces-key", "forces_key", "atoms.arrays key of the force label."),
    ("--stress-key", "stress_key", "atoms.info key of the stress label."),
    ("--graph-skin", "graph_skin", "Å added to the training neighbour-list cutoff so noisy atoms keep their "
                                   "neighbours (default: 3σ with DeNS, 3σ_max multi-scale, else 0)."),
    ("--seed", "seed", "Random seed (split, init, shuffling, DeNS noise)."),
    ("--dtype", "dtype", "Training precision."),
    ("--device", "device", "auto, cpu, cuda, cuda:1 ..."),
    ("--progress/--no-progress", "progress", "Show a progress bar."),
    ("--dens/--no-dens", "dens.enabled", "DeNS auxiliary denoising on or off."),
    ("--dens-p", "dens.p", "p: probability a structure (or batch) is a DeNS sample."),
    ("--dens-selection", "dens.selection", "Select DeNS samples per structure or per batch."),
    ("--dens-ratio", "dens.ratio", "r: fraction of (non-fixed) atoms corrupted in a DeNS sample."),
    ("--dens-sigma", "dens.sigma", "σ (Å) of the Gaussian noise."),
    ("--dens-multi-scale/--no-dens-multi-scale", "dens.multi_scale", "Draw σ per structure from a geometric grid; target ε/σ_max."),
    ("--dens-sigma-min", "dens.sigma_min", "Smallest σ of the multi-scale grid (Å)."),
    ("--dens-sigma-max", "dens.sigma_max", "Largest σ of the multi-scale grid (Å)."),
    ("--dens-num-sigmas", "dens.num_sigmas", "Number of σ values in the multi-scale grid."),
    ("--dens-lambda", "dens.lambda_dens", "λ_DeNS, weight of the noise-prediction term (published λ × "
                                          "--forces-weight / published λ_F; MD17: 5 × 10 / 80)."),
    ("--dens-lambda-decay/--no-dens-lambda-decay", "dens.lambda_decay", "Decay λ_DeNS linearly to 0 over training."),
    ("--dens-force-encoding/--no-dens-force-encoding", "dens.force_encoding", "Give the network the clean forces of corrupted atoms."),
    ("--dens-energy-on-noisy/--no-dens-energy-on-noisy", "dens.energy_on_noisy", "Keep the clean-energy term on DeNS samples (paper)."),
    ("--dens-forces-on-noisy/--no-dens-forces-on-noisy", "dens.forces_on_noisy",
     "Keep the clean-force term of unpicked atoms on DeNS samples (paper)."),
    ("--dens-separate-means/--no-dens-separate-means", "dens.separate_means",
     "Average forces over unpicked and noise over picked atoms separately (paper's MD17) or over all atoms (OC20)."),
    ("--dens-max-force-norm", "dens.max_force_norm", "Only structures whose largest force (eV/Å) is at most this "
                                                     "become DeNS samples (default: all)."),
]
ARCH = [
    ("--r-max", "model.r_max", "Cutoff radius (Å)."),
    ("--channels", "model.num_channels", "Channels per degree."),
    ("--l-max", "model.l_max", "Largest spherical-harmonic degree (0-3)."),
    ("--layers", "model.num_layers", "Interaction layers."),
    ("--radial-rank", "model.radial_rank", "Rank of the factorised per-channel, per-path radial weights."),
    ("--correlation", "model.correlation", "Body order of the node product per layer: 2 (square) or 3 (adds a cubic term)."),
    ("--descriptor-l-max", "model.descriptor_l_max",
     "Add power-spectrum invariants up to this degree (e.g. 6) to the initial scalar features; 0: none."),
    ("--quadratic-base", "model.prior_l_max",
     "Δ-model for one element: first fit an energy quadratic in the l <= this power spectrum (e.g. 6) by least "
     "squares, its size chosen by cross-validation; the network learns what it leaves (Zuo Mo with "
     "--descriptor-l-max 6: the unseen (211) surface within 11 meV/atom, networks alone 12-45 off; Zuo Si: "
     "energies -21 %, forces +16 %). -1: none."),
    ("--base-kind", "model.prior_kind",
     "The --quadratic-base term: 'quadratic' (products of all invariants) or 'kernel' (a sparse polynomial kernel "
     "on 8-Gaussian invariants, as GAP; Zuo Mo 5-fold CV E / F 2.13 / 93.4 against 2.24 / 99.6)."),
    ("--pair-repulsion/--no-pair-repulsion", "model.pair_repulsion",
     "Add ZBL nuclear repulsion below the sum of covalent radii (keeps hot MD from collapsing)."),
    ("--product-norm/--no-product-norm", "model.product_norm",
     "The node products see the messages through a smooth RMS norm (bounds large features; experimental, off)."),
    ("--noise-block/--no-noise-block", "model.noise_block",
     "DeNS noise head on its own interaction block (training only; no cost in MD) instead of a linear read-out."),
]
# defaults that differ for `dens-calc finetune` (shown in its --help).  lr: from the xTB pretrain to 50 DFT frames
# of ethanol / aspirin in 8 minutes, test force RMSE 56.5 / 94.5 meV/Å at 1e-4, 48.1 / 70.8 at 1e-3, 44.9 / 65.0 at
# 3e-3, 47.6 / 67.3 at 1e-2 (benchmarks/README.md, "Fine-tuning from the xTB pretrain")
FINETUNE_DEFAULTS = {"lr": 3e-3, "forces": "conservative", "warmup_epochs": 0.5}
# `dens-calc train` uses the fine-tuning defaults when --init starts it from a pretrained model
TRAIN_HELP = {
    "lr": "Peak learning rate. Default: 0.01 from scratch, 0.003 from a pretrained model (--init).",
    "warmup_epochs": "Linear LR warm-up length in epochs. Default: 1 from scratch, 0.5 from a pretrained model.",
}
TRAIN_COMMON = [(flag, path, TRAIN_HELP.get(path, text)) for flag, path, text in COMMON]


def _field_info(path: str):
    """(type, default) of a config field named like ``lr``, ``dens.p`` or ``model.l_max``."""
    import dataclasses
    import typing

    from dens_calc.nn.model import ModelConfig
    from dens_calc.train import DeNSConfig, TrainConfig
    from dens_calc.train.config import TRAINING_ARCHITECTURE

    section, _, name = path.rpartition(".")
    cls = {"": TrainConfig, "dens": DeNSConfig, "model": ModelConfig}[section]
    field = next(f for f in dataclasses.fields(cls) if f.name == name)
    default = field.default_factory() if field.default is dataclasses.MISSING else field.default
    if section == "model":
        default = TRAINING_ARCHITECTURE.get(name, default)
    return typing.get_type_hints(cls)[name], default


def _click_type(kind):
    """click type of a dataclass field type: Literal -> Choice, int/float as such, else text."""
    import typing

    inner = [a for a in typing.get_args(kind) if a is not type(None)]
    if typing.get_origin(kind) is not typing.Literal and len(inner) == 1:  # X | None
        kind = inner[0]
    if typing.get_origin(kind) is typing.Literal:
        return click.Choice(list(typing.get_args(kind)))
    return kind if kind in (int, float) else None


def _click_kwargs(flag: str, path: str | None, help_text: str, defaults: dict) -> dict:
    if path is None:
        return dict(type=click.Path(exists=True, dir_okay=False), help=help_text)
    kind, default = _field_info(path)
    default = defaults.get(path, default)
    if "/" in flag:  # an on/off flag; None = not given, so the config file or default decides
        return dict(default=None, help=f"{help_text} [{'on' if default else 'off'}]")
    shown = "" if default is None or "efault" in help_text else f" [{default}]"
    ctype = _click_type(kind)
    return dict(help=f"{help_text}{shown}", **({"type": ctype} if ctype is not None else {}))


def _param_name(flag: str) -> str:
    return flag.split("/")[0].lstrip("-").replace("-", "_")


def _add_options(options, defaults: dict | None = None):
    def decorate(func):
        for flag, path, help_text in reversed(options):
            func = click.option(flag, _param_name(flag), **_click_kwargs(flag, path, help_text, defaults or {}))(func)
        return func
    return decorate


def _overrides(params: dict, options) -> dict:
    """Non-None CLI values as a nested TrainConfig dict."""
    out: dict = {}
    for flag, field_name, _ in options:
        value = params.get(_param_name(flag))
        if field_name is None or value is None:
            continue
        section, _, key = field_name.rpartition(".")
        (out.setdefault(section, {}) if section else out)[key] = value
    return out


def _merge(base: dict, update: dict) -> dict:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


def build_config(params: dict, base: dict, *, architecture: bool = True):
    """Defaults <- YAML --config <- flags; the result is validated by TrainConfig."""
    import yaml

    from dens_calc.train import TrainConfig

    data = base
    if params.get("config"):
        _merge(data, yaml.safe_load(Path(params["config"]).read_text()) or {})
    _merge(data, _overrides(params, COMMON))
    if architecture:
        _merge(data, _overrides(params, ARCH))
    for key in ("train", "out"):
        if params.get(key):
            data["train_file" if key == "train" else "out_dir"] = params[key]
    return TrainConfig.from_dict(data)


def _run(config, resume=None, stop_after=None, announce: str | None = None) -> None:
    import logging

    from dens_calc.checkpoint import CheckpointError
    from dens_calc.data import DataError
    from dens_calc.train import ConfigError, TrainingDiverged, train

    setup_logging(config.out_dir, filename="train.log")
    if announce:
        logging.getLogger("dens_calc.train").info(announce)
    try:
        result = train(config, resume=resume, stop_after=stop_after)
    except (DataError, ConfigError, CheckpointError, TrainingDiverged) as exc:
        raise click.ClickException(str(exc)) from exc
    best = result.best_valid
    click.echo(f"stopped ({result.stopped}) after {result.epochs} epoch(s); best epoch {result.best_epoch}: "
               f"E MAE {best.get('valid_e_mae_meV_atom', float('nan')):.3f} meV/atom, "
               f"F MAE {best.get('valid_f_mae_meV_A', float('nan')):.3f} meV/Å; model: {result.model_path}")


def _config_or_fail(params: dict, base: dict, architecture: bool = True):
    from dens_calc.train import ConfigError

    try:
        return build_config(params, base, architecture=architecture)
    except (ConfigError, TypeError) as exc:
        raise click.ClickException(f"invalid configuration: {exc}") from exc


@click.command("train")
@click.option("--train", "train", type=click.Path(dir_okay=False), help="Training structures with energy/forces labels (any ase.io format).")
@click.option("--out", "out", type=click.Path(file_okay=False), help="Output directory: model.pt, best.pt, last.pt, metrics.csv, config.yaml, train.log.")
@click.option("--resume", type=click.Path(exists=True, file_okay=False), help="Continue the run in this directory from its last.pt (same trajectory).")
@click.option("--stop-after", type=int, help="Stop after this many epochs in this invocation (the schedule still spans --max-epochs).")
@click.option("--init", default="auto", show_default=True,
              help="Where the model starts: 'auto' starts molecules (non-periodic frames) whose elements a bundled "
                   "pretrained model covers (H, C, N, O: hcno-xtb-pretrained) from it, with the fine-tuning defaults "
                   "(lr 3e-3, E0s set from isolated atoms if given, then refitted), and everything else from scratch; "
                   "'scratch'; or a checkpoint / bundled model name. Architecture options imply scratch.")
@_add_options(TRAIN_COMMON + ARCH)
@one_line_errors
def train_cmd(**params):
    """Train a potential: conservative forces and stress by default (MD, relaxations, phonons), DeNS with --dens.

    Molecules of H, C, N, O start from the bundled pretrained model (--init auto): at equal training time on DFT
    data of held-out molecules that lowered the test force error by 16-57 % (benchmarks/README.md).

    \b
    dens-calc train --train data.xyz --out run --time-limit 40
    torchrun --nproc-per-node 4 "$(which dens-calc)" train --train data.xyz --out run
    """
    if params["resume"]:
        from dens_calc.train import load_resume_config

        base = load_resume_config(params["resume"]).to_dict()
        params["out"] = params["out"] or params["resume"]
        _run(_config_or_fail(params, base), params["resume"], params["stop_after"])
        return
    if not params["train"] or not params["out"]:
        raise click.UsageError("--train and --out are required (or --resume DIR)")
    start = _start(params)
    if start.model is None:
        config = _config_or_fail(params, {})
    else:
        config = _config_or_fail(params, {**FINETUNE_DEFAULTS, "from_model": start.model}, architecture=False)
    _run(config, stop_after=params["stop_after"], announce=f"model starts from {start.model or 'scratch'}: {start.reason}")


def _config_file_architecture(path: str | None) -> dict:
    """The ``model:`` section of a --config file (architecture keys), {} without one."""
    import yaml

    if not path:
        return {}
    data = yaml.safe_load(Path(path).read_text()) or {}
    return data.get("model") or {} if isinstance(data, dict) else {}


def _start(params: dict):
    """The --init decision; an explicit model with architecture options is a contradiction."""
    from dens_calc.train.pretrained import AUTO, SCRATCH, resolve_init

    flags = [flag.split("/")[0] for flag, *_ in ARCH if params.get(_param_name(flag)) is not None]
    in_file = _config_file_architecture(params.get("config"))
    if (flags or in_file) and params["init"] not in (AUTO, SCRATCH):
        given = flags + ([f"model: in {params['config']}"] if in_file else [])
        raise click.UsageError(f"--init {params['init']} fixes the architecture: drop {', '.join(given)}")
    return resolve_init(params["init"], params["train"], architecture_given=bool(flags or in_file),
                        valid_file=params.get("valid"))


@click.command("finetune")
@click.option("--from", "from_model", required=True, help="Checkpoint file, model directory or bundled model name to start from.")
@click.option("--train", "train", required=True, type=click.Path(dir_okay=False), help="New training structures.")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="Output directory.")
@click.option("--add-elements", is_flag=True, default=None, help="Allow elements the model does not know (initialised from the known ones).")
@click.option("--freeze-layers", type=int, help="Freeze the embedding and the first N interaction layers [0].")
@click.option("--refit-e0s/--no-refit-e0s", default=None, help="Refit E0s to the new data's energy reference [on].")
@click.option("--replay", "replay_file", type=click.Path(exists=True, dir_okay=False),
              help="Pretraining structures mixed into the training set with their forces only (keeps the model sane "
                   "away from the new data; their energies are of another level of theory).")
@click.option("--replay-fraction", type=float, help="Replay frames per new training frame [0.5].")
@_add_options(COMMON, FINETUNE_DEFAULTS)
@one_line_errors
def finetune_cmd(**params):
    """Fine-tune a model on new data (keeps its architecture; conservative forces and lr 3e-3 by default, DeNS only with --dens).

    The lr suits a pretrained model and a new level of theory (measured: xTB pretrain to DFT); to stay close to a
    model of the data's own level of theory, lower it (e.g. --lr 1e-4).

    E0s: --e0s FILE (isolated atoms at the new level of theory) or single-atom frames in --train set
    them first; --refit-e0s then shifts them to the new data's reference.
    """
    base = {**FINETUNE_DEFAULTS, "from_model": params["from_model"]}
    for key in ("add_elements", "freeze_layers", "refit_e0s", "replay_file", "replay_fraction"):
        if params[key] is not None:
            base[key] = params[key]
    _run(_config_or_fail(params, base, architecture=False))


@click.command("eval")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--model", required=True, help="Checkpoint file, model directory or bundled model name.")
@click.option("--plot", "plot_dir", type=click.Path(file_okay=False), help="Write parity plots (PNG) to this directory.")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON instead of a table.")
@click.option("--batch-size", default=16, show_default=True, help="Structures per forward pass.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda ...")
@click.option("--dtype", default="float64", show_default=True, type=click.Choice(["float32", "float64"]))
@click.option("--energy-key", help="atoms.info key of the energy label.")
@click.option("--forces-key", help="atoms.arrays key of the force label.")
@click.option("--stress-key", help="atoms.info key of the stress label.")
@one_line_errors
def eval_cmd(files, model, plot_dir, as_json, batch_size, device, dtype, energy_key, forces_key, stress_key):
    """MAE/RMSE of a model on labelled FILES: E (meV/atom, meV), F (meV/Å per component), stress (meV/Å³);
    per atoms.info["config_type"] too when a file has several."""
    from dens_calc.checkpoint import CheckpointError
    from dens_calc.data import DataError, LabelKeys
    from dens_calc.train import evaluate_file, format_table

    keys = LabelKeys(energy_key, forces_key, stress_key)
    results = []
    for i, path in enumerate(files):
        plots = Path(plot_dir) / Path(path).stem if plot_dir and len(files) > 1 else plot_dir
        try:
            results.append(evaluate_file(model, path, keys=keys, batch_size=batch_size, device=device,
                                         dtype=dtype, plot_dir=plots))
        except (DataError, CheckpointError) as exc:
            raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(results if len(results) > 1 else results[0], indent=2))
    else:
        click.echo("\n\n".join(format_table(r) for r in results))
