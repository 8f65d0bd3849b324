"""Options shared by the simulation commands, logging set-up and error handling."""

from __future__ import annotations

import functools
import logging
import os
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


def setup_logging(out_dir: str | Path | None, verbose: bool = True, filename: str = "dens-calc.log") -> None:
    """Console (stderr, INFO) and file (``out_dir/filename``, DEBUG) handlers on the ``dens_calc``
    logger, replacing earlier ones; the one set-up of every command."""
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
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(Path(out_dir) / filename)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)


def _user_errors() -> tuple[type[BaseException], ...]:
    """Failures whose message is the whole story (bad input, bad model, stopped simulation): one line."""
    from ase.calculators.calculator import PropertyNotImplementedError

    from dens_calc.calculations.common import SimulationError
    from dens_calc.calculators import NonFiniteOutputError
    from dens_calc.checkpoint import CheckpointError
    from dens_calc.data import DataError
    from dens_calc.train import ConfigError

    # ValueError covers StructureError, ModelSelectionError and invalid settings; OSError unwritable folders
    return (DataError, ConfigError, CheckpointError, SimulationError, NonFiniteOutputError,
            PropertyNotImplementedError, ValueError, OSError)


def _log_file() -> Path | None:
    """The log file this command writes (in its output folder), if logging got that far."""
    for handler in logging.getLogger("dens_calc").handlers:
        if isinstance(handler, logging.FileHandler):
            return Path(handler.baseFilename)
    return None


def _record_traceback(exc: BaseException) -> Path:
    """Write the traceback of an internal error where the user can find it; returns the file."""
    path = _log_file()
    if path is not None:
        logging.getLogger("dens_calc").error("internal error", exc_info=exc)
        return path
    import tempfile
    import traceback

    fd, name = tempfile.mkstemp(prefix="dens-calc-error-", suffix=".log")
    with os.fdopen(fd, "w") as handle:
        handle.write("".join(traceback.format_exception(exc)))
    return Path(name)


def _debug_requested() -> bool:
    ctx = click.get_current_context(silent=True)
    obj = ctx.find_root().obj if ctx is not None else None
    return bool(isinstance(obj, dict) and obj.get("debug"))


def one_line_errors(func):
    """User errors become a one-line ``Error: ...`` (exit 1); an internal error also says where its
    full traceback went (the command's log file in the output folder, else a temporary file).
    ``dens-calc --debug`` lets every error through with its traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise  # click's own: already one line (Exit and Abort are RuntimeErrors, not failures)
        except Exception as exc:
            if _debug_requested():
                raise
            message = " ".join(str(exc).split()) or type(exc).__name__
            if isinstance(exc, _user_errors()):
                logging.getLogger("dens_calc").debug("command failed", exc_info=True)  # traceback: log file only
                raise click.ClickException(message) from exc
            where = _record_traceback(exc)
            raise click.ClickException(f"internal error ({type(exc).__name__}: {message}); the full traceback "
                                       f"is in {where} (run with dens-calc --debug to see it here)") from exc
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
