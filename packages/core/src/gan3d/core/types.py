"""Typed containers for what passes between module families.

Every tensor carries its shape in the field's docstring comment; ``B`` is the batch, ``R`` the rays
of one image (``H*W`` or a chunk of them), ``S`` the samples along a ray, ``C`` embedded feature
channels, ``F`` decoded feature channels (the first three are RGB when a method renders colour).

Conventions (the same as EG3D's camera labels):

* ``cam2world`` maps camera coordinates to world coordinates, OpenCV camera axes: ``+x`` right,
  ``+y`` down, ``+z`` forward (the viewing direction).
* ``intrinsics`` are normalized by the image size: ``fx/W, fy/H, cx/W, cy/H`` in a 3x3 matrix, so
  one label serves any resolution.
* The world is y-up; objects sit around the origin.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "Cameras",
    "RaySamples",
    "Field",
    "Render",
    "GeneratorOutput",
    "DiscriminatorOutput",
]


def _map_tensors(obj: Any, fn) -> Any:
    """Return a copy of dataclass ``obj`` with ``fn`` applied to every tensor field."""
    changes = {}
    for f in fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, Tensor):
            changes[f.name] = fn(value)
        elif isinstance(value, dict):
            changes[f.name] = {k: fn(v) if isinstance(v, Tensor) else v for k, v in value.items()}
    return dataclasses.replace(obj, **changes)


@dataclass
class Cameras:
    """A batch of pinhole cameras.

    Attributes:
        cam2world: ``[B, 4, 4]`` camera-to-world matrices (OpenCV camera axes).
        intrinsics: ``[B, 3, 3]`` normalized intrinsics (``fx/W``, ``fy/H``, ``cx/W``, ``cy/H``).
        angles: optional ``[B, 2]`` (yaw, polar) in radians that produced the pose, for methods whose
            discriminator predicts the pose (pi-GAN) and for pose metrics, in the convention of
            :func:`gan3d.core.cameras.spherical_origin`: yaw is the azimuth about the world y axis
            (``pi/2`` faces the front, +z), polar the angle from the +y axis (``pi/2`` is level).

    Example:
        >>> cams = Cameras.from_label(torch.zeros(2, 25))
        >>> cams.label.shape
        torch.Size([2, 25])
    """

    cam2world: Tensor
    intrinsics: Tensor
    angles: Tensor | None = None

    def __post_init__(self) -> None:
        if self.cam2world.ndim != 3 or self.cam2world.shape[-2:] != (4, 4):
            raise ValueError(f"cam2world must be [B, 4, 4], got {tuple(self.cam2world.shape)}")
        if self.intrinsics.ndim != 3 or self.intrinsics.shape[-2:] != (3, 3):
            raise ValueError(f"intrinsics must be [B, 3, 3], got {tuple(self.intrinsics.shape)}")
        if self.cam2world.shape[0] != self.intrinsics.shape[0]:
            raise ValueError("cam2world and intrinsics have different batch sizes")

    @property
    def batch_size(self) -> int:
        return self.cam2world.shape[0]

    @property
    def origins(self) -> Tensor:
        """``[B, 3]`` camera centres in world coordinates."""
        return self.cam2world[:, :3, 3]

    @property
    def label(self) -> Tensor:
        """``[B, 25]`` EG3D camera label: 16 cam2world floats then 9 intrinsics floats."""
        b = self.batch_size
        return torch.cat([self.cam2world.reshape(b, 16), self.intrinsics.reshape(b, 9)], dim=1)

    @classmethod
    def from_label(cls, label: Tensor, angles: Tensor | None = None) -> Cameras:
        """Build cameras from ``[B, 25]`` EG3D labels."""
        if label.ndim != 2 or label.shape[1] != 25:
            raise ValueError(f"a camera label must be [B, 25], got {tuple(label.shape)}")
        b = label.shape[0]
        return cls(label[:, :16].reshape(b, 4, 4), label[:, 16:].reshape(b, 3, 3), angles)

    def to(self, device: torch.device | str) -> Cameras:
        return _map_tensors(self, lambda t: t.to(device))

    def __getitem__(self, index) -> Cameras:
        return _map_tensors(self, lambda t: t[index])

    def mirror_x(self) -> Cameras:
        """The cameras that see the image mirrored left-right, for a scene mirrored about x=0.

        Flipping the world x axis and the camera x axis keeps the matrix a rotation; ``cx`` moves
        to ``1 - cx``. Yaw is mirrored about the front (``yaw -> pi - yaw``). This is what x-flip
        augmentation must do to a label.
        """
        flip = torch.diag(torch.tensor([-1.0, 1.0, 1.0, 1.0], dtype=self.cam2world.dtype,
                                        device=self.cam2world.device))
        cam2world = flip @ self.cam2world @ flip
        intrinsics = self.intrinsics.clone()
        intrinsics[:, 0, 2] = 1.0 - intrinsics[:, 0, 2]
        intrinsics[:, 0, 1] = -intrinsics[:, 0, 1]  # skew changes sign with the x axis
        angles = None
        if self.angles is not None:
            angles = self.angles.clone()
            angles[:, 0] = math.pi - angles[:, 0]
        return Cameras(cam2world, intrinsics, angles)


@dataclass
class RaySamples:
    """Points sampled along camera rays.

    Attributes:
        origins: ``[B, R, 3]`` ray origins in world coordinates.
        directions: ``[B, R, 3]`` unit ray directions in world coordinates.
        depths: ``[B, R, S, 1]`` distance of each sample from the origin along the ray, sorted
            ascending along ``S``.
        points: ``[B, R, S, 3]`` sample positions. Usually ``origins + depths * directions``, but a
            point sampler may place them otherwise (GRAM's surface intersections) as long as
            ``depths`` stays the distance along the ray used for compositing.
        deltas: optional ``[B, R, S, 1]`` interval lengths; when ``None`` the renderer derives them
            from ``depths``. Samplers with a fixed interval (GRAM) set them.
    """

    origins: Tensor
    directions: Tensor
    depths: Tensor
    points: Tensor
    deltas: Tensor | None = None

    @classmethod
    def along_rays(cls, origins: Tensor, directions: Tensor, depths: Tensor) -> RaySamples:
        """Samples at ``depths`` ``[B, R, S, 1]`` along rays ``origins, directions`` ``[B, R, 3]``."""
        points = origins.unsqueeze(-2) + depths * directions.unsqueeze(-2)
        return cls(origins, directions, depths, points)

    @property
    def num_samples(self) -> int:
        return self.depths.shape[-2]

    @property
    def sample_directions(self) -> Tensor:
        """``[B, R, S, 3]`` the ray direction repeated for every sample (a view, no copy)."""
        return self.directions.unsqueeze(-2).expand_as(self.points)

    def rays(self, index: slice) -> RaySamples:
        """The samples of a subset of rays (``index`` selects along ``R``), for chunked rendering."""
        return _map_tensors(self, lambda t: t[:, index])


@dataclass
class Field:
    """What a feature decoder says about each sample point.

    Exactly one of ``density``, ``sdf`` and ``occupancy`` is set; the volume renderer that reads
    the field turns it into opacity.

    Attributes:
        features: ``[B, R, S, F]`` colour or feature vector (first three channels RGB where the
            method renders colour directly).
        density: ``[B, R, S, 1]`` raw (pre-activation) volume density; the renderer applies the
            activation named in its config.
        sdf: ``[B, R, S, 1]`` signed distance (negative inside).
        occupancy: ``[B, R, S, 1]`` occupancy probability in ``[0, 1]`` (GRAM-style alpha).
        extras: named per-sample tensors a method's losses need (e.g. StyleSDF's SDF gradients).
    """

    features: Tensor
    density: Tensor | None = None
    sdf: Tensor | None = None
    occupancy: Tensor | None = None
    extras: dict[str, Tensor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        given = [n for n in ("density", "sdf", "occupancy") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(f"a Field needs exactly one of density, sdf, occupancy; got {given}")

    @property
    def kind(self) -> str:
        """``'density'``, ``'sdf'`` or ``'occupancy'``."""
        for n in ("density", "sdf", "occupancy"):
            if getattr(self, n) is not None:
                return n
        raise AssertionError("unreachable")

    @property
    def geometry(self) -> Tensor:
        """The ``[B, R, S, 1]`` geometry tensor, whichever kind it is."""
        return getattr(self, self.kind)

    def rays(self, index: slice) -> Field:
        return _map_tensors(self, lambda t: t[:, index])

    def gather(self, order: Tensor) -> Field:
        """Reorder samples along ``S`` with ``order`` ``[B, R, S]``."""

        def take(t: Tensor) -> Tensor:
            return torch.gather(t, 2, order.unsqueeze(-1).expand(*order.shape, t.shape[-1]))

        return _map_tensors(self, take)


@dataclass
class Render:
    """The output of a volume renderer for a set of rays.

    Attributes:
        features: ``[B, R, F]`` composited features (or colour).
        depth: ``[B, R, 1]`` expected depth along the ray (weights times sample depths).
        weights: ``[B, R, S, 1]`` compositing weights, ``alpha_i * prod_{j<i}(1 - alpha_j)``.
        alpha: ``[B, R, 1]`` accumulated opacity, the sum of the weights.
    """

    features: Tensor
    depth: Tensor
    weights: Tensor
    alpha: Tensor


@dataclass
class GeneratorOutput:
    """What an assembled generator returns for one batch.

    Attributes:
        image: ``[B, 3, H, W]`` final image in ``[-1, 1]``.
        image_raw: ``[B, 3, h, w]`` the volume-rendered image before the upsampler (equal to
            ``image`` when the upsampler is the identity).
        depth: ``[B, 1, h, w]`` rendered depth (distance along the ray).
        alpha: ``[B, 1, h, w]`` accumulated opacity.
        features: ``[B, F, h, w]`` the rendered feature image fed to the upsampler.
        cameras: the cameras the batch was rendered from.
        ws: ``[B, num_ws, w_dim]`` the latents used.
        aux: extra tensors for method losses (e.g. ``'sdf_gradients'``, ``'points'``), filled only
            when the caller asks for them.
        surface_depth: ``[B, 1, h, w]`` the depth of the surface each pixel sees, the same for every
            renderer whatever its ``depth_mode``: ``depth / alpha`` when ``depth`` is the plain
            expectation ``sum_i w_i t_i`` (pi-GAN, NeRF), ``depth`` itself when the renderer already
            normalizes by the weights (EG3D, GRAM); NaN where ``alpha <= 0.5`` (background).
            Metrics and visualizers read this, so they compare methods on one definition.
    """

    image: Tensor
    image_raw: Tensor
    depth: Tensor
    alpha: Tensor
    features: Tensor
    cameras: Cameras
    ws: Tensor
    aux: dict[str, Any] = field(default_factory=dict)
    surface_depth: Tensor | None = None


@dataclass
class DiscriminatorOutput:
    """What a discriminator returns.

    Attributes:
        logits: ``[B, 1]`` real/fake logits.
        pose: optional ``[B, 2]`` predicted (yaw, pitch), for pi-GAN's position loss.
        latent: optional ``[B, z_dim]`` predicted latent, for pi-GAN's latent loss.
    """

    logits: Tensor
    pose: Tensor | None = None
    latent: Tensor | None = None
