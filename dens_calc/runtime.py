"""Process-wide settings, with one owner: device/dtype names, the allocator, the fused kernel, threads.

Importing dens-calc or building a calculator changes nothing outside its own objects.  What
acts on the whole process is here and opt-in: :func:`configure_process` (the ``dens-calc``
command calls it at start-up; a library user may call it too) tunes glibc's allocator, flushes
subnormal floats to zero and sets the thread count.  The fused CPU kernel is on by default wherever
it applies (the ASE calculator gets it on the CPU); ``DENS_CALC_FUSED=0`` turns it off for the process and
:func:`use_fused` for a block of code.  ``DENS_CALC_NO_MALLOPT=1`` keeps the allocator untouched
even when :func:`configure_process` is called.

Nothing here imports torch at module level, so the command line stays fast to start.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator

logger = logging.getLogger(__name__)

DTYPE_NAMES = ("float32", "float64")
_fused_override: list[bool | None] = [None]  # set by use_fused; None: the environment decides
_denormals_flushed = [False]  # what this module last set (torch has no getter for the flag)


def resolve_device(device):
    """``"auto"`` -> CUDA when available, else CPU; anything else as given (a ``torch.device``)."""
    import torch

    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but CUDA is not available")
    return device


def resolve_dtype(dtype):
    """``"float32"``/``"float64"`` (or a ``torch.dtype``) -> the ``torch.dtype``."""
    import torch

    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in DTYPE_NAMES:
        raise ValueError(f"dtype must be one of {list(DTYPE_NAMES)}, got {dtype!r}")
    return getattr(torch, dtype)


def fused_enabled() -> bool:
    """Whether the fused CPU kernel may be used: :func:`use_fused` if active, else ``DENS_CALC_FUSED``."""
    if _fused_override[0] is not None:
        return _fused_override[0]
    return os.environ.get("DENS_CALC_FUSED", "1").strip().lower() not in ("0", "false", "no", "off")


@contextlib.contextmanager
def use_fused(enabled: bool) -> Iterator[None]:
    """Turn the fused kernel on or off inside a ``with`` block (tests, benchmarks; process-wide)."""
    previous = _fused_override[0]
    _fused_override[0] = bool(enabled)
    try:
        yield
    finally:
        _fused_override[0] = previous


def tune_allocator() -> bool:
    """Raise glibc's mmap/trim thresholds (see :mod:`dens_calc._allocator`); whether it is applied."""
    from ._allocator import tune_allocator as apply

    return apply()


def set_threads(threads: int) -> None:
    """Intra-op threads of torch (and of the fused kernel, which uses torch's OpenMP pool)."""
    import torch

    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    torch.set_num_threads(threads)


def flush_denormals(enabled: bool = True) -> bool:
    """Make torch's CPU kernels treat subnormal floats (float32 below 1.2e-38) as zero; whether it applies.

    Why: a trained model's features can decay into subnormals, which x86 CPUs handle in microcode.  An
    L_max 3 Mo model slowed from 32 to 130-186 s per training epoch half-way through a run; the same
    weights, with this flag, train at 46 s per epoch with the same losses (benchmarks/README.md).  Values that
    small change no energy or force.  The flag is per thread and torch's worker threads copy it when they are
    created, so it reaches them all only if set before torch's first parallel work: what
    :func:`configure_process` at start-up does.
    """
    import torch

    applied = torch.set_flush_denormal(enabled)
    if applied:
        _denormals_flushed[0] = enabled
    return applied


@contextlib.contextmanager
def denormals_flushed() -> Iterator[None]:
    """:func:`flush_denormals` for a block (training), then back to what this module had set."""
    previous = _denormals_flushed[0]
    flush_denormals(True)
    try:
        yield
    finally:
        flush_denormals(previous)


def configure_process(*, threads: int | None = None, allocator: bool = True) -> dict:
    """Apply the process-wide settings a command-line run wants; returns what was done.

    Parameters
    ----------
    threads
        torch intra-op threads; ``None`` keeps torch's choice (``OMP_NUM_THREADS`` or the cores).
    allocator
        Tune glibc's allocator (:func:`tune_allocator`; skipped with ``DENS_CALC_NO_MALLOPT=1``).
    """
    done = {"allocator_tuned": tune_allocator() if allocator else False, "threads": threads,
            "denormals_flushed": flush_denormals(True)}
    if threads is not None:
        set_threads(threads)
    logger.debug("process settings: %s", done)
    return done


def progress_disabled(enabled: bool) -> bool | None:
    """tqdm's ``disable`` for a bar the user asked for (or not): shown on a terminal and in a notebook,
    left out of redirected output, where a log file would fill with redraws (tqdm's None)."""
    if not enabled:
        return True
    return False if "ipykernel" in sys.modules else None
