"""Least-squares fit of the quadratic power-spectrum base of a Δ-model (``ModelConfig.prior_l_max``).

The base, e_i = w0 + w · [x_i, x_i ⊗ x_i] in each atom's l ≤ L power spectrum (``nn.quadratic_prior``), is linear
in its weights, so energies and forces of the training frames give one least-squares problem: an energy row per
frame (per atom) and 3N force rows times a force weight.  The number of Gaussians (capacity), the force weight and a
ridge are chosen by K-fold cross-validation on the training frames: on Zuo Mo, 19 validation frames drawn from the
training trajectories picked the largest basis, which memorised them and put an unseen test surface 48 meV/atom
off, while 5-fold CV picked n_max 4 (``benchmarks/README.md``, "more radial functions in the quadratic base").

Why the Jacobian is built by hand: atom i's invariants depend only on its own edges, and each edge's density term
on its own vector, so three forward-mode passes give every edge's derivative, the invariants' follow by the product
rule (``edge_jacobian``), and so do the products', d Σ_i x_ia x_ib = Σ_i (x_ia dx_ib + x_ib dx_ia).  Autograd of the
~1,000-12,000 summed products would need one backward pass each (217 Mo frames: 16 CPU-minutes against 32 s with a
per-invariant Jacobian; forward mode is 12× faster again for the 260 invariants of n_max 8: 0.31 s against 3.8 s on
a 53-atom frame).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
import torch

from ..data.neighbors import neighbor_list
from ..nn.quadratic_prior import QuadraticPowerSpectrum, with_products

log = logging.getLogger(__name__)

# the grid cross-validation chooses from; force weights are eV/Å per eV/atom, ridges act on unit-diagonal equations
FORCE_WEIGHTS = (0.03, 0.01, 0.003)
RIDGES = (1e-9, 1e-7, 1e-5)


def edges(atoms, r_max: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(sender, centre, cell offset [E, 3] in Å) of every edge: its vector is r_sender - r_centre + offset."""
    edge_index, shifts = neighbor_list(atoms, r_max)
    sender, centre = (torch.as_tensor(a) for a in edge_index)
    return sender, centre, torch.as_tensor(shifts @ np.asarray(atoms.cell.array), dtype=torch.float64)


def edge_jacobian(vectors: torch.Tensor, centre: torch.Tensor, n_atoms: int, r_max: float, l_max: int, n_max: int):
    """Each atom's invariants [N, K] and, per edge, d x_centre / d v_e [E, K, 3].

    An edge's density term depends on its own vector only, so three forward-mode passes (one per Cartesian
    direction, all edges at once) give every edge's derivative; the invariants' follow by the product rule,
    d p[n, n', l] = Σ_m (dc[n, lm] c[n', lm] + c[n, lm] dc[n', lm]) / (2l + 1).  Autograd of the K summed
    invariants needs K backward passes: 12× slower at n_max 8.
    """
    from ..nn.quadratic_prior import edge_density, invariants

    def density_of(v):
        return edge_density(v, r_max, l_max, n_max)

    per_edge = density_of(vectors)  # [E, n, D]
    tangents = torch.eye(3, dtype=vectors.dtype)
    d_edge = torch.stack([torch.func.jvp(density_of, (vectors,), (tangents[k].expand_as(vectors),))[1]
                          for k in range(3)], dim=-1)  # [E, n, D, 3]
    density = per_edge.new_zeros(n_atoms, *per_edge.shape[1:]).index_add_(0, centre, per_edge)
    own = density[centre]  # [E, n, D]: the density of each edge's atom
    upper = torch.triu_indices(n_max, n_max)
    blocks = [d_edge[:, :, 0, :]]
    for l in range(l_max + 1):
        m = slice(l * l, (l + 1) * (l + 1))
        half = torch.einsum("enmk,eqm->enqk", d_edge[:, :, m], own[:, :, m])
        blocks.append(((half + half.transpose(1, 2)) / (2 * l + 1))[:, upper[0], upper[1]])
    return invariants(density, l_max), torch.cat(blocks, dim=1)


def atom_features_and_jacobian(atoms, r_max: float, l_max: int, n_max: int):
    """Each atom's invariants x_i [N, K] and their Jacobian in all positions [N, K, 3N]."""
    n = len(atoms)
    sender, centre, offsets = edges(atoms, r_max)
    positions = torch.as_tensor(atoms.positions, dtype=torch.float64)
    vectors = positions[sender] - positions[centre] + offsets
    per_atom, by_edge = edge_jacobian(vectors, centre, n, r_max, l_max, n_max)  # by_edge [E, K, 3]
    k = per_atom.shape[1]
    # v_e = r_sender - r_centre: per-atom Jacobian [N (atom), N (position), K, 3]
    jac = torch.zeros(n, n, k, 3, dtype=torch.float64)
    jac.index_put_((centre, sender), by_edge, accumulate=True)
    jac.index_put_((centre, centre), -by_edge, accumulate=True)
    return per_atom, jac.permute(0, 2, 1, 3).reshape(n, k, 3 * n)


def summed_features_and_jacobian(atoms, r_max: float, l_max: int, n_max: int, quadratic: bool = True):
    """Σ_i x_i (and Σ_i x_i ⊗ x_i, upper triangle, if ``quadratic``) and their Jacobian in the positions, [F, 3N]."""
    per_atom, jac = atom_features_and_jacobian(atoms, r_max, l_max, n_max)
    k = per_atom.shape[1]
    x, dx = per_atom.sum(dim=0), jac.sum(dim=0)
    if quadratic:
        half = torch.einsum("ia,ibk->abk", per_atom, jac)  # Σ_i x_ia dx_ib
        upper = torch.triu_indices(k, k)
        x = torch.cat([x, with_products(per_atom).sum(dim=0)[k:]])
        dx = torch.cat([dx, half[upper[0], upper[1]] + half[upper[1], upper[0]]])
    return x, dx


def featurise(frames, labels, r_max: float, l_max: int, n_max: int, quadratic: bool = True) -> list[dict]:
    """Per frame: atom count, summed quadratic features, their Jacobian and the energy / force labels (eV, eV/Å)."""
    out = []
    for atoms, label in zip(frames, labels):
        x, jac = summed_features_and_jacobian(atoms, r_max, l_max, n_max, quadratic)
        out.append({"n": len(atoms), "x": x.numpy(), "jac": jac.numpy(), "energy": float(label["energy"]),
                    "forces": np.asarray(label["forces"], dtype=np.float64).ravel()})
    return out


class NormalEquations:
    """AᵀA and Aᵀy of the energy rows and of the force rows, kept apart, so that one pass over the training frames
    serves every force weight and ridge.

    Why not ``lstsq`` on the stacked rows: at n_max 6 there are 11,935 columns and ~27,000 force rows (Zuo Mo), and
    an SVD of that takes far longer than the O(rows · columns²) products here.  Columns are scaled to a unit Gram
    diagonal before the ridge is added, so a ridge means the same at any force weight.
    """

    def __init__(self, frames: list[dict]):
        k = 1 + frames[0]["x"].size
        self.gram_e, self.rhs_e = np.zeros((k, k)), np.zeros(k)
        self.gram_f, self.rhs_f = np.zeros((k, k)), np.zeros(k)
        for f in frames:
            self.add(f)

    def add(self, f: dict, sign: float = 1.0) -> None:
        """Add one frame's rows (``sign`` -1: take them out again, as cross-validation does)."""
        row = np.concatenate([[float(f["n"])], f["x"]]) / f["n"]
        self.gram_e += sign * np.outer(row, row)
        self.rhs_e += sign * row * f["energy"] / f["n"]
        jac = -f["jac"]  # [features, 3N]: the force rows, without the constant's zero column
        self.gram_f[1:, 1:] += sign * (jac @ jac.T)
        self.rhs_f[1:] += sign * (jac @ f["forces"])

    def solve(self, force_weight: float, ridge: float) -> np.ndarray:
        import warnings

        from scipy.linalg import LinAlgWarning, solve

        gram = self.gram_e + force_weight ** 2 * self.gram_f
        rhs = self.rhs_e + force_weight ** 2 * self.rhs_f
        scale = np.sqrt(np.diag(gram))
        scale[scale == 0] = 1.0
        scaled = gram / np.outer(scale, scale) + ridge * np.eye(len(scale))
        with warnings.catch_warnings():  # small ridges are ill-conditioned by design; cross-validation judges them
            warnings.simplefilter("ignore", LinAlgWarning)
            return solve(scaled, rhs / scale, assume_a="sym", check_finite=False) / scale


def fold_parts(count: int, folds: int, seed: int = 0) -> list[np.ndarray]:
    """The frame indices of each of ``folds`` folds (a seeded shuffle, dealt round-robin)."""
    if not 2 <= folds <= count:
        raise ValueError(f"cross-validation needs 2 <= folds <= {count} (the training frames), got {folds}")
    order = np.random.default_rng(seed).permutation(count)
    return [order[k::folds] for k in range(folds)]


def out_of_fold_weights(frames: list[dict], settings, folds: int, seed: int = 0):
    """For each fold: its frame indices and, per (force weight, ridge) in ``settings``, the weights fitted without it.

    Each fold is taken out of the full normal equations and put back, so memory stays at one set of Gram matrices
    whatever ``folds`` is (at n_max 6, 2.3 GB).
    """
    total = NormalEquations(frames)
    for part in fold_parts(len(frames), folds, seed):
        for i in part:
            total.add(frames[i], sign=-1.0)
        yield part, {key: total.solve(*key) for key in settings}
        for i in part:
            total.add(frames[i])


def frame_errors(f: dict, w: np.ndarray) -> tuple[float, np.ndarray]:
    """(energy error per atom, force-component errors) of the weights ``w`` on a featurised frame (meV, meV/Å)."""
    energy = (w[0] * f["n"] + f["x"] @ w[1:] - f["energy"]) / f["n"]
    return energy * 1000.0, (-(f["jac"].T @ w[1:]) - f["forces"]) * 1000.0


def cross_validate(frames: list[dict], force_weights=FORCE_WEIGHTS, ridges=RIDGES, folds: int = 5,
                   seed: int = 0) -> list[dict]:
    """K-fold cross-validated E and F MAE of every (force weight, ridge), pooled over the held-out frames."""
    settings = [(fw, r) for fw in force_weights for r in ridges]
    e_err = {key: [] for key in settings}
    f_err = {key: [] for key in settings}
    for part, weights in out_of_fold_weights(frames, settings, folds, seed):
        for key, w in weights.items():
            for i in part:
                energy, forces = frame_errors(frames[i], w)
                e_err[key].append(energy)
                f_err[key].append(np.abs(forces))
    return [{"force_weight": fw, "ridge": r, "E_mae_meV_atom": float(np.mean(np.abs(e_err[(fw, r)]))),
             "F_mae_meV_A": float(np.mean(np.concatenate(f_err[(fw, r)])))} for fw, r in settings]


def best_by_score(rows: list[dict], metrics: str | None = None) -> dict:
    """The row with the smallest E/E_best + F/F_best (of ``row[metrics]``, or of the row itself)."""
    def get(r):
        return r[metrics] if metrics else r

    e_best = min(get(r)["E_mae_meV_atom"] for r in rows)
    f_best = min(get(r)["F_mae_meV_A"] for r in rows)
    return min(rows, key=lambda r: get(r)["E_mae_meV_atom"] / e_best + get(r)["F_mae_meV_A"] / f_best)


@dataclass
class QuadraticBase:
    """A fitted base: its weights (eV; ``QuadraticPowerSpectrum.weights``), settings and the CV table."""

    weights: np.ndarray
    l_max: int
    n_max: int
    force_weight: float
    ridge: float
    cv: list[dict] = field(default_factory=list)

    def module(self, r_max: float) -> QuadraticPowerSpectrum:
        term = QuadraticPowerSpectrum(r_max, self.l_max, self.n_max)
        term.weights.copy_(torch.as_tensor(self.weights, dtype=torch.float64))
        return term

    def summary(self) -> dict:
        chosen = next(r for r in self.cv if (r["n_max"], r["force_weight"], r["ridge"]) ==
                      (self.n_max, self.force_weight, self.ridge))
        return {"kind": "quadratic", "l_max": self.l_max, "n_max": self.n_max, "force_weight": self.force_weight, "ridge": self.ridge,
                "cv_E_mae_meV_atom": round(chosen["E_mae_meV_atom"], 3),
                "cv_F_mae_meV_A": round(chosen["F_mae_meV_A"], 2)}


def memory_needed(frames, l_max: int, n_max: int) -> float:
    """Bytes the featurised frames take (their Jacobians dominate) plus two pairs of Gram matrices."""
    from ..nn.quadratic_prior import num_quadratic_features

    k = num_quadratic_features(l_max, n_max)
    return 8.0 * (sum(k * 3 * len(a) for a in frames) + 4 * (k + 1) ** 2)


def fit_quadratic_base(frames, labels, r_max: float, l_max: int = 6, n_max_choices=(3, 4), folds: int = 5,
                       max_bytes: float = 8e9) -> QuadraticBase:
    """Fit the base on ``frames`` (energy and force labels), choosing n_max, force weight and ridge by K-fold CV."""
    if len({int(z) for a in frames for z in a.numbers}) != 1:
        raise ValueError("the quadratic power-spectrum base is for single-element data")
    rows, weights = [], {}
    for n_max in n_max_choices:
        need = memory_needed(frames, l_max, n_max)
        if need > max_bytes:
            raise MemoryError(f"the quadratic base with n_max {n_max} would need {need / 1e9:.1f} GB for "
                              f"{len(frames)} frames (limit {max_bytes / 1e9:.0f} GB): use fewer frames or a "
                              f"smaller n_max")
        feats = featurise(frames, labels, r_max, l_max, n_max)
        equations = NormalEquations(feats)
        for row in cross_validate(feats, folds=folds):
            rows.append({"n_max": n_max, **row})
            key = (n_max, row["force_weight"], row["ridge"])
            weights[key] = equations.solve(row["force_weight"], row["ridge"])  # a few MB at most: keep them all
            log.info("quadratic base n_max %d, force weight %g, ridge %g: %d-fold CV E %.2f meV/atom, F %.1f meV/Å",
                     *key, folds, row["E_mae_meV_atom"], row["F_mae_meV_A"])
        del feats, equations
    chosen = best_by_score(rows)
    key = (chosen["n_max"], chosen["force_weight"], chosen["ridge"])
    return QuadraticBase(weights[key], l_max, *key, cv=rows)


def lone_atom_energy(base, r_max: float) -> float:
    """The base's energy of an atom with no neighbours (eV): what isolated-atom references must leave out."""
    with torch.no_grad():
        return float(base.module(r_max)(torch.zeros(0, 3, dtype=torch.float64), torch.zeros(0, dtype=torch.long), 1))


def predict(frames, base, r_max: float) -> list[dict]:
    """Energy (eV), forces (eV/Å) and Voigt stress (ASE sign, eV/Å³) of a base (anything with ``module(r_max)``:
    ``QuadraticBase``, ``kernel_base.KernelBase``), by autograd in float64."""
    from ase.stress import full_3x3_to_voigt_6_stress

    term = base.module(r_max)
    eye = torch.eye(3, dtype=torch.float64)
    results = []
    for atoms in frames:
        positions = torch.as_tensor(atoms.positions, dtype=torch.float64).requires_grad_(True)
        strain = torch.zeros(3, 3, dtype=torch.float64, requires_grad=True)
        deform = eye + 0.5 * (strain + strain.T)  # positions and cell both strained: the gradient is the virial
        sender, centre, offsets = edges(atoms, r_max)
        moved = positions @ deform
        vectors = moved[sender] - moved[centre] + offsets @ deform
        energy = term(vectors, centre, len(atoms)).sum()
        grad_pos, grad_strain = torch.autograd.grad(energy, (positions, strain))
        volume = abs(np.linalg.det(atoms.cell.array)) if atoms.pbc.all() else math.nan
        results.append({"energy": float(energy.detach()), "forces": -grad_pos.numpy(),
                        "stress": full_3x3_to_voigt_6_stress(grad_strain.numpy() / volume)})
    return results


__all__ = ["NormalEquations", "QuadraticBase", "cross_validate", "featurise", "fit_quadratic_base", "fold_parts",
           "lone_atom_energy", "out_of_fold_weights", "predict", "summed_features_and_jacobian"]
