"""CPU sphere tracing of an analytic scene: ray/surface hits, depth and Lambertian shading.

Sphere tracing (Hart, "Sphere tracing", 1996): step along a ray by the signed distance until it
falls below a threshold. All rays of a batch march together; rays that hit or leave the scene's
bounding sphere drop out, so the work shrinks as the march goes on.

Depth is the distance from the camera centre along the *unit* ray direction of
:func:`gan3d.core.cameras.pixel_rays` (the hit point is ``origin + depth * direction``), the same
definition as ``RaySamples.depths`` and ``Render.depth``; it is not the camera-space ``z``.
Pixels whose ray misses the surface get depth ``0`` and the background colour.
"""

from __future__ import annotations

from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

from ..cameras import pixel_rays
from ..types import Cameras

__all__ = ["AnalyticScene", "trace_rays", "surface_normals", "render_scene"]


class AnalyticScene(Protocol):
    """What the tracer needs from a scene (see :mod:`.synthetic_scenes`)."""

    bounds: tuple[tuple[float, float, float], float]

    def sdf(self, points: Tensor) -> Tensor: ...

    def albedo(self, points: Tensor) -> Tensor: ...


def trace_rays(
    scene: AnalyticScene,
    origins: Tensor,
    directions: Tensor,
    max_steps: int = 64,
    hit_threshold: float = 1e-4,
    final_threshold: float = 1e-3,
    step_scale: float = 0.9,
) -> tuple[Tensor, Tensor]:
    """March rays ``[N, 3]`` (unit ``directions``) to the scene's zero level set.

    Args:
        hit_threshold: a ray stops as a hit once the signed distance falls below this.
        final_threshold: after ``max_steps``, rays still marching (they graze a silhouette and close
            in slowly) count as hits when closer than this, misses otherwise. Both are far below a
            pixel's footprint on the surface (about 0.01 at 64 px for both presets).
        step_scale: fraction of the signed distance taken per step; below 1 because the ellipsoid
            distance is only approximately Euclidean.

    Returns:
        ``depth [N]`` (distance along the ray, ``0`` where missed) and ``hit [N]`` (bool).
    """
    centre = torch.tensor(scene.bounds[0], dtype=origins.dtype)
    radius = scene.bounds[1]
    # Ray/bounding-sphere intersection: |o + t d - c|^2 = R^2.
    to_centre = origins - centre
    b = (to_centre * directions).sum(-1)
    disc = b * b - ((to_centre * to_centre).sum(-1) - radius * radius)
    root = disc.clamp_min(0).sqrt()
    t_near = (-b - root).clamp_min(0.0)
    t_far = -b + root
    depth = torch.zeros_like(b)
    hit = torch.zeros_like(disc, dtype=torch.bool)
    active = torch.nonzero((disc > 0) & (t_far > 0)).squeeze(-1)
    t = t_near[active]
    distance = torch.zeros_like(t)
    for _ in range(max_steps):
        if active.numel() == 0:
            break
        distance = scene.sdf(origins[active] + t[:, None] * directions[active])
        done = distance < hit_threshold
        if bool(done.any()):
            hit[active[done]] = True
            depth[active[done]] = t[done]
        t = t + step_scale * distance.clamp_min(0.0)
        keep = ~done & (t < t_far[active])
        active, t, distance = active[keep], t[keep], distance[keep]
    # distance was measured before the last step; re-measure where the rays now are.
    if active.numel() > 0:
        distance = scene.sdf(origins[active] + t[:, None] * directions[active])
        close = distance.abs() < final_threshold
        hit[active[close]] = True
        depth[active[close]] = t[close]
    return depth, hit


def surface_normals(scene: AnalyticScene, points: Tensor, step: float = 5e-4) -> Tensor:
    """Unit outward normals ``[N, 3]``: the central-difference gradient of the SDF at ``points [N, 3]``."""
    offsets = torch.eye(3, dtype=points.dtype) * step
    grads = [scene.sdf(points + o) - scene.sdf(points - o) for o in offsets]
    return F.normalize(torch.stack(grads, dim=-1), dim=-1)


def render_scene(
    scene: AnalyticScene,
    cameras: Cameras,
    resolution: int,
    light_direction: tuple[float, float, float],
    ambient: float,
    background: tuple[float, float, float] = (0.0, 0.0, 0.0),
    supersample: int = 1,
) -> tuple[Tensor, Tensor]:
    """Render ``image [B, 3, H, W]`` in ``[0, 1]`` and ``depth [B, 1, H, W]`` of ``scene``.

    Colour is ``albedo * (ambient + (1 - ambient) * max(0, n . l))`` (Lambertian with a directional
    light towards ``light_direction``). With ``supersample = s`` each pixel's colour is the mean of
    ``s x s`` sub-pixel rays (anti-aliased edges); depth is always traced through the pixel centre,
    so ``depth`` matches ``pixel_rays(cameras, resolution)`` exactly.
    """
    batch = cameras.batch_size
    c2w = cameras.cam2world.float()
    intrinsics = cameras.intrinsics.float()
    origins, directions = pixel_rays(c2w, intrinsics, (resolution, resolution))
    origins, directions = origins.reshape(-1, 3), directions.reshape(-1, 3)
    num_centre = origins.shape[0]
    sub = resolution * supersample
    if supersample > 1:  # trace the pixel centres and the sub-pixels in one march
        sub_origins, sub_directions = pixel_rays(c2w, intrinsics, (sub, sub))
        origins = torch.cat([origins, sub_origins.reshape(-1, 3)])
        directions = torch.cat([directions, sub_directions.reshape(-1, 3)])
    all_depth, all_hit = trace_rays(scene, origins, directions)
    depth = all_depth[:num_centre]
    if supersample > 1:
        origins, directions = origins[num_centre:], directions[num_centre:]
        sub_depth, sub_hit = all_depth[num_centre:], all_hit[num_centre:]
    else:
        sub_depth, sub_hit = all_depth, all_hit
    colour = torch.tensor(background, dtype=torch.float32).expand(origins.shape[0], 3).clone()
    points = origins[sub_hit] + sub_depth[sub_hit, None] * directions[sub_hit]
    light = F.normalize(torch.tensor(light_direction, dtype=torch.float32), dim=0)
    lambert = (surface_normals(scene, points) @ light).clamp_min(0.0)
    colour[sub_hit] = scene.albedo(points) * (ambient + (1.0 - ambient) * lambert)[:, None]
    image = colour.reshape(batch, sub, sub, 3).permute(0, 3, 1, 2)
    if supersample > 1:
        image = F.avg_pool2d(image, supersample)
    return image.clamp(0.0, 1.0), depth.reshape(batch, 1, resolution, resolution)
