"""GRAM's radiance manifolds as a point sampler: each ray is sampled where it crosses the level sets of a
learned scalar field, not along a depth grid.

Deng et al. 2022, "GRAM: Generative Radiance Manifolds for 3D-Aware Image Generation", section 3.1;
facts from microsoft/GRAM (commit 5a5ac8e):

* the manifold predictor (``generators/representations/gram.py`` ``GramSample``): an MLP ``s(x)``
  shared by every generated identity (it reads no latent), on points scaled by ``2 / 0.24``
  (``UniformBoxWarp(0.24)``, fixed for every config) and shifted by ``-center``; ReLU hidden layers
  initialised ``N(0, sqrt(2 / out))`` with zero bias (``geometry_init``), an output layer with the
  constant weight ``10 sqrt(pi / in)`` and bias ``-init_radius`` (``geometry_init_last_layer``,
  after SAL), so that at initialisation ``s`` grows with the distance from the centre and its level
  sets are nested spheres;
* the crossings (``GramSample.get_intersections``, ``calculate_intersection``): ``s`` is evaluated at
  ``num_samples`` evenly spaced depths from ``ray_start`` to ``ray_end`` (no jitter:
  ``get_initial_rays_trig(randomize=False)``); for each level ``l`` the interval ``[t_i, t_{i+1}]``
  crosses it where ``s_i >= l >= s_{i+1}`` (the ray enters the level set); the first such interval
  is taken (the last interval when there is none, which is then invalid) and the crossing is the
  linear interpolation ``((s_{i+1} - l) x_i + (l - s_i) x_{i+1}) / (s_{i+1} - s_i)``, or ``x_{i+1}``
  where ``|s_{i+1} - s_i| <= 0.05``. Gradients reach ``s`` through the interpolation;
* the levels and the background (``generators/renderers/manifold_renderer.py``
  ``ManifoldRenderer.render``): ``linspace(levels_start, levels_end, num_manifolds - 1)`` plus, with
  ``background``, the ray's point on the plane ``z = -0.12`` (``get_intersection_with_MPI``), always
  valid; without background ``num_manifolds`` levels;
* the compositing inputs (``fancy_integration``): samples sorted by their distance from the camera,
  every interval ``delta_alpha`` long (0.04; CARLA 0.02), the last sample's and the background
  point's interval ``delta_final`` (1e10) -- with no background every interval is ``delta_alpha`` --
  and ``alpha *= is_valid``.

The intersections and their validity are returned as :class:`RaySamples` whose ``mask`` says which
samples are real crossings; the volume renderer sets ``alpha = 0`` where the mask is false.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from gan3d.core.cameras import pixel_rays
from gan3d.core.interfaces import PointSampler
from gan3d.core.types import Cameras, RaySamples

__all__ = ["ManifoldScalarField", "LevelSetCrossings", "level_set_crossings", "ManifoldPointSampler"]

#: GramSample's input scaling: ``UniformBoxWarp(0.24)``, the same in every official config.
GRAM_FIELD_BOX_WARP = 0.24
#: calculate_intersection: steps of ``s`` at or below this are not interpolated (the crossing is the
#: far sample), which keeps the division away from zero.
GRAM_MIN_LEVEL_STEP = 0.05


class ManifoldScalarField(nn.Module):
    """GRAM's manifold predictor: ``points [..., 3]`` -> scalar ``s [..., 1]`` (no latent).

    ``s = output_layer(MLP(points * 2 / box_warp - center))`` with ``num_layers`` ReLU layers of
    width ``hidden_dim`` (parameter names as ``GramSample``'s, so its weights load as they are).

    Args:
        hidden_dim: width (GRAM FFHQ 128, Cats 64, CARLA 256: ``hidden_dim_sample``).
        num_layers: hidden ReLU layers (``layer_num_sample``, 3 in every config).
        center: subtracted after the box warp (``center``: (0, 0, -1.5) FFHQ/Cats, (0, 0, 0) CARLA).
        init_radius: the output bias starts at ``-init_radius`` (0 in every config).
        box_warp: points are scaled by ``2 / box_warp`` (0.24 in every config).
    """

    def __init__(self, *, hidden_dim: int = 128, num_layers: int = 3, center: Sequence[float] = (0.0, 0.0, -1.5),
                 init_radius: float = 0.0, box_warp: float = GRAM_FIELD_BOX_WARP) -> None:
        super().__init__()
        if hidden_dim <= 0 or num_layers <= 0:
            raise ValueError(f"the manifold field needs a positive hidden_dim and num_layers, got {hidden_dim}, "
                             f"{num_layers}")
        if len(center) != 3:
            raise ValueError(f"the manifold field's center is 3 floats, got {list(center)}")
        if not box_warp > 0:
            raise ValueError(f"the manifold field's box_warp must be positive, got {box_warp}")
        layers: list[nn.Module] = []
        for i in range(num_layers):
            layers += [nn.Linear(3 if i == 0 else hidden_dim, hidden_dim), nn.ReLU()]
        self.network = nn.Sequential(*layers)
        self.output_layer = nn.Linear(hidden_dim, 1)
        self.scale = 2.0 / float(box_warp)
        self.register_buffer("center", torch.tensor([float(c) for c in center]), persistent=False)
        with torch.no_grad():
            for layer in self.network:
                if isinstance(layer, nn.Linear):  # geometry_init
                    layer.weight.normal_(0.0, math.sqrt(2.0 / layer.out_features))
                    layer.bias.zero_()
            # geometry_init_last_layer: s ~ 10 |x| - init_radius at initialisation.
            self.output_layer.weight.fill_(10.0 * math.sqrt(math.pi / hidden_dim))
            self.output_layer.bias.fill_(-float(init_radius))

    def forward(self, points: Tensor) -> Tensor:
        """``points [..., 3]`` (world) -> ``s [..., 1]``."""
        return self.output_layer(self.network(points * self.scale - self.center))


@dataclass
class LevelSetCrossings:
    """Where rays first enter level sets (see :func:`level_set_crossings`).

    Attributes:
        points: ``[B, R, L, 3]`` the crossing of each level (the far end of the last interval where
            the ray does not cross it).
        valid: ``[B, R, L, 1]`` bool, whether the ray crosses the level.
    """

    points: Tensor
    valid: Tensor


def level_set_crossings(points: Tensor, values: Tensor, levels: Tensor,
                        min_step: float = GRAM_MIN_LEVEL_STEP) -> LevelSetCrossings:
    """The first crossing of each level along each ray, by linear interpolation between samples.

    Args:
        points: ``[B, R, N, 3]`` samples along each ray, in order of depth.
        values: ``[B, R, N, 1]`` the scalar field at ``points``.
        levels: ``[L]`` the levels.
        min_step: steps ``|s_{i+1} - s_i|`` at or below this are not interpolated: the crossing is
            the far sample ``x_{i+1}`` (GRAM's 0.05).

    Interval ``i`` crosses level ``l`` when ``s_i >= l >= s_{i+1}``; the first crossing interval is
    used, and ``x = ((s_{i+1} - l) x_i + (l - s_i) x_{i+1}) / (s_{i+1} - s_i)``, the zero of the
    linear interpolant of ``s - l`` (GRAM ``get_intersections`` / ``calculate_intersection``). A ray
    that never crosses ``l`` gets the far end of its last interval and ``valid = False``.

    Example:
        >>> pts = torch.tensor([0.0, 1.0, 2.0]).view(1, 1, 3, 1) * torch.tensor([0.0, 0.0, 1.0])
        >>> s = torch.tensor([3.0, 1.0, -1.0]).view(1, 1, 3, 1)        # s = 3 - 2 z
        >>> out = level_set_crossings(pts, s, torch.tensor([2.0, 5.0]))
        >>> out.points[0, 0, :, 2].tolist(), out.valid.flatten().tolist()
        ([0.5, 2.0], [True, False])
    """
    if points.ndim != 4 or points.shape[-1] != 3:
        raise ValueError(f"points must be [B, R, N, 3], got {tuple(points.shape)}")
    if values.shape != (*points.shape[:-1], 1):
        raise ValueError(f"values must be [B, R, N, 1] like points {tuple(points.shape)}, got {tuple(values.shape)}")
    if points.shape[2] < 2:
        raise ValueError(f"level crossings need at least 2 samples per ray, got {points.shape[2]}")
    if levels.ndim != 1:
        raise ValueError(f"levels must be a 1-D tensor, got shape {tuple(levels.shape)}")
    s = values.squeeze(-1)                                   # [B, R, N]
    near, far = s[..., :-1, None], s[..., 1:, None]          # [B, R, N-1, 1]
    level = levels.to(s).view(1, 1, 1, -1)                   # [1, 1, 1, L]
    crossing = (far <= level) & (level <= near)              # [B, R, N-1, L]
    valid = crossing.any(dim=2)                              # [B, R, L]
    # argmax returns the first maximum: the first crossing interval; none -> the last interval.
    first = torch.argmax(crossing.to(torch.uint8), dim=2)
    index = torch.where(valid, first, torch.full_like(first, s.shape[-1] - 2))
    s_near = torch.gather(s, 2, index)                       # [B, R, L]
    s_far = torch.gather(s, 2, index + 1)
    gather_xyz = index.unsqueeze(-1).expand(*index.shape, 3)
    x_near = torch.gather(points, 2, gather_xyz)             # [B, R, L, 3]
    x_far = torch.gather(points, 2, gather_xyz + 1)
    step = s_far - s_near
    steep = step.abs() > min_step
    level = level.squeeze(2)                                 # [1, 1, L]
    # The division only ever sees |step| > min_step; elsewhere the value is discarded.
    scale = torch.where(steep, step, torch.full_like(step, min_step))
    interpolated = ((s_far - level).unsqueeze(-1) * x_near + (level - s_near).unsqueeze(-1) * x_far) \
        / scale.unsqueeze(-1)
    crossings = torch.where((valid & steep).unsqueeze(-1), interpolated, x_far)
    return LevelSetCrossings(points=crossings, valid=valid.unsqueeze(-1))


class ManifoldPointSampler(PointSampler):
    """GRAM's ray-manifold intersections (see the module docstring for the official facts).

    Args:
        num_samples: evenly spaced samples per ray where the scalar field is evaluated to find the
            crossings (GRAM ``num_samples`` 64).
        ray_start, ray_end: the depth range of those samples (GRAM FFHQ/Cats 0.88, 1.12; CARLA 0.7, 1.3).
        num_manifolds: samples per ray ``S`` returned, the background point included when there is one
            (GRAM 24 FFHQ/Cats, 48 CARLA).
        levels_start, levels_end: the levels ``linspace(levels_start, levels_end, n)`` with ``n =
            num_manifolds - 1`` with background, ``num_manifolds`` without (23, 8 FFHQ/Cats; 35, 5 CARLA).
        background: add each ray's point on the plane ``z = background_z`` (GRAM FFHQ/Cats; not CARLA).
        background_z: that plane's world ``z`` (GRAM -0.12: the back of the ``0.24`` box).
        delta: the fixed interval of every sample in compositing (GRAM ``delta_alpha`` 0.04; CARLA 0.02).
        delta_final: the interval of the last sample and of the background point, with background
            (GRAM 1e10); without background every interval is ``delta``, as in GRAM.
        hidden_dim, num_layers, center, init_radius, field_box_warp: the scalar field,
            :class:`ManifoldScalarField` (``box_warp``).
        min_level_step: see :func:`level_set_crossings` (GRAM 0.05).
        detach_intersections: find the crossings without gradient, so the scalar field does not
            train through this forward (GRAM's ``partial_grad`` does this; its released training does not
            use it).
        align_corners: cast the rays of an ``h x w`` image on the corner-aligned grid (GRAM's
            ``get_initial_rays_trig``: ``linspace(-1, 1, W)`` in normalized device coordinates, the
            outermost rays on the edges of the field of view) instead of through pixel centres; cameras
            with ``align_corners`` set get that grid either way (see
            :func:`gan3d.core.cameras.pixel_rays`).
        chunk: rays whose crossings are found at a time without autograd (inference; 0: all at once); the
            generator's own ``chunk`` splits the rendering, but the samples of a whole image are found first.

    The returned samples (``S = num_manifolds``) are sorted by distance from the camera:
    ``points [B, R, S, 3]`` the crossings (differentiable w.r.t. the field), ``depths [B, R, S, 1]``
    their distance from the ray origin (no gradient, as in GRAM), ``deltas [B, R, S, 1]`` the fixed
    intervals, ``mask [B, R, S, 1]`` true for valid crossings and the background point.

    Example:
        >>> sampler = ManifoldPointSampler(num_samples=16, num_manifolds=6, hidden_dim=16)
        >>> samples = sampler(cameras, (8, 8))                       # doctest: +SKIP
        >>> samples.points.shape, samples.mask.shape                 # doctest: +SKIP
        (torch.Size([B, 64, 6, 3]), torch.Size([B, 64, 6, 1]))
    """

    supports_importance = False

    def __init__(
        self,
        *,
        num_samples: int = 64,
        ray_start: float = 0.88,
        ray_end: float = 1.12,
        num_manifolds: int = 24,
        levels_start: float = 23.0,
        levels_end: float = 8.0,
        background: bool = True,
        background_z: float = -0.12,
        delta: float = 0.04,
        delta_final: float = 1e10,
        hidden_dim: int = 128,
        num_layers: int = 3,
        center: Sequence[float] = (0.0, 0.0, -1.5),
        init_radius: float = 0.0,
        field_box_warp: float = GRAM_FIELD_BOX_WARP,
        min_level_step: float = GRAM_MIN_LEVEL_STEP,
        detach_intersections: bool = False,
        align_corners: bool = False,
        chunk: int = 8192,
    ) -> None:
        super().__init__()
        if num_samples < 2:
            raise ValueError(f"num_samples must be >= 2 (crossings are found between samples), got {num_samples}")
        if not 0 <= ray_start < ray_end:
            raise ValueError(f"need 0 <= ray_start < ray_end, got ray_start={ray_start}, ray_end={ray_end}")
        if num_manifolds < (2 if background else 1):
            raise ValueError(f"num_manifolds must leave at least one level (background={background}), "
                             f"got {num_manifolds}")
        if not (delta > 0 and delta_final > 0):
            raise ValueError(f"delta and delta_final must be positive, got {delta}, {delta_final}")
        if min_level_step < 0:
            raise ValueError(f"min_level_step must be >= 0, got {min_level_step}")
        self.num_samples = num_samples
        self.ray_start = float(ray_start)
        self.ray_end = float(ray_end)
        self.num_manifolds = num_manifolds
        self.levels_start = float(levels_start)
        self.levels_end = float(levels_end)
        self.background = background
        self.background_z = float(background_z)
        self.delta = float(delta)
        self.delta_final = float(delta_final) if background else float(delta)
        self.min_level_step = float(min_level_step)
        self.detach_intersections = detach_intersections
        if chunk < 0:
            raise ValueError(f"chunk must be >= 0 (0: all rays at once), got {chunk}")
        self.align_corners = bool(align_corners)
        self.chunk = int(chunk)
        self.scalar_field = ManifoldScalarField(hidden_dim=hidden_dim, num_layers=num_layers, center=center,
                                                init_radius=init_radius, box_warp=field_box_warp)

    @property
    def num_levels(self) -> int:
        return self.num_manifolds - 1 if self.background else self.num_manifolds

    def levels(self, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> Tensor:
        """``[num_levels]`` the level values, ``levels_start`` first."""
        return torch.linspace(self.levels_start, self.levels_end, self.num_levels, device=device, dtype=dtype)

    def support(self, points: Tensor) -> Tensor:
        """``[B, R, S, 1]`` bool: the world ``points [B, R, S, 3]`` between the outermost and the innermost
        level (``s`` within ``[levels_end, levels_start]``), the only region where GRAM's crossings lie (the
        background plane aside); shape extraction sees the radiance field's density only there."""
        low, high = sorted((self.levels_start, self.levels_end))
        with torch.no_grad():
            s = self.scalar_field(points)
        return (s >= low) & (s <= high)

    def crossings(self, origins: Tensor, directions: Tensor) -> LevelSetCrossings:
        """The unsorted crossings ``[B, R, num_levels, ...]`` of rays ``origins, directions [B, R, 3]``.

        Without autograd (inference) the rays go through the scalar field ``chunk`` at a time, so a 256-px
        image (65536 rays x 64 samples) does not hold the field's activations for all of them at once."""
        grad = torch.is_grad_enabled() and not self.detach_intersections
        num_rays = origins.shape[1]
        if not grad and self.chunk and num_rays > self.chunk:
            parts = [self.crossings(origins[:, i:i + self.chunk], directions[:, i:i + self.chunk])
                     for i in range(0, num_rays, self.chunk)]
            return LevelSetCrossings(points=torch.cat([p.points for p in parts], 1),
                                     valid=torch.cat([p.valid for p in parts], 1))
        depths = torch.linspace(self.ray_start, self.ray_end, self.num_samples, device=origins.device,
                                dtype=origins.dtype)
        coarse = origins.unsqueeze(-2) + depths.view(1, 1, -1, 1) * directions.unsqueeze(-2)  # [B, R, N, 3]
        with torch.set_grad_enabled(grad):
            values = self.scalar_field(coarse)
            return level_set_crossings(coarse, values, self.levels(origins.device, origins.dtype),
                                       self.min_level_step)

    def forward(
        self,
        cameras: Cameras,
        resolution: tuple[int, int] | None,
        *,
        pixels: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> RaySamples:
        """The manifold samples of every pixel of an ``(h, w)`` image (``R = h * w``, row-major; on the
        corner-aligned grid with ``align_corners``), or of the rays through ``pixels [B, R, 2]``
        (normalized image coordinates).

        Returns ``points [B, R, S, 3]``, ``depths``, ``deltas``, ``mask [B, R, S, 1]``, sorted by
        depth (``S = num_manifolds``). Nothing is random: ``generator`` is not used.
        """
        origins, directions = pixel_rays(cameras.cam2world, cameras.intrinsics, resolution, pixels=pixels,
                                         align_corners=cameras.align_corners or self.align_corners)
        found = self.crossings(origins, directions)
        points, valid = found.points, found.valid
        if self.background:
            # get_intersection_with_MPI: t = (z_plane - o_z) / d_z on the plane z = background_z.
            t = (self.background_z - origins[..., 2:]) / directions[..., 2:]
            plane = (origins + t * directions).unsqueeze(-2)                   # [B, R, 1, 3]
            points = torch.cat([points, plane], dim=-2)
            valid = torch.cat([valid, torch.ones_like(valid[..., :1, :])], dim=-2)
        with torch.no_grad():
            depths = (points - origins.unsqueeze(-2)).norm(dim=-1, keepdim=True)  # [B, R, S, 1]
            order = torch.argsort(depths.squeeze(-1), dim=-1)                    # [B, R, S]
            deltas = torch.full_like(depths, self.delta)
            deltas[..., -1, :] = self.delta_final
            if self.background:
                # The background point was the last before sorting; it keeps delta_final wherever it lands.
                is_background = torch.zeros_like(valid)
                is_background[..., -1, :] = True
                deltas = torch.where(torch.gather(is_background, 2, order.unsqueeze(-1)),
                                     torch.full_like(deltas, self.delta_final), deltas)
        order_xyz = order.unsqueeze(-1).expand(*order.shape, 3)
        return RaySamples(
            origins=origins,
            directions=directions,
            depths=torch.gather(depths, 2, order.unsqueeze(-1)),
            points=torch.gather(points, 2, order_xyz),
            deltas=deltas,
            mask=torch.gather(valid, 2, order.unsqueeze(-1)),
        )

    def extra_repr(self) -> str:
        return (f"num_samples={self.num_samples}, ray_start={self.ray_start}, ray_end={self.ray_end}, "
                f"num_manifolds={self.num_manifolds}, levels=({self.levels_start}, {self.levels_end}), "
                f"background={self.background}, delta={self.delta}, align_corners={self.align_corners}")
