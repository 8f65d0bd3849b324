"""Relax the positions, then cell + positions with the symmetry kept, of a rattled silicon crystal.

    python examples/relax_workflow.py [--model MODEL] [--out DIR]
"""

from ase.build import bulk

from _common import calculator, parse_args
from dens_calc.calculations.relax import run_relax

args = parse_args(__doc__)
atoms = bulk("Si", "diamond", a=5.5, cubic=True)
atoms.rattle(0.03, seed=0)
calc = calculator(atoms, args.model, args.device)
out = args.out or "relax-example"

positions = run_relax(atoms, calc, optimizer="BFGS", fmax=0.01, steps=300, out_dir=f"{out}/positions")
print(f"positions: converged={positions['converged']} E={positions['energy_eV']:.4f} eV")
full = run_relax(atoms, calc, optimizer="FIRE", fmax=0.01, steps=60, cell=True, fix_symmetry=True,
                 out_dir=f"{out}/cell")
print(f"cell: converged={full['converged']} volume change {full['volume_change_percent']:+.2f} %, "
      f"files: {full['files']['structure']}")
