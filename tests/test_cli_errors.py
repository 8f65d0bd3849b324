"""User errors are one line; an internal error is one line that says where its full traceback is."""

import re
from pathlib import Path

from ase.build import molecule
from ase.io import write
from click.testing import CliRunner
from sim_helpers import assert_one_line_error, in_tmp_dir, model_dir, one_thread  # noqa: F401

from cli.main import main


def singlepoint(tmp_path, model_dir, *extra):
    write(tmp_path / "h2o.xyz", molecule("H2O"))
    return CliRunner().invoke(main, [*extra, "singlepoint", str(tmp_path / "h2o.xyz"), "--model", str(model_dir),
                                     "--out", str(tmp_path / "sp"), "--quiet"])


def broken(*args, **kwargs):
    raise RuntimeError("internal boom")  # a RuntimeError used to be shown as if it were the user's fault


def test_internal_error_leaves_its_traceback_in_the_log_of_the_output_folder(tmp_path, model_dir, monkeypatch):
    monkeypatch.setattr("dens_calc.calculations.singlepoint.run_singlepoint", broken)
    result = singlepoint(tmp_path, model_dir)
    assert_one_line_error(result)
    assert "internal error (RuntimeError: internal boom)" in result.output and "--debug" in result.output
    log = tmp_path / "sp" / "singlepoint-cli.log"
    assert str(log) in " ".join(result.output.split())
    text = log.read_text()
    assert "Traceback" in text and "internal boom" in text and "in broken" in text


def test_internal_error_before_the_output_folder_goes_to_a_named_file(tmp_path, model_dir, monkeypatch):
    monkeypatch.setattr("dens_calc.calculations.common.load_calculator", broken)
    result = singlepoint(tmp_path, model_dir)
    assert_one_line_error(result)
    path = Path(re.search(r"traceback is in (\S+\.log)", result.output).group(1))
    try:
        assert "internal boom" in path.read_text() and "Traceback" in path.read_text()
    finally:
        path.unlink()


def test_debug_shows_the_traceback(tmp_path, model_dir, monkeypatch):
    monkeypatch.setattr("dens_calc.calculations.singlepoint.run_singlepoint", broken)
    result = singlepoint(tmp_path, model_dir, "--debug")
    assert isinstance(result.exception, RuntimeError) and str(result.exception) == "internal boom"


def test_user_error_stays_one_line_without_internal_note(tmp_path, model_dir):
    result = CliRunner().invoke(main, ["singlepoint", str(tmp_path / "missing.xyz"), "--model", str(model_dir)])
    assert_one_line_error(result)
    assert "no such file" in result.output and "internal" not in result.output
