"""``dens-calc singlepoint``: batched energies/forces/stress (thin wrapper over :func:`dens_calc.calculations.singlepoint.run_singlepoint`)."""

from __future__ import annotations

import click

from .options import one_line_errors, prepare, simulation_options, structure_argument


@click.command("singlepoint")
@structure_argument("file")
@simulation_options
@click.option("--index", default=":", show_default=True, help="Frames to evaluate (ase.io.read index).")
@click.option("--batch-size", type=int, default=32, show_default=True, help="Structures per forward pass.")
@one_line_errors
def singlepoint_cmd(file, model, device, dtype, out_dir, verbose, index, batch_size):
    """Energies, forces and stress of every frame of FILE; writes singlepoint.extxyz (dens_* keys) and a summary."""
    frames, calc, out = prepare("singlepoint", file, out_dir=out_dir, verbose=verbose, model=model, device=device,
                              dtype=dtype, index=index)
    from dens_calc.calculations.singlepoint import run_singlepoint

    res = run_singlepoint(frames, calc, batch_size=batch_size, out_dir=out,
                          inputs={"structure": str(file), "model_arg": model, "index": index})
    click.echo(f"evaluated {res['frames']} frame(s); wrote {res['files']['structures']}")
