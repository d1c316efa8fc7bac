"""A tiny analytic generator for the visualizer tests: a sphere of radius 0.3 at the origin.

Assembled with the real :class:`gan3d.core.generator.Generator` from minimal modules, so the
visualizers are exercised through exactly the interface they rely on. The sphere's colour depends
on the latent; its geometry is an SDF (``|p| - r``) or a raw density (``slope * (r - |p|) + 10``,
whose level 10 is the sphere, as EG3D thresholds raw density at 10). The renderer's
``density(raw) = 2 relu(raw - 10)`` is zero outside the sphere, and its level 10 is the sphere of
radius ``r - 5 / slope``: thresholding through the renderer finds that smaller sphere.

Other test files import this module (with their folder on sys.path); its own tests check the fake itself.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from gan3d.core.cameras import focal_to_intrinsics, look_at, pixel_rays, spherical_origin
from gan3d.core.generator import Generator
from gan3d.core.interfaces import (
    FeatureDecoder,
    PointEmbedder,
    PointSampler,
    PoseSampler,
    StochasticityMapper,
    Upsampler,
    VolumeRenderer,
)
from gan3d.core.types import CameraRig, Cameras, Field, RaySamples, Render

RADIUS = 0.3
SLOPE = 100.0
CAMERA_RADIUS = 1.5
FOCAL = 1.2


class NoiseMapper(StochasticityMapper):
    z_dim, c_dim, num_ws, w_dim = 4, 0, 1, 4

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("w_avg", torch.zeros(4))

    def forward(self, z, c=None, *, truncation_psi=1.0, truncation_cutoff=None, update_w_avg=False) -> Tensor:
        return (self.w_avg + truncation_psi * (z - self.w_avg))[:, None, :]


class FrontPoseSampler(PoseSampler):
    def camera_rig(self) -> CameraRig:
        return CameraRig(pivot=(0.0, 0.0, 0.0), radius=CAMERA_RADIUS, focal=FOCAL,
                         yaw_range=(math.pi / 2 - 0.1, math.pi / 2 + 0.1))

    def forward(self, batch_size, *, device="cpu", generator=None) -> Cameras:
        yaw = math.pi / 2 + 0.2 * (torch.rand(batch_size, generator=generator, device=device) - 0.5)
        polar = torch.full((batch_size,), math.pi / 2, device=device)
        c2w = look_at(spherical_origin(yaw, polar, CAMERA_RADIUS))
        return Cameras(c2w, focal_to_intrinsics(FOCAL, batch_size, device), torch.stack([yaw, polar], -1))


class EvenDepthSampler(PointSampler):
    def forward(self, cameras, resolution, *, pixels=None, generator=None) -> RaySamples:
        origins, directions = pixel_rays(cameras.cam2world, cameras.intrinsics, resolution, pixels=pixels,
                                         align_corners=cameras.align_corners)
        depths = torch.linspace(1.0, 2.0, 48, device=origins.device).expand(*origins.shape[:2], 48)[..., None]
        return RaySamples.along_rays(origins, directions, depths)


class PointsEmbedder(PointEmbedder):
    out_channels = 3
    bounds = ((-0.5, -0.5, -0.5), (0.5, 0.5, 0.5))

    def forward(self, points, scene) -> Tensor:
        return points


class SphereDecoder(FeatureDecoder):
    out_channels = 3
    num_ws, w_dim = 1, 4

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = self.field_kind = kind

    def forward(self, features, directions, ws) -> Field:
        distance = features.norm(dim=-1, keepdim=True)
        colour = torch.tanh(ws[:, 0, :3])[:, None, None, :].expand(*features.shape[:-1], 3)
        if self.kind == "sdf":
            return Field(colour, sdf=distance - RADIUS)
        return Field(colour, density=SLOPE * (RADIUS - distance) + 10.0)


class CompositingRenderer(VolumeRenderer):
    """NeRF alpha compositing; SDF -> density as ``sigmoid(-s / beta) / beta`` (VolSDF/StyleSDF)."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.field_kind = kind

    def density(self, raw: Tensor) -> Tensor:
        return 2.0 * torch.relu(raw - 10.0)

    def forward(self, field, samples) -> Render:
        if field.kind == "sdf":
            sigma = torch.sigmoid(-field.sdf / 0.005) / 0.005
        else:
            sigma = self.density(field.density)
        deltas = torch.diff(samples.depths, dim=-2, append=samples.depths[..., -1:, :] + 1e10)
        alpha = 1 - torch.exp(-sigma * deltas)
        transmittance = torch.cumprod(torch.cat([torch.ones_like(alpha[..., :1, :]), 1 - alpha + 1e-10], -2), -2)
        weights = alpha * transmittance[..., :-1, :]
        return Render((weights * field.features).sum(-2), (weights * samples.depths).sum(-2), weights,
                      weights.sum(-2))


class FirstThreeChannels(Upsampler):
    def forward(self, features, ws, *, alpha=1.0) -> Tensor:
        return features[:, :3]


def sphere_generator(kind: str = "sdf", render_resolution: int = 16) -> Generator:
    """The analytic sphere generator with an ``'sdf'`` or ``'density'`` field."""
    return Generator(NoiseMapper(), FrontPoseSampler(), EvenDepthSampler(), PointsEmbedder(), SphereDecoder(kind),
                     CompositingRenderer(kind), FirstThreeChannels(), render_resolution=render_resolution)


def expected_silhouette(resolution: int) -> Tensor:
    """``bool [res, res]``: pixel centres whose rays hit the sphere, seen from the front camera."""
    yaw = torch.tensor([math.pi / 2])
    c2w = look_at(spherical_origin(yaw, torch.tensor([math.pi / 2]), CAMERA_RADIUS))
    origins, directions = pixel_rays(c2w, focal_to_intrinsics(FOCAL), (resolution, resolution))
    # A ray hits the sphere when its closest approach to the centre is below the radius.
    along = -(origins * directions).sum(-1, keepdim=True)
    closest = (origins + along * directions).norm(dim=-1)
    return (closest < RADIUS).view(resolution, resolution)


def test_fake_sphere_renders_its_silhouette():
    for kind in ("sdf", "density"):
        gen = sphere_generator(kind, render_resolution=24)
        cams = Cameras(look_at(spherical_origin(torch.tensor([math.pi / 2]), torch.tensor([math.pi / 2]),
                                                CAMERA_RADIUS)), focal_to_intrinsics(FOCAL))
        out = gen(torch.randn(1, 4), cams)
        rendered = out.alpha[0, 0] > 0.5
        expected = expected_silhouette(24)
        assert (rendered != expected).float().mean() < 0.06, kind  # only rim pixels may differ
        # depth / alpha on the centre pixels: the front of the sphere (the soft density reaches a bit deeper)
        centre = (out.depth / out.alpha)[0, 0, 11:13, 11:13]
        atol = 0.03 if kind == "sdf" else 0.12
        assert torch.allclose(centre, torch.full_like(centre, CAMERA_RADIUS - RADIUS), atol=atol), kind
