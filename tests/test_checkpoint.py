"""Safe checkpoint round trips and clear errors."""

import numpy as np
import pytest
import torch

from dens_calc import DeNSCalculator
from dens_calc.checkpoint import FORMAT_VERSION, CheckpointError, load_model, read_checkpoint, save_model


def test_round_trip_identical_predictions(model64, si_cell, tmp_path):
    path = save_model(model64, tmp_path / "m", metadata={"provenance": "test"})
    assert path.name == "model.pt" and (tmp_path / "m" / "config.json").exists()
    loaded, meta = load_model(path, device="cpu")
    assert meta["provenance"] == "test" and meta["dtype"] == "float64"
    a = DeNSCalculator(model64, device="cpu", dtype="float64")
    b = DeNSCalculator(tmp_path / "m", device="cpu", dtype="float64")
    assert a.get_potential_energy(si_cell) == b.get_potential_energy(si_cell)
    np.testing.assert_array_equal(a.get_forces(si_cell), b.get_forces(si_cell))
    np.testing.assert_array_equal(a.get_stress(si_cell), b.get_stress(si_cell))


def test_checkpoint_is_weights_only_plain_data(model64, tmp_path):
    path = save_model(model64, tmp_path / "m.pt")
    payload = torch.load(path, weights_only=True)  # would raise on any pickled code object
    assert payload["format_version"] == FORMAT_VERSION
    assert isinstance(payload["model_config"], dict)
    assert all(v.device.type == "cpu" for v in payload["model_state"].values())


def test_truncated_file_gives_clear_error(model64, tmp_path):
    path = save_model(model64, tmp_path / "m.pt")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_model(path)


def test_garbage_and_missing_files(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_text("not a checkpoint")
    with pytest.raises(CheckpointError):
        read_checkpoint(bad)
    with pytest.raises(CheckpointError, match="no checkpoint"):
        read_checkpoint(tmp_path / "missing.pt")


def test_future_format_version(model64, tmp_path):
    path = save_model(model64, tmp_path / "m.pt", extra={"format_version": FORMAT_VERSION + 1})
    with pytest.raises(CheckpointError, match="newer than this dens-calc supports"):
        load_model(path)


def test_not_a_dens_checkpoint(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, path)
    with pytest.raises(CheckpointError, match="not a dens-calc checkpoint"):
        load_model(path)


def test_cuda_saved_tensors_load_on_cpu(model64, tmp_path):
    """Weights are stored on CPU and mapped to CPU on load, wherever they were trained."""
    path = save_model(model64, tmp_path / "m.pt")
    model, _ = load_model(path, device="cpu", dtype=torch.float32)
    assert next(model.parameters()).device.type == "cpu"
    assert next(model.parameters()).dtype == torch.float32


def test_float64_weights_survive_round_trip_exactly(model64, tmp_path):
    path = save_model(model64, tmp_path / "m.pt")
    loaded, _ = load_model(path, dtype=torch.float64)
    for (name, a), b in zip(model64.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), name


def test_bundle_model_records_test_errors_from_eval_reports(model64, tmp_path):
    import json

    from dens_calc.checkpoint import load_model, save_model
    from dens_calc.bundle import bundle_model

    save_model(model64, tmp_path / "run", metadata={"epoch": 7})
    metric = {"mae": 1.234, "rmse": 2.0, "count": 3, "unit": "meV/atom"}
    report = tmp_path / "eval.json"
    report.write_text(json.dumps({"metrics": {"energy_per_atom": metric, "forces": {**metric, "mae": 40.0}}}))
    path = bundle_model(tmp_path / "run", "tiny", evals={"test_300K": report}, test_set="three frames",
                        models_dir=tmp_path / "models")
    _, metadata = load_model(path)
    assert metadata["epoch"] == 7 and metadata["test_set"] == "three frames"
    assert metadata["test_errors"] == {"test_300K_E_mae_meV_atom": 1.23, "test_300K_E_rmse_meV_atom": 2.0,
                                       "test_300K_F_mae_meV_A": 40.0, "test_300K_F_rmse_meV_A": 2.0}
    assert json.loads((path.parent / "config.json").read_text())["metadata"]["test_errors"] == metadata["test_errors"]
