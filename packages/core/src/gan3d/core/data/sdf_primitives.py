"""Signed distance functions of the analytic primitives the synthetic scenes are built from.

All functions take points ``[N, 3]`` (already moved into the primitive's frame, so the primitive is
centred at the origin) and return signed distances ``[N]``: negative inside, zero on the surface.
The formulas are the standard ones of Inigo Quilez, "distance functions"
(iquilezles.org/articles/distfunctions); ``ellipsoid`` is his bound-style approximation (exact zero
set, slightly inexact away from it), so the sphere tracer takes shortened steps.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["ellipsoid", "rounded_box", "capped_cylinder_x", "capsule_y", "smooth_union"]


def ellipsoid(points: Tensor, radii: tuple[float, float, float]) -> Tensor:
    """Approximate distance ``[N]`` to an axis-aligned ellipsoid with semi-axes ``radii``.

    ``k0 (k0 - 1) / k1`` with ``k0 = |p / r|`` and ``k1 = |p / r^2|``: zero exactly on the surface,
    within a few percent of the true distance near it.
    """
    r = torch.tensor(radii, dtype=points.dtype, device=points.device)
    k0 = (points / r).norm(dim=-1)
    k1 = (points / (r * r)).norm(dim=-1).clamp_min(1e-9)
    return k0 * (k0 - 1.0) / k1


def rounded_box(points: Tensor, half_size: tuple[float, float, float], rounding: float) -> Tensor:
    """Exact distance ``[N]`` to a box of half extents ``half_size`` whose edges are rounded by ``rounding``.

    The rounding is taken out of ``half_size``, so the outer extents stay ``half_size``.
    """
    b = torch.tensor(half_size, dtype=points.dtype, device=points.device)
    q = points.abs() - b + rounding
    outside = q.clamp_min(0.0).norm(dim=-1)
    inside = torch.maximum(torch.maximum(q[:, 0], q[:, 1]), q[:, 2]).clamp_max(0.0)
    return outside + inside - rounding


def capped_cylinder_x(points: Tensor, radius: float, half_width: float) -> Tensor:
    """Exact distance ``[N]`` to a solid cylinder whose axis is the x axis (a wheel)."""
    radial = points[:, 1:].norm(dim=-1) - radius
    axial = points[:, 0].abs() - half_width
    outside = torch.hypot(radial.clamp_min(0.0), axial.clamp_min(0.0))
    return torch.maximum(radial, axial).clamp_max(0.0) + outside


def capsule_y(points: Tensor, half_length: float, radius: float) -> Tensor:
    """Exact distance ``[N]`` to a vertical capsule: the segment ``y in [-half_length, half_length]`` thickened."""
    closest_y = points[:, 1].clamp(-half_length, half_length)
    offset = points - torch.stack([torch.zeros_like(closest_y), closest_y, torch.zeros_like(closest_y)], dim=-1)
    return offset.norm(dim=-1) - radius


def smooth_union(a: Tensor, b: Tensor, k: float) -> Tensor:
    """Polynomial smooth minimum of two distances with blend radius ``k`` (``k = 0``: plain minimum).

    ``h = clamp(0.5 + 0.5 (b - a) / k, 0, 1)``, ``mix(b, a, h) - k h (1 - h)``. It never exceeds the
    plain minimum, so sphere tracing stays conservative.
    """
    if k <= 0:
        return torch.minimum(a, b)
    h = (0.5 + 0.5 * (b - a) / k).clamp(0.0, 1.0)
    return b + (a - b) * h - k * h * (1.0 - h)
