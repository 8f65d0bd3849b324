"""Model evaluation on labelled structures: MAE/RMSE tables and parity plots."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..data import LabelKeys, check_labels, config_type, read_structures

log = logging.getLogger(__name__)

# metric name -> (unit, factor from eV-based values)
UNITS = {"energy_per_atom": ("meV/atom", 1000.0), "energy": ("meV", 1000.0), "forces": ("meV/Å", 1000.0),
         "stress": ("meV/Å³", 1000.0)}


def _errors(pred: np.ndarray, ref: np.ndarray) -> dict:
    diff = np.asarray(pred, float) - np.asarray(ref, float)
    return {"mae": float(np.mean(np.abs(diff))), "rmse": float(np.sqrt(np.mean(diff**2))), "count": int(diff.size)}


def collect(frames, labels, results) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(predicted, reference) arrays per quantity, in eV-based units."""
    pairs: dict[str, list] = {k: ([], []) for k in UNITS}
    for atoms, lab, res in zip(frames, labels, results):
        n = len(atoms)
        if "energy" in lab:
            pairs["energy"][0].append(res["energy"]), pairs["energy"][1].append(lab["energy"])
            pairs["energy_per_atom"][0].append(res["energy"] / n), pairs["energy_per_atom"][1].append(lab["energy"] / n)
        if "forces" in lab:
            pairs["forces"][0].append(np.ravel(res["forces"])), pairs["forces"][1].append(np.ravel(lab["forces"]))
        if "stress" in lab and "stress" in res:
            from ase.stress import full_3x3_to_voigt_6_stress

            ref = np.asarray(lab["stress"])
            ref = full_3x3_to_voigt_6_stress(ref) if ref.shape == (3, 3) else ref
            pairs["stress"][0].append(np.ravel(res["stress"])), pairs["stress"][1].append(np.ravel(ref))
    return {k: (np.hstack(p), np.hstack(r)) for k, (p, r) in pairs.items() if p}


def metrics(pairs: dict) -> dict:
    """MAE/RMSE per quantity in the units of :data:`UNITS` (meV-based)."""
    out = {}
    for name, (pred, ref) in pairs.items():
        unit, factor = UNITS[name]
        err = _errors(pred * factor, ref * factor)
        out[name] = {**err, "unit": unit}
    return out


def by_config_type(frames, labels, results) -> dict:
    """Metrics per ``atoms.info["config_type"]`` when the file has more than one (e.g. bulk, surface, AIMD):
    a data set's total error is often one group's, and that is what a user must know before trusting a model."""
    members: dict[str, list[int]] = {}
    for i, atoms in enumerate(frames):
        members.setdefault(config_type(atoms) or "(none)", []).append(i)
    if len(members) < 2:
        return {}
    out = {}
    for name, idx in members.items():
        pairs = collect([frames[i] for i in idx], [labels[i] for i in idx], [results[i] for i in idx])
        out[name] = {"structures": len(idx), "atoms": int(sum(len(frames[i]) for i in idx)), "metrics": metrics(pairs)}
    return out


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks from 0, ties sharing their mean rank (as Spearman's coefficient needs)."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    first = np.cumsum(counts) - counts
    return (first + (counts - 1) / 2.0)[inverse]


def committee_spread(frames, labels, results, top: int = 3) -> dict:
    """How far a committee's members disagree on each structure's energy (std, meV/atom), and whether that
    spread points at its errors (Spearman rank correlation with |energy error| per atom).  Empty for
    single models and weighted (base plus residual) committees."""
    if not results or "energy_std" not in results[0]:
        return {}
    n_atoms = np.array([len(a) for a in frames], float)
    spread = 1000.0 * np.array([r["energy_std"] for r in results]) / n_atoms
    out = {"energy_std_meV_atom": {"mean": float(spread.mean()), "max": float(spread.max())}}
    has_energy = ["energy" in lab for lab in labels]
    error = np.full(len(frames), np.nan)
    for i, (lab, res) in enumerate(zip(labels, results)):
        if has_energy[i]:
            error[i] = 1000.0 * abs(res["energy"] - lab["energy"]) / n_atoms[i]
    largest = np.argsort(-spread)[:top]
    out["largest"] = [{"index": int(i), "config_type": config_type(frames[i]) or "(none)",
                       "energy_std_meV_atom": float(spread[i]),
                       "abs_error_meV_atom": None if np.isnan(error[i]) else float(error[i])} for i in largest]
    known = ~np.isnan(error)
    if known.sum() >= 3:
        out["spearman_spread_vs_abs_error"] = float(np.corrcoef(_ranks(spread[known]), _ranks(error[known]))[0, 1])
    return out


def predict_file(model, path: str | Path, *, keys: LabelKeys | None = None, batch_size: int = 16,
                 device: str = "auto", dtype: str = "float64"):
    """Frames, labels, the calculator's results and the calculator of ``model`` on the structures in ``path``."""
    from ..calculators import DeNSCalculator

    frames = read_structures(path)
    labels = check_labels(frames, path, ("energy",), keys)
    calc = DeNSCalculator(model, device=device, dtype=dtype)
    return frames, labels, calc.batch_evaluate(frames, batch_size=batch_size), calc


def evaluate_file(model, path: str | Path, *, keys: LabelKeys | None = None, batch_size: int = 16,
                  device: str = "auto", dtype: str = "float64", plot_dir: str | Path | None = None) -> dict:
    """Metrics of ``model`` (checkpoint path, bundled name or built model) on the structures in ``path``.

    Forces are those the ASE calculator gives: -dE/dr, or the direct-force head for a model
    trained with ``--forces direct`` (``forces_mode`` in the result says which).
    """
    frames, labels, results, calc = predict_file(model, path, keys=keys, batch_size=batch_size, device=device,
                                                 dtype=dtype)
    pairs = collect(frames, labels, results)
    out = {"file": str(path), "structures": len(frames), "atoms": int(sum(len(a) for a in frames)),
           "forces_mode": calc.force_mode, "metrics": metrics(pairs)}
    groups = by_config_type(frames, labels, results)
    if groups:
        out["by_config_type"] = groups
    spread = committee_spread(frames, labels, results)
    if spread:
        out["committee_spread"] = spread
    if plot_dir is not None:
        out["plots"] = [str(p) for p in parity_plots(pairs, plot_dir)]
    return out


def parity_plots(pairs: dict, out_dir: str | Path) -> list[Path]:
    """One parity PNG per quantity (predicted vs reference)."""
    from matplotlib.figure import Figure  # the object API: no pyplot, no process-wide backend

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (pred, ref) in pairs.items():
        unit, factor = UNITS[name]
        fig = Figure(figsize=(4, 4))
        ax = fig.subplots()
        ax.scatter(ref, pred, s=4, alpha=0.6)
        lo, hi = float(min(ref.min(), pred.min())), float(max(ref.max(), pred.max()))
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        mae = factor * float(np.mean(np.abs(pred - ref)))
        base_unit = unit.removeprefix("m")
        ax.set(xlabel=f"reference {name} ({base_unit})", ylabel=f"predicted {name} ({base_unit})",
               title=f"{name}: MAE {mae:.3g} {unit}")
        fig.tight_layout()
        path = out_dir / f"parity_{name}.png"
        fig.savefig(path, dpi=120)
        written.append(path)
    return written


def format_table(result: dict) -> str:
    """A plain-text table of MAE and RMSE."""
    lines = [f"{result['file']}: {result['structures']} structures, {result['atoms']} atoms",
             f"{'quantity':<18}{'MAE':>12}{'RMSE':>12}  unit"]
    for name, m in result["metrics"].items():
        lines.append(f"{name:<18}{m['mae']:>12.4f}{m['rmse']:>12.4f}  {m['unit']}")
    groups = result.get("by_config_type")
    if groups:
        lines += ["by config_type: E MAE (meV/atom), F MAE and RMSE (meV/Å)",
                  f"{'config_type':<18}{'structures':>11}{'E MAE':>10}{'F MAE':>10}{'F RMSE':>10}"]
        for name, group in groups.items():
            m = group["metrics"]
            cells = [m[k][stat] if k in m else float("nan")
                     for k, stat in (("energy_per_atom", "mae"), ("forces", "mae"), ("forces", "rmse"))]
            lines.append(f"{name:<18}{group['structures']:>11}" + "".join(f"{c:>10.3f}" for c in cells))
    spread = result.get("committee_spread")
    if spread:
        worst = spread["largest"][0]
        line = (f"committee spread (members' energy std): mean {spread['energy_std_meV_atom']['mean']:.2f}, "
                f"max {worst['energy_std_meV_atom']:.2f} meV/atom (structure {worst['index']}, {worst['config_type']})")
        if "spearman_spread_vs_abs_error" in spread:
            line += f"; rank correlation with |E error| {spread['spearman_spread_vs_abs_error']:.2f}"
        lines.append(line)
    return "\n".join(lines)
