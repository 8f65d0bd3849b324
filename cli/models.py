"""``dens-calc models``: list the bundled models."""

from __future__ import annotations

import click


def _errors(metadata: dict) -> str:
    """Test errors from a model's metadata (any ``test_*``/``*mae*``/``*rmse*`` numbers), one line."""
    source = metadata.get("test_errors") or metadata.get("test_metrics") or metadata
    items = [f"{k}={v:.4g}" for k, v in source.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
             and any(s in k.lower() for s in ("mae", "rmse", "test"))]
    return ", ".join(items) or "-"


def _shape(cfg: dict) -> str:
    """One model's architecture in a line, with its optional invariant inputs and fixed energy terms."""
    text = (f"cutoff {cfg.get('r_max', '?')} Å, channels {cfg.get('num_channels', '?')}, l_max {cfg.get('l_max', '?')}, "
            f"layers {cfg.get('num_layers', '?')}")
    if cfg.get("descriptor_l_max", 0) > 0:
        text += f", power-spectrum inputs l <= {cfg['descriptor_l_max']}"
    if cfg.get("prior_l_max", -1) >= 0 and cfg.get("prior_kind") == "kernel":
        text += (f", + kernel power-spectrum term l <= {cfg['prior_l_max']}, {cfg.get('prior_n_max')} Gaussians, "
                 f"{cfg.get('prior_num_sparse')} sparse environments")
    elif cfg.get("prior_l_max", -1) >= 0:
        text += f", + quadratic power-spectrum term l <= {cfg['prior_l_max']}, {cfg.get('prior_n_max', 3)} Gaussians"
    return text


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
        members = info.get("members") or [cfg]
        shapes = [_shape(c) for c in members]
        # identical members once, with their count (a committee of seeds of one recipe is one line, not seven)
        shape = "; ".join(s if shapes.count(s) == 1 else f"{shapes.count(s)} × ({s})" for s in dict.fromkeys(shapes))
        if "members" in info:
            weights = info.get("member_weights")
            how = "mean energy" if weights is None else "energy weights " + ", ".join(f"{w:g}" for w in weights)
            shape = f"committee of {len(members)} models ({how}): {shape}"
        click.echo(f"{name}\n  elements: {elements}\n  {shape}, file {path.stat().st_size / 1e6:.2f} MB\n"
                   f"  test errors: {_errors(info.get('metadata', {}))}")
