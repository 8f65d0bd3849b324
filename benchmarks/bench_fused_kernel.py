#!/usr/bin/env python
"""One edge convolution + aggregation, fused CPU kernel vs the torch path, forward and forward + backward.

Shapes of 64 aspirin frames in one batch by default (N = 1344 atoms, E = 19,382 edges, 64 channels,
L_max 2, rank 2); random senders/receivers.  Also checks that both give the same values and input
gradients.  ``--scalar`` times the first layer's scalar-input variant.

    python benchmarks/bench_fused_kernel.py --threads 2
    python benchmarks/bench_fused_kernel.py --threads 1 --dtype float64 --scalar
"""

from __future__ import annotations

import argparse
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=1344)
    parser.add_argument("--edges", type=int, default=19382)
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--scalar", action="store_true", help="scalar-only input (the first layer)")
    args = parser.parse_args()

    import torch
    from e3nn import o3

    from dens_calc._allocator import tune_allocator
    from dens_calc.nn.blocks import EdgeConvolution
    from dens_calc.nn.fused import fused_available, use_fused

    tune_allocator()  # as the calculator does
    torch.set_num_threads(args.threads)
    if not fused_available():
        raise SystemExit("the fused kernel could not be loaded here (see the warning above)")
    dtype = getattr(torch, args.dtype)
    gen = torch.Generator().manual_seed(0)
    conv = EdgeConvolution(2, args.channels, 8, 64, 2).to(dtype).eval()
    vectors = torch.randn(args.edges, 3, generator=gen, dtype=dtype)
    inputs = dict(
        h=torch.randn(args.nodes, 9, args.channels, generator=gen, dtype=dtype),
        sh=o3.spherical_harmonics([0, 1, 2], vectors, normalize=True, normalization="component"),
        basis=torch.randn(args.edges, 8, generator=gen, dtype=dtype),
        envelope=torch.rand(args.edges, generator=gen, dtype=dtype),
        sender=torch.randint(0, args.nodes, (args.edges,), generator=gen),
        receiver=torch.randint(0, args.nodes, (args.edges,), generator=gen).sort().values,
    )
    grad_out = torch.randn(args.nodes, 9, args.channels, generator=gen, dtype=dtype)

    def run(backward: bool):
        leaves = {k: (v.clone().requires_grad_(backward) if v.is_floating_point() else v) for k, v in inputs.items()}
        with torch.set_grad_enabled(backward):
            out = conv(**leaves, scalar_input=args.scalar)
        if not backward:
            return out, None
        return out, torch.autograd.grad(out, [leaves[k] for k in ("h", "sh", "basis", "envelope")], grad_out)

    def timed(fn) -> float:
        fn()
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            fn()
            times.append(1000 * (time.perf_counter() - start))
        return statistics.median(times)

    results = {}
    for name, flag in (("torch path", False), ("fused", True)):
        with use_fused(flag):
            results[name] = (run(True), timed(lambda: run(False)), timed(lambda: run(True)))
    (ref_out, ref_grads), _, _ = results["torch path"]
    (out, grads), _, _ = results["fused"]
    err = max([((out - ref_out).abs().max() / ref_out.abs().max()).item()]
              + [((g - r).abs().max() / r.abs().max()).item() for g, r in zip(grads, ref_grads)])
    print(f"N = {args.nodes}, E = {args.edges}, C = {args.channels}, {args.dtype}, {args.threads} threads, "
          f"{'scalar' if args.scalar else 'full'} input; median of {args.repeats}; max relative difference {err:.1e}\n")
    print("| path | forward ms | forward + backward ms |\n|---|---|---|")
    for name, (_, fwd, both) in results.items():
        print(f"| {name} | {fwd:.1f} | {both:.1f} |")
    torch_fwd, torch_both = results["torch path"][1:]
    fused_fwd, fused_both = results["fused"][1:]
    print(f"\nspeed-up: forward {torch_fwd / fused_fwd:.2f}x, forward + backward {torch_both / fused_both:.2f}x")


if __name__ == "__main__":
    main()
