"""``dens-calc`` command group."""

import click

from dens_calc import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dens-calc")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="CPU threads for torch [OMP_NUM_THREADS, else all cores].")
@click.option("--debug", is_flag=True,
              help="Show the full traceback of any error (else: one line; traceback in a log).")
@click.pass_context
def main(ctx, threads, debug):
    """Train DeNS equivariant potentials and run MD, relaxations and phonons with them."""
    from dens_calc.runtime import configure_process

    ctx.obj = {"debug": debug}
    # the process-wide settings a library leaves alone are the command line's to make
    configure_process(threads=threads)

from cli.train import eval_cmd, finetune_cmd, train_cmd  # noqa: E402

main.add_command(train_cmd)
main.add_command(finetune_cmd)
main.add_command(eval_cmd)

from cli.md import md_cmd  # noqa: E402
from cli.models import models_cmd  # noqa: E402
from cli.phonons import phonons_cmd  # noqa: E402
from cli.relax import relax_cmd  # noqa: E402
from cli.singlepoint import singlepoint_cmd  # noqa: E402

main.add_command(md_cmd)
main.add_command(relax_cmd)
main.add_command(phonons_cmd)
main.add_command(singlepoint_cmd)
main.add_command(models_cmd)

from cli.committee import committee_cmd  # noqa: E402
from cli.refit import refit_cmd  # noqa: E402

main.add_command(refit_cmd)
main.add_command(committee_cmd)
