"""Real images for the trainer: a resumable stream of batch indices, the loader over it, and data
set errors carried out of loader workers as values (so they keep their own message)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["BatchIndices", "ItemFailure", "CatchingDataset", "collate", "make_loader", "resize_reals"]


class BatchIndices(torch.utils.data.Sampler):
    """Endless, resumable stream of per-rank batches: global step ``t`` takes stream items
    ``[start + t*B, start + (t+1)*B)`` of a sequence of seeded permutations, and rank ``r`` the
    ``r``-th contiguous slice of them.

    Args:
        size: data set length; batch: global batch ``B``; seed: seeds the permutations;
        start: stream position of the first batch (the images already shown: ``nimg``);
        rank, world: this process's rank and the number of ranks (``B`` divisible by it).
    """

    def __init__(self, size: int, batch: int, seed: int, start: int, rank: int, world: int) -> None:
        self.size, self.batch, self.seed, self.start, self.rank, self.world = size, batch, seed, start, rank, world
        self.per_rank = batch // world

    def _perm(self, epoch: int) -> Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.size, generator=g)

    def __iter__(self) -> Iterator[list[int]]:
        pos = self.start
        epoch, perm = -1, None
        while True:
            lo = pos + self.rank * self.per_rank
            out = []
            for k in range(lo, lo + self.per_rank):
                e = k // self.size
                if e != epoch:
                    epoch, perm = e, self._perm(e)
                out.append(int(perm[k % self.size]))
            yield out
            pos += self.batch


class ItemFailure:
    """A data set error caught inside a loader worker, carried to the main process as a value so
    that it is raised there with its own message (torch would wrap it in the worker's traceback)."""

    def __init__(self, error: Exception) -> None:
        self.error = error


class CatchingDataset(torch.utils.data.Dataset):
    """Wraps a data set so that its bad-input errors (``ValueError``, ``OSError``: a corrupt image,
    a missing file) reach the trainer as :class:`ItemFailure` items instead of worker tracebacks."""

    def __init__(self, dataset: torch.utils.data.Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        try:
            return self.dataset[index]
        except (ValueError, OSError) as error:
            return ItemFailure(error)


def collate(items: list) -> tuple[Tensor, Tensor] | ItemFailure:
    """``(images [B, 3, H, W], labels [B, 25] float32)``, or the first :class:`ItemFailure`."""
    failures = [it for it in items if isinstance(it, ItemFailure)]
    if failures:
        return failures[0]
    images = torch.stack([torch.as_tensor(it[0]) for it in items])
    labels = torch.stack([torch.as_tensor(it[1], dtype=torch.float32) for it in items])
    return images, labels


def _leave_stopping_to_the_trainer(worker_id: int) -> None:
    """Each loader worker moves to a process group of its own. Ctrl-C in a terminal, ``timeout`` and a
    cluster's preemption signal the whole process group; a worker that died of it would fail the step the
    trainer is finishing. Out of the group, the signal reaches the trainer only; the trainer stops its
    workers when it stops (PyTorch's shutdown, which ends a worker that does not answer with SIGTERM, so
    the workers must keep SIGTERM's default action), and a worker whose trainer died ends on its own
    (PyTorch's workers watch their parent)."""
    os.setpgid(0, 0)


def make_loader(dataset: torch.utils.data.Dataset, batch: int, *, seed: int, nimg: int, rank: int, world: int,
                workers: int, pin_memory: bool) -> Iterator:
    """An iterator over this rank's batches, starting at stream position ``nimg``."""
    sampler = BatchIndices(len(dataset), batch, seed, nimg, rank, world)
    # The loader gets its own generator: creating an iterator draws a worker seed from it, and
    # drawing from the global RNG instead would make a resumed run diverge from an uninterrupted one.
    loader = torch.utils.data.DataLoader(
        CatchingDataset(dataset), batch_sampler=sampler, num_workers=workers, collate_fn=collate,
        pin_memory=pin_memory, persistent_workers=False, worker_init_fn=_leave_stopping_to_the_trainer,
        generator=torch.Generator().manual_seed(seed * 1_000_003 + nimg + rank),
    )
    return iter(loader)


def resize_reals(images: Tensor, resolution: int) -> Tensor:
    """Real images ``[B, 3, H, W]`` resized (bilinear, antialiased when shrinking) to ``resolution``."""
    if images.shape[-1] == resolution and images.shape[-2] == resolution:
        return images
    return F.interpolate(images, size=(resolution, resolution), mode="bilinear", align_corners=False,
                         antialias=images.shape[-1] > resolution)
