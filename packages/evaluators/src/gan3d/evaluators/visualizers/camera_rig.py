"""The camera a visualizer looks through: the generator's mean camera, turned about the object.

Visualizers render from the *mean* pose of the generator's pose sampler (front view, the average
radius, pivot and focal length), because that is where the generator was trained to look good.
As in EG3D's ``LookAtPoseSampler`` (and :class:`gan3d.samplers.SphericalPoseSampler`), cameras sit
on a sphere of radius ``radius`` about ``orbit_center`` and look at ``pivot``. The rig is read from
``generator.pose_sampler`` when it has:

* ``pivot`` (or ``lookat``): ``[3]`` point the cameras look at; ``orbit_center``: ``[3]``;
* ``radius``: a float, a ``[min, max]`` range, or an object with a ``mean`` (a parameter
  distribution);
* ``focal`` (normalized focal length) or ``fov`` (horizontal degrees, pinhole), the positive one;
* or ``labels [N, 25]`` (data-set poses, EG3D): the mean radius and focal of the labels, and as
  pivot the point nearest to all their optical axes (least squares).

Options given to a visualizer win; what is found nowhere falls back to EG3D's FFHQ camera
(``gen_videos.py``/``gen_samples.py``: ``avg_camera_radius`` 2.7, ``avg_camera_pivot``
``(0, 0, 0.2)``, focal 4.2647).

Angles follow :mod:`gan3d.core.cameras`: yaw ``h`` about the y axis with ``pi/2`` the front, polar
angle ``v`` from the +y axis with ``pi/2`` level.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from gan3d.core.cameras import focal_to_intrinsics, look_at, spherical_origin
from gan3d.core.types import Cameras

__all__ = ["CameraRig", "camera_rig", "rig_from_labels", "rig_cameras", "orbit_angles", "FALLBACK_RADIUS",
           "FALLBACK_PIVOT", "FALLBACK_FOCAL"]

logger = logging.getLogger(__name__)

# EG3D's FFHQ rendering_kwargs and gen_videos.py (avg_camera_radius, avg_camera_pivot, focal_length).
FALLBACK_RADIUS = 2.7
FALLBACK_PIVOT = (0.0, 0.0, 0.2)
FALLBACK_FOCAL = 4.2647


@dataclass(frozen=True)
class CameraRig:
    """Cameras at distance ``radius`` from ``orbit_center`` looking at ``pivot``, with focal ``focal``."""

    pivot: tuple[float, float, float]
    radius: float
    focal: float
    orbit_center: tuple[float, float, float] = (0.0, 0.0, 0.0)


def _as_floats(value) -> list[float] | None:
    if value is None:
        return None
    if isinstance(value, Tensor):
        return [float(x) for x in value.detach().flatten().cpu()]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [float(value)]
    mean = getattr(value, "mean", None)  # a parameter distribution (gan3d.samplers)
    if isinstance(mean, (int, float)) and not isinstance(mean, bool):
        return [float(mean)]
    try:
        return [float(x) for x in value]
    except (TypeError, ValueError):
        return None


def _attribute(module, names: Sequence[str]) -> list[float] | None:
    """The first of ``names`` on ``module`` that reads as numbers (positive where it is one number)."""
    for name in names:
        value = _as_floats(getattr(module, name, None))
        if value and not (len(value) == 1 and value[0] <= 0):
            return value
    return None


def rig_from_labels(labels: Tensor, orbit_center: Sequence[float] = (0.0, 0.0, 0.0)) -> CameraRig:
    """The mean camera of EG3D labels ``[N, 25]``: mean distance from ``orbit_center``, mean focal,
    and the pivot nearest to every optical axis, ``sum_i (I - d_i d_i^T) p = sum_i (I - d_i d_i^T) o_i``."""
    labels = labels.detach().double().cpu()
    cam2world = labels[:, :16].reshape(-1, 4, 4)
    origins, forward = cam2world[:, :3, 3], cam2world[:, :3, 2]
    forward = forward / forward.norm(dim=-1, keepdim=True)
    projector = torch.eye(3, dtype=torch.float64) - forward[:, :, None] * forward[:, None, :]
    center = torch.tensor(list(orbit_center), dtype=torch.float64)
    distance = (origins - center).norm(dim=-1, keepdim=True)
    system, target = projector.sum(0), (projector @ origins[:, :, None]).sum(0)
    if torch.linalg.matrix_rank(system) < 3:  # all axes parallel: take the point as far along as the centre
        pivot = (origins + forward * distance).mean(0)
    else:
        pivot = torch.linalg.solve(system, target)[:, 0]
    radius = distance.mean()
    focal = labels[:, 16].mean()
    return CameraRig(tuple(float(x) for x in pivot), float(radius), float(focal),
                     tuple(float(x) for x in orbit_center))


def camera_rig(
    generator, *, pivot: Sequence[float] = (), radius: float = 0.0, focal: float = 0.0
) -> CameraRig:
    """The rig for ``generator``: explicit options, else pose-sampler attributes, else EG3D's FFHQ rig.

    ``pivot=()``, ``radius=0`` and ``focal=0`` mean "not given".
    """
    sampler = getattr(generator, "pose_sampler", None)
    center = _attribute(sampler, ("orbit_center",)) or [0.0, 0.0, 0.0]
    found = CameraRig(FALLBACK_PIVOT, FALLBACK_RADIUS, FALLBACK_FOCAL, (0.0, 0.0, 0.0))
    labels = getattr(sampler, "labels", None)
    if isinstance(labels, Tensor) and labels.ndim == 2 and labels.shape[-1] == 25 and labels.shape[0] > 0:
        found = rig_from_labels(labels, center)
    found_pivot = _attribute(sampler, ("pivot", "lookat", "camera_pivot")) or list(found.pivot)
    found_radius = _attribute(sampler, ("radius", "camera_radius"))
    found_focal = _attribute(sampler, ("focal",))
    fov = _attribute(sampler, ("fov",))
    if found_focal is None and fov is not None:
        # the exact pinhole relation, as gan3d.core.cameras.fov_to_intrinsics uses
        found_focal = [1.0 / (2.0 * math.tan(math.radians(fov[0]) / 2.0))]

    pivot_values = [float(x) for x in pivot] if len(pivot) else found_pivot
    if len(pivot_values) != 3 or len(center) != 3:
        raise ValueError(f"a camera pivot and orbit centre need 3 numbers each, got {pivot_values} and {center}")
    if radius > 0:
        radius_value = float(radius)
    elif found_radius:
        radius_value = sum(found_radius) / len(found_radius)  # a [min, max] range: its mean
    else:
        radius_value = found.radius
    focal_value = float(focal) if focal > 0 else (found_focal[0] if found_focal else found.focal)
    rig = CameraRig(tuple(pivot_values), radius_value, focal_value, tuple(center))  # type: ignore[arg-type]
    logger.debug("visualizer camera rig %s", rig)
    return rig


def rig_cameras(rig: CameraRig, yaw: Tensor, polar: Tensor, device: torch.device | str = "cpu") -> Cameras:
    """Cameras of ``rig`` at yaw ``[B]`` and polar angle ``[B]`` (radians) about the orbit centre,
    looking at the pivot (EG3D ``LookAtPoseSampler``).

    ``Cameras.angles`` holds ``(yaw, polar)``, as :class:`gan3d.samplers.SphericalPoseSampler` returns them.
    """
    yaw = yaw.to(device=device, dtype=torch.float32)
    polar = polar.to(device=device, dtype=torch.float32)
    pivot = torch.tensor(rig.pivot, dtype=torch.float32, device=device)
    center = torch.tensor(rig.orbit_center, dtype=torch.float32, device=device)
    cam2world = look_at(spherical_origin(yaw, polar, rig.radius, center), pivot)
    intrinsics = focal_to_intrinsics(rig.focal, yaw.shape[0], device=device)
    return Cameras(cam2world, intrinsics, torch.stack([yaw, polar], dim=-1))


def orbit_angles(
    num_frames: int, *, yaw_range: float, pitch_range: float, polar_offset: float, full_turn: bool = False
) -> tuple[Tensor, Tensor]:
    """Yaw and polar angles ``[num_frames]`` of one closed orbit (the last frame precedes the first).

    EG3D's ``gen_videos.py``: ``yaw = pi/2 + yaw_range * sin(2 pi t)``, ``polar = pi/2 + polar_offset +
    pitch_range * cos(2 pi t)`` with ``t = frame / num_frames`` (EG3D: 0.35, 0.25, -0.05). With
    ``full_turn`` the yaw makes one whole turn starting at the front instead. EG3D feeds its polar
    value through ``arccos(1 - 2 v / pi)`` in ``LookAtPoseSampler``, which shrinks the swing near
    the equator by about ``2/pi``; here angles are true angles (:mod:`gan3d.core.cameras`).
    """
    if num_frames <= 0:
        raise ValueError(f"num_frames must be positive, got {num_frames}")
    t = torch.arange(num_frames, dtype=torch.float64) / num_frames
    if full_turn:
        yaw = math.pi / 2 + 2 * math.pi * t
    else:
        yaw = math.pi / 2 + yaw_range * torch.sin(2 * math.pi * t)
    polar = math.pi / 2 + polar_offset + pitch_range * torch.cos(2 * math.pi * t)
    polar = polar.clamp(1e-5, math.pi - 1e-5)  # look_at degenerates at the poles (EG3D clamps the same way)
    return yaw.float(), polar.float()
