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


def _draw_device(device: torch.device | str, generator: torch.Generator | None) -> torch.device:
    return generator.device if generator is not None else torch.device(device)


def _generator(generator: torch.Generator | None) -> dict:
    # Only pass generator= when there is one: the overload that takes it has no symbolic-shape
    # support, so torch.compile with a dynamic batch size fails on an explicit generator=None.
    return {} if generator is None else {"generator": generator}


def uniform(
    shape: tuple[int, ...],
    *,
    device: torch.device | str = "cpu",
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """``shape`` draws from ``U[0, 1)`` on ``device``."""
    draws = torch.rand(shape, **_generator(generator), device=_draw_device(device, generator), dtype=dtype)
    return draws.to(device)


def normal(
    shape: tuple[int, ...],
    *,
    device: torch.device | str = "cpu",
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """``shape`` draws from the standard normal on ``device``."""
    draws = torch.randn(shape, **_generator(generator), device=_draw_device(device, generator), dtype=dtype)
    return draws.to(device)


def randint(
    high: int,
    shape: tuple[int, ...],
    *,
    device: torch.device | str = "cpu",
    generator: torch.Generator | None = None,
) -> Tensor:
    """``shape`` integers drawn uniformly from ``[0, high)`` on ``device``."""
    draws = torch.randint(high, shape, **_generator(generator), device=_draw_device(device, generator))
    return draws.to(device)
