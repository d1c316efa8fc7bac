"""The camera a visualizer looks through: the generator's mean camera, turned about the object.

Visualizers render from the *mean* pose of the generator's pose sampler (front view, the average
radius, pivot and focal length), because that is where the generator was trained to look good. Every
pose sampler declares it: :meth:`gan3d.core.interfaces.PoseSampler.camera_rig` returns a
:class:`~gan3d.core.types.CameraRig` (cameras on a sphere of radius ``radius`` about ``orbit_center``
looking at ``pivot``, as EG3D's ``LookAtPoseSampler``). Options given to a visualizer win over it.

Angles follow :mod:`gan3d.core.cameras`: yaw ``h`` about the y axis with ``pi/2`` the front, polar
angle ``v`` from the +y axis with ``pi/2`` level.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence

import torch
from torch import Tensor

from gan3d.core.cameras import rig_from_cameras
from gan3d.core.types import CameraRig, Cameras

__all__ = ["CameraRig", "camera_rig", "rig_from_labels", "rig_cameras", "orbit_angles"]

logger = logging.getLogger(__name__)


def rig_from_labels(labels: Tensor, orbit_center: Sequence[float] = (0.0, 0.0, 0.0)) -> CameraRig:
    """The mean camera of EG3D labels ``[N, 25]`` (:func:`gan3d.core.cameras.rig_from_cameras`)."""
    return rig_from_cameras(Cameras.from_label(labels.detach().float().cpu()), tuple(orbit_center))


def camera_rig(
    generator, *, pivot: Sequence[float] = (), radius: float = 0.0, focal: float = 0.0
) -> CameraRig:
    """The rig of ``generator``'s pose sampler, with the options given here replacing its values.

    ``pivot=()``, ``radius=0`` and ``focal=0`` mean "not given".
    """
    rig = generator.pose_sampler.camera_rig()
    changes = {}
    if len(pivot):
        if len(pivot) != 3:
            raise ValueError(f"a camera pivot needs 3 numbers, got {list(pivot)}")
        changes["pivot"] = tuple(float(x) for x in pivot)
    if radius > 0:
        changes["radius"] = float(radius)
    if focal > 0:
        changes["focal"] = float(focal)
    rig = dataclasses.replace(rig, **changes) if changes else rig
    logger.debug("visualizer camera rig %s", rig)
    return rig


def rig_cameras(rig: CameraRig, yaw: Tensor, polar: Tensor, device: torch.device | str = "cpu") -> Cameras:
    """Cameras of ``rig`` at yaw ``[B]`` and polar angle ``[B]`` (radians) about the orbit centre,
    looking at the pivot (EG3D ``LookAtPoseSampler``).

    ``Cameras.angles`` holds ``(yaw, polar)``, as :class:`gan3d.samplers.SphericalPoseSampler` returns them.
    """
    return rig.cameras(yaw, polar, device)


def orbit_angles(
    num_frames: int, *, yaw_range: float, pitch_range: float, polar_offset: float, full_turn: bool = False,
    center: tuple[float, float] = (math.pi / 2, math.pi / 2),
) -> tuple[Tensor, Tensor]:
    """Yaw and polar angles ``[num_frames]`` of one closed orbit (the last frame precedes the first) about
    the view ``center`` (the rig's mean view; the front ``(pi/2, pi/2)`` by default).

    EG3D's ``gen_videos.py``: ``yaw = pi/2 + yaw_range * sin(2 pi t)``, ``polar = pi/2 + polar_offset +
    pitch_range * cos(2 pi t)`` with ``t = frame / num_frames`` (EG3D: 0.35, 0.25, -0.05). With
    ``full_turn`` the yaw makes one whole turn starting at the centre instead. EG3D feeds its polar
    value through ``arccos(1 - 2 v / pi)`` in ``LookAtPoseSampler``, which shrinks the swing near
    the equator by about ``2/pi``; here angles are true angles (:mod:`gan3d.core.cameras`).
    """
    if num_frames <= 0:
        raise ValueError(f"num_frames must be positive, got {num_frames}")
    t = torch.arange(num_frames, dtype=torch.float64) / num_frames
    yaw0, polar0 = center
    if full_turn:
        yaw = yaw0 + 2 * math.pi * t
    else:
        yaw = yaw0 + yaw_range * torch.sin(2 * math.pi * t)
    polar = polar0 + polar_offset + pitch_range * torch.cos(2 * math.pi * t)
    polar = polar.clamp(1e-5, math.pi - 1e-5)  # look_at degenerates at the poles (EG3D clamps the same way)
    return yaw.float(), polar.float()
