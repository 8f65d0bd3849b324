"""DeNSCalculator behaviour: arguments, caching, batching, input validation."""

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, molecule
from ase.calculators.calculator import PropertyNotImplementedError

from dens_calc import DeNSCalculator
from dens_calc.calculators.dens import resolve_device
from dens_calc.models import bundled_model_info, bundled_models


def test_dtype_and_device_respected(model64):
    calc = DeNSCalculator(model64, device="cpu", dtype="float32")
    assert next(calc.model.parameters()).dtype == torch.float32
    assert calc.parameters["dtype"] == "float32" and calc.parameters["device"] == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="dtype"):
        DeNSCalculator(model64, dtype="float16")


def test_results_cached_and_recomputed(calc64, si_cell, monkeypatch):
    calls = []
    original = calc64._predict
    monkeypatch.setattr(calc64, "_predict", lambda *a, **k: calls.append(1) or original(*a, **k))
    si_cell.calc = calc64
    e1 = si_cell.get_potential_energy()
    si_cell.get_forces()
    si_cell.get_stress()
    assert len(calls) == 1  # one forward serves energy, forces and stress
    si_cell.positions[0, 0] += 0.01
    e2 = si_cell.get_potential_energy()
    assert len(calls) == 2 and e1 != e2
    si_cell.set_cell(si_cell.cell * 1.01, scale_atoms=True)
    si_cell.get_forces()
    assert len(calls) == 3


def test_batched_equals_one_by_one(calc64):
    frames = [molecule("CH4"), bulk("Si", "diamond", a=5.43), molecule("H2O"), bulk("Cu", "fcc", a=3.61).repeat(2)]
    for k, f in enumerate(frames):
        f.rattle(0.05, seed=k)
    batched = calc64.batch_evaluate(frames, batch_size=3)
    for atoms, res in zip(frames, batched):
        atoms.calc = calc64
        assert res["energy"] == pytest.approx(atoms.get_potential_energy(), abs=1e-10)
        np.testing.assert_allclose(res["forces"], atoms.get_forces(), atol=1e-10)
        if atoms.pbc.all():
            np.testing.assert_allclose(res["stress"], atoms.get_stress(), atol=1e-10)
        else:
            assert "stress" not in res


def test_molecule_has_no_stress(calc64, ethanol):
    ethanol.calc = calc64
    assert np.isfinite(ethanol.get_potential_energy())
    with pytest.raises(PropertyNotImplementedError, match="periodic"):
        ethanol.get_stress()


def test_unknown_element_is_named(calc64):
    atoms = Atoms("AuH", positions=[[0, 0, 0], [1.5, 0, 0]])
    atoms.calc = calc64
    with pytest.raises(ValueError, match=r"Au not known to the model \(model elements: H, C, N, O, Si, Cu\)"):
        atoms.get_potential_energy()


@pytest.mark.parametrize(
    "atoms, message",
    [
        (Atoms(), "empty"),
        (Atoms("H2", positions=[[0, 0, 0], [np.nan, 0, 0]]), "non-finite"),
        (Atoms("H2", positions=[[0, 0, 0], [np.inf, 0, 0]]), "non-finite"),
        (Atoms("Si2", positions=[[0, 0, 0], [1, 1, 1]], cell=[[3, 0, 0], [0, 3, 0], [3, 3, 0]], pbc=True), "zero volume"),
    ],
)
def test_bad_structures_raise(calc64, atoms, message):
    atoms.calc = calc64
    with pytest.raises(ValueError, match=message):
        atoms.get_potential_energy()


def test_free_energy_and_energies(calc64, ethanol):
    ethanol.calc = calc64
    assert ethanol.get_potential_energy(force_consistent=True) == ethanol.get_potential_energy()
    assert ethanol.get_potential_energies().shape == (len(ethanol),)


@pytest.mark.parametrize("name", sorted(bundled_models()))
def test_bundled_models_load_by_name_and_run(name):
    """Every shipped checkpoint loads safely by name and gives finite, symmetric results."""

    calc = DeNSCalculator(name, device="cpu", dtype="float64")
    info = bundled_model_info(name)
    assert info["model_config"]["species"] == calc.species
    z = calc.species[0]
    atoms = bulk("Si", "diamond", a=5.47) if z == 14 else Atoms([z], cell=[6.0, 6.0, 6.0], pbc=True)
    atoms.numbers[:] = z
    atoms.calc = calc
    assert np.isfinite(atoms.get_potential_energy())
    np.testing.assert_allclose(atoms.get_forces(), 0.0, atol=1e-8)  # perfect crystal: no forces by symmetry
    assert np.all(np.isfinite(atoms.get_stress()))


def test_direct_force_model_uses_its_force_head(model64, si_cell, tmp_path):
    from dens_calc.checkpoint import save_model
    from dens_calc.data.graph import atoms_to_graph, collate
    from dens_calc.nn.model import evaluate

    save_model(model64, tmp_path / "direct", metadata={"forces": "direct"})
    calc = DeNSCalculator(tmp_path / "direct", device="cpu", dtype="float64")
    assert calc.force_mode == "direct" and calc.parameters["forces"] == "direct"
    graph = collate([atoms_to_graph(si_cell, calc.species, calc.cutoff, dtype=torch.float64)])
    head = evaluate(calc.model, graph, compute_forces=False, vector_heads=True)["direct_forces"]
    si_cell.calc = calc
    np.testing.assert_allclose(si_cell.get_forces(), head.numpy(), atol=1e-12)
    with pytest.raises(PropertyNotImplementedError, match="direct-force"):
        si_cell.get_stress()
    assert "stress" not in calc.batch_evaluate([si_cell])[0]

    conservative = DeNSCalculator(tmp_path / "direct", device="cpu", dtype="float64", forces="conservative")
    reference = DeNSCalculator(model64, device="cpu", dtype="float64")
    np.testing.assert_allclose(conservative.get_forces(si_cell.copy()), reference.get_forces(si_cell.copy()), atol=1e-10)
    with pytest.raises(ValueError, match="forces must be"):
        DeNSCalculator(model64, forces="numerical")
