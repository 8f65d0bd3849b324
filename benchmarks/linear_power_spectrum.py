#!/usr/bin/env python
"""A linear model in the neighbour-density power spectrum, fitted by least squares: how much do angles of high
degree l carry on a data set?

    python benchmarks/linear_power_spectrum.py --train runs/zuo6/data/mo/data/train_full.xyz \\
        --test runs/zuo6/data/mo/data/Mo_test.xyz --l-max 2 4 6 --json out.json

Per atom, c[n, lm] = Σ_j G_n(r_ij) f_cut(r_ij) Y_lm(r̂_ij) with ``--n-max`` Gaussians G_n between 1.5 Å and the
cutoff and a cosine cutoff f_cut, and p[n, n', l] = Σ_m c[n, lm] c[n', lm] / (2l + 1) (SOAP's power spectrum,
single species).  The energy is a constant per atom plus a linear function of Σ_i (c[n, 00], p_i); forces are its
negative gradient, so one least-squares problem (energy rows per atom, force rows times ``--force-weight``, a ridge
term) fits both.  A model that has only the invariants of degree ≤ l shows what angles of degree > l add: this is
the measurement behind ``descriptor_l_max`` (docs/ARCHITECTURE.md, "High-l invariants").  Labels are read as
REF_energy / REF_forces (the split files of ``side_by_side.py``).  Single-element data only.
"""

from __future__ import annotations

import argparse
import json
import time

import ase.io
import numpy as np
import torch
from ase.neighborlist import neighbor_list

from dens_calc.nn.quadratic_prior import power_spectrum_features, with_products


def per_atom_features(positions, atoms, edges, r_max: float, l_max: int, n_max: int) -> torch.Tensor:
    i, j, shifts = edges
    vectors = positions[j] - positions[i] + torch.as_tensor(shifts @ atoms.cell.array)
    return power_spectrum_features(vectors, torch.as_tensor(i), len(atoms), r_max, l_max, n_max)


def summed_features_and_jacobian(atoms, r_max: float, l_max: int, n_max: int, quadratic: bool = False):
    """Σ_i x_i (and Σ_i x_i ⊗ x_i, upper triangle, if ``quadratic``) and their Jacobian in the positions, [F, 3N].

    Why not autograd on the summed products: that is one backward pass per product (1,080 at l <= 6, n_max 3,
    ~6 s per 54-atom frame).  Atom i's features depend only on its own edges, so one vectorised Jacobian of the
    *linear* features in the edge vectors gives every atom's Jacobian, and the products follow by the product
    rule, d Σ_i x_ia x_ib = Σ_i (x_ia dx_ib + x_ib dx_ia): exact, and 20-50x faster.
    """
    i, j, shifts = neighbor_list("ijS", atoms, r_max)
    n = len(atoms)
    positions = torch.as_tensor(atoms.positions, dtype=torch.float64)
    vectors = positions[j] - positions[i] + torch.as_tensor(shifts @ atoms.cell.array, dtype=torch.float64)
    owners = torch.as_tensor(i)

    def summed(v):
        return power_spectrum_features(v, owners, n, r_max, l_max, n_max).sum(dim=0)

    per_atom = power_spectrum_features(vectors, owners, n, r_max, l_max, n_max)  # [N, F]
    by_edge = torch.autograd.functional.jacobian(summed, vectors, vectorize=True)  # [F, E, 3]: d x_{i(e)} / d v_e
    # d v_e / d r_j = +1, d v_e / d r_i = -1: per-atom Jacobian [N (atom), N (position), F, 3]
    jac = torch.zeros(n, n, per_atom.shape[1], 3, dtype=torch.float64)
    edge_terms = by_edge.permute(1, 0, 2)  # [E, F, 3]
    jac.index_put_((owners, torch.as_tensor(j)), edge_terms, accumulate=True)
    jac.index_put_((owners, owners), -edge_terms, accumulate=True)
    jac = jac.permute(0, 2, 1, 3).reshape(n, per_atom.shape[1], 3 * n)
    x, dx = per_atom.sum(dim=0), jac.sum(dim=0)
    if quadratic:
        half = torch.einsum("ia,ibk->abk", per_atom, jac)  # Σ_i x_ia dx_ib
        upper = torch.triu_indices(per_atom.shape[1], per_atom.shape[1])
        products = with_products(per_atom).sum(dim=0)[per_atom.shape[1]:]
        x = torch.cat([x, products])
        dx = torch.cat([dx, half[upper[0], upper[1]] + half[upper[1], upper[0]]])
    return x, dx


def featurise(frames, r_max: float, l_max: int, n_max: int, quadratic: bool = False) -> list[dict]:
    """Summed features, their Jacobian in the positions, and the labels of each frame (float64)."""
    out = []
    for atoms in frames:
        x, jac = summed_features_and_jacobian(atoms, r_max, l_max, n_max, quadratic)
        out.append({"n": len(atoms), "x": x.numpy(), "jac": jac.numpy(),
                    "energy": float(atoms.info["REF_energy"]), "forces": np.asarray(atoms.arrays["REF_forces"]).ravel(),
                    "description": str(atoms.info.get("description", atoms.info.get("config_type", "")))})
    return out


def fit(train: list[dict], force_weight: float, ridge: float) -> np.ndarray:
    """Weights [constant per atom, features...] by least squares on energies per atom and weighted forces."""
    return NormalEquations(train).solve(force_weight, ridge)


class NormalEquations:
    """AᵀA and Aᵀy of the energy rows and of the force rows, kept apart, so that one pass over the training frames
    serves every force weight and ridge.

    Why not ``lstsq`` on the stacked rows: with n_max 6 there are 11,935 columns and ~27,000 force rows (Zuo Mo),
    and an SVD of that takes far longer than the O(rows · columns²) product here.  Columns are scaled to unit norm
    of the energy-plus-force Gram diagonal before the ridge is added, so a ridge means the same at any force weight.
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
        from scipy.linalg import solve

        gram = self.gram_e + force_weight ** 2 * self.gram_f
        rhs = self.rhs_e + force_weight ** 2 * self.rhs_f
        scale = np.sqrt(np.diag(gram))
        scale[scale == 0] = 1.0
        scaled = gram / np.outer(scale, scale) + ridge * np.eye(len(scale))
        return solve(scaled, rhs / scale, assume_a="sym", check_finite=False) / scale


def fold_parts(count: int, folds: int, seed: int = 0) -> list[np.ndarray]:
    """The frame indices of each of ``folds`` folds (a seeded shuffle, dealt round-robin)."""
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


def cross_validate(frames: list[dict], force_weights, ridges, folds: int = 5, seed: int = 0) -> list[dict]:
    """K-fold cross-validated E and F MAE of every (force weight, ridge), pooled over the held-out frames.

    Why: 19 validation frames drawn from the training trajectories did not see a high-capacity fit overshoot an
    unseen surface (``benchmarks/README.md``, "a richer quadratic base"); every training frame, the 9 slabs among
    them, is held out once here.
    """
    settings = [(fw, r) for fw in force_weights for r in ridges]
    e_err = {key: [] for key in settings}
    f_err = {key: [] for key in settings}
    for part, weights in out_of_fold_weights(frames, settings, folds, seed):
        for key, w in weights.items():
            for f in (frames[i] for i in part):
                e_err[key].append((w[0] * f["n"] + f["x"] @ w[1:] - f["energy"]) / f["n"] * 1000.0)
                f_err[key].append(np.abs(-(f["jac"].T @ w[1:]) - f["forces"]) * 1000.0)
    return [{"force_weight": fw, "ridge": r, "E_mae_meV_atom": float(np.mean(np.abs(e_err[(fw, r)]))),
             "F_mae_meV_A": float(np.mean(np.concatenate(f_err[(fw, r)])))} for fw, r in settings]


def errors(frames: list[dict], w: np.ndarray) -> dict:
    e_err, f_abs, per_frame = [], [], {}
    for f in frames:
        e = (w[0] * f["n"] + f["x"] @ w[1:] - f["energy"]) / f["n"] * 1000.0
        e_err.append(e)
        f_abs.append(np.abs(-(f["jac"].T @ w[1:]) - f["forces"]) * 1000.0)
        per_frame[f["description"]] = round(float(e), 2)
    return {"E_mae_meV_atom": float(np.mean(np.abs(e_err))), "F_mae_meV_A": float(np.mean(np.concatenate(f_abs))),
            "signed_E_meV_atom": per_frame}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", required=True)
    parser.add_argument("--test", required=True)
    parser.add_argument("--r-max", type=float, default=5.0)
    parser.add_argument("--l-max", type=int, nargs="+", default=[2, 4, 6])
    parser.add_argument("--n-max", type=int, default=6)
    parser.add_argument("--force-weight", type=float, nargs="+", default=[0.03, 0.01, 0.003],
                        help="weight of a force row (eV/Å) against an energy row (eV/atom)")
    parser.add_argument("--ridge", type=float, default=1e-8)
    parser.add_argument("--quadratic", action="store_true",
                        help="also the pairwise products of each atom's features (a quadratic model, as qSNAP)")
    parser.add_argument("--watch", nargs="*", default=[], help="print the signed energy error of frames whose "
                                                                "description contains these strings")
    parser.add_argument("--json")
    args = parser.parse_args()
    train_frames, test_frames = ase.io.read(args.train, ":"), ase.io.read(args.test, ":")
    results = []
    for l_max in args.l_max:
        start = time.perf_counter()
        train, test = (featurise(f, args.r_max, l_max, args.n_max, args.quadratic) for f in (train_frames, test_frames))
        print(f"l_max {l_max}: {train[0]['x'].size} features per atom, featurised in {time.perf_counter() - start:.0f} s")
        for force_weight in args.force_weight:
            w = fit(train, force_weight, args.ridge)
            row = {"l_max": l_max, "n_max": args.n_max, "r_max": args.r_max, "quadratic": args.quadratic,
                   "force_weight": force_weight,
                   "ridge": args.ridge, "train": errors(train, w), "test": errors(test, w)}
            results.append(row)
            watched = " ".join(f"{key} {value:+.1f}" for key, value in row["test"]["signed_E_meV_atom"].items()
                               if any(s in key for s in args.watch))
            print(f"  force weight {force_weight:g}: train E {row['train']['E_mae_meV_atom']:.2f} | test E "
                  f"{row['test']['E_mae_meV_atom']:.2f} meV/atom, F {row['test']['F_mae_meV_A']:.1f} meV/Å {watched}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)


if __name__ == "__main__":
    torch.set_default_dtype(torch.float64)
    main()
