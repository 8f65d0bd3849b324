"""Timing helpers shared by the benchmark scripts (standard library only, so the peer's venv can import it)."""

from __future__ import annotations

import importlib.util
import statistics
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PEERS = REPO.parent / "shared" / "peers"
# real aspirin frames (rMD17 test split) for the batched and compile benchmarks
ASPIRIN_FRAMES = REPO.parent / "shared" / "data" / "rmd17_aspirin" / "rmd17_aspirin_test.xyz"


def median_ms(fn, calls: int, warmup: int) -> float:
    """Median wall time of ``fn()`` in ms over ``calls`` timed calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def peer_build_atoms(name: str):
    """The peer benchmark's own structures (``../shared/peers/bench_peers.py: build_atoms``)."""
    spec = importlib.util.spec_from_file_location("bench_peers", PEERS / "bench_peers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build_atoms(name)


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MB.

    ``/proc/self/status`` VmHWM belongs to this process image only; ``ru_maxrss`` would also carry
    the parent's peak across fork + exec on Linux, so every child of a big parent would report it.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def time_structures(calc, structures_file, calls: int, warmup: int) -> list[dict]:
    """Median ms of an E + F + S ``calc.calculate`` on each structure of an extxyz file."""
    import ase.io
    from ase.calculators.calculator import all_changes

    rows = []
    for atoms in ase.io.read(structures_file, ":"):
        atoms.calc = None
        ms = median_ms(lambda: calc.calculate(atoms, ["energy", "forces", "stress"], all_changes), calls, warmup)  # noqa: B023
        rows.append({"n_atoms": len(atoms), "calc_ms": ms})
    return rows
