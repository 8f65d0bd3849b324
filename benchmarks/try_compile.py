#!/usr/bin/env python
"""Does torch.compile speed up the network?  Eager vs per-layer ``torch.compile(dynamic=True)`` on
aspirin (one frame, and 16 frames batched), E + F, float32, the default architecture, in one run.

    python benchmarks/try_compile.py

(Compiling the whole ``DeNSPotential`` fails in Inductor's code generation on torch 2.13 for a
single graph: a float64 scatter into a size-1 energy tensor; the calculator therefore stays eager.)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import ASPIRIN_FRAMES, median_ms


def main() -> None:
    import ase.io
    import torch
    from bench_calculator import default_model

    from dens_calc import DeNSCalculator
    from dens_calc.data.graph import collate
    from dens_calc.nn.model import evaluate

    torch.set_num_threads(2)
    frames = ase.io.read(ASPIRIN_FRAMES, ":16")
    for atoms in frames:
        atoms.calc = None
    model = DeNSCalculator(default_model(), device="cpu", dtype="float32").model
    build = DeNSCalculator(model, device="cpu", dtype="float32")._graph
    one, sixteen = collate([build(frames[0])]), collate([build(a) for a in frames])
    reference = evaluate(model, one)["forces"]

    def timings() -> dict[str, float]:
        return {"single ms": median_ms(lambda: evaluate(model, one), 10, 2),
                "batch-16 ms/frame": median_ms(lambda: evaluate(model, sixteen), 5, 1) / 16}

    eager = timings()
    start = time.perf_counter()
    for i, layer in enumerate(model.layers):
        model.layers[i] = torch.compile(layer, dynamic=True)
    deviation = (evaluate(model, one)["forces"] - reference).abs().max().item()
    evaluate(model, sixteen)
    compile_s = time.perf_counter() - start
    compiled = timings()
    print(f"compile {compile_s:.1f} s, max force deviation {deviation:.1e} eV/Å")
    for key in eager:
        print(f"{key}: eager {eager[key]:.2f}, compiled {compiled[key]:.2f} ({eager[key] / compiled[key]:.2f}x)")


if __name__ == "__main__":
    main()
