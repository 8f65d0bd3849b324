"""Langevin MD of a small silicon supercell, then continue the same run to twice the length.

    python examples/run_md.py [--model MODEL] [--out DIR]
"""

from ase.build import bulk

from _common import calculator, parse_args
from dens_calc.calculations.md import run_md

args = parse_args(__doc__)
out = args.out or "md-example"
atoms = bulk("Si", "diamond", a=5.43, cubic=True)
calc = calculator(atoms, args.model, args.device, dtype="float32")
settings = dict(ensemble="langevin", temperature_K=600, timestep_fs=1.0, friction_per_fs=0.02, interval=10,
                seed=1, out_dir=out, progress=True)

first = run_md(atoms, calc, steps=200, **settings)
print(f"200 steps: <T> = {first['mean_temperature_K']:.0f} K, {first['ns_per_day']:.3g} ns/day")
# --restart: a fresh structure; positions, velocities, thermostat and RNG come from md_restart.json
resumed = run_md(bulk("Si", "diamond", a=5.43, cubic=True), calc, steps=400, restart=True, **settings)
print(f"continued to step {resumed['steps']}; trajectory {resumed['files']['trajectory']}, "
      f"plot {resumed['files']['plot']}")
