"""Fused CPU kernel for the edge convolution (``csrc/edge_convolution.cpp``), compiled on first use.

The torch implementation in :class:`~dens_calc.nn.blocks.EdgeConvolution` writes several
[edges, D, C] arrays per layer (gathered sender features, messages, their gradients); on a CPU those
streams, not the arithmetic, set the speed.  The fused kernel rebuilds each edge's coupling kernel
from the non-zero Clebsch–Gordan entries, gathers, contracts and scatters in one pass, and keeps
only node-sized arrays (one per thread for the scatter).  It runs on the CPU wherever only first
derivatives are taken: the calculator, validation, direct-force training.  GPUs and force training
(which differentiates the backward pass again, see :func:`second_derivative_expected`) use the torch
path, which stays the reference the tests compare to.

The C++ source is compiled once per machine with ``torch.utils.cpp_extension`` (needs a C++
compiler and ninja; ~25 s, cached under ``$TORCH_EXTENSIONS_DIR`` or ``~/.cache/torch_extensions``).
If that fails, a warning is logged and everything runs on the torch path.  ``DENS_CALC_FUSED=0``
turns the kernel off; :func:`use_fused` does so for a block of code.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
import time
from pathlib import Path

import torch

logger = logging.getLogger(__name__)

SOURCE = Path(__file__).resolve().parent / "csrc" / "edge_convolution.cpp"
# 256-bit vectors of channels: a multiple of 8 float32 / 4 float64 channels is required
LANES = {torch.float32: 8, torch.float64: 4}

_lock = threading.Lock()
_state = {"loaded": None, "override": None}  # loaded: None = not tried yet, then True/False
_local = threading.local()


def _build_flags() -> list[str]:
    flags = ["-O3", "-ffp-contract=fast", "-fopenmp"]
    # instruction set chosen from what torch detected on this CPU (not -march=native: a build cache
    # in a home directory shared by different nodes must not hold code an older CPU cannot run)
    if torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512"):
        flags += ["-mavx2", "-mfma"]
    return flags


def _extension_name() -> str:
    tag = f"{torch.__version__}_{torch.backends.cpu.get_cpu_capability()}".lower()
    return "dens_calc_fused_" + re.sub(r"[^a-z0-9]+", "_", tag)


def _load() -> bool:
    """Compile (once) and load the kernel; False, with a warning, where that is not possible."""
    from torch.utils.cpp_extension import load

    name = _extension_name()
    if _is_built(name):
        logger.debug("loading the fused CPU kernel %s", name)
    else:
        logger.info("compiling the fused CPU kernel %s (once per machine, ~25 s)", name)
    start = time.perf_counter()
    try:
        load(name=name, sources=[str(SOURCE)], extra_cflags=_build_flags(), extra_ldflags=["-fopenmp"],
             is_python_module=False, verbose=False)
        torch.ops.dens_calc.edge_convolution_forward  # noqa: B018  (raises if registration failed)
    except Exception as exc:  # no compiler, no ninja, no OpenMP...: the torch path still works
        logger.warning("fused CPU kernel unavailable (%s: %s); using the slower torch path. "
                       "Set DENS_CALC_FUSED=0 to skip this attempt.", type(exc).__name__, str(exc).strip()[:300])
        return False
    logger.debug("fused CPU kernel ready (%.1f s)", time.perf_counter() - start)
    return True


def _is_built(name: str) -> bool:
    """Whether a previous run left the compiled kernel in torch's extension cache (for the log only)."""
    try:
        from torch.utils.cpp_extension import _get_build_directory  # private: the path may move

        return (Path(_get_build_directory(name, verbose=False)) / f"{name}.so").exists()
    except Exception:
        return False


def fused_available() -> bool:
    """Whether the fused kernel is enabled and loaded (loading it on the first call)."""
    if _state["override"] is not None:
        enabled = _state["override"]
    else:
        enabled = os.environ.get("DENS_CALC_FUSED", "1").strip().lower() not in ("0", "false", "no", "off")
    if not enabled:
        return False
    if _state["loaded"] is None:
        with _lock:
            if _state["loaded"] is None:
                _state["loaded"] = _load()
    return _state["loaded"]


@contextlib.contextmanager
def use_fused(enabled: bool):
    """Turn the fused kernel on or off inside a ``with`` block (tests, benchmarks; process-wide)."""
    previous = _state["override"]
    _state["override"] = bool(enabled)
    try:
        yield
    finally:
        _state["override"] = previous


@contextlib.contextmanager
def second_derivative_expected(expected: bool = True):
    """Declare that the backward pass of this forward will itself be differentiated (force training).

    The fused kernel would then route its backward through the torch formulas anyway, so the torch
    path is taken from the start.  Correctness never depends on this: it only picks the faster path.
    """
    previous = getattr(_local, "second_derivative", False)
    _local.second_derivative = bool(expected)
    try:
        yield
    finally:
        _local.second_derivative = previous


def fused_applies(h: torch.Tensor) -> bool:
    """Whether the fused kernel should take these node features (CPU, float32/64, channel count,
    no second derivative announced)."""
    lanes = LANES.get(h.dtype)
    return (
        h.device.type == "cpu"
        and lanes is not None
        and h.shape[-1] % lanes == 0
        and not getattr(_local, "second_derivative", False)
        and fused_available()
    )


class FusedEdgeConvolution(torch.autograd.Function):
    """agg[n] = sum over edges into n of the message (see the C++ source) with its first derivatives.

    ``reference(h, b, y, a)`` is the torch implementation of the same function: a second
    derivative (a backward pass that builds a graph) is taken through it, so results stay
    correct when someone differentiates forces; the fast path covers plain inference.
    """

    @staticmethod
    def forward(ctx, h, b, y, a, sender, receiver, index, value, reference):
        # the kernel reads raw int64 rows: int32 or strided edge indices (fine for the torch path) are converted
        sender, receiver = sender.long().contiguous(), receiver.long().contiguous()
        ctx.save_for_backward(h, b, y, a, sender, receiver, index, value)
        ctx.reference = reference
        return torch.ops.dens_calc.edge_convolution_forward(
            h.contiguous(), sender, receiver, b.contiguous(), y.contiguous(), a.contiguous(), index, value
        )

    @staticmethod
    def backward(ctx, grad_agg):
        h, b, y, a, sender, receiver, index, value = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph: differentiate the torch implementation instead
            inputs = (h, b, y, a)
            wanted = [x for x in inputs if x.requires_grad]
            with torch.enable_grad():
                out = ctx.reference(*inputs)
            found = iter(torch.autograd.grad(out, wanted, grad_agg, create_graph=True, allow_unused=True))
            grads = [next(found) if x.requires_grad else None for x in inputs]
        else:
            grads = torch.ops.dens_calc.edge_convolution_backward(
                grad_agg.contiguous(), h.contiguous(), sender, receiver, b.contiguous(), y.contiguous(),
                a.contiguous(), index, value,
            )
        needs = ctx.needs_input_grad
        return (*(g if need else None for g, need in zip(grads, needs[:4])), None, None, None, None, None)
