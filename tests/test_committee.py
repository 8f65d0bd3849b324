"""Committees: the mean of several models, saved as one checkpoint and run by the calculator."""

import numpy as np
import pytest
import torch
from ase.build import bulk
from click.testing import CliRunner
from sim_helpers import one_thread  # noqa: F401  (tiny models: one thread is fastest)

from cli.main import main
from dens_calc.calculators import DeNSCalculator
from dens_calc.checkpoint import CheckpointError, build_committee, load_model, load_potential, save_model
from dens_calc.nn.committee import Committee
from dens_calc.testing import tiny_model
from dens_calc.testing.contract import ModelContract

SPECIES = (1, 6, 8, 14)


def members():
    """Two tiny models that differ in cutoff, L_max and weights."""
    return [tiny_model(species=SPECIES, r_max=3.0, seed=1), tiny_model(species=SPECIES, r_max=3.6, l_max=1, seed=2)]


def silicon():
    atoms = bulk("Si", "diamond", a=5.43).repeat((2, 1, 1))  # 3.1 Å between lattice planes: the 3.6 Å cutoff reaches images
    atoms.rattle(0.05, seed=3)
    return atoms


class TestCommitteeContract(ModelContract):
    """The model contract (equivariance, FD forces and stress, smoothness at the cutoff, ...) holds."""

    @pytest.fixture(scope="class")
    def model(self):
        return Committee(members())


def test_committee_is_the_mean_of_its_members_each_with_its_own_cutoff():
    first, second = members()
    results = []
    for model in (first, second, Committee([first, second])):
        atoms = silicon()
        atoms.calc = DeNSCalculator(model, dtype="float64")
        results.append((atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()))
    for k in range(3):
        np.testing.assert_allclose(results[2][k], 0.5 * (results[0][k] + results[1][k]), rtol=1e-10, atol=1e-12)
    # the members really differ, so the mean is a test of both
    assert abs(results[0][0] - results[1][0]) > 1e-3


def test_committee_reports_each_members_energy_and_their_spread():
    first, second = members()
    energies = []
    for model in (first, second):
        atoms = silicon()
        atoms.calc = DeNSCalculator(model, dtype="float64")
        energies.append(atoms.get_potential_energy())
        assert "energy_std" not in atoms.calc.results  # a single model has no spread
    atoms = silicon()
    atoms.calc = DeNSCalculator(Committee([first, second]), dtype="float64")
    atoms.get_potential_energy()
    np.testing.assert_allclose(atoms.calc.results["committee_energies"], energies, rtol=1e-10)
    assert atoms.calc.results["energy_std"] == pytest.approx(abs(energies[0] - energies[1]) / 2, rel=1e-10)
    # base plus residual network: the members' spread is not a disagreement, so none is reported
    atoms.calc = DeNSCalculator(Committee([first, second], weights=[1.0, 1.0]), dtype="float64")
    atoms.get_potential_energy()
    assert "energy_std" not in atoms.calc.results and "committee_energies" not in atoms.calc.results


def test_committee_spread_summary_ranks_structures_by_disagreement():
    from dens_calc.train.evaluate import committee_spread, format_table

    frames = [bulk("Si", "diamond", a=5.43).repeat((1, 1, k)) for k in (1, 2, 1, 1)]  # 2, 4, 2, 2 atoms
    for atoms, kind in zip(frames, ("bulk", "bulk", "surface", "bulk")):
        atoms.info["config_type"] = kind
    spread_ev = [0.002, 0.004, 0.010, 0.001]  # per atom: 1, 1, 5, 0.5 meV
    error_ev = [0.001, 0.008, 0.020, 0.0]     # per atom: 0.5, 2, 10, 0 meV
    labels = [{"energy": -10.0} for _ in frames]
    results = [{"energy": -10.0 + e, "energy_std": s} for e, s in zip(error_ev, spread_ev)]
    summary = committee_spread(frames, labels, results)
    assert summary["energy_std_meV_atom"]["max"] == pytest.approx(5.0)
    assert summary["energy_std_meV_atom"]["mean"] == pytest.approx((1 + 1 + 5 + 0.5) / 4)
    assert summary["largest"][0] == {"index": 2, "config_type": "surface", "energy_std_meV_atom": pytest.approx(5.0),
                                     "abs_error_meV_atom": pytest.approx(10.0)}
    # ranks of spread (1.5, 1.5, 3, 0: the tie shares its mean rank) against error (1, 2, 3, 0): r = 0.9 / sqrt(0.9)
    assert summary["spearman_spread_vs_abs_error"] == pytest.approx(np.sqrt(0.9), rel=1e-9)
    table = format_table({"file": "x", "structures": 4, "atoms": 10, "metrics": {}, "committee_spread": summary})
    assert "max 5.00 meV/atom (structure 2, surface)" in table
    assert committee_spread(frames, labels, [{"energy": -10.0}] * 4) == {}  # a single model


def test_md_records_the_committee_spread_in_frames_and_summary(tmp_path):
    from ase.io import read

    from dens_calc.calculations.md import run_md

    atoms = silicon()
    atoms.calc = DeNSCalculator(Committee(members()), dtype="float64")
    res = run_md(atoms, steps=4, interval=2, out_dir=tmp_path / "committee", seed=1)
    frames = read(tmp_path / "committee" / "md.extxyz", ":")
    spreads = [1000.0 * f.info["energy_std"] / len(f) for f in frames]
    assert len(frames) == 3 and min(spreads) > 0
    assert res["committee_energy_std_meV_atom"] == {"mean": pytest.approx(np.mean(spreads)),
                                                    "max": pytest.approx(max(spreads))}
    single = silicon()
    single.calc = DeNSCalculator(members()[0], dtype="float64")
    res = run_md(single, steps=2, interval=2, out_dir=tmp_path / "single", seed=1)
    assert "committee_energy_std_meV_atom" not in res
    assert "energy_std" not in read(tmp_path / "single" / "md.extxyz").info


def test_saved_committee_loads_safely_and_predicts_as_in_memory(tmp_path):
    paths = []
    for k, model in enumerate(members()):
        paths.append(save_model(model, tmp_path / f"m{k}", metadata={"forces": "conservative", "note": f"member {k}"}))
    target = build_committee(paths, tmp_path / "committee")
    payload = torch.load(target, map_location="cpu", weights_only=True)
    assert len(payload["members"]) == 2 and payload["model_config"]["r_max"] == 3.6
    assert [m["note"] for m in payload["metadata"]["members"]] == ["member 0", "member 1"]
    assert (tmp_path / "committee" / "config.json").is_file()

    loaded, metadata = load_potential(tmp_path / "committee", dtype=torch.float64)
    assert isinstance(loaded, Committee) and metadata["forces"] == "conservative"
    from_file, in_memory = silicon(), silicon()
    from_file.calc = DeNSCalculator(tmp_path / "committee", dtype="float64")
    in_memory.calc = DeNSCalculator(Committee(members()), dtype="float64")
    np.testing.assert_allclose(from_file.get_forces(), in_memory.get_forces(), rtol=1e-6, atol=1e-9)


def test_committee_errors_are_clear(tmp_path):
    with pytest.raises(ValueError, match="at least two"):
        Committee([tiny_model(species=SPECIES)])
    with pytest.raises(ValueError, match="same elements"):
        Committee([tiny_model(species=SPECIES), tiny_model(species=(1, 6))])
    with pytest.raises(ValueError, match="conservative"):
        DeNSCalculator(Committee(members()), forces="direct")
    target = build_committee([save_model(m, tmp_path / f"m{k}") for k, m in enumerate(members())], tmp_path / "c")
    # training, fine-tuning and refitting load one model: they must say why a committee does not fit
    with pytest.raises(CheckpointError, match="committee of 2 models"):
        load_model(target)


def test_committee_command(tmp_path):
    paths = [str(save_model(m, tmp_path / f"m{k}")) for k, m in enumerate(members())]
    (tmp_path / "info.json").write_text('{"test_errors": {"test_F_mae_meV_A": 1.5}}')
    result = CliRunner().invoke(main, ["committee", *paths, "--out", str(tmp_path / "c"), "--info",
                                       str(tmp_path / "info.json")])
    assert result.exit_code == 0, result.output
    assert "committee of 2 models" in result.output and (tmp_path / "c" / "model.pt").is_file()
    assert load_potential(tmp_path / "c")[1]["test_errors"] == {"test_F_mae_meV_A": 1.5}
    result = CliRunner().invoke(main, ["committee", paths[0], "--out", str(tmp_path / "d")])
    assert result.exit_code == 1 and "at least two" in result.output


def test_bundled_single_model_is_chosen_before_a_committee_of_the_same_elements(tmp_path, monkeypatch):
    import dens_calc.models
    from dens_calc.calculations.common import select_model

    first, second = members()
    save_model(first, tmp_path / "models" / "si-single")
    # named to sort first: the order must come from what the models are, not from their names
    build_committee([save_model(first, tmp_path / "a"), save_model(second, tmp_path / "b")],
                    tmp_path / "models" / "a-si-committee")
    monkeypatch.setattr(dens_calc.models, "MODELS_DIR", tmp_path / "models")
    assert select_model(silicon()) == "si-single"
    assert str(select_model(silicon(), "a-si-committee")) == "a-si-committee"
    listing = CliRunner().invoke(main, ["models"]).output
    assert "committee of 2 models (mean energy): cutoff 3.0 Å" in listing and "l_max 1" in listing


def test_model_listing_groups_identical_members_and_names_extra_terms(tmp_path, monkeypatch):
    import dens_calc.models

    seeds = [save_model(tiny_model(species=SPECIES, r_max=3.0, seed=k), tmp_path / f"s{k}") for k in range(3)]
    other = save_model(tiny_model(species=SPECIES, r_max=3.6, descriptor_l_max=4), tmp_path / "d")
    build_committee([*seeds, other], tmp_path / "models" / "mixed")
    save_model(tiny_model(species=(14,), prior_l_max=2), tmp_path / "models" / "si-delta")
    monkeypatch.setattr(dens_calc.models, "MODELS_DIR", tmp_path / "models")
    listing = CliRunner().invoke(main, ["models"]).output
    assert "committee of 4 models (mean energy): 3 × (cutoff 3.0 Å, channels 8, l_max 2, layers 2); cutoff 3.6 Å, " \
           "channels 8, l_max 2, layers 2, power-spectrum inputs l <= 4," in listing
    assert "+ quadratic power-spectrum term l <= 2" in listing


def test_weighted_committee_sums_its_members_and_keeps_its_weights_on_disk(tmp_path):
    """A Δ-model (base + residual network) is a committee with weights 1 and 1; any weights are exact sums."""
    first, second = members()
    paths = [str(save_model(m, tmp_path / f"m{k}", metadata={"forces": "conservative"}))
             for k, m in enumerate((first, second))]
    result = CliRunner().invoke(main, ["committee", *paths, "--out", str(tmp_path / "delta"), "--weights", "1,1"])
    assert result.exit_code == 0, result.output
    results = []
    for model in (first, second, tmp_path / "delta", Committee([first, second], [0.25, 0.75])):
        atoms = silicon()
        atoms.calc = DeNSCalculator(model, dtype="float64")
        results.append((atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress(), atoms.get_potential_energies()))
    for k in range(4):
        np.testing.assert_allclose(results[2][k], results[0][k] + results[1][k], rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(results[3][k], 0.25 * results[0][k] + 0.75 * results[1][k], rtol=1e-10, atol=1e-12)
    payload = torch.load(tmp_path / "delta" / "model.pt", map_location="cpu", weights_only=True)
    assert payload["member_weights"] == [1.0, 1.0]
    with pytest.raises(ValueError, match="one finite weight per member"):
        Committee([first, second], [1.0])
    bad = CliRunner().invoke(main, ["committee", *paths, "--out", str(tmp_path / "x"), "--weights", "1,a"])
    assert bad.exit_code != 0 and "comma-separated" in bad.output
