"""``dens-calc train``, ``dens-calc finetune`` and ``dens-calc eval``: thin wrappers over :mod:`dens_calc.train`."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import click

from .options import one_line_errors

# (option, TrainConfig field, click kwargs); DeNS options map into the nested ``dens`` section
COMMON = [
    ("--valid", "valid_file", dict(type=click.Path(dir_okay=False), help="Validation file (default: split --valid-fraction off --train).")),
    ("--valid-fraction", "valid_fraction", dict(type=float, help="Fraction of --train used for validation when no --valid [0.05].")),
    ("--config", None, dict(type=click.Path(exists=True, dir_okay=False), help="YAML config with any TrainConfig keys (flags override it; unknown keys are errors).")),
    ("--forces", "forces", dict(type=click.Choice(["direct", "conservative"]), help="Forces from the direct head (cheap; DeNS pre-training) or as -dE/dr.")),
    ("--max-epochs", "max_epochs", dict(type=int, help="Number of epochs the LR schedule spans [100].")),
    ("--time-limit", "time_limit", dict(type=float, help="Wall-clock limit in MINUTES: stop cleanly, save, report.")),
    ("--batch-size", "batch_size", dict(type=int, help="Structures per batch (per process with torchrun) [8].")),
    ("--lr", "lr", dict(type=float, help="Peak learning rate of AdamW [train 1e-3, finetune 1e-4].")),
    ("--weight-decay", "weight_decay", dict(type=float, help="AdamW weight decay [1e-6].")),
    ("--scheduler", "scheduler", dict(type=click.Choice(["cosine", "plateau"]), help="LR schedule after warm-up [cosine].")),
    ("--warmup-epochs", "warmup_epochs", dict(type=float, help="Linear LR warm-up length in epochs [1].")),
    ("--ema-decay", "ema_decay", dict(type=float, help="EMA decay of the weights used for validation and saving [0.99].")),
    ("--grad-clip", "grad_clip", dict(type=float, help="Gradient-norm clipping threshold [10].")),
    ("--patience", "patience", dict(type=int, help="Early stopping: epochs without validation improvement [50].")),
    ("--energy-weight", "energy_weight", dict(type=float, help="λ_E, weight of |ΔE|/N (per-atom energy) [1].")),
    ("--forces-weight", "forces_weight", dict(type=float, help="λ_F, weight of the per-atom force error norm [10].")),
    ("--stress-weight", "stress_weight", dict(type=float, help="Weight of the stress (virial per atom) error; > 0 needs stress labels [0].")),
    ("--e0s", "e0s", dict(help="Isolated-atom energies: 'fit' (least squares) or a file of single-atom frames [fit].")),
    ("--energy-key", "energy_key", dict(help="atoms.info key of the energy label (default: energy, REF_energy, ...).")),
    ("--forces-key", "forces_key", dict(help="atoms.arrays key of the force label.")),
    ("--stress-key", "stress_key", dict(help="atoms.info key of the stress label.")),
    ("--graph-skin", "graph_skin", dict(type=float, help="Å added to the training neighbour-list cutoff so noisy atoms keep their neighbours [3σ with DeNS (3σ_max multi-scale), else 0].")),
    ("--seed", "seed", dict(type=int, help="Random seed (split, init, shuffling, DeNS noise) [0].")),
    ("--dtype", "dtype", dict(type=click.Choice(["float32", "float64"]), help="Training precision [float32].")),
    ("--device", "device", dict(help="auto, cpu, cuda, cuda:1 ... [auto].")),
    ("--progress/--no-progress", "progress", dict(default=None, help="Show a progress bar.")),
    ("--dens/--no-dens", "dens.enabled", dict(default=None, help="DeNS auxiliary denoising on or off [on].")),
    ("--dens-p", "dens.p", dict(type=float, help="p: probability a structure (or batch) is a DeNS sample [0.25].")),
    ("--dens-selection", "dens.selection", dict(type=click.Choice(["structure", "batch"]), help="Select DeNS samples per structure or per batch [structure].")),
    ("--dens-ratio", "dens.ratio", dict(type=float, help="r: fraction of (non-fixed) atoms corrupted in a DeNS sample [0.25].")),
    ("--dens-sigma", "dens.sigma", dict(type=float, help="σ (Å) of the Gaussian noise [0.05].")),
    ("--dens-multi-scale/--no-dens-multi-scale", "dens.multi_scale", dict(default=None, help="Draw σ per structure from a geometric grid; target ε/σ_max.")),
    ("--dens-sigma-min", "dens.sigma_min", dict(type=float, help="Smallest σ of the multi-scale grid (Å) [0.01].")),
    ("--dens-sigma-max", "dens.sigma_max", dict(type=float, help="Largest σ of the multi-scale grid (Å) [0.5].")),
    ("--dens-num-sigmas", "dens.num_sigmas", dict(type=int, help="Number of σ values in the multi-scale grid [50].")),
    ("--dens-lambda", "dens.lambda_dens", dict(type=float, help="λ_DeNS, weight of the noise-prediction term [5].")),
    ("--dens-lambda-decay/--no-dens-lambda-decay", "dens.lambda_decay", dict(default=None, help="Decay λ_DeNS linearly to 0 over training.")),
    ("--dens-force-encoding/--no-dens-force-encoding", "dens.force_encoding", dict(default=None, help="Give the network the clean forces of corrupted atoms [on].")),
    ("--dens-energy-on-noisy/--no-dens-energy-on-noisy", "dens.energy_on_noisy", dict(default=None, help="Keep the clean-energy term on DeNS samples (paper) [on].")),
]
ARCH = [
    ("--r-max", "r_max", dict(type=float, help="Cutoff radius (Å) [5].")),
    ("--channels", "num_channels", dict(type=int, help="Channels per degree [32].")),
    ("--l-max", "l_max", dict(type=int, help="Largest spherical-harmonic degree (0-3) [2].")),
    ("--layers", "num_layers", dict(type=int, help="Interaction layers [2].")),
    ("--pair-repulsion/--no-pair-repulsion", "pair_repulsion",
     dict(default=None, help="Add ZBL nuclear repulsion below the sum of covalent radii (keeps hot MD from collapsing) [off].")),
]


def _param_name(flag: str) -> str:
    return flag.split("/")[0].lstrip("-").replace("-", "_")


def _add_options(options):
    def decorate(func):
        for flag, _, kwargs in reversed(options):
            func = click.option(flag, _param_name(flag), **kwargs)(func)
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
        _merge(data, {"model": _overrides(params, ARCH)})
    for key in ("train", "out"):
        if params.get(key):
            data["train_file" if key == "train" else "out_dir"] = params[key]
    return TrainConfig.from_dict(data)


def setup_logging(out_dir: str | None) -> None:
    logger = logging.getLogger("dens_calc")
    logger.setLevel(logging.INFO)
    if not any(isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler) for h in logger.handlers):
        console = logging.StreamHandler()
        console.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
        logger.addHandler(console)
    for old in [h for h in logger.handlers if isinstance(h, logging.FileHandler)]:
        logger.removeHandler(old)
        old.close()
    if out_dir:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(Path(out_dir) / "train.log")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)


def _run(config, resume=None, stop_after=None) -> None:
    from dens_calc.checkpoint import CheckpointError
    from dens_calc.data import DataError
    from dens_calc.train import ConfigError, train

    setup_logging(config.out_dir)
    try:
        result = train(config, resume=resume, stop_after=stop_after)
    except (DataError, ConfigError, CheckpointError) as exc:
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
@_add_options(COMMON + ARCH)
@one_line_errors
def train_cmd(**params):
    """Train a DeNS potential from scratch.

    \b
    dens-calc train --train data.xyz --out run --forces direct --max-epochs 300
    torchrun --nproc-per-node 4 "$(which dens-calc)" train --train data.xyz --out run
    """
    if params["resume"]:
        from dens_calc.train import load_resume_config

        base = load_resume_config(params["resume"]).to_dict()
        params["out"] = params["out"] or params["resume"]
    elif not params["train"] or not params["out"]:
        raise click.UsageError("--train and --out are required (or --resume DIR)")
    else:
        base = {}
    _run(_config_or_fail(params, base), params["resume"], params["stop_after"])


@click.command("finetune")
@click.option("--from", "from_model", required=True, help="Checkpoint file, model directory or bundled model name to start from.")
@click.option("--train", "train", required=True, type=click.Path(dir_okay=False), help="New training structures.")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="Output directory.")
@click.option("--add-elements", is_flag=True, default=None, help="Allow elements the model does not know (initialised from the known ones).")
@click.option("--freeze-layers", type=int, help="Freeze the embedding and the first N interaction layers [0].")
@click.option("--refit-e0s/--no-refit-e0s", default=None, help="Refit E0s to the new data's energy reference [on].")
@_add_options(COMMON)
@one_line_errors
def finetune_cmd(**params):
    """Fine-tune a model on new data (keeps its architecture; conservative forces, lr 1e-4 and DeNS on by default)."""
    base = {"lr": 1e-4, "forces": "conservative", "warmup_epochs": 0.5, "from_model": params["from_model"]}
    for key in ("add_elements", "freeze_layers", "refit_e0s"):
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
    """MAE/RMSE of a model on labelled FILES: E (meV/atom, meV), F (meV/Å per component), stress (meV/Å³)."""
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
