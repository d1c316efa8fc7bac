"""Cameras on a sphere looking at a pivot, with yaw, polar angle and radius drawn independently.

This one sampler reproduces the camera distributions of pi-GAN, EG3D, GRAF and GIRAFFE; the camera
math is :mod:`gan3d.core.cameras` (EG3D's convention), so every method shares one definition.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from gan3d.core.cameras import focal_to_intrinsics, fov_to_intrinsics, look_at, spherical_origin
from gan3d.core.interfaces import PoseSampler
from gan3d.core.types import CameraRig, Cameras

from .parameter_distribution import STRATEGIES, ParameterDistribution

__all__ = ["SphericalPoseSampler"]

#: pi-GAN and EG3D keep the polar angle (or EG3D's pre-image v) off the poles, where look-at with a
#: y-up vector is undefined (pi-GAN ``sample_camera_positions``, EG3D ``camera_utils.py``).
_POLE_MARGIN = 1e-5
_POLAR_PARAMETRIZATIONS = ("angle", "arccos")


class SphericalPoseSampler(PoseSampler):
    """Draws cameras at ``orbit_center + spherical_origin(yaw, polar, radius)`` looking at ``pivot``.

    Yaw is the azimuth about the world y axis (``pi/2`` in front, on +z), polar the angle from +y
    (``pi/2`` level), as in EG3D's ``camera_utils.py``. Each of yaw, polar and radius is drawn by its
    own strategy (see :mod:`gan3d.samplers.parameter_distribution`): ``fix``, ``uniform`` (over
    ``*_range``), ``normal`` (``*_mean``, ``*_stddev``), ``hybrid``, ``truncated_normal`` (over
    ``*_range``), and for the polar angle ``spherical_uniform`` (area-uniform zone between the two
    polar angles of ``polar_range``). For the radius, ``radius`` is the fixed value and the mean.

    ``polar_parametrization='arccos'`` reproduces EG3D's samplers: the value drawn for the polar
    option is not the angle but a ``v`` in ``[0, pi]``, and the camera sits at
    ``polar = arccos(1 - 2 v / pi)`` (EG3D ``GaussianCameraPoseSampler``, ``LookAtPoseSampler``,
    ``UniformCameraPoseSampler``); uniform ``v`` is then area-uniform on the sphere, and a normal
    ``v`` of stddev s about ``pi/2`` gives polar angles of stddev about ``2 s / pi``. pi-GAN's
    ``'gaussian'``, ``'uniform'``, ``'hybrid'`` and ``'truncated_gaussian'`` modes do NOT
    reparametrize (``'angle'``, the default): only its ``'spherical_uniform'`` mode does.

    The returned ``Cameras.angles`` are ``[B, 2]`` (yaw, polar) in radians: the yaw as drawn and
    the polar angle the camera really has (after the pole clamp and, for ``'arccos'``, the mapping).

    Intrinsics come from exactly one of ``fov`` (horizontal field of view in degrees, exact pinhole:
    pi-GAN's, GRAF's, GIRAFFE's ``fov``) and ``focal`` (normalized focal length, EG3D's labels);
    set the other to 0. ``principal_point`` is ``(cx, cy)`` in normalized image coordinates, the image
    centre ``(0.5, 0.5)`` by default; GRAF casts its rays through pixel *indices*, ``((i - W/2) / f,
    (j - H/2) / f)`` (nerf-pytorch ``get_rays``), which puts the principal point half a pixel right of
    and below the centre of its ``W``-pixel images: ``(0.5 + 0.5 / W, 0.5 + 0.5 / H)``.

    Recipes of the official configurations (angles in radians):

    * pi-GAN CelebA (``curriculums.py`` ``CelebA``, ``sample_dist='gaussian'``): ``yaw_strategy='normal',
      yaw_mean=pi/2, yaw_stddev=0.3, polar_strategy='normal', polar_mean=pi/2, polar_stddev=0.155,
      radius=1.0, pivot=[0,0,0], fov=12.0, focal=0.0`` (rays from 0.88 to 1.12). pi-GAN CATS:
      ``'uniform'`` with ``yaw_range=[pi/2-0.5, pi/2+0.5], polar_range=[pi/2-0.4, pi/2+0.4]``.
      pi-GAN ``'spherical_uniform'`` (CARLA) with ``h_mean, h_stddev, v_mean, v_stddev``:
      ``yaw_strategy='uniform', yaw_range=[h_mean-h_stddev, h_mean+h_stddev]`` and
      ``polar_strategy='uniform', polar_parametrization='arccos', polar_range=[v_mean-v_stddev,
      v_mean+v_stddev]``.
    * EG3D FFHQ (``gen_samples.py``, ``gen_videos.py``, ``train.py`` rendering options):
      ``polar_parametrization='arccos', radius=2.7, pivot=[0,0,0.2], orbit_center=[0,0,0],
      focal=4.2647``, yaw/polar ``normal`` with EG3D's horizontal/vertical stddev. EG3D's camera sphere
      is centred on the world origin, not on the pivot; the camera only looks at the pivot. (EG3D
      trains on the data set's poses: see the ``dataset`` pose sampler.)
    * GRAF / GIRAFFE (``configs/*.yaml``: ``umin, umax, vmin, vmax, radius, fov``; z-up world with
      azimuth ``2 pi u`` from +x and polar ``arccos(1 - 2 v)`` from +z): rotating their z-up world onto
      our y-up one maps a camera to ``yaw = pi + 2 pi u``, ``polar = arccos(1 - 2 v)``. So
      ``yaw_strategy='uniform', yaw_range=[pi + 2 pi umin, pi + 2 pi umax]``,
      ``polar_strategy='spherical_uniform', polar_range=[arccos(1-2 vmin), arccos(1-2 vmax)]``,
      ``radius_strategy='uniform', radius_range=[r_min, r_max]`` for GRAF's ``radius: a,b`` (else fix),
      ``pivot=[0,0,0]``. GRAF CelebA: u in [0, 0.25], v in [0.329, 0.456] (70 to 85 degrees),
      radius in [9.5, 10.5], fov 10.

    pi-GAN's axes: pi-GAN places a camera at ``(sin phi cos theta, cos phi, sin phi sin theta)``
    (``sample_camera_positions``) and builds an OpenGL camera (looks down -z, image rows flipped) with
    up = +y. Its world is ours (y-up, the front camera on +z, image right = world +x there), but its
    azimuth runs the other way: pi-GAN's ``theta`` is our ``yaw = pi - theta`` (its ``phi`` is our polar).
    Every official pi-GAN distribution is symmetric about ``pi/2``, so the camera distribution is the
    same; only the yaw recorded for its pose loss is mirrored about ``pi/2``, which matters when
    comparing with pi-GAN's angles or loading its discriminators. Its ``fov`` spans the outermost
    pixel centres rather than the image edges (``linspace(-1, 1, W)``), a ``(W-1)/W`` difference in
    focal length (1.6 % at 64 px) that this exact pinhole leaves out.

    Example:
        >>> sampler = SphericalPoseSampler(yaw_strategy="normal", yaw_stddev=0.3)
        >>> cams = sampler(8, generator=torch.Generator().manual_seed(0))
        >>> cams.cam2world.shape, cams.angles.shape
        (torch.Size([8, 4, 4]), torch.Size([8, 2]))
    """

    def __init__(
        self,
        *,
        yaw_strategy: str = "fix",
        yaw_mean: float = math.pi / 2,
        yaw_stddev: float = 0.0,
        yaw_range: Sequence[float] = (),
        polar_strategy: str = "fix",
        polar_mean: float = math.pi / 2,
        polar_stddev: float = 0.0,
        polar_range: Sequence[float] = (),
        polar_parametrization: str = "angle",
        radius_strategy: str = "fix",
        radius: float = 2.7,
        radius_stddev: float = 0.0,
        radius_range: Sequence[float] = (),
        pivot: Sequence[float] = (0.0, 0.0, 0.2),
        orbit_center: Sequence[float] = (0.0, 0.0, 0.0),
        fov: float = 0.0,
        focal: float = 4.2647,
        principal_point: Sequence[float] = (0.5, 0.5),
    ) -> None:
        super().__init__()
        not_polar = tuple(s for s in STRATEGIES if s != "spherical_uniform")
        self.yaw = ParameterDistribution("yaw", yaw_strategy, yaw_mean, yaw_stddev, tuple(yaw_range), not_polar)
        self.polar = ParameterDistribution("polar", polar_strategy, polar_mean, polar_stddev, tuple(polar_range))
        self.radius = ParameterDistribution(
            "radius", radius_strategy, radius, radius_stddev, tuple(radius_range), not_polar
        )
        if polar_parametrization not in _POLAR_PARAMETRIZATIONS:
            raise ValueError(
                f"polar_parametrization {polar_parametrization!r} is unknown; allowed: "
                f"{', '.join(_POLAR_PARAMETRIZATIONS)}"
            )
        if polar_parametrization == "arccos" and polar_strategy == "spherical_uniform":
            raise ValueError(
                "polar_strategy 'spherical_uniform' already draws polar angles; use polar_parametrization='angle'"
            )
        if radius <= 0 or (len(radius_range) == 2 and min(radius_range) <= 0):
            raise ValueError(f"the radius must be positive: radius={radius}, radius_range={list(radius_range)}")
        if len(pivot) != 3 or len(orbit_center) != 3:
            raise ValueError(f"pivot and orbit_center are 3 floats each, got {list(pivot)} and {list(orbit_center)}")
        if (fov > 0) == (focal > 0):
            raise ValueError(
                f"give exactly one of fov (degrees) and focal (normalized), the other 0.0; got fov={fov}, focal={focal}"
            )
        if len(principal_point) != 2 or not all(math.isfinite(float(x)) for x in principal_point):
            raise ValueError(f"principal_point is (cx, cy), two finite numbers in normalized image coordinates, "
                             f"got {list(principal_point)}")
        self.polar_parametrization = polar_parametrization
        self.principal_point = (float(principal_point[0]), float(principal_point[1]))
        self.pivot = tuple(float(x) for x in pivot)
        self.orbit_center = tuple(float(x) for x in orbit_center)
        self.fov = float(fov)
        self.focal = float(focal)

    def _polar_angle(self, value: float) -> float:
        value = min(max(value, _POLE_MARGIN), math.pi - _POLE_MARGIN)
        return math.acos(1 - 2 * value / math.pi) if self.polar_parametrization == "arccos" else value

    def camera_rig(self) -> CameraRig:
        """The exact rig: ``pivot``, ``orbit_center``, the radius distribution's centre, the focal length
        (from ``focal`` or the pinhole of ``fov``), the centre and band of the yaw and polar draws
        (polar values mapped through ``arccos(1 - 2 v / pi)`` under the ``'arccos'`` parametrization)."""
        focal = self.focal if self.focal > 0 else 1.0 / (2.0 * math.tan(math.radians(self.fov) / 2.0))
        polar_band = self.polar.band()
        return CameraRig(pivot=self.pivot, radius=self.radius.center(), focal=focal, orbit_center=self.orbit_center,
                         yaw=self.yaw.center(), polar=self._polar_angle(self.polar.center()),
                         yaw_range=self.yaw.band(),
                         polar_range=(self._polar_angle(polar_band[0]), self._polar_angle(polar_band[1])))

    def forward(
        self, batch_size: int, *, device: torch.device | str = "cpu", generator: torch.Generator | None = None
    ) -> Cameras:
        """``batch_size`` cameras on ``device``: ``cam2world [B, 4, 4]``, ``intrinsics [B, 3, 3]``,
        ``angles [B, 2]`` (yaw, polar)."""
        yaw = self.yaw.draw(batch_size, device=device, generator=generator)
        polar = self.polar.draw(batch_size, device=device, generator=generator)
        radius = self.radius.draw(batch_size, device=device, generator=generator)
        polar = polar.clamp(_POLE_MARGIN, math.pi - _POLE_MARGIN)
        if self.polar_parametrization == "arccos":
            polar = torch.arccos(1 - 2 * polar / math.pi)
        center = torch.tensor(self.orbit_center, device=device)
        origins = spherical_origin(yaw, polar, radius, pivot=center)
        cam2world = look_at(origins, torch.tensor(self.pivot, device=device))
        if self.focal > 0:
            intrinsics = focal_to_intrinsics(self.focal, batch_size, device)
        else:
            intrinsics = fov_to_intrinsics(self.fov, batch_size, device)
        if self.principal_point != (0.5, 0.5):
            intrinsics[:, 0, 2], intrinsics[:, 1, 2] = self.principal_point
        return Cameras(cam2world, intrinsics, torch.stack([yaw, polar], dim=-1))

    def extra_repr(self) -> str:
        return (f"yaw={self.yaw.strategy}, polar={self.polar.strategy} ({self.polar_parametrization}), "
                f"radius={self.radius.strategy}, pivot={list(self.pivot)}, fov={self.fov}, focal={self.focal}"
                + (f", principal_point={list(self.principal_point)}" if self.principal_point != (0.5, 0.5) else ""))
