"""benchmarks/committee_subsets.py: a committee scored from its members' predictions equals the committee run."""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write
from sim_helpers import one_thread  # noqa: F401  (tiny models: one thread is fastest)

from dens_calc.calculators import DeNSCalculator
from dens_calc.checkpoint import build_committee, save_model
from dens_calc.testing import tiny_model

_spec = importlib.util.spec_from_file_location(
    "committee_subsets", Path(__file__).parents[1] / "benchmarks" / "committee_subsets.py")
subsets = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(subsets)

SPECIES = (14,)


def labelled_silicon(path, seeds):
    """Rattled Si cells labelled by a tiny 'reference' model that no candidate equals."""
    reference = DeNSCalculator(tiny_model(species=SPECIES, r_max=3.4, seed=99), dtype="float64")
    frames = []
    for seed in seeds:
        atoms = bulk("Si", "diamond", a=5.43)
        atoms.rattle(0.1, seed=seed)
        atoms.calc = reference
        labels = dict(energy=atoms.get_potential_energy(), forces=atoms.get_forces(), stress=atoms.get_stress())
        atoms.calc = SinglePointCalculator(atoms, **labels)
        frames.append(atoms)
    write(path, frames)
    return str(path)


def candidates(tmp_path):
    specs = [dict(r_max=3.0, seed=1), dict(r_max=3.6, l_max=1, seed=2), dict(r_max=3.2, seed=3)]
    return [str(save_model(tiny_model(species=SPECIES, **s), tmp_path / f"m{k}", metadata={"forces": "conservative"}))
            for k, s in enumerate(specs)]


def test_subset_score_equals_the_saved_committee_run(tmp_path):
    models = candidates(tmp_path)
    data = labelled_silicon(tmp_path / "valid.xyz", seeds=(1, 2))
    runs = [subsets.predictions(m, data) for m in models]
    frames, labels, _ = runs[0]
    from_members = subsets.scores(frames, labels, subsets.mean_results([runs[0][2], runs[1][2]]))
    committee = build_committee(models[:2], tmp_path / "committee")
    run_as_one = subsets.scores(*subsets.predictions(str(committee), data))
    assert from_members.keys() == run_as_one.keys() == {"energy_per_atom", "forces", "stress"}
    for key in from_members:
        np.testing.assert_allclose(from_members[key], run_as_one[key], rtol=1e-9)


def test_main_scores_every_subset_and_chooses_on_validation(tmp_path, monkeypatch, capsys):
    models = candidates(tmp_path)
    valid = labelled_silicon(tmp_path / "valid.xyz", seeds=(1, 2))
    test = labelled_silicon(tmp_path / "test.xyz", seeds=(3,))
    out = tmp_path / "subsets.json"
    monkeypatch.setattr(sys, "argv", ["committee_subsets.py", "--models", *models, "--valid", valid,
                                      "--test", test, "--out", str(out)])
    subsets.main()
    result = json.loads(out.read_text())
    assert len(result["subsets"]) == 3 + 3 + 1  # three singles, three pairs, one triple
    committees = [r for r in result["subsets"] if len(r["members"]) >= 2]
    assert result["chosen"]["score"] == min(r["score"] for r in committees)
    assert all("test" in r for r in result["subsets"])
    assert "<- chosen on validation" in capsys.readouterr().out
