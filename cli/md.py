"""``dens-calc md``: molecular dynamics (thin wrapper over :func:`dens_calc.calculations.md.run_md`)."""

from __future__ import annotations

from typing import get_args

import click

from dens_calc.calculations.md import Barostat, Ensemble

from .options import one_line_errors, prepare, simulation_options, structure_argument, supercell_option


@click.command("md")
@structure_argument()
@simulation_options
@click.option("--ensemble", type=click.Choice(get_args(Ensemble)), default="nve", show_default=True,
              help="nve (velocity Verlet), langevin, nvt (Nosé–Hoover chain), npt (MTK barostat).")
@click.option("--temperature", "temperature_K", type=float, default=300.0, show_default=True, help="Temperature (K).")
@click.option("--timestep", "timestep_fs", type=float, default=1.0, show_default=True, help="Time step (fs).")
@click.option("--steps", type=int, default=None, help="Number of steps (total, with --restart) [1000].")
@click.option("--time", "time_ps", type=float, default=None, help="Simulated time (ps) instead of --steps.")
@click.option("--friction", "friction_per_fs", type=float, default=0.01, show_default=True, help="Langevin friction (1/fs).")
@click.option("--pressure", "pressure_GPa", type=float, default=0.0, show_default=True, help="NPT pressure (GPa).")
@click.option("--barostat", type=click.Choice(get_args(Barostat)), default="isotropic", show_default=True)
@supercell_option("Repeat the structure, e.g. --supercell 2 2 2.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of initial velocities and Langevin noise.")
@click.option("--interval", type=int, default=10, show_default=True, help="Write frame/log/restart every N steps.")
@click.option("--restart", is_flag=True, help="Continue the run saved in --out (same settings) up to --steps.")
@click.option("--progress/--no-progress", default=True, help="Progress bar with steps/s and ns/day.")
@one_line_errors
def md_cmd(structure, model, device, dtype, out_dir, verbose, steps, time_ps, supercell, **settings):
    """Molecular dynamics of STRUCTURE; writes md.extxyz, md.log, md_restart.json, md_energy.png, md_summary.yaml."""
    if steps is not None and time_ps is not None:
        raise ValueError("give --steps or --time, not both")
    if time_ps is not None:
        steps = int(round(time_ps * 1000.0 / settings["timestep_fs"]))
    atoms, calc, out = prepare("md", structure, out_dir=out_dir, verbose=verbose, model=model, device=device,
                             dtype=dtype, supercell=supercell)
    from dens_calc.calculations.md import run_md

    inputs = {"structure": str(structure), "model_arg": model, "supercell": supercell}
    res = run_md(atoms, calc, steps=1000 if steps is None else steps, out_dir=out, inputs=inputs, **settings)
    click.echo(f"MD done: step {res['steps']}, {res['time_ps']:.4g} ps, <T> = {res['mean_temperature_K']:.1f} K, "
               f"{res['ns_per_day']:.3g} ns/day; results in {out}")
    spread = res.get("committee_energy_std_meV_atom")
    if spread:
        click.echo(f"committee spread (members' energy std): mean {spread['mean']:.2f}, max {spread['max']:.2f} "
                   "meV/atom")
