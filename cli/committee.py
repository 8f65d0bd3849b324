"""``dens-calc committee``: a thin wrapper over :func:`dens_calc.checkpoint.build_committee`."""

from __future__ import annotations

from pathlib import Path

import click

from .options import one_line_errors


@click.command("committee")
@click.argument("models", nargs=-1, required=True)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Model directory to write (model.pt and config.json).")
@click.option("--info", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="JSON object merged into the committee's metadata (data, test errors, provenance).")
@click.option("--weights", help="Comma-separated energy weight per model (default: the mean). They need not sum to "
                                "one: a base model plus a network trained on its residuals is --weights 1,1.")
@one_line_errors
def committee_cmd(models, out_dir, info, weights):
    """Combine trained MODELS (files, run or model directories, bundled names) into one committee model.

    The committee's energy is the mean of its members' energies; forces and stress are its exact derivatives,
    so it runs MD, relaxations and phonons like any model, at the sum of the members' call costs.  Members
    may differ in cutoff and architecture but must know the same elements.  Averaging models that err
    differently lowers the error (Zuo Mo test set: benchmarks/README.md).

        dens-calc committee runs/a/model.pt runs/b/model.pt --out runs/committee
    """
    import json

    from dens_calc.checkpoint import build_committee

    metadata = json.loads(info.read_text()) if info else None
    if metadata is not None and not isinstance(metadata, dict):
        raise click.BadParameter("must hold a JSON object", param_hint="--info")
    if weights is not None:
        try:
            weights = [float(w) for w in weights.split(",")]
        except ValueError:
            raise click.BadParameter(f"{weights!r} is not a comma-separated list of numbers", param_hint="--weights")
    target = build_committee(list(models), out_dir, metadata=metadata, weights=weights)
    click.echo(f"committee of {len(models)} models: {target}")
