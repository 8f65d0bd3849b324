"""Closed-form refit of the energy read-out: move a trained model's energy/force balance in minutes.

A trained model's energy is linear in the weights of its read-outs' last linear maps ``w`` (the linear
read-out of every layer but the last, and the output layer of the last layer's MLP):
``E = scale · Φ · w + (terms without w)``, with ``Φ`` the per-structure sum of the features those maps
act on.  Forces and stress are derivatives of E, so they are linear in ``w`` as well.  For each energy
weight of a grid, a weighted least-squares solve over the training structures (energies per atom,
forces and stresses, weighted like the training loss; a small ridge term pulls ``w`` towards its trained
value) gives new read-out weights.  The validation structures then choose the one whose errors, relative
to the trained model's, sum lowest; when none beats the trained model, the model is left as it was.

Why: with force-dominated losses, SGD leaves the energies squeezed toward the data's mean (Zuo Cu:
+2.2 meV/atom at the equilibrium lattice, −11.6 at ±10 % strain, benchmarks/README.md).  Re-weighting
by retraining costs the whole budget again; the features learned for the forces are good, and the
last linear maps on top of them can be solved for exactly, as linear ACE/GAP fits are.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..data import collate
from ..nn.model import DeNSPotential, evaluate_with_inputs

log = logging.getLogger(__name__)

# energy weights (on top of the training's late-stage λ_E) tried by default; 1 is the training's own balance
DEFAULT_ENERGY_FACTORS = (1.0, 3.0, 10.0, 30.0, 100.0)
# pulls towards the trained weights (× the mean squared column norm of the system); weaker pulls let the
# read-out move further (Zuo Cu: 1e-6 → 1e-12 took the test energy MAE at ×10 from 1.56 to 0.68 meV/atom)
DEFAULT_RIDGES = (1e-6, 1e-9, 1e-12)
VOIGT = [0, 4, 8, 5, 2, 1]  # xx yy zz yz xz xy of a flattened 3×3 stress


def readout_parameters(model: DeNSPotential) -> list[torch.nn.Parameter]:
    """The weights the energy is linear in (see the module docstring)."""
    last = model.final_readout[-1]
    return [r.weight for r in model.readouts] + [last.weight, last.bias]


def _flat(params) -> np.ndarray:
    return torch.cat([p.detach().reshape(-1) for p in params]).double().cpu().numpy()


def set_readout(model: DeNSPotential, w: np.ndarray) -> None:
    offset = 0
    with torch.no_grad():
        for p in readout_parameters(model):
            p.copy_(torch.as_tensor(w[offset: offset + p.numel()], dtype=p.dtype).view_as(p))
            offset += p.numel()


@dataclass
class Linearised:
    """One structure's labels, predictions and their derivatives with respect to ``w``."""

    n_atoms: int
    energy: tuple[float, float, np.ndarray]  # (label, prediction, ∂E/∂w)
    forces: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # [3N], [3N], [3N, K]
    stress: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # [9], [9], [9, K]


def linearise(model: DeNSPotential, graph, derivatives: bool = True) -> Linearised:
    """Energy of one labelled graph as a linear function of the read-out weights (plus its derivatives)."""
    captured = []
    hooks = [m.register_forward_hook(lambda _m, inputs, _o: captured.append(inputs[0]))
             for m in [*model.readouts, model.final_readout[-1]]]
    want_stress = derivatives and bool(graph.has_stress.any())
    want_forces = derivatives and bool(graph.has_forces.any())
    try:
        out, inputs = evaluate_with_inputs(model, graph, compute_forces=want_forces, compute_stress=want_stress,
                                           keep_graph=want_forces or want_stress)
    finally:
        for h in hooks:
            h.remove()
    scale = model.config.scale
    n = graph.num_nodes
    # Φ: summed features of each linear map, then the atom count for the last bias; times the output scale
    phi = torch.cat([c.sum(0) for c in captured] + [captured[-1].new_tensor([float(n)])]) * scale
    energy = (float(graph.energy), float(out["energy"].detach().sum()), phi.detach().double().cpu().numpy())
    lin = Linearised(n, energy)
    wrt = ([inputs["positions"]] if want_forces else []) + ([inputs["strain"]] if want_stress else [])
    if wrt:
        rows = [[] for _ in wrt]
        for k in range(phi.numel() - 1):  # the bias column has no derivative
            grads = torch.autograd.grad(phi[k], wrt, retain_graph=True, allow_unused=True)
            for r, g, x in zip(rows, grads, wrt):
                r.append((g if g is not None else torch.zeros_like(x)).detach().double().reshape(-1))
        jac = [torch.stack(r + [torch.zeros_like(r[0])], 1).cpu().numpy() for r in rows]  # [dim, K]
        if want_forces:
            # F = -∂E/∂r
            lin.forces = (graph.forces.double().reshape(-1).numpy(), out["forces"].detach().double().reshape(-1).numpy(),
                          -jac[0])
        if want_stress:
            volume = float(torch.linalg.det(graph.cell.view(3, 3).double()).abs())
            lin.stress = (graph.stress.double().reshape(-1).numpy(), out["stress"].detach().double().reshape(-1).numpy(),
                          jac[-1] / volume)
    return lin


def linearise_all(model, graphs, max_force_structures: int | None, seed: int = 0) -> list[Linearised]:
    """Energies of all structures; force and stress derivatives of at most ``max_force_structures`` of them
    (each costs one backward pass per read-out weight), drawn at random."""
    order = np.random.default_rng(seed).permutation(len(graphs))
    with_derivatives = set(order[: max_force_structures].tolist()) if max_force_structures is not None else set(order.tolist())
    out = []
    for k, g in enumerate(graphs):
        out.append(linearise(model, collate([g]), derivatives=k in with_derivatives))
    return out


def _prediction(item, w, w0):
    """Predicted (energy, forces, stress) of a linearised structure at read-out weights ``w``."""
    dw = w - w0
    e = item.energy[1] + item.energy[2] @ dw
    f = None if item.forces is None else item.forces[1] + item.forces[2] @ dw
    s = None if item.stress is None else item.stress[1] + item.stress[2] @ dw
    return e, f, s


def errors(items: list[Linearised], w: np.ndarray, w0: np.ndarray) -> dict[str, float]:
    """MAE of energy per atom (meV/atom), forces (meV/Å) and stress (meV/Å³) at weights ``w``."""
    de, df, ds = [], [], []
    for item in items:
        e, f, s = _prediction(item, w, w0)
        de.append((e - item.energy[0]) / item.n_atoms)
        if f is not None:
            df.append(f - item.forces[0])
        if s is not None:
            ds.append((s - item.stress[0])[VOIGT])  # as `dens-calc eval` counts them
    out = {"energy_per_atom": 1000 * float(np.mean(np.abs(de)))}
    if df:
        out["forces"] = 1000 * float(np.mean(np.abs(np.concatenate(df))))
    if ds:
        out["stress"] = 1000 * float(np.mean(np.abs(np.concatenate(ds))))
    return out


def solve(items: list[Linearised], w0: np.ndarray, energy_weight: float, forces_weight: float,
          stress_weight: float, ridge: float = 1e-9) -> np.ndarray:
    """Weighted ridge least squares for ``w``: the training loss's terms, each a mean over its structures."""
    blocks, targets = [], []
    n_e = len(items)
    n_f = sum(i.forces[0].size for i in items if i.forces is not None)
    n_s = sum(i.stress[0].size for i in items if i.stress is not None)
    base = [_prediction(i, w0, w0) for i in items]  # the trained model's predictions
    for item, (e0, _f0, _s0) in zip(items, base):
        # residual(w) = pred(w0) + D (w - w0) - label  ->  D w = label - pred(w0) + D w0
        c = np.sqrt(energy_weight / n_e) / item.n_atoms
        blocks.append(c * item.energy[2][None, :]), targets.append(c * np.atleast_1d(item.energy[0] - e0 + item.energy[2] @ w0))
        if item.forces is not None and forces_weight > 0:
            c = np.sqrt(forces_weight / n_f)
            blocks.append(c * item.forces[2]), targets.append(c * (item.forces[0] - item.forces[1] + item.forces[2] @ w0))
        if item.stress is not None and stress_weight > 0:
            c = np.sqrt(stress_weight / n_s)
            blocks.append(c * item.stress[2]), targets.append(c * (item.stress[0] - item.stress[1] + item.stress[2] @ w0))
    a, b = np.vstack(blocks), np.concatenate(targets)
    # the ridge rows pull w towards w0, relative to the mean squared column norm; lstsq on the stacked
    # system (not the normal equations, whose condition number is the square) keeps weak ridges accurate
    pull = np.sqrt(ridge * float(np.mean(np.sum(a * a, axis=0))))
    a = np.vstack([a, pull * np.eye(len(w0))])
    b = np.concatenate([b, pull * w0])
    return np.linalg.lstsq(a, b, rcond=None)[0]


Choice = tuple[float, float]  # (energy factor, ridge)


@dataclass
class RefitReport:
    chosen: Choice | None  # (energy factor, ridge) kept; None: the trained weights were kept
    trained: dict[str, float]  # validation MAEs of the trained model
    candidates: dict[Choice, dict[str, float]] = field(default_factory=dict)  # validation MAEs
    seconds: float = 0.0

    def table(self) -> str:
        keys = list(self.trained)
        lines = ["energy factor  ridge  " + "  ".join(f"{k:>16}" for k in keys) + "   (validation MAE)",
                 "trained               " + "  ".join(f"{self.trained[k]:16.3f}" for k in keys)]
        for (factor, ridge), errs in self.candidates.items():
            mark = "  <- chosen" if (factor, ridge) == self.chosen else ""
            lines.append(f"x{factor:<12g} {ridge:<6.0e} " + "  ".join(f"{errs.get(k, float('nan')):16.3f}" for k in keys)
                         + mark)
        return "\n".join(lines)


def relative_cost(errs: dict[str, float], reference: dict[str, float]) -> float:
    """Sum of the errors relative to the trained model's (each quantity counts once)."""
    return sum(errs[k] / reference[k] for k in reference if reference[k] > 0)


def refit_energy_readout(model: DeNSPotential, train_graphs: list, valid_graphs: list, *, energy_weight: float,
                         forces_weight: float, stress_weight: float,
                         energy_factors: tuple[float, ...] = DEFAULT_ENERGY_FACTORS,
                         ridges: tuple[float, ...] = DEFAULT_RIDGES,
                         max_force_structures: int | None = 50, seed: int = 0) -> RefitReport:
    """Refit ``model``'s read-out weights in place (see the module docstring) and report what was chosen.

    ``energy_weight``, ``forces_weight`` and ``stress_weight`` are the training loss's weights; the grid
    multiplies the energy weight by ``energy_factors`` and tries each pull ``ridges`` towards the trained
    weights.  Validation graphs need energy and force labels.
    """
    if not valid_graphs:
        raise ValueError("the refit chooses its energy weight on validation structures: none given")
    start = time.time()
    w0 = _flat(readout_parameters(model))
    train = linearise_all(model, train_graphs, max_force_structures, seed)
    valid = linearise_all(model, valid_graphs, None, seed)
    trained = errors(valid, w0, w0)
    report = RefitReport(None, trained)
    best = (relative_cost(trained, trained), w0)
    for ridge in ridges:
        for factor in energy_factors:
            w = solve(train, w0, energy_weight * factor, forces_weight, stress_weight, ridge)
            report.candidates[(factor, ridge)] = errs = errors(valid, w, w0)
            cost = relative_cost(errs, trained)
            if cost < best[0]:
                best, report.chosen = (cost, w), (factor, ridge)
    set_readout(model, best[1])
    report.seconds = time.time() - start
    log.info("energy read-out refit: %.0f s", report.seconds)
    log.debug("%s", report.table())
    return report


def refit_model(model: str | Path, train_file: str | Path, out: str | Path, *, valid_file: str | Path | None = None,
                valid_fraction: float = 0.05, seed: int = 0,
                energy_factors: tuple[float, ...] = DEFAULT_ENERGY_FACTORS, ridges: tuple[float, ...] = DEFAULT_RIDGES,
                max_force_structures: int | None = 50) -> RefitReport:
    """Refit the energy read-out of a saved model on labelled data and save the result to ``out``.

    The validation structures are ``valid_file``, or the ``valid_fraction`` split of ``train_file`` drawn
    with ``seed`` (``dens-calc train``'s defaults, so the same file and seed hold out the same frames it
    validated on).  The loss weights are the training defaults at the late stage's energy weight.
    """
    from ..checkpoint import load_model, save_model
    from .config import DEFAULT_STRESS_WEIGHT, TrainConfig
    from .data import build_graphs, check_species
    from .setup import load_sets

    net, metadata = load_model(model)
    dtype = next(net.parameters()).dtype
    net = net.double()  # the features and the solve in float64; saved back in the stored precision
    config = TrainConfig(train_file=str(train_file), valid_file=str(valid_file) if valid_file else None,
                         valid_fraction=valid_fraction, seed=seed)
    train, valid = load_sets(config)
    for data in (train, valid):
        check_species(data, net.config.species, "the model")
    species, r_max = net.config.species, net.config.r_max
    train_graphs = build_graphs(train, species, r_max, torch.float64)
    valid_graphs = build_graphs(valid, species, r_max, torch.float64)
    has_stress = any(bool(g.has_stress) for g in train_graphs)
    report = refit_energy_readout(
        net, train_graphs, valid_graphs, energy_weight=config.energy_weight * config.late_energy_factor,
        forces_weight=config.forces_weight, stress_weight=DEFAULT_STRESS_WEIGHT if has_stress else 0.0,
        energy_factors=energy_factors, ridges=ridges, max_force_structures=max_force_structures, seed=seed)
    refit = {"train_file": str(train_file), "valid": str(valid_file) if valid_file else f"{valid_fraction} split, seed {seed}",
             "chosen": None if report.chosen is None else {"energy_factor": report.chosen[0], "ridge": report.chosen[1]},
             "valid_mae_trained": report.trained,
             "valid_mae_candidates": {f"x{f:g} ridge {r:g}": v for (f, r), v in report.candidates.items()}}
    save_model(net.to(dtype), out, metadata={**metadata, "readout_refit": refit})
    return report
