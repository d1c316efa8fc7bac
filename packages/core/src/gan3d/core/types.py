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
    "CameraRig",
    "PatchParams",
    "RaySamples",
    "Field",
    "Render",
    "FieldSamples",
    "SceneLatent",
    "ObjectFrames",
    "GeneratorOutput",
    "DiscriminatorInput",
    "DiscriminatorOutput",
    "UpsampledImages",
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
        align_corners: where the rays of an ``h x w`` render of these cameras go. ``False``: through
            pixel centres, ``u = (j + 0.5) / w``; ``True``: on the corner-aligned grid ``u = j / (w - 1)``
            that spans the image from edge to edge (GRAF's and EpiGRAF's patches, see :meth:`crop`).

    Example:
        >>> cams = Cameras.from_label(torch.zeros(2, 25))
        >>> cams.label.shape
        torch.Size([2, 25])
    """

    cam2world: Tensor
    intrinsics: Tensor
    angles: Tensor | None = None
    align_corners: bool = False

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

    def crop(self, scales: Tensor, offsets: Tensor, *, align_corners: bool = False) -> Cameras:
        """The cameras whose image is a square patch of this image: a patch is a cropped camera.

        Args:
            scales: ``[B]`` patch side as a fraction of the image side, in ``(0, 1]``.
            offsets: ``[B, 2]`` the patch's top-left corner ``(x, y)`` in normalized image
                coordinates (``[0, 1 - scale]`` keeps the patch inside the image; EpiGRAF's
                ``patch_offsets``).
            align_corners: place the rays of a ``K x K`` render on the grid that spans the patch from
                corner to corner (``u = x + s j / (K - 1)``, GRAF's and EpiGRAF's ``linspace(-1, 1, K)``
                patch grids) instead of through the ``K x K`` pixel centres of the patch.

        A normalized image coordinate ``u`` of the full image is ``(u - x) / s`` in the patch, so
        ``fx' = fx / s``, ``cx' = (cx - x) / s`` (and likewise for ``y``); the skew scales with them.
        Angles are kept: the patch is seen from the same pose.

        Example:
            >>> cams = Cameras.from_label(torch.tensor([[1.0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1,
            ...                                          2.0, 0, 0.5, 0, 2.0, 0.5, 0, 0, 1]]))
            >>> cams.crop(torch.tensor([0.5]), torch.tensor([[0.25, 0.0]])).intrinsics[0]
            tensor([[4., 0., 0.5000],
                    [0., 4., 1.0000],
                    [0., 0., 1.0000]])
        """
        b = self.batch_size
        scales = torch.as_tensor(scales, dtype=self.intrinsics.dtype, device=self.intrinsics.device)
        offsets = torch.as_tensor(offsets, dtype=self.intrinsics.dtype, device=self.intrinsics.device)
        if scales.shape != (b,) or offsets.shape != (b, 2):
            raise ValueError(f"crop needs scales [{b}] and offsets [{b}, 2], got {tuple(scales.shape)} and "
                             f"{tuple(offsets.shape)}")
        k = self.intrinsics.clone()
        s = scales[:, None]
        k[:, 0, :] = torch.stack([k[:, 0, 0], k[:, 0, 1], k[:, 0, 2] - offsets[:, 0]], -1) / s
        k[:, 1, 1:] = torch.stack([k[:, 1, 1], k[:, 1, 2] - offsets[:, 1]], -1) / s
        return Cameras(self.cam2world, k, self.angles, align_corners)

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
        return Cameras(cam2world, intrinsics, angles, self.align_corners)


@dataclass(frozen=True)
class CameraRig:
    """The mean camera of a pose sampler and the orbit it turns on (declared by every pose sampler).

    Cameras of the rig sit at distance ``radius`` from ``orbit_center`` and look at ``pivot`` (EG3D's
    ``LookAtPoseSampler``), with normalized focal length ``focal``. ``yaw`` and ``polar`` are the mean
    view (radians, :mod:`gan3d.core.cameras` convention: ``pi/2, pi/2`` is the front), ``yaw_range`` and
    ``polar_range`` the ``(low, high)`` the sampler draws from (or mean +- 2 stddev for normal draws),
    so visualizers and metrics look at the model from where it was trained to look good.

    Example:
        >>> rig = CameraRig(pivot=(0.0, 0.0, 0.2), radius=2.7, focal=4.2647)
        >>> rig.cameras(torch.tensor([math.pi / 2]), torch.tensor([math.pi / 2])).cam2world[0, :3, 3]
        tensor([0.0000, 0.0000, 2.7000])
    """

    pivot: tuple[float, float, float]
    radius: float
    focal: float
    orbit_center: tuple[float, float, float] = (0.0, 0.0, 0.0)
    yaw: float = math.pi / 2
    polar: float = math.pi / 2
    yaw_range: tuple[float, float] = (math.pi / 2, math.pi / 2)
    polar_range: tuple[float, float] = (math.pi / 2, math.pi / 2)

    def __post_init__(self) -> None:
        if len(self.pivot) != 3 or len(self.orbit_center) != 3:
            raise ValueError(f"a camera rig's pivot and orbit_center are 3 floats each, got {self.pivot} and "
                             f"{self.orbit_center}")
        if not (self.radius > 0 and self.focal > 0):
            raise ValueError(f"a camera rig needs a positive radius and focal, got {self.radius} and {self.focal}")

    def cameras(self, yaw: Tensor, polar: Tensor, device: torch.device | str = "cpu") -> Cameras:
        """Cameras of the rig at yaw ``[B]`` and polar angle ``[B]`` (radians) about the orbit centre,
        looking at the pivot; ``Cameras.angles`` holds ``(yaw, polar)``."""
        from .cameras import focal_to_intrinsics, look_at, spherical_origin

        yaw = torch.as_tensor(yaw).to(device=device, dtype=torch.float32)
        polar = torch.as_tensor(polar).to(device=device, dtype=torch.float32)
        pivot = torch.tensor(self.pivot, dtype=torch.float32, device=device)
        center = torch.tensor(self.orbit_center, dtype=torch.float32, device=device)
        cam2world = look_at(spherical_origin(yaw, polar, self.radius, center), pivot)
        intrinsics = focal_to_intrinsics(self.focal, yaw.shape[0], device=device)
        return Cameras(cam2world, intrinsics, torch.stack([yaw, polar], dim=-1))

    def mean_cameras(self, batch_size: int = 1, device: torch.device | str = "cpu") -> Cameras:
        """``batch_size`` copies of the mean camera."""
        return self.cameras(torch.full((batch_size,), self.yaw), torch.full((batch_size,), self.polar), device)


@dataclass
class PatchParams:
    """Square patches of images, one per batch item (GRAF, EpiGRAF patch training).

    Attributes:
        scales: ``[B]`` patch side as a fraction of the image side, in ``(0, 1]``.
        offsets: ``[B, 2]`` top-left corner ``(x, y)`` in normalized image coordinates, in ``[0, 1 - scale]``.
        align_corners: the patch's ``K x K`` samples lie on its corner-aligned grid (see
            :meth:`Cameras.crop`).

    The same object crops the cameras the fake patch is rendered from (:meth:`cameras`) and cuts the
    real patch from the full-resolution reals (:meth:`cut`), so both see the same points of the image.
    """

    scales: Tensor
    offsets: Tensor
    align_corners: bool = False

    def __post_init__(self) -> None:
        if self.scales.ndim != 1 or self.offsets.shape != (self.scales.shape[0], 2):
            raise ValueError(f"patch scales must be [B] and offsets [B, 2], got {tuple(self.scales.shape)} and "
                             f"{tuple(self.offsets.shape)}")

    def cameras(self, cameras: Cameras) -> Cameras:
        """The patch cameras of full-image ``cameras``."""
        return cameras.crop(self.scales, self.offsets, align_corners=self.align_corners)

    def coordinates(self, resolution: int) -> Tensor:
        """``[B, K, K, 2]`` normalized full-image coordinates ``(u, v)`` of the ``K x K`` patch samples."""
        k = resolution
        steps = torch.arange(k, dtype=self.scales.dtype, device=self.scales.device)
        grid = steps / (k - 1) if self.align_corners and k > 1 else (steps + 0.5) / k
        v, u = torch.meshgrid(grid, grid, indexing="ij")
        uv = torch.stack([u, v], dim=-1)  # [K, K, 2]
        return self.offsets[:, None, None, :] + self.scales[:, None, None, None] * uv

    def cut(self, images: Tensor, resolution: int, mode: str = "bilinear") -> Tensor:
        """Patches ``[B, C, K, K]`` of ``images [B, C, H, W]`` at the patch samples (bilinear, border
        padding), for the real half of a patch-trained GAN."""
        grid = self.coordinates(resolution).to(images.dtype) * 2 - 1  # grid_sample's [-1, 1], align_corners=False
        return torch.nn.functional.grid_sample(images, grid, mode=mode, padding_mode="border", align_corners=False)

    def __getitem__(self, index) -> PatchParams:
        return PatchParams(self.scales[index], self.offsets[index], self.align_corners)

    def to(self, device: torch.device | str) -> PatchParams:
        return PatchParams(self.scales.to(device), self.offsets.to(device), self.align_corners)


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
        mask: optional ``[B, R, S, 1]`` bool validity of each sample; the renderer gives an invalid
            sample no opacity (GRAM's missed manifold crossings, GIRAFFE's points outside an object's
            box). ``None``: every sample is valid.
        sample_directions_override: optional ``[B, R, S, 3]`` per-sample viewing directions, set when
            the samples were moved into a local frame (:meth:`in_frame`); ``None``: the ray directions.
    """

    origins: Tensor
    directions: Tensor
    depths: Tensor
    points: Tensor
    deltas: Tensor | None = None
    mask: Tensor | None = None
    sample_directions_override: Tensor | None = None

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
        """``[B, R, S, 3]`` the viewing direction at every sample (the ray's, repeated as a view, unless
        the samples live in a local frame)."""
        if self.sample_directions_override is not None:
            return self.sample_directions_override
        return self.directions.unsqueeze(-2).expand_as(self.points)

    def rays(self, index: slice) -> RaySamples:
        """The samples of a subset of rays (``index`` selects along ``R``), for chunked rendering."""
        return _map_tensors(self, lambda t: t[:, index])

    def in_frame(self, scale: Tensor, translation: Tensor, rotation: Tensor,
                 box_padding: float | None = None) -> RaySamples:
        """The same samples seen in a local (object) frame: ``p' = R (p - t) / s``, unit directions
        ``R d / s`` normalised (GIRAFFE ``transform_points_to_box``, ``get_evaluation_points``).

        Args:
            scale, translation: ``[B, 3]``; rotation: ``[B, 3, 3]`` world-to-local.
            box_padding: when given, samples outside the padded unit box ``|p'| <= 1 + box_padding``
                are masked out (GIRAFFE zeroes object densities there).

        ``depths`` and ``deltas`` stay world distances along the ray (compositing is done in the
        world); the existing mask is kept and combined.
        """
        p = torch.einsum("bij,brsj->brsi", rotation, self.points - translation[:, None, None, :])
        p = p / scale[:, None, None, :]
        d = torch.einsum("bij,brsj->brsi", rotation, self.sample_directions) / scale[:, None, None, :]
        d = d / d.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        mask = self.mask
        if box_padding is not None:
            inside = (p.abs() <= 1.0 + box_padding).all(dim=-1, keepdim=True)
            mask = inside if mask is None else mask & inside
        return RaySamples(self.origins, self.directions, self.depths, p, self.deltas, mask, d)


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
        weights: ``[B, R, S, 1]`` compositing weights, ``alpha_i * prod_{j<i}(1 - alpha_j)``, for the
            samples of the first (main) sample set (the ones importance sampling refines).
        alpha: ``[B, R, 1]`` accumulated opacity, the sum of all weights.
        transmittance: ``[B, R, 1]`` light left after the last interval, ``prod_i (1 - alpha_i)``, for
            compositing something behind the rendered samples (``None`` where a renderer does not say).
        interval_features, interval_weights, interval_depths: ``[B, R, N, F]``, ``[B, R, N, 1]``,
            ``[B, R, N, 1]``: every quadrature interval of the composited ray (all sample sets merged, in
            depth order) with its features, compositing weight and depth, so that ``features = sum_n
            interval_weights_n * interval_features_n`` (before a white background). Kept only when the
            ``'intervals'`` request asks for them (StyleNeRF's NeRF path regularization pushes each
            interval's features through its upsampler before compositing); ``None`` otherwise.
    """

    features: Tensor
    depth: Tensor
    weights: Tensor
    alpha: Tensor
    transmittance: Tensor | None = None
    interval_features: Tensor | None = None
    interval_weights: Tensor | None = None
    interval_depths: Tensor | None = None


@dataclass
class UpsampledImages:
    """What an upsampler returns when it also changes the raw image (see :class:`~gan3d.core.interfaces.Upsampler`).

    Attributes:
        image: ``[B, 3, H, W]`` the final image.
        image_raw: ``[B, 3, h, w]`` the raw image the generator reports (and a dual discriminator sees) in
            place of the rendered RGB.
    """

    image: Tensor
    image_raw: Tensor


@dataclass
class FieldSamples:
    """One field evaluated at one set of samples: what a volume renderer composites.

    Attributes:
        samples: where the field was evaluated (``depths``, ``deltas`` and ``mask`` are used).
        field: the decoder's output there.
        sample_set: the name of the sample set; parts with the same name share their samples (GIRAFFE's
            objects and background) and are composed at them before compositing.
        name: the layer's name (``'main/0'``, ``'background/0'``), for per-layer renders.
    """

    samples: RaySamples
    field: Field
    sample_set: str = "main"
    name: str = "main/0"


@dataclass
class ObjectFrames:
    """The local frames of the instances of one field group (GIRAFFE's objects and background).

    Instance ``i`` sees a world point ``p`` at ``R_i (p - t_i) / s_i``.

    Attributes:
        scale: ``[B, N, 3]`` per-axis scales ``s_i``.
        translation: ``[B, N, 3]`` frame origins ``t_i`` in world coordinates.
        rotation: ``[B, N, 3, 3]`` world-to-local rotations ``R_i``.
        box_padding: when set, samples outside the instance's padded unit box ``|p'| <= 1 + box_padding``
            are invalid (GIRAFFE's objects: 0.1); ``None`` for unbounded frames (its background).
    """

    scale: Tensor
    translation: Tensor
    rotation: Tensor
    box_padding: float | None = None

    def instance(self, samples: RaySamples, index: int) -> RaySamples:
        """``samples`` seen in instance ``index``'s frame (see :meth:`RaySamples.in_frame`)."""
        return samples.in_frame(self.scale[:, index], self.translation[:, index], self.rotation[:, index],
                                self.box_padding)


@dataclass
class SceneLatent:
    """A compositional scene latent: per field group, per instance, codes and (optionally) frames.

    What a compositional stochasticity mapper (GIRAFFE's) returns instead of a ``ws`` tensor. Instance
    ``i`` of group ``g`` reads ``codes[g][:, i]`` ``[B, K, D]`` as its latent rows (GIRAFFE: row 0 the
    shape code, row 1 the appearance code); when ``frames`` has ``g``, its samples are moved into the
    instance's frame before embedding. The number of instances of a group is ``codes[g].shape[1]``.

    Attributes:
        codes: group name -> ``[B, N_g, K_g, D_g]``.
        frames: group name -> :class:`ObjectFrames` with ``N = N_g``.

    Batch operations (:meth:`__getitem__`, :meth:`repeat`, :meth:`cat`, :meth:`to`) act on every
    tensor, so evaluators treat it like a ``ws`` tensor (:mod:`gan3d.core.latents`).
    """

    codes: dict[str, Tensor]
    frames: dict[str, ObjectFrames] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, frame in self.frames.items():
            if name not in self.codes:
                raise ValueError(f"SceneLatent has frames for group {name!r} but no codes")
            n = self.codes[name].shape[1]
            if frame.scale.shape[:2] != self.codes[name].shape[:2]:
                raise ValueError(f"SceneLatent group {name!r}: frames are for {tuple(frame.scale.shape[:2])} "
                                 f"instances, codes for {(self.codes[name].shape[0], n)}")

    @property
    def batch_size(self) -> int:
        return next(iter(self.codes.values())).shape[0]

    def instances(self, group: str) -> int:
        return self.codes[group].shape[1]

    def _map(self, fn) -> SceneLatent:
        frames = {k: ObjectFrames(fn(f.scale), fn(f.translation), fn(f.rotation), f.box_padding)
                  for k, f in self.frames.items()}
        return SceneLatent({k: fn(v) for k, v in self.codes.items()}, frames)

    def __getitem__(self, index) -> SceneLatent:
        if isinstance(index, int):
            index = slice(index, index + 1)
        return self._map(lambda t: t[index])

    def repeat(self, times: int) -> SceneLatent:
        """The batch repeated ``times`` times (``ws.repeat(times, 1, 1)``)."""
        return self._map(lambda t: t.repeat(times, *([1] * (t.ndim - 1))))

    def to(self, device: torch.device | str) -> SceneLatent:
        return self._map(lambda t: t.to(device))

    def detach(self) -> SceneLatent:
        return self._map(lambda t: t.detach())

    @staticmethod
    def cat(latents: list[SceneLatent]) -> SceneLatent:
        """Concatenate along the batch."""
        first = latents[0]
        codes = {k: torch.cat([lat.codes[k] for lat in latents]) for k in first.codes}
        frames = {k: ObjectFrames(*(torch.cat([getattr(lat.frames[k], a) for lat in latents])
                                    for a in ("scale", "translation", "rotation")), f.box_padding)
                  for k, f in first.frames.items()}
        return SceneLatent(codes, frames)

    def with_frame(self, group: str, index: int, *, scale: Tensor | None = None,
                   translation: Tensor | None = None, rotation: Tensor | None = None) -> SceneLatent:
        """A copy with instance ``index`` of ``group`` given a new ``scale`` / ``translation`` (``[3]`` or
        ``[B, 3]``) or ``rotation`` (``[3, 3]`` or ``[B, 3, 3]``); ``None`` keeps the current value."""
        if group not in self.frames:
            raise ValueError(f"SceneLatent has no frames for group {group!r}; groups with frames: "
                             f"{', '.join(self.frames) or 'none'}")
        n = self.instances(group)
        if not 0 <= index < n:
            raise ValueError(f"instance index must be in [0, {n}) for group {group!r}, got {index}")
        out = self._map(lambda t: t.clone())
        frame = out.frames[group]
        for name, value in (("scale", scale), ("translation", translation), ("rotation", rotation)):
            if value is None:
                continue
            target = getattr(frame, name)
            value = torch.as_tensor(value, dtype=target.dtype, device=target.device)
            if name == "scale" and bool((value <= 0).any()):
                raise ValueError("frame scales must be positive")
            target[:, index] = value
        return out


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
        ws: the latents used: ``[B, num_ws, w_dim]``, or a :class:`SceneLatent`.
        aux: what the caller asked for with ``requests`` (``'samples'``, ``'fields'``, ``'weights'``,
            ``'scene'``, ``'sdf_gradients'``), see :data:`gan3d.core.generator.REQUESTS`.
        surface_depth: ``[B, 1, h, w]`` the depth of the surface each pixel sees, the same for every
            renderer whatever its ``depth_mode``: ``depth / alpha`` when ``depth`` is the plain
            expectation ``sum_i w_i t_i`` (pi-GAN, NeRF), ``depth`` itself when the renderer already
            normalizes by the weights (EG3D, GRAM); NaN where ``alpha <= 0.5`` (background).
            Metrics and visualizers read this, so they compare methods on one definition.
        layers: with ``requests={'layers'}``, each field-group instance rendered alone on its own
            samples (``'main/0'``, ``'main/1'``, ``'background/0'``, ...): ``alpha`` and ``depth``
            ``[B, 1, h, w]`` and ``features`` ``[B, F, h, w]`` of that layer.
    """

    image: Tensor
    image_raw: Tensor
    depth: Tensor
    alpha: Tensor
    features: Tensor
    cameras: Cameras
    ws: Tensor | SceneLatent
    aux: dict[str, Any] = field(default_factory=dict)
    surface_depth: Tensor | None = None
    layers: dict[str, Render] = field(default_factory=dict)


@dataclass
class DiscriminatorInput:
    """What a discriminator is shown: one typed container, so a new conditioning needs no core edit.

    Attributes:
        image: ``[B, 3, H, W]`` in ``[-1, 1]`` (a patch for patch-trained methods).
        image_raw: ``[B, 3, h, w]`` the volume-rendered image, for dual discriminators (EG3D).
        camera_label: ``[B, 25]`` EG3D camera labels, for pose-conditioned discriminators.
        camera_angles: ``[B, 2]`` (yaw, polar) of the camera, for angle-conditioned discriminators.
        patch: the :class:`PatchParams` the image was cut or rendered with (GRAF, EpiGRAF).
        alpha: fade-in of a progressive discriminator, in ``[0, 1]``.
        extras: anything else a method's discriminator reads (named tensors).

    :meth:`penalized` names the tensors an R1 penalty differentiates with respect to.
    """

    image: Tensor
    image_raw: Tensor | None = None
    camera_label: Tensor | None = None
    camera_angles: Tensor | None = None
    patch: PatchParams | None = None
    alpha: float = 1.0
    extras: dict[str, Tensor] = field(default_factory=dict)

    def penalized(self) -> dict[str, Tensor]:
        """The image inputs (``image`` and, when present, ``image_raw``) an R1 penalty acts on."""
        out = {"image": self.image}
        if self.image_raw is not None:
            out["image_raw"] = self.image_raw
        return out

    def with_images(self, **images: Tensor) -> DiscriminatorInput:
        """A copy with ``image`` / ``image_raw`` replaced (R1 sets them to leaves needing gradients)."""
        return dataclasses.replace(self, **images)

    def detached(self) -> DiscriminatorInput:
        """A copy whose images carry no graph to the generator."""
        return dataclasses.replace(self, image=self.image.detach(),
                                   image_raw=None if self.image_raw is None else self.image_raw.detach())


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
