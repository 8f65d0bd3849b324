"""Everything before the first step: data checks, E0s, normalisation, model (new, fine-tuned or resumed)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..checkpoint import load_model, read_checkpoint
from ..data import DataError
from ..nn.model import DeNSPotential, ModelConfig
from .config import TrainConfig, architecture
from .data import (LabelledSet, average_neighbors, build_graphs, check_config_types, check_species, load_labelled,
                   load_replay, normalisation, resolve_e0s, species_of, split)
from .finetune import extend_species, freeze_layers, refit_e0s, set_e0s

log = logging.getLogger(__name__)


@dataclass
class Prepared:
    model: DeNSPotential
    train_graphs: list
    valid_graphs: list
    device: torch.device
    # "file:frame" of each training graph, for messages about particular structures
    train_names: list[str] = field(default_factory=list)


def load_sets(config: TrainConfig) -> tuple[LabelledSet, LabelledSet]:
    """Read and check the training and validation data (all errors before any training)."""
    if not config.train_file:
        raise DataError("no training file given (--train)")
    train = load_labelled(config.train_file, config)
    if config.valid_file:
        return train, load_labelled(config.valid_file, config)
    return split(train, config.valid_fraction, config.seed)


def new_model(config: TrainConfig, train: LabelledSet, species: list[int], dtype: torch.dtype) -> DeNSPotential:
    arch = architecture(config)
    e0s = resolve_e0s(config, train, species)
    scale, shift = normalisation(train, e0s)
    graphs = build_graphs(train, species, arch["r_max"], torch.float64)
    avg = average_neighbors(graphs, arch["r_max"])
    log.info("E0s %s, scale %.4g eV, shift %.4g eV/atom, avg neighbours %.2f", e0s, scale, shift, avg)
    cfg = ModelConfig(species=species, atomic_energies=[e0s[z] for z in species], scale=scale, shift=shift,
                      avg_num_neighbors=avg, **arch)
    # seeded initialisation without resetting the caller's global RNG
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        return DeNSPotential(cfg).to(dtype)


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


def resumed_model(resume: str | Path, dtype: torch.dtype) -> DeNSPotential:
    payload = read_checkpoint(Path(resume) / "last.pt")
    return DeNSPotential(ModelConfig.from_dict(payload["model_config"])).to(dtype)


def prepare(config: TrainConfig, *, device: torch.device, resume: str | Path | None = None) -> Prepared:
    dtype = getattr(torch, config.dtype)
    train, valid = load_sets(config)
    species = species_of(train, valid)
    if resume is not None:
        model = resumed_model(resume, dtype)
        freeze_layers(model, config.freeze_layers)
    elif config.from_model:
        model = finetune_model(config, train, species, dtype)
    else:
        model = new_model(config, train, species, dtype)
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
    return Prepared(model.to(device), train_graphs, valid_graphs, device, train_names)


def frame_names(data: LabelledSet) -> list[str]:
    name = Path(data.source).name
    return [f"{name}:{data.frame_number(k)}" for k in range(len(data))]
