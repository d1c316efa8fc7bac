"""Sharding a metric's batches across ``torch.distributed`` ranks and gathering what they computed.

A metric splits its samples into consecutive batches of ``batch_size`` (the last one shorter) and
draws batch ``i`` from its own seeded generator (:func:`~.sampling.batch_generator`), so each batch is
the same whichever process renders it. Under ``torch.distributed`` rank ``r`` of ``W`` takes batches
``r, r + W, r + 2W, ...`` (round robin: every rank gets the same number of full batches, give or take
one) and :meth:`BatchPlan.gather` puts the per-sample rows of all ranks back in batch order on every
rank. A metric computed from the gathered rows is therefore the same number on one process and on
any number of ranks, up to the floating-point differences between machines or thread counts.

Without an initialised process group (or with one rank) everything here is a no-op: one process
renders every batch. Collectives use the process group's backend: CPU tensors for gloo, the current
CUDA device for NCCL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TypeVar

import numpy as np
import torch
from torch import Tensor

__all__ = ["rank_and_world", "is_main_process", "barrier", "BatchPlan", "broadcast_array", "on_main_process"]

T = TypeVar("T")


def rank_and_world() -> tuple[int, int]:
    """``(rank, world size)`` of the initialised default process group, else ``(0, 1)``."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main_process() -> bool:
    """Whether this process is rank 0 (or the only process): the one that logs and writes files."""
    return rank_and_world()[0] == 0


def barrier() -> None:
    """Wait for every rank (nothing without a process group)."""
    import torch.distributed as dist

    if rank_and_world()[1] > 1:
        dist.barrier()


def _comm_device() -> torch.device:
    """Where collective tensors must live: the current CUDA device for NCCL, the CPU otherwise."""
    import torch.distributed as dist

    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


class BatchPlan:
    """Consecutive batches covering ``total`` samples, and this rank's share of them.

    Args:
        total: samples in all.
        batch_size: samples per batch (the last batch holds the rest).

    Iterating gives ``(batch index, batch size)`` for this rank's batches, in increasing index.
    """

    def __init__(self, total: int, batch_size: int) -> None:
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.total = int(total)
        self.batch_size = int(batch_size)
        self.sizes = [min(self.batch_size, self.total - start) for start in range(0, self.total, self.batch_size)]
        self.rank, self.world = rank_and_world()
        self.mine = list(range(self.rank, len(self.sizes), self.world))

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for index in self.mine:
            yield index, self.sizes[index]

    def start(self, index: int) -> int:
        """Position of batch ``index``'s first sample in the whole sequence."""
        return index * self.batch_size

    def indices(self) -> list[int]:
        """Positions ``[0, total)`` of this rank's samples, batch after batch."""
        return [i for index, n in self for i in range(self.start(index), self.start(index) + n)]

    def gather(self, parts: list[Tensor]) -> Tensor:
        """All ranks' rows ``[total, ...]`` in batch order, on the CPU, on every rank.

        Args:
            parts: this rank's per-batch results ``[n_i, ...]``, one per batch of :meth:`__iter__` in
                that order (the first dimension is the batch's size).
        """
        if len(parts) != len(self.mine):
            raise ValueError(f"gather needs one tensor per batch of this rank ({len(self.mine)}), got {len(parts)}")
        for part, index in zip(parts, self.mine):
            if part.shape[0] != self.sizes[index]:
                raise ValueError(f"batch {index} holds {self.sizes[index]} samples but its result has "
                                 f"{part.shape[0]} rows")
        if self.world == 1:
            return torch.cat([p.cpu() for p in parts]) if parts else torch.empty(0)
        import torch.distributed as dist

        # A rank with no batch (more ranks than batches) learns the row shape and dtype from the others.
        meta = (tuple(parts[0].shape[1:]), parts[0].dtype) if parts else None
        metas: list = [None] * self.world
        dist.all_gather_object(metas, meta)
        known = [m for m in metas if m is not None]
        if not known:
            return torch.empty(0)
        row_shape, dtype = known[0]
        device = _comm_device()
        counts = [sum(self.sizes[i] for i in range(r, len(self.sizes), self.world)) for r in range(self.world)]
        local = torch.cat([p.to(device=device, dtype=dtype) for p in parts]) if parts else \
            torch.empty((0, *row_shape), dtype=dtype, device=device)
        padded = torch.zeros((max(counts), *row_shape), dtype=dtype, device=device)
        padded[:local.shape[0]] = local
        received = [torch.empty_like(padded) for _ in range(self.world)]
        dist.all_gather(received, padded)
        # Rank r's rows are its batches r, r + W, ... one after the other: cut them back into batches.
        batches: list[Tensor | None] = [None] * len(self.sizes)
        for r, rows in enumerate(received):
            offset = 0
            for index in range(r, len(self.sizes), self.world):
                batches[index] = rows[offset:offset + self.sizes[index]]
                offset += self.sizes[index]
        return torch.cat(batches).cpu()


def broadcast_array(array: np.ndarray | None, src: int = 0) -> np.ndarray:
    """``array`` of rank ``src`` on every rank (itself without a process group)."""
    rank, world = rank_and_world()
    if world == 1:
        if array is None:
            raise ValueError("broadcast_array: no array to broadcast")
        return array
    import torch.distributed as dist

    meta = [(array.shape, array.dtype.str) if rank == src else None]
    dist.broadcast_object_list(meta, src=src)
    shape, dtype = meta[0]
    device = _comm_device()
    host = np.ascontiguousarray(array) if rank == src else np.empty(shape, dtype=dtype)
    tensor = torch.from_numpy(host).to(device)
    dist.broadcast(tensor, src=src)
    return tensor.cpu().numpy()


def on_main_process(compute: Callable[[], T]) -> T:
    """``compute()`` run on rank 0 alone, its (picklable) result sent to every rank.

    For the final reduction of a metric (a matrix square root of 2048x2048 covariances, KID's
    subsets): one rank does it and all return the very same number.
    """
    rank, world = rank_and_world()
    if world == 1:
        return compute()
    import torch.distributed as dist

    box: list = [None]
    failure = None
    if rank == 0:
        try:
            box[0] = (True, compute())
        except Exception as error:  # noqa: BLE001 - raised on every rank below, so none waits forever
            failure = error
            box[0] = (False, f"{type(error).__name__}: {error}")
    dist.broadcast_object_list(box, src=0)
    ok, value = box[0]
    if failure is not None:
        raise failure
    if not ok:
        raise RuntimeError(f"rank 0 failed: {value}")
    return value
