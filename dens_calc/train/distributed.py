"""Data-parallel helpers for ``torchrun`` (gloo on CPU, nccl on GPU); no-ops in one process."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def setup(device: torch.device) -> tuple[int, int]:
    """Initialise the process group when launched by torchrun; returns (rank, world_size)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), dist.get_world_size()


def local_device(device: torch.device) -> torch.device:
    """``cuda`` becomes ``cuda:LOCAL_RANK`` under torchrun (one GPU per process)."""
    if device.type == "cuda" and device.index is None and "LOCAL_RANK" in os.environ:
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(device)
    return device


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def average_gradients(params) -> None:
    """All-reduce and average gradients (what DistributedDataParallel does, without its hooks)."""
    if not active():
        return
    world = dist.get_world_size()
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
        p.grad.div_(world)


def sum_tensor(t: torch.Tensor) -> torch.Tensor:
    if active():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def any_flag(flag: bool) -> bool:
    """True on every rank if it is true on any rank (so all ranks stop together)."""
    if not active():
        return flag
    t = torch.tensor([1.0 if flag else 0.0])
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def shard(indices: list[int], rank: int, world: int) -> list[int]:
    """This rank's share; every rank gets the same count (the remainder is dropped this epoch)."""
    per_rank = len(indices) // world if world > 1 else len(indices)
    return indices[rank::world][:per_rank]


def teardown() -> None:
    if active():
        dist.destroy_process_group()
