"""EpiGRAF's camera angles and gan3d's cameras.

The conversions live with the data-set reader of EpiGRAF's ``camera_angles``
(:mod:`gan3d.core.data.epigraf_labels`, which explains the frame): EpiGRAF's ``(yaw, pitch)`` is gan3d's
``(pi / 2 - yaw, pitch)`` after a quarter turn about ``y``, and its camera a pinhole with the normalized
focal ``(W - 1) / (2 W tan(fov / 2))`` at the data resolution ``W``. This module adds the way back, for
the discriminator's camera conditioning.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from gan3d.core.data.epigraf_labels import (
    POLE_MARGIN,
    epigraf_cameras,
    epigraf_focal,
    match_camera_angles,
    to_gan3d_angles,
)

__all__ = ["POLE_MARGIN", "to_gan3d_angles", "to_epigraf_angles", "epigraf_focal", "epigraf_cameras",
           "match_camera_angles"]


def to_epigraf_angles(angles: Tensor) -> Tensor:
    """gan3d ``[B, 2]`` ``(yaw, polar)`` -> EpiGRAF ``[B, 3]`` ``(yaw, pitch, 0)`` with ``yaw`` wrapped into
    ``[-pi, pi)`` (the range EpiGRAF's data sets use; src/train.py ``init_dataset`` asserts it).

    Example:
        >>> to_epigraf_angles(torch.tensor([[math.pi / 2, math.pi / 2]]))   # the front view
        tensor([[0.0000, 1.5708, 0.0000]])
    """
    if angles.ndim != 2 or angles.shape[1] != 2:
        raise ValueError(f"gan3d camera angles must be [B, 2] (yaw, polar), got {tuple(angles.shape)}")
    yaw = torch.remainder(math.pi / 2 - angles[:, 0] + math.pi, 2 * math.pi) - math.pi
    return torch.stack([yaw, angles[:, 1], torch.zeros_like(yaw)], dim=-1)
