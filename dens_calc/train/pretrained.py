"""Where a new training run starts: from scratch, or from a bundled pretrained model.

``dens-calc train --init auto`` (the default) starts molecular data whose elements a bundled pretrained model
covers from that model, as ``dens-calc finetune`` does.  Measured at equal wall-clock time on DFT data of molecules
held out of the pretraining set (benchmarks/README.md, "Fine-tuning from the continued xTB pretrain" and "Starting
from the pretrain by default"): the test force RMSE was 16-57 % below training from scratch at every point measured,
25 to 950 frames (the 950-frame point against a from-scratch run of an earlier session).  The pretraining data are
gas-phase molecules, so periodic data start from scratch: nothing was measured there.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..data.elements import symbols
from ..models import bundled_model_info, bundled_models, is_pretrained
from .data import is_isolated_atom

AUTO = "auto"
SCRATCH = "scratch"


def pretrained_models() -> dict[str, set[int]]:
    """Bundled pretrained model name -> the atomic numbers it knows."""
    return {name: set(bundled_model_info(name).get("model_config", {}).get("species", []))
            for name in bundled_models() if is_pretrained(name)}


@dataclass(frozen=True)
class Start:
    """The model a run starts from (None: a new one) and why, in words for the log."""

    model: str | None
    reason: str


def choose_start(frames) -> Start:
    """The bundled pretrained model to start from for these training frames, or a new model.

    A pretrained model is used when every non-isolated-atom frame is non-periodic (molecules, clusters: the
    pretraining data's kind) and the model knows all the frames' elements; of several, the one with the fewest
    elements (the most specialised).
    """
    structures = [a for a in frames if not is_isolated_atom(a)]
    if not structures:
        return Start(None, "no structures with more than one atom")
    present = {int(z) for a in frames for z in a.numbers}
    if any(a.pbc.any() for a in structures):
        return Start(None, "periodic data (the pretrained models know molecules only)")
    covering = sorted((len(species), name) for name, species in pretrained_models().items() if present <= species)
    if not covering:
        return Start(None, f"no bundled pretrained model covers {symbols(present)}")
    name = covering[0][1]
    return Start(name, f"the data are molecules of {symbols(present)}, which {name} covers")


def resolve_init(init: str, train_file: str | Path, *, architecture_given: bool,
                 valid_file: str | Path | None = None) -> Start:
    """``--init`` of ``dens-calc train``: ``auto``, ``scratch`` or a checkpoint / bundled model name.

    ``auto`` decides on the training and validation frames together (the model must know both's elements).
    """
    if init == SCRATCH:
        return Start(None, "--init scratch")
    if init != AUTO:
        return Start(init, f"--init {init}")
    if architecture_given:
        return Start(None, "architecture options were given (a pretrained model fixes the architecture)")
    import ase.io

    try:
        frames = [a for path in (train_file, valid_file) if path for a in ase.io.read(str(path), ":")]
    except Exception as exc:  # noqa: BLE001 -- reading the data for training reports the problem properly
        return Start(None, f"the data could not be read ({type(exc).__name__})")
    return choose_start(frames)
