import numpy as np
import pytest
import torch
from ase.build import bulk, molecule

from dens_calc.testing import tiny_model


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    np.random.seed(0)
    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def model64():
    """Tiny float64 model covering H, C, N, O, Si, Cu."""
    return tiny_model()


@pytest.fixture
def calc64(model64):
    from dens_calc import DeNSCalculator

    return DeNSCalculator(model64, device="cpu", dtype="float64")


@pytest.fixture
def ethanol():
    atoms = molecule("CH3CH2OH")
    atoms.rattle(0.05, seed=1)
    return atoms


@pytest.fixture
def si_cell():
    atoms = bulk("Si", "diamond", a=5.43, cubic=True)
    atoms.rattle(0.05, seed=2)
    return atoms


@pytest.fixture
def cu_triclinic():
    """A small skewed primitive cell: the 4 Å cutoff is larger than the cell, many images."""
    atoms = bulk("Cu", "fcc", a=3.61)
    atoms = atoms.repeat((1, 1, 2))
    atoms.rattle(0.05, seed=3)
    return atoms
