#!/usr/bin/env python
"""A quadratic power-spectrum model fitted by least squares, and the residual labels a network is trained on.

    python benchmarks/power_spectrum_residuals.py --train $D/train.xyz --valid $D/valid.xyz --test $D/Mo_test.xyz \\
        --out-dir runs/mo_qps --json out.json

Why: a model quadratic in each atom's power spectrum up to l = 6 (as quadratic SNAP is in the bispectrum),
fitted by least squares to the Zuo Mo training data, puts the unseen (211) test slab at its label where every
network we trained puts it 12-45 meV/atom too low (``benchmarks/README.md``).  Its forces are worse than a
network's.  A Δ-model takes both: this fit as the base, a network trained on label − base.

Steps: featurise every file (``dens_calc.train.quadratic_base``; frames split over ``--workers`` processes) for each
``--n-max``, fit one model per (``--force-weight``, ``--ridge``) on the training file, choose by the validation
errors (the smallest E/E_best + F/F_best) or, with ``--cv-folds K``, by K-fold cross-validation on the training file
(what ``dens-calc train --quadratic-base`` does: 19 validation frames from the training trajectories chose a base
that had memorised them), and write each file with REF_energy / REF_forces / REF_stress replaced by label −
prediction (``residual_labels.minus_predictions``) to ``--out-dir``; ``--out-of-fold`` takes the training file's
predictions from the fits without each frame's fold.  The test file's errors are reported for every fit but never
used to choose.  A network trained on the residual files and evaluated on the residual test file (``dens-calc
eval``) has exactly the Δ-model's test errors: label − (base + net) = (label − base) − net.  ``--attach NETWORK
OUT`` then saves the network with the fit inside it as one model (``ModelConfig.prior_l_max``) that the calculator,
``dens-calc eval`` and ``dens-calc committee`` load.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from pathlib import Path

import ase.io
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
import linear_power_spectrum as lps
import residual_labels

from dens_calc.train import quadratic_base


def _featurise_chunk(args):
    torch.set_default_dtype(torch.float64)
    torch.set_num_threads(1)
    frames, r_max, l_max, n_max = args
    return lps.featurise(frames, r_max, l_max, n_max, quadratic=True)


def featurise_parallel(frames, r_max, l_max, n_max, workers: int) -> list[dict]:
    chunks = [frames[k::workers] for k in range(workers)]
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        parts = pool.map(_featurise_chunk, [(c, r_max, l_max, n_max) for c in chunks])
    out = [None] * len(frames)
    for k, part in enumerate(parts):
        out[k::workers] = part
    return out


def predict(frames, w: np.ndarray, r_max: float, l_max: int, n_max: int) -> list[dict]:
    """Energy, forces and Voigt stress (ASE sign, eV/Å³) of the fitted model, by autograd (float64)."""
    return quadratic_base.predict(frames, quadratic_base.QuadraticBase(w, l_max, n_max, 0.0, 0.0), r_max)


def attach(network: str, weights: np.ndarray, l_max: int, n_max: int, out: str | Path, metadata: dict | None = None):
    """Save ``network`` (trained on the residual files) with the fitted quadratic term inside it: one model that
    predicts the labels (``ModelConfig.prior_l_max``), loadable by the calculator and by ``dens-calc committee``."""
    import dataclasses

    from dens_calc.checkpoint import load_model, save_model
    from dens_calc.nn.model import DeNSPotential

    net, net_metadata = load_model(network, dtype=torch.float64)
    config = dataclasses.replace(net.config, prior_l_max=l_max, prior_n_max=n_max)
    model = DeNSPotential(config).double()
    missing, unexpected = model.load_state_dict(net.state_dict(), strict=False)
    if unexpected or set(missing) != {"prior.weights"}:
        raise RuntimeError(f"the network's weights do not fit the model: missing {missing}, unexpected {unexpected}")
    model.prior.weights.copy_(torch.as_tensor(weights, dtype=torch.float64))
    return save_model(model.float(), out, metadata={**net_metadata, **(metadata or {})})


def out_of_fold_predictions(frames, chosen: dict, args) -> list[dict]:
    """The chosen fit's predictions of each training frame by the fit without that frame's fold (cross-fitting).

    Why: a base with thousands of coefficients fits its training frames far better than new ones (Zuo Mo, n_max 6:
    training F 48 meV/Å, validation 117), so in-sample residuals are small and a network trained on them cannot
    learn the errors the base makes on new structures.  Out-of-fold residuals are samples of exactly those.
    """
    feats = featurise_parallel(frames, args.r_max, args.l_max, chosen["n_max"], args.workers)
    key = (chosen["force_weight"], chosen["ridge"])
    results = [None] * len(frames)
    for part, weights in quadratic_base.out_of_fold_weights(feats, [key], args.cv_folds):
        for i, result in zip(part, predict([frames[i] for i in part], weights[key], args.r_max, args.l_max,
                                           chosen["n_max"])):
            results[i] = result
    return results


def _n_max_of(weights: np.ndarray, l_max: int) -> int:
    """The number of Gaussians a saved weight vector was fitted with (its length says it)."""
    from dens_calc.nn.quadratic_prior import num_quadratic_features

    for n_max in range(2, 33):
        if 1 + num_quadratic_features(l_max, n_max) == len(weights):
            return n_max
    raise ValueError(f"{len(weights)} weights fit no quadratic power spectrum with l_max {l_max}")


def choose(rows: list[dict], by: str = "valid") -> dict:
    """The fit with the smallest E/E_best + F/F_best on ``by`` ("valid" or "cv")."""
    return quadratic_base.best_by_score(rows, by)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train")
    parser.add_argument("--valid")
    parser.add_argument("--test")
    parser.add_argument("--r-max", type=float, default=5.0)
    parser.add_argument("--l-max", type=int, default=6)
    parser.add_argument("--n-max", type=int, nargs="+", default=[3],
                        help="Gaussians per radial basis; several: each is fitted and validation chooses")
    parser.add_argument("--force-weight", type=float, nargs="+", default=[0.03, 0.01, 0.003])
    parser.add_argument("--ridge", type=float, nargs="+", default=[1e-8],
                        help="added to the unit-diagonal normal equations (linear_power_spectrum.NormalEquations)")
    parser.add_argument("--cv-folds", type=int, default=0,
                        help="choose by K-fold cross-validation on the training file instead of the validation file")
    parser.add_argument("--out-of-fold", action="store_true",
                        help="with --cv-folds: the training file's residuals from the fits without each frame's fold")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out-dir", type=Path, required=True)
    parser.add_argument("--json")
    parser.add_argument("--attach", nargs=2, metavar=("NETWORK", "OUT"),
                        help="instead of fitting: save NETWORK with the fit in OUT-DIR/weights.npy inside it, as OUT")
    args = parser.parse_args()
    if args.attach:
        weights = np.load(args.out_dir / "weights.npy")
        n_max = _n_max_of(weights, args.l_max)
        info = {"prior": f"quadratic power spectrum l <= {args.l_max}, {n_max} Gaussians, fitted by "
                         f"benchmarks/power_spectrum_residuals.py ({args.out_dir / 'weights.npy'})"}
        print(attach(args.attach[0], weights, args.l_max, n_max, args.attach[1], info))
        return
    files = {"train": args.train, "valid": args.valid, "test": args.test}
    if None in files.values():
        parser.error("--train, --valid and --test are needed to fit")
    if args.out_of_fold and not args.cv_folds:
        parser.error("--out-of-fold needs --cv-folds")
    frames = {name: ase.io.read(path, ":") for name, path in files.items()}
    n_train, n_valid = len(frames["train"]), len(frames["valid"])
    rows = []
    for n_max in args.n_max:
        start = time.perf_counter()
        every = featurise_parallel(frames["train"] + frames["valid"] + frames["test"], args.r_max, args.l_max,
                                   n_max, args.workers)
        feats = {"train": every[:n_train], "valid": every[n_train:n_train + n_valid], "test": every[n_train + n_valid:]}
        print(f"n_max {n_max}: {every[0]['x'].size} features per atom, featurised in "
              f"{time.perf_counter() - start:.0f} s", flush=True)
        cv = {(r["force_weight"], r["ridge"]): r for r in quadratic_base.cross_validate(
            feats["train"], args.force_weight, args.ridge, args.cv_folds)} if args.cv_folds else {}
        equations = quadratic_base.NormalEquations(feats["train"])
        for force_weight in args.force_weight:
            for ridge in args.ridge:
                w = equations.solve(force_weight, ridge)
                row = {"n_max": n_max, "force_weight": force_weight, "ridge": ridge, "w": w,
                       **{name: lps.errors(f, w) for name, f in feats.items()}}
                if cv:
                    row["cv"] = cv[(force_weight, ridge)]
                rows.append(row)
                print(f"n_max {n_max}, force weight {force_weight:g}, ridge {ridge:g}: " + " | ".join(
                    f"{name} E {row[name]['E_mae_meV_atom']:.2f} F {row[name]['F_mae_meV_A']:.1f}"
                    for name in (["cv"] if cv else []) + list(feats)), flush=True)
        del every, feats, equations
    by = "cv" if args.cv_folds else "valid"
    chosen = choose(rows, by)
    print(f"chosen on {by}: n_max {chosen['n_max']}, force weight {chosen['force_weight']:g}, ridge {chosen['ridge']:g}")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    from dens_calc.data import check_labels

    for name, path in files.items():
        labels = check_labels(frames[name], path, ("energy",), None)
        if name == "train" and args.out_of_fold:
            results = out_of_fold_predictions(frames[name], chosen, args)
        else:
            results = predict(frames[name], chosen["w"], args.r_max, args.l_max, chosen["n_max"])
        residual = residual_labels.minus_predictions(frames[name], labels, results)
        ase.io.write(args.out_dir / Path(path).name, residual, format="extxyz")
    np.save(args.out_dir / "weights.npy", chosen["w"])
    if args.json:
        summary = {"settings": {k: v for k, v in vars(args).items() if k != "out_dir"},
                   "train_residuals": "out of fold" if args.out_of_fold else "in sample",
                   "chosen": {k: chosen[k] for k in ("n_max", "force_weight", "ridge")},
                   "fits": [{k: v for k, v in r.items() if k != "w"} for r in rows]}
        Path(args.json).write_text(json.dumps(summary, indent=1, default=str))


if __name__ == "__main__":
    main()
