"""Shared helpers for the simulation tests: a small, fast random model saved as a checkpoint."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import torch

from dens_calc.testing import tiny_model

SPECIES = (1, 8, 14)  # H, O, Si


@functools.lru_cache(maxsize=None)
def small_model():
    """A tiny float64 random model (smooth, valid potential; meaningless energies) for H, O, Si."""
    return tiny_model(species=SPECIES, l_max=1, channels=4, layers=1)


def save_small_model(folder: Path) -> Path:
    """Save :func:`small_model` as a model directory (model.pt + config.json) and return it."""
    from dens_calc.checkpoint import save_model

    save_model(small_model(), folder, metadata={"test_errors": {"energy_mae_meV_atom": 1.5}})
    return folder


def calculator():
    from dens_calc import DeNSCalculator

    return DeNSCalculator(small_model(), device="cpu", dtype="float64")


def assert_one_line_error(result) -> None:
    """A failed CLI run: exit code != 0, no traceback, the error is one 'Error: ...' line."""
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run fastest on one thread (conftest sets two); import this into a test module."""
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """The small model saved as a model directory, for ``--model``."""
    return save_small_model(tmp_path_factory.mktemp("model") / "tiny")


@pytest.fixture(autouse=True)
def in_tmp_dir(tmp_path, monkeypatch):
    """Run in tmp_path so default output folders (<command>-<name>) never land in the repository."""
    monkeypatch.chdir(tmp_path)


def direct_calculator():
    """:func:`calculator` with the direct-force head: forces but no stress."""
    from dens_calc import DeNSCalculator

    return DeNSCalculator(small_model(), device="cpu", dtype="float64", forces="direct")


class FailingCalculator:
    """Wraps :func:`calculator`; from its ``fail_after``-th evaluation on, raises ``error`` instead."""

    def __new__(cls, error: Exception, fail_after: int):
        from ase.calculators.calculator import Calculator, all_changes

        inner = calculator()

        class _Failing(Calculator):
            implemented_properties = ["energy", "free_energy", "forces", "stress"]
            calls = 0

            def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
                super().calculate(atoms, properties, system_changes)
                type(self).calls += 1
                if type(self).calls >= fail_after:
                    raise error
                copy = self.atoms.copy()
                copy.calc = inner
                energy = copy.get_potential_energy()
                self.results = {"energy": energy, "free_energy": energy, "forces": copy.get_forces()}
                if copy.pbc.all():
                    self.results["stress"] = copy.get_stress()

        return _Failing()
