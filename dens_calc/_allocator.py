"""Keep freed memory in the process heap so large tensors are reused without page faults.

PyTorch's CPU allocator hands big tensors to glibc, which serves them with fresh ``mmap``
pages and unmaps them on free; every forward/backward then pays a page fault per 4 KiB of
every large intermediate.  On our 2-core benchmark machine raising glibc's mmap and trim
thresholds cut a 256-atom Cu E+F+S call from 426 to 278 ms (same as preloading tcmalloc or
jemalloc would).  It is process-wide, so only :func:`dens_calc.runtime.configure_process` (which
the ``dens-calc`` command calls) applies it; set ``DENS_CALC_NO_MALLOPT=1`` to leave the
allocator alone even then.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys

logger = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_done = False


def tune_allocator() -> bool:
    """Raise glibc's mmap/trim thresholds once per process; returns whether it was applied."""
    global _done
    if _done or os.environ.get("DENS_CALC_NO_MALLOPT") or not sys.platform.startswith("linux"):
        return _done
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl): nothing to tune
        return False
    ok = mallopt(_M_MMAP_THRESHOLD, 1 << 30) == 1 and mallopt(_M_TRIM_THRESHOLD, 1 << 31) == 1
    logger.debug("glibc mallopt thresholds raised: %s", ok)
    _done = ok
    return ok
