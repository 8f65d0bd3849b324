"""``dens-calc relax``: geometry/cell relaxation (thin wrapper over :func:`dens_calc.calculations.relax.run_relax`)."""

from __future__ import annotations

from typing import get_args

import click

from dens_calc.calculations.relax import Optimizer

from .options import one_line_errors, prepare, simulation_options, structure_argument


@click.command("relax")
@structure_argument()
@simulation_options
@click.option("--optimizer", type=click.Choice(get_args(Optimizer), case_sensitive=False), default="FIRE", show_default=True)
@click.option("--fmax", type=float, default=0.01, show_default=True, help="Force convergence threshold (eV/Å).")
@click.option("--steps", type=int, default=500, show_default=True, help="Maximum optimizer steps.")
@click.option("--cell", is_flag=True, help="Relax the cell too (FrechetCellFilter).")
@click.option("--pressure", "pressure_GPa", type=float, default=0.0, show_default=True, help="Pressure for --cell (GPa).")
@click.option("--fix-symmetry", is_flag=True, help="Keep the space group (ASE FixSymmetry).")
@click.option("--format", "output_format", default=None, help="ase.io format of the relaxed structure [same as input].")
@one_line_errors
def relax_cmd(structure, model, device, dtype, out_dir, verbose, **settings):
    """Relax STRUCTURE; writes the relaxed structure, relax.traj, relax.log, relax_summary.yaml.

    Exits with status 1 if it did not converge within --steps.
    """
    atoms, calc, out = prepare("relax", structure, out_dir=out_dir, verbose=verbose, model=model, device=device,
                             dtype=dtype)
    from dens_calc.calculations.relax import run_relax

    res = run_relax(atoms, calc, out_dir=out, input_path=structure,
                    inputs={"structure": str(structure), "model_arg": model}, **settings)
    status = "converged" if res["converged"] else "NOT converged"
    message = (f"relaxation {status} after {res['steps']} steps: E = {res['energy_eV']:.6f} eV, "
               f"max |F| = {res['max_force_eV_per_Ang']:.3g} eV/Å; wrote {res['files']['structure']}")
    if not res["converged"]:
        raise click.ClickException(message)
    click.echo(message)
