"""The viewpoint StyleSDF's volume discriminator learns to predict, from gan3d cameras.

StyleSDF (royorel/StyleSDF ``utils.py``, ``generate_camera_params``) places its camera at
``(cos(elev) sin(azim), sin(elev), cos(elev) cos(azim))`` on the unit sphere looking at the origin
and returns ``[azim, elev]`` as the target of the viewpoint loss (0, 0 for the frontal view).
gan3d's sphere (:mod:`gan3d.core.cameras`) is ``(-sin v cos h, cos v, sin v sin h)`` for yaw ``h``
and polar angle ``v``, so ``azim = h - pi/2`` and ``elev = pi/2 - v``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from gan3d.core.types import Cameras

__all__ = ["stylesdf_viewpoint"]


def stylesdf_viewpoint(cameras: Cameras) -> Tensor:
    """``[B, 2]`` StyleSDF ``(azim, elev)`` of ``cameras``: from ``cameras.angles`` (yaw, polar) when
    the pose sampler filled them, else from the direction pivot -> camera of ``cam2world``."""
    if cameras.angles is not None:
        return torch.stack([cameras.angles[:, 0] - math.pi / 2, math.pi / 2 - cameras.angles[:, 1]], dim=-1)
    to_camera = -cameras.cam2world[:, :3, 2]  # the OpenCV viewing axis points from the camera inwards
    to_camera = to_camera / to_camera.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    azim = torch.atan2(to_camera[:, 0], to_camera[:, 2])
    elev = torch.asin(to_camera[:, 1].clamp(-1.0, 1.0))
    return torch.stack([azim, elev], dim=-1)
