"""Quadrature of the volume rendering integral: which intervals a ray is cut into.

Two rules appear in the official implementations:

``last_delta`` (NeRF ``raw2outputs``, GRAF, pi-GAN ``fancy_integration``, StyleSDF
``volume_integration``, GRAM ``fancy_integration``): one interval per sample, of length
``t_{i+1} - t_i``; the last sample's interval is ``last_delta`` long (``1e10`` in all of them), so
whatever density the last sample has makes it opaque. A sampler that sets ``RaySamples.deltas``
(GRAM's fixed interval) overrides the lengths.

``midpoint`` (EG3D training/volumetric_rendering/ray_marcher.py, after MipNeRF): ``S - 1`` intervals
between consecutive samples; each takes the mean of its two end samples' raw geometry, features and
depth, and its length is ``t_{i+1} - t_i``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from gan3d.core.types import RaySamples

__all__ = ["QUADRATURES", "QuadratureIntervals", "quadrature_intervals"]

QUADRATURES = ("last_delta", "midpoint")


@dataclass
class QuadratureIntervals:
    """Per-interval inputs of the compositing (``N = S`` or ``S - 1``).

    Attributes:
        geometry: ``[B, R, N, 1]`` raw geometry (pre-activation density, or SDF) of each interval.
        features: ``[B, R, N, F]`` features of each interval.
        depths: ``[B, R, N, 1]`` depth of each interval.
        deltas: ``[B, R, N, 1]`` length of each interval.
    """

    geometry: Tensor
    features: Tensor
    depths: Tensor
    deltas: Tensor


def quadrature_intervals(
    geometry: Tensor, features: Tensor, samples: RaySamples, quadrature: str, last_delta: float
) -> QuadratureIntervals:
    """Cut rays into intervals by the rule ``quadrature`` (one of :data:`QUADRATURES`).

    Args:
        geometry: ``[B, R, S, 1]`` per-sample raw geometry.
        features: ``[B, R, S, F]`` per-sample features.
        samples: the samples; ``depths [B, R, S, 1]`` sorted ascending, optional ``deltas``.
        quadrature: ``'last_delta'`` or ``'midpoint'``.
        last_delta: length of the last interval under ``'last_delta'``.

    Example:
        >>> depths = torch.tensor([1.0, 1.5, 2.5]).view(1, 1, 3, 1)
        >>> s = RaySamples.along_rays(torch.zeros(1, 1, 3), torch.tensor([[[0.0, 0.0, 1.0]]]), depths)
        >>> quadrature_intervals(torch.zeros_like(depths), torch.zeros(1, 1, 3, 2), s, "last_delta",
        ...                      1e10).deltas.flatten().tolist()
        [0.5, 1.0, 10000000000.0]
    """
    depths = samples.depths
    gaps = depths[..., 1:, :] - depths[..., :-1, :]
    if quadrature == "last_delta":
        if samples.deltas is not None:
            deltas = samples.deltas
        else:
            deltas = torch.cat([gaps, torch.full_like(depths[..., :1, :], last_delta)], dim=-2)
        return QuadratureIntervals(geometry, features, depths, deltas)
    if quadrature == "midpoint":
        if samples.deltas is not None:
            raise ValueError(
                "midpoint quadrature takes its interval lengths from the sample depths, but the point sampler "
                "set RaySamples.deltas; use quadrature='last_delta' to honour the sampler's deltas"
            )
        if depths.shape[-2] < 2:
            raise ValueError(f"midpoint quadrature needs at least 2 samples per ray, got {depths.shape[-2]}")

        def midpoints(t: Tensor) -> Tensor:  # (a + b) / 2, halved in place: one tensor, not two
            return torch.add(t[..., :-1, :], t[..., 1:, :]).mul_(0.5)

        return QuadratureIntervals(midpoints(geometry), midpoints(features), midpoints(depths), gaps)
    raise ValueError(f"quadrature must be one of {', '.join(QUADRATURES)}; got {quadrature!r}")
