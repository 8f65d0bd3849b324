"""``dens-calc phonons``: phonopy finite displacements (thin wrapper over :func:`dens_calc.calculations.phonons.run_phonons`)."""

from __future__ import annotations

import click

from .options import one_line_errors, prepare, simulation_options, structure_argument, supercell_option


@click.command("phonons")
@structure_argument()
@simulation_options
@supercell_option("Diagonal supercell [smallest with every width >= --min-length].")
@click.option("--min-length", "min_length_Ang", type=float, default=10.0, show_default=True,
              help="Minimum supercell width for the default supercell (Å).")
@click.option("--displacement", "displacement_Ang", type=float, default=0.01, show_default=True, help="Displacement (Å).")
@click.option("--relax", is_flag=True, help="Relax the atomic positions first (FIRE, --fmax).")
@click.option("--fmax", "relax_fmax", type=float, default=0.01, show_default=True, help="fmax of --relax (eV/Å).")
@click.option("--mesh", type=int, nargs=3, default=None, help="q-mesh for DOS and thermal properties [length 30 Å].")
@click.option("--symmetrize", is_flag=True, help="Symmetrize the force constants.")
@click.option("--tolerance", "tolerance_THz", type=float, default=0.05, show_default=True,
              help="Imaginary frequencies beyond this (THz) flag the structure as unstable.")
@click.option("--t-max", "t_max_K", type=float, default=1000.0, show_default=True, help="Highest temperature (K).")
@click.option("--batch-size", type=int, default=32, show_default=True, help="Displaced supercells per forward.")
@one_line_errors
def phonons_cmd(structure, model, device, dtype, out_dir, verbose, mesh, **settings):
    """Phonons of STRUCTURE: band.yaml, total_dos.dat, thermal_properties.yaml, PNG plots, phonons_summary.yaml."""
    atoms, calc, out = prepare("phonons", structure, out_dir=out_dir, verbose=verbose, model=model, device=device,
                             dtype=dtype)
    import matplotlib

    matplotlib.use("Agg")  # phonopy plots through pyplot; a command writes PNGs, never opens a window
    from dens_calc.calculations.phonons import run_phonons

    res = run_phonons(atoms, calc, mesh=mesh or 30.0, out_dir=out,
                      inputs={"structure": str(structure), "model_arg": model}, **settings)
    verdict = "dynamically stable" if res["dynamically_stable"] else "DYNAMICALLY UNSTABLE"
    click.echo(f"phonons: supercell {res['supercell']}, {res['n_displacements']} displacement(s), lowest frequency "
               f"{res['lowest_frequency_excluding_gamma_acoustic_THz']:.4g} THz (acoustic near Γ excepted): "
               f"{verdict}; results in {out}")
