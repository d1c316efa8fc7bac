"""The procedural scenes of the synthetic multi-view data set: a head-like and a car-like shape.

A scene is a small dataclass of floats (its shape and colour parameters), drawn at random per scene
so that the data set is a distribution and not one object. It answers two questions about world
points ``[N, 3]``: the signed distance to its surface (:meth:`sdf`) and the surface colour
(:meth:`albedo`). Both are mirror-symmetric about the plane ``x = 0`` by construction (paired parts
are evaluated at ``|x|``), so a mirrored camera sees exactly the mirrored image; this is what makes
x-flip augmentation correct for this data set.

A :class:`ScenePreset` pairs a scene type with the camera distribution and the light of the data set
it imitates:

* ``head`` imitates EG3D's FFHQ labels: radius 2.7, look-at pivot ``(0, 0, 0.2)``, normalized focal
  4.2647 (``eg3d/train.py`` ffhq ``avg_camera_radius``/``avg_camera_pivot``; ``gen_videos.py``
  focal), yaw and polar angle Gaussian about the front with standard deviations 0.3 and 0.155 rad
  (pi-GAN ``curriculums.py`` CelebA ``h_stddev``/``v_stddev``). The head fits EG3D's FFHQ box
  (``box_warp = 1``: the cube ``[-0.5, 0.5]^3``).
* ``car`` imitates EG3D's ShapeNet Cars setting: radius 1.7, pivot at the origin
  (``eg3d/train.py`` shapenet), focal 1.7074 (``gen_videos.py``, "shapenet has higher FOV"), yaw
  uniform over 360 degrees; the elevation is drawn uniformly on the sphere between 5 and 50 degrees
  above the horizon (our choice: ShapeNet/SRN renders view cars from the upper hemisphere). The car
  fits the ShapeNet box (``box_warp = 1.6``).
* ``head_right`` is ``head`` with its cameras folded onto one side: the yaw is the absolute value of
  ``head``'s (a half-normal about the front, std 0.3; the polar as ``head``). Every view is one ``head``
  could draw, but the distribution of views is no longer mirror-symmetric about any yaw, so a
  depth-inverted head (whose views from yaw ``c + t`` are the convex head's from ``c - t``) no longer
  renders the data's distribution, as it does exactly on ``head``. A diagnostic for generators whose
  discriminator sees no camera (docs/learning.md, "Which way the heads turn"); train on it without
  x-flips, which would make the views symmetric again.
"""

from __future__ import annotations

import colorsys
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

from ..cameras import EG3D_FFHQ_FOCAL, focal_to_intrinsics, look_at, spherical_origin
from ..types import Cameras
from .sdf_primitives import capped_cylinder_x, capsule_y, ellipsoid, rounded_box, smooth_union

__all__ = ["HeadScene", "CarScene", "ScenePreset", "PRESETS", "get_preset", "scene_to_dict", "EG3D_SHAPENET_FOCAL"]

#: EG3D's normalized focal for ShapeNet Cars (``eg3d/gen_videos.py``: ``1.7074``).
EG3D_SHAPENET_FOCAL = 1.7074


def _abs_x(points: Tensor) -> Tensor:
    """Fold space onto ``x >= 0`` so that paired parts (ears, eyes, wheels) are exactly symmetric."""
    return torch.cat([points[:, :1].abs(), points[:, 1:]], dim=-1)


def _rgb(values: tuple[float, float, float], like: Tensor) -> Tensor:
    return torch.tensor(values, dtype=like.dtype, device=like.device)


def _where_rgb(mask: Tensor, colour: Tensor, base: Tensor) -> Tensor:
    return torch.where(mask[:, None], colour.expand_as(base), base)


@dataclass(frozen=True)
class HeadScene:
    """A head-like shape: ellipsoid skull, smooth-unioned nose, ears and neck; hair, eyes, mouth as colour.

    Lengths are in world units (the head is about 0.45 wide, as a face in EG3D's FFHQ box); colours
    are linear RGB in ``[0, 1]``.
    """

    kind: ClassVar[str] = "head"
    #: a sphere that contains everything visible (centre, radius): the tracer starts rays on it.
    bounds: ClassVar[tuple[tuple[float, float, float], float]] = ((0.0, -0.1, 0.0), 0.62)

    head_radii: tuple[float, float, float]
    nose_radii: tuple[float, float, float]
    nose_height: float
    ear_radii: tuple[float, float, float]
    neck_radius: float
    hairline: float
    hair_slope: float
    eye_spacing: float
    eye_height: float
    iris_radius: float
    mouth_height: float
    mouth_half_width: float
    skin: tuple[float, float, float]
    hair: tuple[float, float, float]
    iris: tuple[float, float, float]
    lips: tuple[float, float, float]

    @classmethod
    def sample(cls, rng: np.random.Generator) -> HeadScene:
        """Draw one head: size and proportions jitter by about +-10 %, colours from skin/hair/eye ranges."""
        scale = rng.uniform(0.92, 1.08)
        head = (0.2 * scale * rng.uniform(0.92, 1.08), 0.27 * scale, 0.24 * scale * rng.uniform(0.94, 1.06))
        nose_scale = rng.uniform(0.8, 1.25)
        skin_tone = rng.uniform(0.0, 1.0)
        skin = tuple(float(a + (b - a) * skin_tone) for a, b in zip((0.96, 0.8, 0.7), (0.42, 0.27, 0.19)))
        hair_hue, hair_light = rng.uniform(0.03, 0.12), rng.uniform(0.18, 0.75)
        hair = colorsys.hls_to_rgb(hair_hue, hair_light, rng.uniform(0.3, 0.7))
        iris = colorsys.hls_to_rgb(rng.choice([0.08, 0.3, 0.58]) + rng.uniform(-0.03, 0.03), 0.3, 0.6)
        lips = (skin[0] * 0.95, skin[1] * 0.55, skin[2] * 0.6)
        return cls(
            head_radii=head,
            nose_radii=(0.03 * nose_scale, 0.05 * nose_scale, 0.045 * nose_scale),
            nose_height=float(rng.uniform(-0.05, -0.02)),
            ear_radii=(0.025, 0.06 * rng.uniform(0.85, 1.15), 0.04),
            neck_radius=0.1 * scale,
            hairline=float(rng.uniform(0.0, 0.1)),
            hair_slope=float(rng.uniform(0.5, 0.9)),
            eye_spacing=float(0.075 * rng.uniform(0.9, 1.1)),
            eye_height=float(rng.uniform(0.03, 0.06)),
            iris_radius=float(0.018 * rng.uniform(0.85, 1.15)),
            mouth_height=float(rng.uniform(-0.14, -0.11)),
            mouth_half_width=float(rng.uniform(0.04, 0.06)),
            skin=skin,
            hair=tuple(float(c) for c in hair),
            iris=tuple(float(c) for c in iris),
            lips=lips,
        )

    def _front_point(self, x: float, y: float) -> tuple[float, float, float]:
        """The point of the skull ellipsoid's front (+z) surface above ``(x, y)``."""
        a, b, c = self.head_radii
        return (x, y, c * math.sqrt(max(1.0 - (x / a) ** 2 - (y / b) ** 2, 0.0)))

    def sdf(self, points: Tensor) -> Tensor:
        """Signed distance ``[N]`` of world points ``[N, 3]`` (negative inside)."""
        folded = _abs_x(points)
        skull = ellipsoid(points, self.head_radii)
        nose_centre = torch.tensor(self._front_point(0.0, self.nose_height), dtype=points.dtype)
        nose = ellipsoid(points - nose_centre, self.nose_radii)
        ear_centre = torch.tensor((self.head_radii[0] - 0.01, 0.0, -0.01), dtype=points.dtype)
        ears = ellipsoid(folded - ear_centre, self.ear_radii)
        neck = capsule_y(points - torch.tensor((0.0, -0.38, -0.03), dtype=points.dtype), 0.14, self.neck_radius)
        d = smooth_union(skull, nose, 0.03)
        d = smooth_union(d, ears, 0.02)
        return smooth_union(d, neck, 0.06)

    def albedo(self, points: Tensor) -> Tensor:
        """Surface colour ``[N, 3]`` in ``[0, 1]`` of world points ``[N, 3]`` on (or near) the surface."""
        folded = _abs_x(points)
        x, y, z = points[:, 0], points[:, 1], points[:, 2]
        colour = _rgb(self.skin, points).expand(points.shape[0], 3)
        # Hair covers the top and the back: the hairline rises towards the face (+z).
        hair = (y > self.hairline + self.hair_slope * z) & (y > -0.12)
        colour = _where_rgb(hair, _rgb(self.hair, points), colour)
        mouth_centre = self._front_point(0.0, self.mouth_height)
        mouth = (((x / self.mouth_half_width) ** 2 + ((y - mouth_centre[1]) / 0.016) ** 2) < 1.0) & (z > 0.0)
        colour = _where_rgb(mouth, _rgb(self.lips, points), colour)
        eye_centre = torch.tensor(self._front_point(self.eye_spacing, self.eye_height), dtype=points.dtype)
        eye_distance = (folded - eye_centre).norm(dim=-1)
        colour = _where_rgb(eye_distance < 1.6 * self.iris_radius, _rgb((0.93, 0.93, 0.9), points), colour)
        colour = _where_rgb(eye_distance < self.iris_radius, _rgb(self.iris, points), colour)
        colour = _where_rgb(eye_distance < 0.45 * self.iris_radius, _rgb((0.03, 0.03, 0.03), points), colour)
        return colour

    @staticmethod
    def sample_angles(rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
        """``count`` (yaw, polar) pairs in EG3D's spherical convention, Gaussian about the front."""
        yaw = math.pi / 2 + 0.3 * rng.standard_normal(count)
        polar = math.pi / 2 + 0.155 * rng.standard_normal(count)
        return yaw, np.clip(polar, 0.1, math.pi - 0.1)


@dataclass(frozen=True)
class CarScene:
    """A car-like shape: rounded-box body and cabin (smooth union), four cylinder wheels.

    The car points along +z, its wheels on the x sides; windows, lights and hubs are colour.
    """

    kind: ClassVar[str] = "car"
    bounds: ClassVar[tuple[tuple[float, float, float], float]] = ((0.0, 0.0, 0.0), 0.62)

    body_half_size: tuple[float, float, float]
    body_rounding: float
    body_height: float
    cabin_half_size: tuple[float, float, float]
    cabin_offset: float
    wheel_radius: float
    wheel_half_width: float
    wheelbase_half: float
    paint: tuple[float, float, float]

    @classmethod
    def sample(cls, rng: np.random.Generator) -> CarScene:
        """Draw one car: proportions jitter (hatchback to saloon), paint of random hue."""
        width, height, length = rng.uniform(0.17, 0.21), rng.uniform(0.06, 0.085), rng.uniform(0.33, 0.4)
        paint = colorsys.hsv_to_rgb(rng.uniform(0.0, 1.0), rng.uniform(0.35, 0.9), rng.uniform(0.45, 0.95))
        return cls(
            body_half_size=(float(width), float(height), float(length)),
            body_rounding=float(rng.uniform(0.035, 0.055)),
            body_height=float(rng.uniform(-0.05, -0.02)),
            cabin_half_size=(float(width * 0.86), float(rng.uniform(0.055, 0.075)),
                             float(length * rng.uniform(0.42, 0.58))),
            cabin_offset=float(rng.uniform(-0.08, 0.02)),
            wheel_radius=float(rng.uniform(0.07, 0.085)),
            wheel_half_width=float(rng.uniform(0.028, 0.04)),
            wheelbase_half=float(length * rng.uniform(0.58, 0.66)),
            paint=tuple(float(c) for c in paint),
        )

    def _parts(self, points: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Distances ``[N]`` to the body, the cabin and the nearest wheel."""
        dtype = points.dtype
        body = rounded_box(points - torch.tensor((0.0, self.body_height, 0.0), dtype=dtype),
                           self.body_half_size, self.body_rounding)
        cabin_centre = (0.0, self.body_height + self.body_half_size[1] + 0.55 * self.cabin_half_size[1],
                        self.cabin_offset)
        cabin = rounded_box(points - torch.tensor(cabin_centre, dtype=dtype), self.cabin_half_size, 0.05)
        folded = _abs_x(points)
        folded = torch.cat([folded[:, :2], folded[:, 2:].abs()], dim=-1)  # four wheels: fold z as well
        wheel_centre = (self.body_half_size[0] - self.wheel_half_width, self.body_height - self.body_half_size[1],
                        self.wheelbase_half)
        wheel = capped_cylinder_x(folded - torch.tensor(wheel_centre, dtype=dtype), self.wheel_radius,
                                  self.wheel_half_width)
        return body, cabin, wheel

    def sdf(self, points: Tensor) -> Tensor:
        """Signed distance ``[N]`` of world points ``[N, 3]`` (negative inside)."""
        body, cabin, wheel = self._parts(points)
        return torch.minimum(smooth_union(body, cabin, 0.04), wheel)

    def albedo(self, points: Tensor) -> Tensor:
        """Surface colour ``[N, 3]`` in ``[0, 1]`` of world points ``[N, 3]`` on (or near) the surface."""
        body, cabin, wheel = self._parts(points)
        x, y, z = points[:, 0], points[:, 1], points[:, 2]
        colour = _rgb(self.paint, points).expand(points.shape[0], 3)
        belt_line = self.body_height + self.body_half_size[1] + 0.012
        windows = (cabin < body) & (y > belt_line) & (y < belt_line + 1.6 * self.cabin_half_size[1] - 0.02)
        colour = _where_rgb(windows, _rgb((0.12, 0.15, 0.2), points), colour)
        half_width, length = self.body_half_size[0], self.body_half_size[2]
        lamp_band = (x.abs() > 0.45 * half_width) & (x.abs() < 0.85 * half_width) & (
            (y - self.body_height).abs() < 0.35 * self.body_half_size[1])
        colour = _where_rgb(lamp_band & (z > length - 0.012), _rgb((1.0, 0.95, 0.7), points), colour)
        colour = _where_rgb(lamp_band & (z < -length + 0.012), _rgb((0.8, 0.05, 0.05), points), colour)
        on_wheel = wheel < torch.minimum(body, cabin)
        hub_radius = (points[:, 1:] - torch.stack(
            [torch.full_like(y, self.body_height - self.body_half_size[1]),
             torch.sign(z) * self.wheelbase_half], dim=-1)).norm(dim=-1)
        colour = _where_rgb(on_wheel, _rgb((0.09, 0.09, 0.09), points), colour)
        colour = _where_rgb(on_wheel & (hub_radius < 0.5 * self.wheel_radius), _rgb((0.7, 0.7, 0.72), points), colour)
        return colour

    @staticmethod
    def sample_angles(rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
        """``count`` (yaw, polar) pairs: yaw uniform, elevation 5-50 degrees uniform on the sphere."""
        yaw = rng.uniform(0.0, 2 * math.pi, count)
        sin_elevation = rng.uniform(math.sin(math.radians(5.0)), math.sin(math.radians(50.0)), count)
        return yaw, np.arccos(sin_elevation)  # polar angle from +y = 90 degrees - elevation


@dataclass(frozen=True)
class ScenePreset:
    """A scene type with the cameras and light of the data set it imitates (see the module doc).

    ``angles`` draws ``count`` (yaw, polar) pairs from ``rng``; ``None``: the scene type's ``sample_angles``.
    """

    name: str
    scene_type: type
    radius: float
    pivot: tuple[float, float, float]
    focal: float
    light_direction: tuple[float, float, float]  # towards the light; in the y-z plane to keep x-symmetry
    ambient: float
    angles: Callable[[np.random.Generator, int], tuple[np.ndarray, np.ndarray]] | None = None

    def sample_scene(self, rng: np.random.Generator) -> HeadScene | CarScene:
        return self.scene_type.sample(rng)

    def scene_from_dict(self, params: dict) -> HeadScene | CarScene:
        """Rebuild a scene from :func:`scene_to_dict` output (lists become tuples)."""
        names = {f.name for f in fields(self.scene_type)}
        unknown = set(params) - names
        if unknown:
            raise ValueError(
                f"{self.name} scene parameters have unknown keys {sorted(unknown)}; expected {sorted(names)}"
            )
        return self.scene_type(**{k: tuple(v) if isinstance(v, list) else v for k, v in params.items()})

    def sample_cameras(self, rng: np.random.Generator, count: int) -> Cameras:
        """``count`` cameras on the preset's sphere, looking at its pivot; ``angles`` are gan3d's (yaw, polar)
        (:class:`~gan3d.core.types.Cameras`; :func:`yaw_pitch` gives the set's (yaw, pitch) about the front)."""
        yaw, polar = (self.angles or self.scene_type.sample_angles)(rng, count)
        return self.cameras_at(torch.tensor(yaw, dtype=torch.float32), torch.tensor(polar, dtype=torch.float32))

    def cameras_at(self, yaw: Tensor, polar: Tensor) -> Cameras:
        """Cameras at gan3d's ``[B]`` (yaw, polar) on the preset's sphere, looking at its pivot, with its focal."""
        pivot = torch.tensor(self.pivot, dtype=yaw.dtype)
        origin = spherical_origin(yaw, polar, self.radius, pivot)
        return Cameras(look_at(origin, pivot), focal_to_intrinsics(self.focal, len(yaw)),
                       torch.stack([yaw, polar], dim=-1))


def yaw_pitch(angles: Tensor) -> Tensor:
    """``[B, 2]`` (yaw, pitch) about the front view of gan3d's ``[B, 2]`` (yaw, polar) camera angles: yaw
    about +y measured from +z (towards +x), pitch above the x-z plane (the synthetic sets' ``"angles"``)."""
    return torch.stack([angles[:, 0] - math.pi / 2, math.pi / 2 - angles[:, 1]], dim=-1)


def yaw_polar(angles: Tensor) -> Tensor:
    """The inverse of :func:`yaw_pitch`: gan3d's (yaw, polar) of (yaw, pitch) about the front view."""
    return torch.stack([angles[:, 0] + math.pi / 2, math.pi / 2 - angles[:, 1]], dim=-1)


def scene_to_dict(scene: HeadScene | CarScene) -> dict:
    """JSON-able parameters of a scene."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(scene).items()}


def _head_angles_right(rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
    """``head``'s cameras folded onto yaw >= 0 (same draws, ``|yaw - front|``): a half-normal yaw."""
    yaw, polar = HeadScene.sample_angles(rng, count)
    return math.pi / 2 + np.abs(yaw - math.pi / 2), polar


PRESETS: dict[str, ScenePreset] = {
    "head": ScenePreset("head", HeadScene, radius=2.7, pivot=(0.0, 0.0, 0.2), focal=EG3D_FFHQ_FOCAL,
                        light_direction=(0.0, 0.6, 0.8), ambient=0.35),
    "head_right": ScenePreset("head_right", HeadScene, radius=2.7, pivot=(0.0, 0.0, 0.2), focal=EG3D_FFHQ_FOCAL,
                              light_direction=(0.0, 0.6, 0.8), ambient=0.35, angles=_head_angles_right),
    "car": ScenePreset("car", CarScene, radius=1.7, pivot=(0.0, 0.0, 0.0), focal=EG3D_SHAPENET_FOCAL,
                       light_direction=(0.0, 0.8, 0.6), ambient=0.4),
}


def get_preset(name: str) -> ScenePreset:
    """The preset called ``name`` (``'head'``, ``'head_right'`` or ``'car'``)."""
    if name not in PRESETS:
        raise ValueError(f"unknown synthetic preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name]
