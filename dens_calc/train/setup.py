"""Everything before the first step: data checks, E0s, normalisation, model (new, fine-tuned or resumed)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..checkpoint import load_model, read_checkpoint
from ..data import DataError
from ..nn.model import DeNSPotential, ModelConfig
from .config import TrainConfig, architecture
from .data import (LabelledSet, average_neighbors, build_graphs, check_config_types, check_species, load_labelled,
                   load_replay, normalisation, resolve_e0s, species_of, split)
from .finetune import extend_species, freeze_layers, refit_e0s, set_e0s
from .quadratic_base import lone_atom_energy

log = logging.getLogger(__name__)


@dataclass
class Prepared:
    model: DeNSPotential
    train_graphs: list
    valid_graphs: list
    device: torch.device
    # "file:frame" of each training graph, for messages about particular structures
    train_names: list[str] = field(default_factory=list)
    # the least-squares fit of the model's quadratic power-spectrum base (settings, CV errors), if it has one
    quadratic_base: dict | None = None


def load_sets(config: TrainConfig) -> tuple[LabelledSet, LabelledSet]:
    """Read and check the training and validation data (all errors before any training)."""
    if not config.train_file:
        raise DataError("no training file given (--train)")
    train = load_labelled(config.train_file, config)
    if config.valid_file:
        return train, load_labelled(config.valid_file, config)
    return split(train, config.valid_fraction, config.seed)


def new_model(config: TrainConfig, train: LabelledSet, species: list[int],
              dtype: torch.dtype) -> tuple[DeNSPotential, dict | None]:
    """A fresh model (and the summary of its quadratic base's fit, if ``prior_l_max`` asks for one)."""
    arch = architecture(config)
    base = None
    if arch.get("prior_l_max", -1) >= 0:
        base, train = fit_base(config, train, arch)
        arch = {**arch, "prior_n_max": base.n_max}
        if arch.get("prior_kind") == "kernel":
            arch.update(prior_num_sparse=len(base.sparse), prior_zeta=base.zeta)
    e0s = resolve_e0s(config, train, species)
    if base is not None and config.e0s not in (None, "fit"):
        # isolated-atom references: the base gives a lone atom an energy, which the network's E0 leaves out
        lone = lone_atom_energy(base, arch["r_max"])
        e0s = {z: e - lone for z, e in e0s.items()}
    scale, shift = normalisation(train, e0s)
    graphs = build_graphs(train, species, arch["r_max"], torch.float64)
    avg = average_neighbors(graphs, arch["r_max"])
    log.info("E0s %s, scale %.4g eV, shift %.4g eV/atom, avg neighbours %.2f", e0s, scale, shift, avg)
    cfg = ModelConfig(species=species, atomic_energies=[e0s[z] for z in species], scale=scale, shift=shift,
                      avg_num_neighbors=avg, **arch)
    # seeded initialisation without resetting the caller's global RNG
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = DeNSPotential(cfg)
    if base is not None:
        model.prior.load_state_dict(base.module(arch["r_max"]).state_dict())
    return model.to(dtype), (base.summary() if base is not None else None)


def fit_base(config: TrainConfig, train: LabelledSet, arch: dict):
    """Fit the base (quadratic or kernel, ``prior_kind``) on the training set; return it and the training set minus
    it (labels the network learns, from which its E0s and normalisation are taken)."""
    import time

    from ase.stress import voigt_6_to_full_3x3_stress

    from .kernel_base import fit_kernel_base
    from .quadratic_base import fit_quadratic_base, predict

    start = time.perf_counter()
    try:
        if arch.get("prior_kind") == "kernel":
            log.info("fitting the kernel power-spectrum base (l <= %d, n_max %d, %d sparse environments, ζ %d) by "
                     "%d-fold cross-validation on %d structures", arch["prior_l_max"], config.kernel_n_max,
                     config.kernel_num_sparse, config.kernel_zeta, config.prior_cv_folds, len(train))
            base = fit_kernel_base(train.frames, train.labels, arch["r_max"], arch["prior_l_max"],
                                   config.kernel_n_max, config.kernel_num_sparse, config.kernel_zeta,
                                   config.prior_cv_folds)
        else:
            log.info("fitting the quadratic power-spectrum base (l <= %d, n_max %s) by %d-fold cross-validation on "
                     "%d structures", arch["prior_l_max"], list(config.prior_n_max_choices), config.prior_cv_folds,
                     len(train))
            base = fit_quadratic_base(train.frames, train.labels, arch["r_max"], arch["prior_l_max"],
                                      config.prior_n_max_choices, config.prior_cv_folds)
    except (ValueError, MemoryError) as exc:  # one element only, enough frames for the folds, memory
        raise DataError(f"{train.source}: {exc}") from None
    chosen = base.summary()
    log.info("%s base: n_max %d, force weight %g, ridge %g; CV E %.2f meV/atom, F %.1f meV/Å (%.0f s)",
             chosen["kind"], base.n_max, base.force_weight, base.ridge, chosen["cv_E_mae_meV_atom"],
             chosen["cv_F_mae_meV_A"], time.perf_counter() - start)
    predictions = predict(train.frames, base, arch["r_max"])
    labels = []
    for label, pred in zip(train.labels, predictions):
        label = dict(label)
        label["energy"] = label["energy"] - pred["energy"]
        label["forces"] = label["forces"] - pred["forces"]
        if label.get("stress") is not None:  # labels are 3x3 or Voigt; the base's is Voigt
            stress = np.asarray(label["stress"], dtype=float)
            full = stress.reshape(3, 3) if stress.size == 9 else voigt_6_to_full_3x3_stress(stress)
            label["stress"] = (full - voigt_6_to_full_3x3_stress(pred["stress"])).reshape(stress.shape) \
                if stress.size == 9 else stress - pred["stress"]
        labels.append(label)
    lone = lone_atom_energy(base, arch["r_max"])
    isolated = {z: e - lone for z, e in train.isolated.items()}
    return base, LabelledSet(train.frames, labels, train.source, train.index, isolated)


def finetune_model(config: TrainConfig, train: LabelledSet, species: list[int], dtype: torch.dtype) -> DeNSPotential:
    model, _ = load_model(config.from_model, dtype=dtype)
    new = [z for z in species if z not in model.config.species]
    if new and not config.add_elements:
        check_species(train, model.config.species, f"the model '{config.from_model}' (use --add-elements to add them)")
    if new:
        model = extend_species(model, new)
    anchors = new_reference_e0s(config, train, species)
    if anchors:
        set_e0s(model, anchors)
    if config.refit_e0s:
        refit_e0s(model, train, anchored=bool(anchors))
    freeze_layers(model, config.freeze_layers)
    return model


def new_reference_e0s(config: TrainConfig, train: LabelledSet, species: list[int]) -> dict[int, float]:
    """Isolated-atom energies of the new data when given: ``--e0s FILE`` (or a mapping), else the data's
    single-atom frames; {} when there are none ("fit": the refit alone moves the old E0s)."""
    if config.e0s not in (None, "fit"):
        return resolve_e0s(config, train, species)
    return {z: e for z, e in train.isolated.items() if z in species}


def resumed_model(resume: str | Path, dtype: torch.dtype) -> tuple[DeNSPotential, dict | None]:
    """The model of ``last.pt`` (weights restored later, with the optimiser) and its quadratic base's summary."""
    payload = read_checkpoint(Path(resume) / "last.pt")
    model = DeNSPotential(ModelConfig.from_dict(payload["model_config"])).to(dtype)
    return model, payload.get("metadata", {}).get("quadratic_base")


def prepare(config: TrainConfig, *, device: torch.device, resume: str | Path | None = None) -> Prepared:
    dtype = getattr(torch, config.dtype)
    train, valid = load_sets(config)
    species = species_of(train, valid)
    base = None
    if resume is not None:
        model, base = resumed_model(resume, dtype)
        freeze_layers(model, config.freeze_layers)
    elif config.from_model:
        model = finetune_model(config, train, species, dtype)
    else:
        model, base = new_model(config, train, species, dtype)
    for data in (train, valid):
        check_species(data, model.config.species, "the model")
    cutoff = model.config.r_max + config.effective_graph_skin()
    check_config_types(config.config_type_weights, train, valid)
    train_graphs = build_graphs(train, model.config.species, cutoff, dtype, config.config_type_weights)
    train_names = frame_names(train)
    valid_graphs = build_graphs(valid, model.config.species, model.config.r_max, dtype, config.config_type_weights)
    if config.replay_file:
        replay = load_replay(config, round(config.replay_fraction * len(train)))
        check_species(replay, model.config.species, "the model")
        train_graphs += build_graphs(replay, model.config.species, cutoff, dtype)
        train_names += frame_names(replay)
        log.info("replay: %d frame(s) of %s (forces only) mixed into the training set", len(replay), replay.source)
    log.info("%d training / %d validation structures; model with %d parameters",
             len(train_graphs), len(valid_graphs), model.num_parameters())
    return Prepared(model.to(device), train_graphs, valid_graphs, device, train_names, base)


def frame_names(data: LabelledSet) -> list[str]:
    name = Path(data.source).name
    return [f"{name}:{data.frame_number(k)}" for k in range(len(data))]
