"""Fused CPU kernel for the edge convolution (``csrc/edge_convolution.cpp``), compiled on first use.

The torch implementation in :class:`~dens_calc.nn.blocks.EdgeConvolution` writes several
[edges, D, C] arrays per layer (gathered sender features, messages, their gradients); on a CPU those
streams, not the arithmetic, set the speed.  The fused kernel rebuilds each edge's coupling kernel
from the non-zero Clebsch–Gordan entries, gathers, contracts and scatters in one pass, and keeps
only node-sized arrays (one per thread for the scatter).  It runs wherever the model runs on the
CPU: the calculator, and training too, since the function is linear in each of its inputs and its
derivatives of any order are again calls of the same two kernels.  GPUs use the torch path, which stays
the reference the tests compare to.

The C++ source is compiled once per machine with ``torch.utils.cpp_extension`` (needs a C++
compiler and ninja; ~25 s, cached under ``$TORCH_EXTENSIONS_DIR`` or ``~/.cache/torch_extensions``).
If that fails, a warning is logged and everything runs on the torch path.  Whether the kernel
may be used is the process policy of :mod:`dens_calc.runtime` (``DENS_CALC_FUSED=0`` turns it
off; :func:`~dens_calc.runtime.use_fused` does so for a block of code); this module only builds
and calls it.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from pathlib import Path

import torch

from ..runtime import fused_enabled, use_fused  # noqa: F401  (use_fused: re-exported for callers of this module)

logger = logging.getLogger(__name__)

SOURCE = Path(__file__).resolve().parent / "csrc" / "edge_convolution.cpp"
# 256-bit vectors of channels: a multiple of 8 float32 / 4 float64 channels is required
LANES = {torch.float32: 8, torch.float64: 4}

_lock = threading.Lock()
_state = {"loaded": None}  # None = not tried yet, then True/False


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
    if not fused_enabled():
        return False
    if _state["loaded"] is None:
        with _lock:
            if _state["loaded"] is None:
                _state["loaded"] = _load()
    return _state["loaded"]


def fused_applies(h: torch.Tensor) -> bool:
    """Whether the fused kernel can take these node features (CPU, float32/64, channel count)."""
    lanes = LANES.get(h.dtype)
    return (
        h.device.type == "cpu"
        and lanes is not None
        and h.shape[-1] % lanes == 0
        and fused_available()
    )


class FusedEdgeConvolution(torch.autograd.Function):
    """agg[n] = sum over the edges into n of the message (see the C++ source), differentiable to any order.

    The function is linear in each of h, b, Y and a separately, so its gradient (the backward
    kernel, :class:`_FusedEdgeConvolutionGradient`) is differentiated again by calls of the same two
    kernels with one argument replaced by its tangent: force training runs on the kernel too.
    """

    @staticmethod
    def forward(ctx, h, b, y, a, sender, receiver, index, value):
        # the kernel reads raw int64 rows: int32 or strided edge indices (fine for the torch path) are converted
        sender, receiver = sender.long().contiguous(), receiver.long().contiguous()
        ctx.save_for_backward(h, b, y, a, sender, receiver, index, value)
        return torch.ops.dens_calc.edge_convolution_forward(
            h.contiguous(), sender, receiver, b.contiguous(), y.contiguous(), a.contiguous(), index, value
        )

    @staticmethod
    def backward(ctx, grad_agg):
        h, b, y, a, sender, receiver, index, value = ctx.saved_tensors
        grads = _FusedEdgeConvolutionGradient.apply(grad_agg, h, b, y, a, sender, receiver, index, value)
        return (*(g if need else None for g, need in zip(grads, ctx.needs_input_grad[:4])), None, None, None, None)


class _FusedEdgeConvolutionGradient(torch.autograd.Function):
    """(dL/dh, dL/db, dL/dY, dL/da) from dL/dagg: the backward kernel, itself differentiable.

    With Phi = sum_s <u_s, dL/dx_s> for cotangents u_s of the four outputs, multilinearity gives
    Phi = <grad_agg, sum_s F(x_s -> u_s)>, F with argument s replaced by u_s.  Hence
    dPhi/dgrad_agg = sum_s F(x_s -> u_s) (forward kernel calls) and, for every other argument x,
    dPhi/dx = sum_{s != x} [backward kernel at (x_s -> u_s)]_x.
    """

    @staticmethod
    def forward(ctx, grad_agg, h, b, y, a, sender, receiver, index, value):
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(grad_agg, h, b, y, a, sender, receiver, index, value)
        return tuple(torch.ops.dens_calc.edge_convolution_backward(
            grad_agg.contiguous(), h.contiguous(), sender, receiver, b.contiguous(), y.contiguous(),
            a.contiguous(), index, value,
        ))

    @staticmethod
    def backward(ctx, *cotangents):
        grad_agg, h, b, y, a, sender, receiver, index, value = ctx.saved_tensors
        graph = (sender, receiver, index, value)
        need_grad_agg, need_inputs = ctx.needs_input_grad[0], ctx.needs_input_grad[1:5]
        d_grad_agg, d_inputs = None, [None] * 4
        for slot, tangent in enumerate(cotangents):
            if tangent is None:
                continue
            args = [h, b, y, a]
            args[slot] = tangent
            if need_grad_agg:
                term = FusedEdgeConvolution.apply(*args, *graph)
                d_grad_agg = term if d_grad_agg is None else d_grad_agg + term
            others = [x for x in range(4) if x != slot and need_inputs[x]]
            if others:
                parts = _FusedEdgeConvolutionGradient.apply(grad_agg, *args, *graph)
                for x in others:
                    d_inputs[x] = parts[x] if d_inputs[x] is None else d_inputs[x] + parts[x]
        return (d_grad_agg, *d_inputs, None, None, None, None)
