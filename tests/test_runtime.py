"""Process-wide settings are opt-in (dens_calc.runtime), and the command line opts in."""

import pytest
import torch
from click.testing import CliRunner

from dens_calc import _allocator, runtime
from dens_calc.nn.fused import fused_available


def test_library_calculator_leaves_the_allocator_alone(model64, monkeypatch):
    from dens_calc import DeNSCalculator

    def fail():
        raise AssertionError("a library call tuned the process allocator")

    monkeypatch.setattr(_allocator, "tune_allocator", fail)
    DeNSCalculator(model64, device="cpu", dtype="float64")


def test_command_line_configures_the_process(monkeypatch):
    from cli.main import main

    calls = []
    monkeypatch.setattr(runtime, "tune_allocator", lambda: calls.append("tuned") or True)
    before = torch.get_num_threads()
    try:
        result = CliRunner().invoke(main, ["--threads", "1", "models"])
        assert result.exit_code == 0, result.output
        assert calls == ["tuned"] and torch.get_num_threads() == 1
        assert subnormal_product() == 0.0
    finally:
        torch.set_num_threads(before)
        runtime.flush_denormals(False)


def subnormal_product() -> float:
    """1e-30 * 1e-10 in float32: a subnormal, or zero where subnormals are flushed (one element: this thread)."""
    return float(torch.tensor([1e-30]) * torch.tensor([1e-10]))


def test_training_flushes_subnormals_while_it_runs_and_then_restores(monkeypatch):
    from dens_calc.train import loop

    monkeypatch.setattr(loop, "_train", lambda *args: subnormal_product())
    runtime.flush_denormals(False)  # command-line tests earlier in the session leave the flag on
    assert subnormal_product() > 0.0
    assert loop.train(None) == 0.0
    assert subnormal_product() > 0.0


def test_no_mallopt_environment_variable_is_honoured(monkeypatch):
    monkeypatch.setattr(_allocator, "_done", False)
    monkeypatch.setenv("DENS_CALC_NO_MALLOPT", "1")
    assert runtime.configure_process()["allocator_tuned"] is False


def test_fused_policy_environment_and_override(monkeypatch):
    monkeypatch.setenv("DENS_CALC_FUSED", "0")
    assert not runtime.fused_enabled() and not fused_available()
    with runtime.use_fused(True):
        assert runtime.fused_enabled()
    assert not runtime.fused_enabled()
    monkeypatch.delenv("DENS_CALC_FUSED")
    assert runtime.fused_enabled()  # on by default: the calculator gets the kernel on the CPU
    with runtime.use_fused(False):
        assert not fused_available()


def test_device_and_dtype_names():
    assert runtime.resolve_device("cpu") == torch.device("cpu")
    assert runtime.resolve_dtype("float64") is torch.float64 and runtime.resolve_dtype(torch.float32) is torch.float32
    with pytest.raises(ValueError, match="dtype"):
        runtime.resolve_dtype("float16")
    with pytest.raises(ValueError, match="threads"):
        runtime.set_threads(0)


def test_training_code_does_not_reach_into_the_calculators():
    import ast
    from pathlib import Path

    import dens_calc.train

    for path in Path(dens_calc.train.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and "calculators" in node.module:
                assert "resolve_device" not in {a.name for a in node.names}, path


def test_plots_do_not_set_the_matplotlib_backend(tmp_path, monkeypatch):
    import matplotlib
    import numpy as np

    from dens_calc.calculations.md import plot_energies
    from dens_calc.train.evaluate import parity_plots

    monkeypatch.setattr(matplotlib, "use", lambda *a, **k: pytest.fail("a library module chose the backend"))
    np.savetxt(tmp_path / "md.log", [[0, 0, -1, 0.1, -0.9, 300, 0, 10], [1, 0.001, -1, 0.1, -0.9, 310, 0, 10]])
    assert plot_energies(tmp_path / "md.log", tmp_path / "md.png").stat().st_size > 0
    ref = np.linspace(0, 1, 5)
    assert parity_plots({"forces": (ref + 0.01, ref)}, tmp_path)[0].stat().st_size > 0
