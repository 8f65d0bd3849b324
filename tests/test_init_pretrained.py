"""``dens-calc train --init``: molecules of elements a bundled pretrained model knows start from it."""

import numpy as np
import pytest
import yaml
from ase.build import molecule
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write
from click.testing import CliRunner

from cli.main import main
from dens_calc.models import bundled_models
from dens_calc.train.pretrained import AUTO, choose_start, resolve_init
from train_helpers import emt_frames

PRETRAINED = "hcno-xtb-pretrained"
pytestmark = pytest.mark.skipif(PRETRAINED not in bundled_models(), reason="bundled pretrained model missing")


def labelled_molecules(name: str = "CH3CH2OH", n: int = 6, seed: int = 0):
    """``n`` rattled copies of a molecule with EMT labels (EMT knows H, C, N, O)."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n):
        atoms = molecule(name)
        atoms.rattle(0.05, seed=int(rng.integers(1_000_000)))
        atoms.calc = EMT()
        atoms.calc = SinglePointCalculator(atoms, energy=atoms.get_potential_energy(), forces=atoms.get_forces())
        frames.append(atoms)
    return frames


def test_molecules_of_known_elements_start_from_the_pretrained_model():
    start = choose_start(labelled_molecules())
    assert start.model == PRETRAINED and "C, H, O" not in start.reason and "H, C, O" in start.reason


def test_periodic_data_and_unknown_elements_start_from_scratch():
    assert choose_start(emt_frames(2)).model is None  # Cu: not covered (and periodic)
    boxed = labelled_molecules(n=2)
    for atoms in boxed:
        atoms.cell, atoms.pbc = [10, 10, 10], True
    start = choose_start(boxed)
    assert start.model is None and "periodic" in start.reason
    assert choose_start([molecule("CH3SH")]).model is None  # S is not covered (no labels needed to decide)


def test_isolated_atoms_do_not_decide():
    """Single-atom reference frames (E0s) in the training file neither count as structures nor as periodic."""
    from ase import Atoms

    frames = labelled_molecules(n=2) + [Atoms("H"), Atoms("C"), Atoms("O")]
    assert choose_start(frames).model == PRETRAINED
    assert choose_start([Atoms("H"), Atoms("C")]).model is None


def test_explicit_choices_win(tmp_path):
    path = tmp_path / "m.xyz"
    write(str(path), labelled_molecules(n=2))
    assert resolve_init("scratch", path, architecture_given=False).model is None
    assert resolve_init(AUTO, path, architecture_given=True).model is None
    assert resolve_init("my/model", path, architecture_given=False).model == "my/model"
    assert resolve_init(AUTO, path, architecture_given=False).model == PRETRAINED
    write(str(tmp_path / "v.xyz"), [molecule("CH3SH")])  # the validation file's elements count too
    assert resolve_init(AUTO, path, architecture_given=False, valid_file=tmp_path / "v.xyz").model is None


@pytest.fixture(scope="module")
def molecule_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("mol") / "ethanol.xyz"
    write(str(path), labelled_molecules(n=8))
    return path


COMMON = ["--max-epochs", "1", "--batch-size", "4", "--no-progress", "--valid-fraction", "0.25"]


def test_train_cli_default_starts_molecules_from_the_pretrain(tmp_path, molecule_file):
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["train", "--train", str(molecule_file), "--out", str(out), *COMMON])
    assert result.exit_code == 0, result.output
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["from_model"] == PRETRAINED and cfg["lr"] == 3e-3 and cfg["warmup_epochs"] == 0.5
    assert f"model starts from {PRETRAINED}" in (out / "train.log").read_text()


def test_train_cli_scratch_and_architecture_options(tmp_path, molecule_file):
    out = tmp_path / "scratch"
    result = CliRunner().invoke(main, ["train", "--train", str(molecule_file), "--out", str(out), "--channels", "8",
                                       "--layers", "2", "--r-max", "3", *COMMON])
    assert result.exit_code == 0, result.output
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["from_model"] is None and cfg["lr"] == 1e-2 and cfg["model"]["num_channels"] == 8
    assert "model starts from scratch: architecture options were given" in (out / "train.log").read_text()
    clash = CliRunner().invoke(main, ["train", "--train", str(molecule_file), "--out", str(tmp_path / "x"),
                                      "--init", PRETRAINED, "--channels", "8"])
    assert clash.exit_code == 2 and "--channels" in clash.output


def test_architecture_in_a_config_file_implies_scratch(tmp_path, molecule_file):
    (tmp_path / "c.yaml").write_text("model:\n  num_channels: 8\n  r_max: 3.0\n")
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["train", "--train", str(molecule_file), "--out", str(out), "--config",
                                       str(tmp_path / "c.yaml"), *COMMON])
    assert result.exit_code == 0, result.output
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["from_model"] is None and cfg["model"]["num_channels"] == 8
