"""Options shared by the simulation commands, logging set-up and error handling."""

from __future__ import annotations

import functools
import logging
import sys
from pathlib import Path
from typing import Literal, get_args

import click

Dtype = Literal["float32", "float64"]
Device = Literal["auto", "cpu", "cuda"]


def structure_argument(name: str = "structure"):
    """The structure file (anything ``ase.io.read`` reads); existence is checked by the command."""
    return click.argument(name, type=click.Path(dir_okay=False, path_type=Path))


def simulation_options(func):
    """--model, --device, --dtype, --out, --verbose shared by md, relax, phonons and singlepoint."""
    options = [
        click.option("--model", "-m", default=None,
                     help="Checkpoint file, model directory or bundled model name "
                          "(default: a bundled model covering the structure's elements; see `dens-calc models`)."),
        click.option("--device", default="auto", show_default=True,
                     help=f"{', '.join(get_args(Device))} or cuda:N."),
        click.option("--dtype", type=click.Choice(get_args(Dtype)), default="float32", show_default=True,
                     help="Model precision (float64 for tight energy conservation and phonons)."),
        click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                     help="Output folder [<command>-<structure name>]."),
        click.option("--verbose/--quiet", default=True, help="Log progress to the console."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def supercell_option(help_text: str):
    return click.option("--supercell", type=int, nargs=3, default=None, help=help_text)


def output_dir(out_dir: Path | None, command: str, structure: Path) -> Path:
    """``--out`` or ``<command>-<structure stem>`` in the working directory (created)."""
    path = out_dir if out_dir is not None else Path(f"{command}-{structure.stem or structure.name}")
    path.mkdir(parents=True, exist_ok=True)
    return path


def setup_logging(out_dir: Path | None, verbose: bool, filename: str = "dens-calc.log") -> None:
    """Console (stderr) and file handlers on the ``dens_calc`` logger, replacing earlier ones."""
    logger = logging.getLogger("dens_calc")
    for old in list(logger.handlers):
        logger.removeHandler(old)
        if isinstance(old, logging.FileHandler):
            old.close()
    logger.setLevel(logging.DEBUG)
    if verbose:
        console = logging.StreamHandler(sys.stderr)
        console.setLevel(logging.INFO)
        console.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
        logger.addHandler(console)
    if out_dir is not None:
        handler = logging.FileHandler(Path(out_dir) / filename)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)


def one_line_errors(func):
    """Turn expected failures (bad input, bad model, stopped simulation) into a one-line error, exit 1."""
    from dens_calc.checkpoint import CheckpointError

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except (ValueError, OSError, CheckpointError, RuntimeError) as exc:
            message = " ".join(str(exc).split()) or type(exc).__name__
            logging.getLogger("dens_calc").debug("command failed", exc_info=True)  # traceback: log file only
            raise click.ClickException(message) from exc
    return wrapper


def prepare(command: str, structure: Path, *, out_dir: Path | None, verbose: bool, model, device: str, dtype: str,
            index=-1, supercell=None):
    """Read the structure (optionally repeated), load the calculator covering its elements, then
    create the output folder and log into it; returns ``(atoms, calc, out_dir)``.

    Bad input fails before anything is created.
    """
    from dens_calc.calculations.common import load_calculator, make_supercell, read_structure

    setup_logging(None, verbose)
    atoms = read_structure(structure, index=index)
    if supercell:
        atoms = make_supercell(atoms, supercell)
    calc = load_calculator(atoms, model=model, device=device, dtype=dtype)
    out = output_dir(out_dir, command, structure)
    setup_logging(out, verbose, f"{command}-cli.log")
    return atoms, calc, out
