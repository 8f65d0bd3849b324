"""Phonon band structure, DOS and thermal properties of silicon (relaxed first).

    python examples/phonons.py [--model MODEL] [--out DIR]
"""

from ase.build import bulk

from _common import calculator, parse_args
from dens_calc.calculations.phonons import run_phonons

args = parse_args(__doc__)
atoms = bulk("Si", "diamond", a=5.43)
calc = calculator(atoms, args.model, args.device, dtype="float64")
res = run_phonons(atoms, calc, relax=True, min_length_Ang=10.0, mesh=(16, 16, 16), out_dir=args.out or "phonons-example")
print(f"supercell {res['supercell']}, {res['n_displacements']} displacement(s), {res['n_branches']} branches")
print(f"lowest frequency {res['lowest_frequency_excluding_gamma_acoustic_THz']:.3f} THz "
      f"({'stable' if res['dynamically_stable'] else 'UNSTABLE'}); C_v(300 K) = "
      f"{res['thermal_at_300K']['heat_capacity_J_per_K_mol']:.2f} J/K/mol; files in {res['files']['summary']}")
