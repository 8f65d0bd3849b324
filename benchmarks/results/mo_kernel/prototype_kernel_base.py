"""Prototype: sparse GAP-like kernel base on the normalised l<=6 power spectrum, fitted by the quadratic base's
normal equations and K-fold CV.  Columns: Σ_i (q̂_i·q̂_m)^ζ for M sparse environments (farthest-point sampled), plus
the linear unnormalised Σ_i q_i (density magnitude, as GAP's 2-body term)."""
import argparse, json, sys, time
import numpy as np, torch
from ase.io import read
from dens_calc.train.quadratic_base import edges, NormalEquations, cross_validate, best_by_score, frame_errors
from dens_calc.nn.quadratic_prior import power_spectrum_features

def atom_features_and_jacobian(atoms, r_max, l_max, n_max):
    n = len(atoms)
    sender, centre, offsets = edges(atoms, r_max)
    positions = torch.as_tensor(atoms.positions, dtype=torch.float64)
    vectors = positions[sender] - positions[centre] + offsets
    def summed(v):
        return power_spectrum_features(v, centre, n, r_max, l_max, n_max).sum(dim=0)
    per_atom = power_spectrum_features(vectors, centre, n, r_max, l_max, n_max)
    by_edge = torch.autograd.functional.jacobian(summed, vectors, vectorize=True)
    k = per_atom.shape[1]
    jac = torch.zeros(n, n, k, 3, dtype=torch.float64)
    edge_terms = by_edge.permute(1, 0, 2)
    jac.index_put_((centre, sender), edge_terms, accumulate=True)
    jac.index_put_((centre, centre), -edge_terms, accumulate=True)
    return per_atom.numpy(), jac.permute(0, 2, 1, 3).reshape(n, k, 3 * n).numpy()

def fps(x, m, seed=0):
    """Farthest-point sample m rows of unit vectors x (distance 1 - cos)."""
    rng = np.random.default_rng(seed)
    chosen = [int(rng.integers(len(x)))]
    dist = 1 - x @ x[chosen[0]]
    for _ in range(m - 1):
        j = int(np.argmax(dist)); chosen.append(j)
        dist = np.minimum(dist, 1 - x @ x[j])
    return np.array(chosen)

def kernel_frame(q, jac, sparse, zeta, mu, sd, linear=True):
    """Polynomial kernel (1 + z_i·z_m / K)^ζ on standardised features z = (q - μ) / s."""
    z = (q - mu) / sd
    k = z.shape[1]
    d = 1.0 + z @ sparse.T / k  # [N, M]
    x = (d ** zeta).sum(0)
    g = zeta * d[:, :, None] ** (zeta - 1) * (sparse[None] / (k * sd))  # d k_im / d q_i, [N, M, K]
    dx = np.einsum("imk,ikp->mp", g, jac)
    if linear:
        x = np.concatenate([x, q.sum(0)]); dx = np.concatenate([dx, jac.sum(0)])
    return x, dx

def labels(a):
    return float(a.info["REF_energy"]), np.asarray(a.arrays["REF_forces"], dtype=np.float64).ravel()

p = argparse.ArgumentParser()
p.add_argument("--train"); p.add_argument("--valid"); p.add_argument("--test")
p.add_argument("--n-max", type=int, default=4); p.add_argument("--l-max", type=int, default=6)
p.add_argument("--r-max", type=float, default=5.0)
p.add_argument("--m", type=int, nargs="+", default=[1000]); p.add_argument("--zeta", type=int, nargs="+", default=[4])
p.add_argument("--force-weight", type=float, nargs="+", default=[0.03, 0.01, 0.003])
p.add_argument("--ridge", type=float, nargs="+", default=[1e-9, 1e-7, 1e-5])
p.add_argument("--json")
a = p.parse_args()
t0 = time.time()
sets = {}
for name in ["train", "valid", "test"]:
    frames = read(getattr(a, name), ":")
    sets[name] = [(len(f), *atom_features_and_jacobian(f, a.r_max, a.l_max, a.n_max), *labels(f)) for f in frames]
    print(name, len(frames), f"{time.time()-t0:.0f}s", flush=True)
allq = np.concatenate([s[1] for s in sets["train"]])
mu, sd = allq.mean(0), allq.std(0)
allz = (allq - mu) / sd
unit = allz / np.linalg.norm(allz, axis=1, keepdims=True)
rows = []
for m in a.m:
    sparse = allz[fps(unit, m)]
    for zeta in a.zeta:
        feats = {name: [{"n": n, "x": x, "jac": dx, "energy": e, "forces": f}
                        for n, q, jac, e, f in sets[name] for x, dx in [kernel_frame(q, jac, sparse, zeta, mu, sd)]]
                 for name in sets}
        eq = NormalEquations(feats["train"])
        cv = cross_validate(feats["train"], a.force_weight, a.ridge, folds=5)
        for r in cv:
            w = eq.solve(r["force_weight"], r["ridge"])
            out = {"m": m, "zeta": zeta, **r}
            for name in ["train", "valid", "test"]:
                errs = [frame_errors(f, w) for f in feats[name]]
                out[name] = (float(np.mean([abs(e) for e, _ in errs])), float(np.mean(np.abs(np.concatenate([f for _, f in errs])))))
            out["211"] = float(frame_errors(feats["test"][16], w)[0])
            rows.append(out)
            print(f"M {m} zeta {zeta} fw {r['force_weight']:g} ridge {r['ridge']:g}: CV {r['E_mae_meV_atom']:.2f}/{r['F_mae_meV_A']:.1f} "
                  f"train {out['train'][0]:.2f}/{out['train'][1]:.1f} valid {out['valid'][0]:.2f}/{out['valid'][1]:.1f} "
                  f"test {out['test'][0]:.2f}/{out['test'][1]:.1f} (211) {out['211']:+.1f}  {time.time()-t0:.0f}s", flush=True)
best = best_by_score(rows)
print("CV choice:", best)
if a.json: json.dump(rows, open(a.json, "w"), indent=1)
