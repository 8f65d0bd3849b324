"""``dens-calc models``: list the bundled models."""

from __future__ import annotations

import click


def _errors(metadata: dict) -> str:
    """Test errors from a model's metadata (any ``test_*``/``*mae*``/``*rmse*`` numbers), one line."""
    source = metadata.get("test_errors") or metadata.get("test_metrics") or metadata
    items = [f"{k}={v:.4g}" for k, v in source.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
             and any(s in k.lower() for s in ("mae", "rmse", "test"))]
    return ", ".join(items) or "-"


@click.command("models")
def models_cmd():
    """List the bundled models: name, elements, cutoff, size and test errors."""
    from ase.data import chemical_symbols

    from dens_calc.models import bundled_model_info, bundled_models

    models = bundled_models()
    if not models:
        click.echo("no bundled models are installed (models/ holds none); pass --model PATH to the commands")
        return
    for name, path in models.items():
        info = bundled_model_info(name)
        cfg = info.get("model_config", {})
        elements = " ".join(chemical_symbols[z] for z in cfg.get("species", [])) or "?"
        click.echo(f"{name}\n  elements: {elements}\n  cutoff: {cfg.get('r_max', '?')} Å, channels "
                   f"{cfg.get('num_channels', '?')}, l_max {cfg.get('l_max', '?')}, layers {cfg.get('num_layers', '?')}, "
                   f"file {path.stat().st_size / 1e6:.2f} MB\n  test errors: {_errors(info.get('metadata', {}))}")
