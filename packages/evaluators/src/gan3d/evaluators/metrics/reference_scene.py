"""A reference generator with exact, view-consistent geometry, for checking the geometry metrics.

It implements the :class:`~gan3d.core.generator.Generator` interface the metrics use (``z_dim``,
``c_dim``, ``mapping``, ``synthesis``, ``pose_sampler``, ``forward``, ``corner_aligned``) by ray casting
an analytic scene:
a textured unit sphere inside a textured background sphere. Colours are functions of the surface
point alone, so its renders are perfectly multi-view consistent and its depth is exact: RE is zero
up to resampling, and DE/PE estimators can be checked against ground truth. The latent shifts the
phases of the texture, so different latents give different images.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from gan3d.core import random_draws
from gan3d.core.cameras import focal_to_intrinsics, look_at, pixel_rays, spherical_origin
from gan3d.core.generator import feature_image
from gan3d.core.interfaces import PoseSampler
from gan3d.core.types import CameraRig, Cameras, GeneratorOutput

__all__ = ["ReferenceSphereGenerator", "ReferencePoseSampler"]


class ReferencePoseSampler(PoseSampler):
    """Cameras on a sphere of ``radius`` looking at the origin, yaw and polar uniform around the front."""

    def __init__(self, *, radius: float = 2.7, focal: float = 1.2, yaw_range: float = 0.5,
                 polar_range: float = 0.25) -> None:
        super().__init__()
        self.radius, self.focal, self.yaw_range, self.polar_range = radius, focal, yaw_range, polar_range

    def forward(self, batch_size: int, *, device: torch.device | str = "cpu",
                generator: torch.Generator | None = None) -> Cameras:
        u = random_draws.uniform((batch_size, 2), device=device, generator=generator) * 2 - 1
        yaw = math.pi / 2 + u[:, 0] * self.yaw_range
        polar = math.pi / 2 + u[:, 1] * self.polar_range
        return self.cameras(yaw, polar)

    def camera_rig(self) -> CameraRig:
        return CameraRig(pivot=(0.0, 0.0, 0.0), radius=self.radius, focal=self.focal,
                         yaw_range=(math.pi / 2 - self.yaw_range, math.pi / 2 + self.yaw_range),
                         polar_range=(math.pi / 2 - self.polar_range, math.pi / 2 + self.polar_range))

    def cameras(self, yaw: Tensor, polar: Tensor) -> Cameras:
        """Cameras at ``yaw [B]``, ``polar [B]``."""
        cam2world = look_at(spherical_origin(yaw, polar, self.radius))
        intrinsics = focal_to_intrinsics(self.focal, yaw.shape[0], yaw.device)
        return Cameras(cam2world, intrinsics, torch.stack([yaw, math.pi / 2 - polar], dim=-1))


def _sphere_hit(origins: Tensor, dirs: Tensor, radius: float, far: bool) -> Tensor:
    """Distance along unit rays to the sphere of ``radius`` about the origin (near or far root)."""
    b = (origins * dirs).sum(-1)
    c = (origins * origins).sum(-1) - radius**2
    disc = b * b - c
    root = disc.clamp_min(0).sqrt()
    t = -b + root if far else -b - root
    return torch.where(disc > 0, t, torch.full_like(t, float("inf")))


class ReferenceSphereGenerator(nn.Module):
    """Analytic scene renderer with the generator interface.

    Args:
        resolution: rendered image side.
        z_dim: latent size (the first three entries move the texture phases).
        object_radius: radius of the textured sphere at the origin.
        background_radius: radius of the textured sphere enclosing the cameras.
        frequency: texture frequency on the object.
        align_corners: cast the rays on the corner-aligned grid (``u = j / (w - 1)``, pi-GAN's and
            GIRAFFE's) instead of through pixel centres; :meth:`corner_aligned` says so.
    """

    c_dim = 0

    def __init__(self, *, resolution: int = 32, z_dim: int = 8, object_radius: float = 1.0,
                 background_radius: float = 5.0, frequency: float = 4.0, radius: float = 2.7,
                 focal: float = 1.2, align_corners: bool = False) -> None:
        super().__init__()
        self.align_corners = align_corners
        self.z_dim = z_dim
        self.render_resolution = resolution
        self.object_radius = object_radius
        self.background_radius = background_radius
        self.frequency = frequency
        self.pose_sampler = ReferencePoseSampler(radius=radius, focal=focal)
        # Fixed texture directions per colour channel (unit vectors).
        axes = torch.tensor([[1.0, 0.3, 0.2], [-0.2, 1.0, 0.4], [0.3, -0.4, 1.0]])
        self.register_buffer("axes", axes / axes.norm(dim=-1, keepdim=True))

    def mapping(self, z: Tensor, c: Tensor | None = None, *, truncation_psi: float = 1.0, **_: object) -> Tensor:
        """``z [B, z_dim]`` -> ``ws [B, 1, z_dim]`` (truncation scales towards 0, the latent mean)."""
        return (z * truncation_psi)[:, None, :]

    def texture(self, points: Tensor, ws: Tensor, frequency: float) -> Tensor:
        """Colours ``[B, R, 3]`` in ``[-1, 1]`` at surface ``points [B, R, 3]``."""
        phase = ws[:, 0, :3][:, None, :]
        return torch.sin(frequency * points @ self.axes.T + phase)

    def corner_aligned(self, cameras: Cameras) -> bool:
        """Whether the rays lie on the corner-aligned grid (the ``align_corners`` option or the cameras')."""
        return bool(self.align_corners or cameras.align_corners)

    def synthesis(self, ws: Tensor, cameras: Cameras, *, resolution: int | None = None,
                  generator: torch.Generator | None = None, **_: object) -> GeneratorOutput:
        res = resolution or self.render_resolution
        origins, dirs = pixel_rays(cameras.cam2world, cameras.intrinsics, (res, res),
                                   align_corners=self.corner_aligned(cameras))
        t_obj = _sphere_hit(origins, dirs, self.object_radius, far=False)
        t_bg = _sphere_hit(origins, dirs, self.background_radius, far=True)
        hit = torch.isfinite(t_obj) & (t_obj > 0)
        depth = torch.where(hit, t_obj, t_bg)
        points = origins + depth[..., None] * dirs
        colour = torch.where(hit[..., None], self.texture(points, ws, self.frequency),
                             0.5 * self.texture(points, ws, 1.0))
        rgb = feature_image(colour, res)
        return GeneratorOutput(image=rgb, image_raw=rgb, depth=feature_image(depth[..., None], res),
                               alpha=feature_image(hit[..., None].float(), res), features=rgb, cameras=cameras, ws=ws)

    def forward(self, z: Tensor, cameras: Cameras | None = None, *, truncation_psi: float = 1.0,
                generator: torch.Generator | None = None, resolution: int | None = None,
                **_: object) -> GeneratorOutput:
        if cameras is None:
            cameras = self.pose_sampler(z.shape[0], device=z.device, generator=generator)
        return self.synthesis(self.mapping(z, truncation_psi=truncation_psi), cameras, resolution=resolution)
