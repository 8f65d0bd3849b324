#!/usr/bin/env python
"""Peer side of ``bench_equal_accuracy.py``; runs in the MACE venv (/tmp/peers-venv), never in ours.

Times ``MACECalculator.calculate`` (E + F + S) for the MACE model of the peers' EMT-Cu run
(``../shared/peers/train_mace_cu.sh``).  With ``--model FILE`` the trained model is loaded; without
it the same architecture is built with random weights (48,784 parameters, as in the peers' run: MACE, 32x0e+32x1o,
max_ell 3, correlation 3, 2 interactions, r_max 5 Å, 8 Bessel, p = 5, radial MLP [32, 32, 32],
MLP 16x0e), which costs exactly what the trained one costs.  Prints one ``RESULT {json}`` line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import peak_rss_mb, time_structures  # noqa: E402


def build_peer_architecture(dtype: str, avg_num_neighbors: float):
    import torch
    from mace import modules  # before e3nn: mace makes e3nn 0.4.4 loadable on torch >= 2.6
    from e3nn import o3

    torch.manual_seed(0)
    torch.set_default_dtype(getattr(torch, dtype))
    # mace_run_train --model=MACE puts the plain block first and the residual one after it
    first = modules.interaction_classes["RealAgnosticInteractionBlock"]
    residual = modules.interaction_classes["RealAgnosticResidualInteractionBlock"]
    return modules.MACE(
        r_max=5.0, num_bessel=8, num_polynomial_cutoff=5, max_ell=3,
        interaction_cls=residual, interaction_cls_first=first, num_interactions=2,
        num_elements=1, hidden_irreps=o3.Irreps("32x0e + 32x1o"), MLP_irreps=o3.Irreps("16x0e"),
        atomic_energies=torch.tensor([0.101]).numpy(), avg_num_neighbors=avg_num_neighbors,
        atomic_numbers=[29], correlation=3, gate=torch.nn.functional.silu, radial_MLP=[32, 32, 32],
    ).eval()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--structures", required=True, help="extxyz file of the structures to time")
    parser.add_argument("--model", help="trained MACE model file (default: same architecture, random weights)")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch
    from mace.calculators import MACECalculator

    torch.set_num_threads(args.threads)
    if args.model:
        calc = MACECalculator(model_paths=args.model, device="cpu", default_dtype=args.dtype)
        model = calc.models[0]
    else:
        model = build_peer_architecture(args.dtype, avg_num_neighbors=45.0)
        calc = MACECalculator(models=model, device="cpu", default_dtype=args.dtype)
    rows = time_structures(calc, args.structures, args.calls, args.warmup)
    result = {"n_params": sum(p.numel() for p in model.parameters()), "trained": bool(args.model),
              "rows": rows, "peak_rss_mb": peak_rss_mb()}
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
