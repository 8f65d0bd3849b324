#!/usr/bin/env python
"""GFN2-xTB pretraining data for an organic (H/C/N/O) model: non-equilibrium structures of ~110 molecules.

    python3 -m venv /tmp/xtb-venv && /tmp/xtb-venv/bin/pip install ase tblite rdkit
    /tmp/xtb-venv/bin/python benchmarks/hcno_xtb_data.py --out runs/hcno_xtb --workers 2

Not a runtime feature of dens-calc: a reproducible recipe for the data behind a pretrained model
(issue #19).  Per molecule (RDKit from SMILES, plus the closed-shell H/C/N/O molecules of ASE's G2
collection whose formula the SMILES list lacks):

1. RDKit 3D embedding (ETKDG, fixed seed) and MMFF, then an xTB relaxation (BFGS, fmax 0.05 eV/Å);
2. Langevin MD with xTB at each ``--temperatures`` (0.5 fs, friction 0.02/fs, velocities drawn at T),
   one frame every ``--every`` steps after a burn-in of ``--burn-in`` steps;
3. ``--rattles`` copies of the relaxed geometry with Gaussian noise, σ uniform in 0.01–0.06 Å (a first run
   with 0.02–0.15 Å gave a median max force of 10.8 eV/Å and up to 485 eV/Å: broken molecules, not
   the thermal distortions a potential is used for).

Frames whose largest force component exceeds ``--max-force`` (default 20 eV/Å; the 1500 K MD stays below
20) are dropped and counted in ``stats.json``.

Every frame is labelled with GFN2-xTB (tblite) energy and forces; ``config_type`` says how it was made
(``opt``, ``md300``, ``rattle`` ...), ``molecule`` and ``smiles`` name it.  Free-atom energies
(spin-polarised at the ground-state multiplicity) go to ``isolated_atoms.xyz`` as
``config_type=IsolatedAtom`` frames, so training takes its E0s from them.

**Held out**: the molecules the fine-tuning benchmarks test on (rMD17 aspirin and ethanol, MD17
naphthalene and salicylic acid, 3BPA) and their isomers, by formula (``HELD_OUT``), plus methanol (the
ethanol set's ``test_eth_meth``).  Each molecule is written to ``OUT/molecules/NAME.xyz`` when done, so an
interrupted run resumes where it stopped; ``OUT/all.xyz`` and ``OUT/stats.json`` (counts, composition,
temperatures, label statistics) are written at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import zlib
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

# formulas (Hill order) of the benchmark molecules and the set they come from
HELD_OUT = {"C9H8O4": "aspirin (rMD17, MD17)", "C7H6O3": "salicylic acid (MD17)", "C10H8": "naphthalene (MD17)",
            "C2H6O": "ethanol (rMD17)", "CH4O": "methanol (ethanol set's test_eth_meth)",
            "C12H12N2O": "3BPA"}

# name -> SMILES: closed-shell H/C/N/O molecules covering the functional groups of organic chemistry
SMILES = {
    # alkanes, cycloalkanes
    "methane": "C", "ethane": "CC", "propane": "CCC", "butane": "CCCC", "isobutane": "CC(C)C",
    "pentane": "CCCCC", "neopentane": "CC(C)(C)C", "hexane": "CCCCCC", "cyclopropane": "C1CC1",
    "cyclopentane": "C1CCCC1", "cyclohexane": "C1CCCCC1", "methylcyclohexane": "CC1CCCCC1",
    # alkenes, alkynes
    "ethene": "C=C", "propene": "C=CC", "butadiene": "C=CC=C", "cyclohexene": "C1CC=CCC1", "acetylene": "C#C",
    "propyne": "CC#C", "isoprene": "C=CC(C)=C",
    # aromatics
    "benzene": "c1ccccc1", "toluene": "Cc1ccccc1", "o-xylene": "Cc1ccccc1C", "styrene": "C=Cc1ccccc1",
    "ethylbenzene": "CCc1ccccc1", "indane": "C1Cc2ccccc2C1", "biphenyl": "c1ccc(cc1)-c1ccccc1",
    # alcohols, phenols
    "1-propanol": "CCCO", "2-propanol": "CC(C)O", "1-butanol": "CCCCO", "ethylene glycol": "OCCO",
    "glycerol": "OCC(O)CO", "cyclohexanol": "OC1CCCCC1", "phenol": "Oc1ccccc1", "benzyl alcohol": "OCc1ccccc1",
    "catechol": "Oc1ccccc1O", "hydroquinone": "Oc1ccc(O)cc1", "p-cresol": "Cc1ccc(O)cc1",
    # ethers
    "diethyl ether": "CCOCC", "tetrahydrofuran": "C1CCOC1", "1,4-dioxane": "C1COCCO1", "anisole": "COc1ccccc1",
    "furan": "c1ccoc1", "dimethoxymethane": "COCOC",
    # aldehydes, ketones
    "formaldehyde": "C=O", "acetaldehyde": "CC=O", "acetone": "CC(C)=O", "butanone": "CCC(C)=O",
    "benzaldehyde": "O=Cc1ccccc1", "acetophenone": "CC(=O)c1ccccc1", "cyclohexanone": "O=C1CCCCC1",
    "p-benzoquinone": "O=C1C=CC(=O)C=C1", "acrolein": "C=CC=O",
    # acids, esters, anhydrides
    "formic acid": "OC=O", "acetic acid": "CC(=O)O", "propanoic acid": "CCC(=O)O", "benzoic acid": "OC(=O)c1ccccc1",
    "oxalic acid": "OC(=O)C(=O)O", "lactic acid": "CC(O)C(=O)O", "acrylic acid": "C=CC(=O)O",
    "methyl formate": "COC=O", "methyl acetate": "COC(C)=O", "ethyl acetate": "CCOC(C)=O",
    "methyl benzoate": "COC(=O)c1ccccc1", "phenyl acetate": "CC(=O)Oc1ccccc1", "gamma-butyrolactone": "O=C1CCCO1",
    "maleic anhydride": "O=C1OC(=O)C=C1",
    # amines, N-heterocycles
    "methylamine": "CN", "dimethylamine": "CNC", "trimethylamine": "CN(C)C", "ethylamine": "CCN",
    "aniline": "Nc1ccccc1", "benzylamine": "NCc1ccccc1", "piperidine": "C1CCNCC1", "morpholine": "C1COCCN1",
    "pyridine": "c1ccncc1", "pyrrole": "c1cc[nH]c1", "imidazole": "c1c[nH]cn1", "pyrazole": "c1cn[nH]c1",
    "pyrimidine": "c1cncnc1", "pyrazine": "c1cnccn1", "2-aminopyridine": "Nc1ccccn1", "indole": "c1ccc2[nH]ccc2c1",
    "quinoline": "c1ccc2ncccc2c1", "hydrazine": "NN", "ammonia": "N",
    # amides, ureas, amino acids, nucleobases
    "formamide": "NC=O", "acetamide": "CC(N)=O", "N-methylacetamide": "CNC(C)=O",
    "N,N-dimethylformamide": "CN(C)C=O", "urea": "NC(N)=O", "acetanilide": "CC(=O)Nc1ccccc1",
    "paracetamol": "CC(=O)Nc1ccc(O)cc1", "glycine": "NCC(=O)O", "alanine": "CC(N)C(=O)O",
    "serine": "NC(CO)C(=O)O", "proline": "OC(=O)C1CCCN1", "uracil": "O=c1cc[nH]c(=O)[nH]1",
    "thymine": "Cc1c[nH]c(=O)[nH]c1=O", "cytosine": "Nc1cc[nH]c(=O)n1", "adenine": "Nc1ncnc2[nH]cnc12",
    "caffeine": "Cn1cnc2c1c(=O)n(C)c(=O)n2C", "2-pyrrolidone": "O=C1CCCN1",
    # nitriles, nitro, N-O
    "acetonitrile": "CC#N", "acrylonitrile": "C=CC#N", "benzonitrile": "N#Cc1ccccc1",
    "nitromethane": "C[N+](=O)[O-]", "nitrobenzene": "O=[N+]([O-])c1ccccc1", "hydroxylamine": "NO",
    "water": "O", "hydrogen peroxide": "OO", "carbon dioxide": "O=C=O",
}
# ground-state spin multiplicities of the free atoms (for the E0 frames)
FREE_ATOM_MULTIPLICITY = {"H": 2, "C": 3, "N": 4, "O": 3}


def hill(atoms) -> str:
    return atoms.get_chemical_formula(mode="hill")


def calculator(**settings):
    from tblite.ase import TBLite

    return TBLite(method="GFN2-xTB", verbosity=0, **settings)


def from_smiles(smiles: str, seed: int):
    from ase import Atoms
    from rdkit import Chem
    from rdkit.Chem import AllChem

    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    params = AllChem.ETKDGv3()
    params.randomSeed = seed
    if AllChem.EmbedMolecule(mol, params) != 0:
        raise RuntimeError(f"RDKit could not embed {smiles}")
    AllChem.MMFFOptimizeMolecule(mol)
    return Atoms([a.GetSymbol() for a in mol.GetAtoms()], positions=mol.GetConformer().GetPositions())


def molecule_list() -> dict[str, dict]:
    """name -> {smiles or g2 name}, the held-out formulas removed, G2 only where its formula is new."""
    from ase.collections import g2

    mols, formulas = {}, set()
    for name, smiles in SMILES.items():
        formula = hill(from_smiles(smiles, 0))
        if formula in HELD_OUT:
            continue
        mols[name] = {"smiles": smiles, "formula": formula}
        formulas.add(formula)
    for name in g2.names:
        atoms = g2[name]
        closed_shell = not atoms.get_initial_magnetic_moments().any() and atoms.numbers.sum() % 2 == 0
        if (set(atoms.get_chemical_symbols()) <= set("HCNO") and len(atoms) >= 2 and closed_shell
                and hill(atoms) not in formulas and hill(atoms) not in HELD_OUT):
            mols[f"g2:{name}"] = {"g2": name, "formula": hill(atoms)}
            formulas.add(hill(atoms))
    return mols


def labelled(atoms, calc, **info):
    from ase.calculators.singlepoint import SinglePointCalculator

    atoms = atoms.copy()
    atoms.calc = calc
    energy, forces = atoms.get_potential_energy(), atoms.get_forces()
    atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces)
    atoms.info.update(info)
    return atoms


def sample_molecule(name: str, spec: dict, args: dict) -> tuple[str, int, float]:
    """All frames of one molecule into OUT/molecules/NAME.xyz; returns (name, frames, seconds)."""
    os.environ["OMP_NUM_THREADS"] = "1"
    import ase.io
    from ase import units
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary
    from ase.optimize import BFGS

    t0 = time.time()
    seed = zlib.crc32(name.encode())  # stable across runs and machines
    rng = np.random.default_rng(seed)
    if "smiles" in spec:
        atoms = from_smiles(spec["smiles"], seed % 2**31)
    else:
        from ase.collections import g2

        atoms = g2[spec["g2"]]
        atoms.set_initial_magnetic_moments(None)
    # an empty value would break the extxyz comment line when read back: G2 molecules have no SMILES key
    tags = {"molecule": name, **({"smiles": spec["smiles"]} if "smiles" in spec else {})}
    calc = calculator()
    atoms.calc = calc
    BFGS(atoms, logfile=None).run(fmax=0.05, steps=200)
    relaxed = atoms.copy()
    frames = [labelled(relaxed, calc, config_type="opt", **tags)]
    for temperature in args["temperatures"]:
        md = relaxed.copy()
        md.calc = calc
        MaxwellBoltzmannDistribution(md, temperature_K=temperature, rng=rng)
        Stationary(md)
        dyn = Langevin(md, 0.5 * units.fs, temperature_K=temperature, friction=0.02 / units.fs, rng=rng)
        for step in range(1, args["md_steps"] + 1):
            try:
                dyn.run(1)
            except Exception:  # an SCF that does not converge far from equilibrium ends this trajectory
                break
            if step > args["burn_in"] and step % args["every"] == 0:
                frames.append(labelled(md, calc, config_type=f"md{temperature:.0f}", **tags))
    for _ in range(args["rattles"]):
        noisy = relaxed.copy()
        noisy.positions += rng.normal(0.0, rng.uniform(0.01, 0.06), noisy.positions.shape)
        try:
            frames.append(labelled(noisy, calc, config_type="rattle", **tags))
        except Exception:
            continue
    kept = [f for f in frames if np.abs(f.get_forces()).max() <= args["max_force"]]
    frames, dropped = kept, len(frames) - len(kept)
    for frame in frames:
        frame.info["dropped_in_molecule"] = dropped
    out = Path(args["out"]) / "molecules" / f"{name.replace(':', '_').replace(' ', '_')}.xyz"
    tmp = out.with_suffix(".tmp.xyz")
    ase.io.write(tmp, frames, format="extxyz")
    tmp.replace(out)  # a killed run never leaves a half-written molecule behind
    return name, len(frames), time.time() - t0


def isolated_atoms():
    from ase import Atoms

    return [labelled(Atoms(symbol, positions=[[0.0, 0.0, 0.0]]), calculator(multiplicity=multiplicity),
                     config_type="IsolatedAtom", molecule=symbol)
            for symbol, multiplicity in FREE_ATOM_MULTIPLICITY.items()]


def statistics(frames, mols, args) -> dict:
    energies = np.array([f.get_potential_energy() / len(f) for f in frames])
    forces = np.concatenate([f.get_forces().ravel() for f in frames])
    kinds: dict[str, int] = {}
    for f in frames:
        kinds[f.info["config_type"]] = kinds.get(f.info["config_type"], 0) + 1
    elements: dict[str, int] = {}
    for f in frames:
        for s in f.get_chemical_symbols():
            elements[s] = elements.get(s, 0) + 1
    dropped = {f.info["molecule"]: int(f.info.get("dropped_in_molecule", 0)) for f in frames}
    return {"level_of_theory": "GFN2-xTB (tblite), energies eV, forces eV/Å", "molecules": len(mols),
            "frames_dropped_above_max_force": int(sum(dropped.values())),
            "frames": len(frames), "atoms": int(sum(len(f) for f in frames)), "frames_by_kind": kinds,
            "atoms_by_element": elements, "atoms_per_frame": [int(min(map(len, frames))), int(max(map(len, frames)))],
            "energy_per_atom_eV": {"mean": float(energies.mean()), "std": float(energies.std())},
            "force_component_eV_A": {"rms": float(np.sqrt((forces**2).mean())), "max_abs": float(np.abs(forces).max())},
            "held_out_formulas": HELD_OUT, "settings": {k: v for k, v in args.items() if k != "out"}}


def main() -> None:
    import ase.io

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--temperatures", type=float, nargs="+", default=[300.0, 600.0, 1000.0, 1500.0])
    parser.add_argument("--md-steps", type=int, default=300, help="per temperature, 0.5 fs each")
    parser.add_argument("--burn-in", type=int, default=40)
    parser.add_argument("--every", type=int, default=15, help="MD steps between frames")
    parser.add_argument("--rattles", type=int, default=20)
    parser.add_argument("--max-force", type=float, default=20.0, help="eV/Å; frames above it are dropped")
    parser.add_argument("--workers", type=int, default=1, help="molecules labelled in parallel, one thread each")
    parser.add_argument("--limit", type=int, default=None, help="only the first N molecules (a quick check)")
    args = parser.parse_args()
    (args.out / "molecules").mkdir(parents=True, exist_ok=True)
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k not in ("workers", "limit")}
    mols = molecule_list()
    if args.limit:
        mols = dict(list(mols.items())[: args.limit])
    todo = {n: s for n, s in mols.items()
            if not (args.out / "molecules" / f"{n.replace(':', '_').replace(' ', '_')}.xyz").exists()}
    print(f"{len(mols)} molecules, {len(mols) - len(todo)} already done", flush=True)
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        futures = [pool.submit(sample_molecule, n, s, settings) for n, s in todo.items()]
        for k, future in enumerate(as_completed(futures), 1):
            name, count, seconds = future.result()
            print(f"[{k}/{len(todo)}] {name}: {count} frames in {seconds:.0f} s", flush=True)
    frames = []
    for name in mols:
        frames += ase.io.read(args.out / "molecules" / f"{name.replace(':', '_').replace(' ', '_')}.xyz", ":")
    ase.io.write(args.out / "all.xyz", frames, format="extxyz")
    ase.io.write(args.out / "isolated_atoms.xyz", isolated_atoms(), format="extxyz")
    stats = statistics(frames, mols, settings)
    (args.out / "stats.json").write_text(json.dumps(stats, indent=1))
    print(json.dumps({k: stats[k] for k in ("molecules", "frames", "atoms", "frames_by_kind")}, indent=1))


if __name__ == "__main__":
    main()
