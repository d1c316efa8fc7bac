"""The camera angles pi-GAN's discriminator learns to predict, from gan3d cameras.

pi-GAN (``generators/volumetric_rendering.py``, ``sample_camera_positions``) places its camera at

    origin = r * (sin(phi) cos(theta), cos(phi), sin(phi) sin(theta))

looking at the origin, with ``theta`` the horizontal angle and ``phi`` the polar angle from +y (both
``pi/2`` for the frontal view, +z), and ``ImplicitGenerator3d.forward`` returns ``(phi, theta)`` as the
target of its position loss. gan3d's camera math (:mod:`gan3d.core.cameras`) writes the same sphere
with yaw ``h`` and polar ``v`` as ``(sin v cos(pi - h), cos v, sin v sin(pi - h))``, and the
``spherical`` pose sampler fills :class:`~gan3d.core.types.Cameras` ``angles`` with ``(h, v)``
(gan3d.samplers ``SphericalPoseSampler``), so

    theta = pi - h,    phi = v.

We order the target as ``(theta, phi)`` (yaw-like first, as :class:`~gan3d.core.types.DiscriminatorOutput`
documents ``pose``); pi-GAN's own discriminator emits ``(phi, theta)``: swap its last two output
channels to load its weights.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from gan3d.core.types import Cameras

__all__ = ["pigan_angles", "pigan_angles_from_cam2world"]


def pigan_angles_from_cam2world(cam2world: Tensor) -> Tensor:
    """``[B, 4, 4]`` cameras looking at their pivot -> ``[B, 2]`` pi-GAN ``(theta, phi)``.

    The direction from the pivot to the camera is minus the viewing axis (OpenCV camera +z), so
    neither the radius nor the pivot matters. ``theta`` comes back in ``(-pi, pi]``.
    """
    to_camera = -cam2world[:, :3, 2]
    to_camera = to_camera / to_camera.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    theta = torch.atan2(to_camera[:, 2], to_camera[:, 0])
    phi = torch.acos(to_camera[:, 1].clamp(-1.0, 1.0))
    return torch.stack([theta, phi], dim=-1)


def pigan_angles(cameras: Cameras) -> Tensor:
    """``[B, 2]`` pi-GAN ``(theta, phi)`` of ``cameras``: from ``cameras.angles`` ``(yaw h, polar v)``
    when the pose sampler filled them (exact, no wrap-around), else from the cam2world matrices."""
    if cameras.angles is None:
        return pigan_angles_from_cam2world(cameras.cam2world)
    yaw, polar = cameras.angles[:, 0], cameras.angles[:, 1]
    return torch.stack([math.pi - yaw, polar], dim=-1)
