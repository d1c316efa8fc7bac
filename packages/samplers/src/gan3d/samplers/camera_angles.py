"""The (yaw, polar) angles of camera centres: the inverse of ``gan3d.core.cameras.spherical_origin``."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["spherical_angles"]


def spherical_angles(origins: Tensor, orbit_center: Sequence[float] | Tensor = (0.0, 0.0, 0.0)) -> Tensor:
    """``[B, 2]`` (yaw, polar) in radians of camera centres ``origins [B, 3]`` about ``orbit_center``.

    Inverts EG3D's placement ``d = r (sin v cos(pi - h), cos v, sin v sin(pi - h))`` (see
    :mod:`gan3d.core.cameras`): ``v = arccos(d_y / r)`` and ``h = pi - atan2(d_z, d_x)``, so yaw lies
    in ``[0, 2 pi]`` with ``pi / 2`` in front (+z).

    Example:
        >>> spherical_angles(torch.tensor([[0.0, 0.0, 2.7]]))
        tensor([[1.5708, 1.5708]])
    """
    d = origins - torch.as_tensor(orbit_center, dtype=origins.dtype, device=origins.device)
    r = d.norm(dim=-1).clamp_min(1e-12)
    polar = torch.arccos((d[:, 1] / r).clamp(-1.0, 1.0))
    yaw = math.pi - torch.atan2(d[:, 2], d[:, 0])
    return torch.stack([yaw, polar], dim=-1)
