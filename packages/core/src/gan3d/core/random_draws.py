"""Random draws that honour an optional ``torch.Generator`` on any device.

A ``torch.Generator`` lives on one device and can only fill tensors there, so the numbers are drawn
on the generator's device and then moved to the requested one. A seeded CPU generator therefore
gives the same poses and samples whether the model runs on a CPU or a GPU. In gan3d-core so that
every package draws this way (samplers, objectives, mappers, metrics).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["uniform", "normal", "randint"]


def _draw(fill, *args, device: torch.device | str, generator: torch.Generator | None, **kwargs) -> Tensor:
    """``fill(*args, **kwargs)`` on the generator's device (or ``device`` without one), moved to ``device``."""
    draw_device = generator.device if generator is not None else torch.device(device)
    # Only pass generator= when there is one: the overload that takes it has no symbolic-shape
    # support, so torch.compile with a dynamic batch size fails on an explicit generator=None.
    extra = {} if generator is None else {"generator": generator}
    return fill(*args, **extra, device=draw_device, **kwargs).to(device)


def uniform(
    shape: tuple[int, ...],
    *,
    device: torch.device | str = "cpu",
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """``shape`` draws from ``U[0, 1)`` on ``device``."""
    return _draw(torch.rand, shape, device=device, generator=generator, dtype=dtype)


def normal(
    shape: tuple[int, ...],
    *,
    device: torch.device | str = "cpu",
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """``shape`` draws from the standard normal on ``device``."""
    return _draw(torch.randn, shape, device=device, generator=generator, dtype=dtype)


def randint(
    high: int,
    shape: tuple[int, ...],
    *,
    device: torch.device | str = "cpu",
    generator: torch.Generator | None = None,
) -> Tensor:
    """``shape`` integers drawn uniformly from ``[0, high)`` on ``device``."""
    return _draw(torch.randint, high, shape, device=device, generator=generator)
