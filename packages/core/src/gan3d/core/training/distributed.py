"""What the trainer shares between ranks under ``torchrun``: gradients, buffers and RNG states.

With one process every function here is a no-op (or returns this process's own state).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ["rank_and_world", "average_", "gather_rng_states"]


def rank_and_world() -> tuple[int, int]:
    """``(rank, world size)`` of the process group, ``(0, 1)`` outside one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


@torch.no_grad()
def average_(tensors: list[Tensor], world: int) -> None:
    """Average ``tensors`` in place over the ranks (one all-reduce of their concatenation)."""
    if world == 1 or not tensors:
        return
    flat = torch.cat([t.flatten() for t in tensors])
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for t in tensors:
        t.copy_(flat[offset:offset + t.numel()].view_as(t))
        offset += t.numel()


def gather_rng_states(device: torch.device, world: int) -> list[dict[str, Tensor]]:
    """Every rank's global RNG states (CPU, and CUDA on a GPU), gathered to all ranks; each rank
    draws its own module noise (stratified jitter, density noise) from them. Every rank must call it."""
    mine = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        mine["cuda"] = torch.cuda.get_rng_state(device)
    if world == 1:
        return [mine]
    gathered: list[Any] = [None] * world
    dist.all_gather_object(gathered, mine)
    return gathered
