"""Fine-tuning helpers: new elements, E0 refit on the new data's reference, frozen layers."""

from __future__ import annotations

import logging

import numpy as np
import torch

from ..data import atoms_to_graph, collate, e0s_are_determined, fit_e0s
from ..data.elements import symbols
from ..nn.model import DeNSPotential, ModelConfig, evaluate

log = logging.getLogger(__name__)


def extend_species(model: DeNSPotential, new: list[int]) -> DeNSPotential:
    """A copy of ``model`` that also knows ``new`` elements.

    Species-indexed weights (embedding rows, per-element product weights) of the new elements
    start as the mean over the existing elements; everything else is copied unchanged.
    """
    old_n = len(model.config.species)
    data = model.config.to_dict()
    mean_e0 = float(np.mean(data["atomic_energies"]))
    data["species"] = list(data["species"]) + list(new)
    data["atomic_energies"] = list(data["atomic_energies"]) + [mean_e0] * len(new)
    dtype = next(model.parameters()).dtype
    bigger = DeNSPotential(ModelConfig.from_dict(data)).to(dtype)
    state = bigger.state_dict()
    for key, old in model.state_dict().items():
        target = state[key]
        if old.shape == target.shape:
            state[key] = old.clone()
            continue
        dims = [d for d in range(old.dim()) if old.shape[d] != target.shape[d]]
        if len(dims) != 1 or old.shape[dims[0]] != old_n:
            raise ValueError(f"cannot extend weight {key} from {tuple(old.shape)} to {tuple(target.shape)}")
        d = dims[0]
        fill = old.mean(dim=d, keepdim=True).expand_as(target.narrow(d, old_n, len(new)))
        state[key] = torch.cat([old, fill], dim=d)
    bigger.load_state_dict(state)
    log.info("added element(s) %s to the model", new)
    return bigger


def set_e0s(model: DeNSPotential, e0s: dict[int, float]) -> None:
    """Replace the E0s of the elements in ``e0s`` (isolated-atom energies at the new level of theory).

    The learned interactions then predict the old level's atomisation energies on the new reference,
    which is much closer than the old E0s (xTB to DFT: ~1000 eV per C atom, mostly core electrons).
    """
    cfg = model.config
    kept = [z for z in cfg.species if z not in e0s]
    cfg.atomic_energies = [e0s.get(z, e0) for z, e0 in zip(cfg.species, cfg.atomic_energies)]
    log.info("E0s set from the new isolated-atom energies for %s", symbols(e0s))
    if kept:
        log.warning("no new isolated-atom energy for %s: the model keeps its old E0s there, on the old energy "
                    "reference", symbols(kept))


def refit_e0s(model: DeNSPotential, train, batch_size: int = 16, *, anchored: bool = False) -> None:
    """Shift the E0s so that the model's energies match the new labels on average.

    Different DFT codes and settings differ by per-element constants; this absorbs them without
    touching the learned interactions.  Only a *correction* to the saved E0s is fitted
    (minimum norm): with single-composition data the per-element split is undetermined, and
    fitting whole E0s would throw away the saved reference (hundreds of eV per element).
    ``anchored``: the E0s were just set from isolated atoms of the new reference (``set_e0s``), so
    the correction is small and its undetermined split harmless; otherwise a warning says so.
    """
    cfg = model.config
    predicted = []
    for start in range(0, len(train.frames), batch_size):
        chunk = train.frames[start : start + batch_size]
        dtype = next(model.parameters()).dtype
        batch = collate([atoms_to_graph(a, cfg.species, cfg.r_max, dtype=dtype) for a in chunk]).to(model.embedding.weight.device)
        with torch.no_grad():
            out = evaluate(model, batch, compute_forces=False)
        predicted.extend(out["energy"].double().tolist())
    residual = [lab["energy"] - e for lab, e in zip(train.labels, predicted)]
    present = sorted({int(z) for a in train.frames for z in a.numbers})
    correction = fit_e0s(train.frames, residual, present)
    if not anchored and not e0s_are_determined(train.frames, present):
        log.warning("%s: the compositions do not determine the per-element E0 shift (mean %.4g eV per structure); "
                    "the minimum-norm split fits this composition only, other compositions will be off. Give "
                    "isolated-atom energies at the new level of theory with --e0s FILE.", train.source,
                    float(np.mean(residual)))
    cfg.atomic_energies = [e0 + correction.get(z, 0.0) for z, e0 in zip(cfg.species, cfg.atomic_energies)]
    log.info("E0 corrections fitted on the new data (eV): %s", correction)


def freeze_layers(model: DeNSPotential, count: int) -> None:
    """Freeze the embedding and the first ``count`` interaction layers (0: train everything)."""
    if count <= 0:
        return
    if count > len(model.layers):
        raise ValueError(f"cannot freeze {count} layers: the model has {len(model.layers)}")
    modules = [model.embedding, *model.layers[:count], *model.readouts[:count]]
    for module in modules:
        for p in module.parameters():
            p.requires_grad_(False)
    log.info("froze the embedding and the first %d interaction layer(s)", count)
