"""``dens-calc train / finetune / eval`` through click's CliRunner."""

import json

import pytest
import yaml
from click.testing import CliRunner

from cli.main import main
from train_helpers import write_emt

TINY = ["--r-max", "3", "--channels", "8", "--l-max", "1", "--layers", "1", "--batch-size", "3", "--no-progress",
        "--dtype", "float64", "--valid-fraction", "0.25"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_emt(tmp_path_factory.mktemp("clidata") / "cu.xyz", n=8)


@pytest.fixture(scope="module")
def trained_dir(tmp_path_factory, data):
    out = tmp_path_factory.mktemp("cli") / "run"
    result = CliRunner().invoke(main, ["train", "--train", str(data), "--out", str(out), "--max-epochs", "2",
                                       "--dens", "--dens-p", "0.5", "--dens-sigma", "0.08", *TINY])
    assert result.exit_code == 0, result.output
    return out


def test_train_cli_writes_effective_config(trained_dir):
    cfg = yaml.safe_load((trained_dir / "config.yaml").read_text())
    assert cfg["dens"]["p"] == 0.5 and cfg["dens"]["sigma"] == 0.08 and cfg["model"]["num_channels"] == 8
    assert (trained_dir / "model.pt").exists() and (trained_dir / "train.log").exists()


def test_config_file_and_flags_override(tmp_path, data):
    (tmp_path / "c.yaml").write_text("max_epochs: 1\nforces: conservative\ndens:\n  p: 0.9\n  ratio: 0.5\n")
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["train", "--train", str(data), "--out", str(out), "--config",
                                       str(tmp_path / "c.yaml"), "--dens-p", "0.3", "--pair-repulsion",
                                       "--config-type-weights", "bulk=2", *TINY])
    assert result.exit_code == 0, result.output
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["forces"] == "conservative" and cfg["dens"]["p"] == 0.3 and cfg["dens"]["ratio"] == 0.5
    assert cfg["model"]["pair_repulsion"] is True and cfg["config_type_weights"] == {"bulk": 2.0}
    assert json.loads((out / "config.json").read_text())["model_config"]["pair_repulsion"] is True


def test_bad_config_key_is_a_clean_error(tmp_path, data):
    (tmp_path / "c.yaml").write_text("dens:\n  sigmaa: 0.1\n")
    result = CliRunner().invoke(main, ["train", "--train", str(data), "--out", str(tmp_path / "r"), "--config",
                                       str(tmp_path / "c.yaml")])
    assert result.exit_code == 1 and "sigmaa" in result.output and "Traceback" not in result.output


def test_missing_labels_is_a_clean_error(tmp_path):
    (tmp_path / "bad.xyz").write_text("1\nPBC=\"F F F\"\nCu 0 0 0\n")
    result = CliRunner().invoke(main, ["train", "--train", str(tmp_path / "bad.xyz"), "--out", str(tmp_path / "r")])
    assert result.exit_code == 1 and "bad.xyz, frame 0: missing 'energy'" in result.output


def test_resume_cli_continues(tmp_path, data):
    out = tmp_path / "run"
    args = ["train", "--train", str(data), "--out", str(out), "--max-epochs", "2", *TINY]
    assert CliRunner().invoke(main, [*args, "--stop-after", "1"]).exit_code == 0
    result = CliRunner().invoke(main, ["train", "--resume", str(out)])
    assert result.exit_code == 0, result.output
    assert "after 2 epoch(s)" in result.output


def test_finetune_and_eval_cli(tmp_path, trained_dir, data):
    out = tmp_path / "ft"
    result = CliRunner().invoke(main, ["finetune", "--from", str(trained_dir), "--train", str(data), "--out", str(out),
                                       "--max-epochs", "1", "--no-progress", "--valid-fraction", "0.25"])
    assert result.exit_code == 0, result.output
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["lr"] == 3e-3 and cfg["forces"] == "conservative" and not cfg["dens"]["enabled"]
    result = CliRunner().invoke(main, ["eval", "--model", str(out), str(data), "--json", "--plot", str(tmp_path / "p")])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    m = report["metrics"]
    assert report["structures"] == 8 and m["forces"]["unit"] == "meV/Å" and m["energy_per_atom"]["rmse"] >= m["energy_per_atom"]["mae"]
    assert {"energy", "energy_per_atom", "forces", "stress"} <= set(m)
    assert (tmp_path / "p" / "parity_forces.png").exists()
    table = CliRunner().invoke(main, ["eval", "--model", str(out), str(data)])
    assert table.exit_code == 0 and "meV/atom" in table.output


def test_help_documents_dens_options():
    result = CliRunner().invoke(main, ["train", "--help"])
    for flag in ("--dens-p", "--dens-ratio", "--dens-sigma", "--dens-multi-scale", "--dens-lambda",
                 "--dens-lambda-decay", "--dens-force-encoding", "--dens-selection", "--time-limit", "--resume",
                 "--forces", "--dens-energy-on-noisy"):
        assert flag in result.output
    assert "--freeze-layers" in CliRunner().invoke(main, ["finetune", "--help"]).output
    assert "--json" in CliRunner().invoke(main, ["eval", "--help"]).output


def test_help_shows_the_defaults_training_uses():
    """Shown defaults come from the config classes, so --help cannot drift from what runs."""
    import re

    from dens_calc.nn.model import ModelConfig
    from dens_calc.train import TrainConfig

    def shown(text, flag):
        block = re.search(r"^  " + re.escape(flag) + r"\b[^\n]*\n?(?:\s{10,}[^\n]*\n?)*", text, re.M).group(0)
        return " ".join(block.split())

    train_help = CliRunner(env={"COLUMNS": "200"}).invoke(main, ["train", "--help"]).output
    assert f"[{ModelConfig.num_channels}]" in shown(train_help, "--channels")
    assert "[conservative]" in shown(train_help, "--forces")
    assert f"Default: {TrainConfig.lr} from scratch, 0.003 from a pretrained model" in shown(train_help, "--lr")
    assert "[mse]" in shown(train_help, "--loss")
    finetune_help = CliRunner(env={"COLUMNS": "200"}).invoke(main, ["finetune", "--help"]).output
    assert "[0.003]" in shown(finetune_help, "--lr")


def test_eval_breaks_errors_down_by_config_type(tmp_path, trained_dir, data):
    """Per-group errors add up to the whole: each group's force MSE, weighted by its size, gives the total's."""
    import ase.io

    frames = ase.io.read(data, ":")
    for i, atoms in enumerate(frames):
        atoms.info["config_type"] = "bulk" if i < 5 else "surface"
    ase.io.write(tmp_path / "typed.xyz", frames)
    result = CliRunner().invoke(main, ["eval", "--model", str(trained_dir), str(tmp_path / "typed.xyz"), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    groups = report["by_config_type"]
    assert {name: g["structures"] for name, g in groups.items()} == {"bulk": 5, "surface": 3}
    weighted = sum(g["metrics"]["forces"]["rmse"] ** 2 * g["metrics"]["forces"]["count"] for g in groups.values())
    assert weighted / report["metrics"]["forces"]["count"] == pytest.approx(report["metrics"]["forces"]["rmse"] ** 2)
    table = CliRunner().invoke(main, ["eval", "--model", str(trained_dir), str(tmp_path / "typed.xyz")])
    assert table.exit_code == 0 and "by config_type" in table.output and "surface" in table.output
    single = json.loads(CliRunner().invoke(main, ["eval", "--model", str(trained_dir), str(data), "--json"]).output)
    assert "by_config_type" not in single
