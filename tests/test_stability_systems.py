"""The stability benchmark's ``bulk:SYMBOL:A[:N]`` system spec (used by the bundled models' cards)."""

import importlib.util
from pathlib import Path

import numpy as np

_spec = importlib.util.spec_from_file_location("stability", Path(__file__).parents[1] / "benchmarks" / "stability.py")
stability = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(stability)


def test_bulk_spec_builds_the_cubic_cell_at_the_given_lattice_constant_and_repeat():
    bcc = stability.build_system("bulk:Mo:3.16:3")
    assert len(bcc) == 54 and set(bcc.get_chemical_symbols()) == {"Mo"}
    np.testing.assert_allclose(bcc.cell.lengths(), [9.48] * 3)
    diamond = stability.build_system("bulk:Ge:5.76")  # default 2x2x2 of the 8-atom cubic cell
    assert len(diamond) == 64 and np.allclose(diamond.cell.angles(), 90.0)
