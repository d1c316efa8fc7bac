"""Batch operations on a generator's latent, whichever kind it is.

A mapper returns either ``ws [B, num_ws, w_dim]`` or a :class:`~gan3d.core.types.SceneLatent`; code that
handles latents without caring which (evaluators, visualizers, the viewer) goes through these functions.

Example:
    >>> ws = torch.randn(2, 3, 4)
    >>> repeat_interleave(ws, 2).shape, batch_size(take(ws, slice(0, 1)))
    (torch.Size([4, 3, 4]), 1)
"""

from __future__ import annotations

import torch
from torch import Tensor

from .types import SceneLatent

__all__ = ["Latent", "batch_size", "take", "repeat", "repeat_interleave", "cat", "to", "detach"]

#: What a stochasticity mapper returns and a generator's synthesis takes.
Latent = Tensor | SceneLatent


def batch_size(latent: Latent) -> int:
    """The batch size ``B``."""
    return latent.batch_size if isinstance(latent, SceneLatent) else latent.shape[0]


def take(latent: Latent, index) -> Latent:
    """The batch items ``index`` selects (a slice, an int kept as a batch of one, or an index tensor)."""
    if isinstance(index, int):
        index = slice(index, index + 1)
    return latent[index]


def repeat(latent: Latent, times: int) -> Latent:
    """The whole batch ``times`` times over (``ws.repeat(times, 1, 1)``)."""
    if isinstance(latent, SceneLatent):
        return latent.repeat(times)
    return latent.repeat(times, *([1] * (latent.ndim - 1)))


def repeat_interleave(latent: Latent, times: int) -> Latent:
    """Each batch item ``times`` times in a row (``ws.repeat_interleave(times, 0)``)."""
    if isinstance(latent, SceneLatent):
        index = torch.arange(latent.batch_size).repeat_interleave(times)
        return latent[index]
    return latent.repeat_interleave(times, dim=0)


def cat(latents: list[Latent]) -> Latent:
    """Concatenate along the batch."""
    if isinstance(latents[0], SceneLatent):
        return SceneLatent.cat(latents)
    return torch.cat(latents)


def to(latent: Latent, device: torch.device | str) -> Latent:
    return latent.to(device)


def detach(latent: Latent) -> Latent:
    return latent.detach()
