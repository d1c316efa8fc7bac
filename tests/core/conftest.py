"""Small, fully working modules of every generator family, for testing core machinery alone.

They are registered under the names ``tiny`` in a throw-away plugin, so the core tests need none of
the sibling packages.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from gan3d.core import hookimpl
from gan3d.core.cameras import focal_to_intrinsics, look_at, pixel_rays, spherical_origin
from gan3d.core.data.base import GanDataset
from gan3d.core.interfaces import (
    Discriminator,
    FeatureDecoder,
    PointEmbedder,
    PointSampler,
    PoseSampler,
    StochasticityMapper,
    Upsampler,
    VolumeRenderer,
)
from gan3d.core.recipe import ModuleSpec, Recipe
from gan3d.core.registry import Registry
from gan3d.core.types import Cameras, DiscriminatorOutput, Field, RaySamples, Render


class TinyMapper(StochasticityMapper):
    def __init__(self, z_dim: int = 8, w_dim: int = 8, num_ws: int = 2) -> None:
        super().__init__()
        self.z_dim, self.w_dim, self.num_ws, self.c_dim = z_dim, w_dim, num_ws, 0
        self.fc = nn.Linear(z_dim, w_dim)
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z, c=None, *, truncation_psi=1.0, truncation_cutoff=None, update_w_avg=False):
        w = torch.tanh(self.fc(z))
        if update_w_avg:
            self.w_avg.copy_(w.detach().mean(0).lerp(self.w_avg, 0.99))
        w = self.w_avg.lerp(w, truncation_psi)
        return w.unsqueeze(1).repeat(1, self.num_ws, 1)


class TinyPoses(PoseSampler):
    def __init__(self, yaw_stddev: float = 0.3, radius: float = 2.0) -> None:
        super().__init__()
        self.yaw_stddev, self.radius = yaw_stddev, radius

    def forward(self, batch_size, *, device="cpu", generator=None):
        yaw = math.pi / 2 + torch.randn(batch_size, generator=generator) * self.yaw_stddev
        polar = torch.full((batch_size,), math.pi / 2)
        c2w = look_at(spherical_origin(yaw, polar, self.radius))
        return Cameras(c2w, focal_to_intrinsics(1.5, batch_size), torch.stack([yaw, polar], -1)).to(device)


class TinyRays(PointSampler):
    supports_importance = True

    def __init__(self, num_samples: int = 4, ray_start: float = 1.0, ray_end: float = 3.0) -> None:
        super().__init__()
        self.num_samples, self.ray_start, self.ray_end = num_samples, ray_start, ray_end

    def forward(self, cameras, resolution, *, pixels=None, generator=None):
        origins, dirs = pixel_rays(cameras.cam2world, cameras.intrinsics, resolution, pixels=pixels,
                                   align_corners=cameras.align_corners)
        t = torch.linspace(self.ray_start, self.ray_end, self.num_samples, device=origins.device)
        depths = t.view(1, 1, -1, 1).expand(*origins.shape[:2], -1, 1)
        return RaySamples.along_rays(origins, dirs, depths)

    def importance(self, samples, weights, num_samples, *, generator=None):
        # Midpoints of the heaviest intervals: deterministic and enough for the generator tests.
        idx = weights.squeeze(-1).topk(num_samples, dim=-1).indices.sort(-1).values
        depths = torch.gather(samples.depths.squeeze(-1), -1, idx).unsqueeze(-1) + 1e-3
        return RaySamples.along_rays(samples.origins, samples.directions, depths)


class TinyEmbedder(PointEmbedder):
    num_ws = 2  # it reads the mean of two latent rows

    def __init__(self, channels: int = 6) -> None:
        super().__init__()
        self.out_channels = channels
        self.proj = nn.Linear(3, channels)

    def scene(self, ws, *, generator=None):
        return ws.mean(1)

    def forward(self, points, scene):
        return torch.sin(self.proj(points)) + scene[:, None, None, : self.out_channels]


class TinyDecoder(FeatureDecoder):
    def __init__(self, in_channels: int = 6, out_channels: int = 3) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.fc = nn.Linear(in_channels, out_channels + 1)

    def forward(self, features, directions, ws):
        x = self.fc(features)
        return Field(features=torch.tanh(x[..., 1:]), density=x[..., :1])


class TinyRenderer(VolumeRenderer):
    def forward(self, field, samples):
        sigma = torch.relu(field.density)
        deltas = torch.cat([samples.depths[..., 1:, :] - samples.depths[..., :-1, :],
                            torch.full_like(samples.depths[..., :1, :], 1e10)], dim=-2)
        alpha = 1 - torch.exp(-sigma * deltas)
        trans = torch.cumprod(torch.cat([torch.ones_like(alpha[..., :1, :]), 1 - alpha + 1e-10], -2), -2)[..., :-1, :]
        w = alpha * trans
        return Render((w * field.features).sum(-2), (w * samples.depths).sum(-2), w, w.sum(-2))


class TinyUpsampler(Upsampler):
    def __init__(self) -> None:
        super().__init__()

    def forward(self, features, ws, *, alpha=1.0):
        return features[:, :3]


class TinyDiscriminator(Discriminator):
    def __init__(self, channels: int = 4) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, channels, 3, padding=1)
        self.fc = nn.Linear(channels, 1)

    def forward(self, x):
        x = torch.nn.functional.leaky_relu(self.conv(x.image), 0.2).mean((2, 3))
        return DiscriminatorOutput(self.fc(x))


class TinyPlugin:
    """A throw-away plugin registering the tiny modules and a ``tiny`` method."""

    @hookimpl
    def gan3d_register(self, registry):
        registry.add("stochasticity_mapper", "tiny", TinyMapper)
        registry.add("pose_sampler", "tiny", TinyPoses)
        registry.add("point_sampler", "tiny", TinyRays)
        registry.add("point_embedder", "tiny", TinyEmbedder)
        registry.add("feature_decoder", "tiny", TinyDecoder)
        registry.add("volume_renderer", "tiny", TinyRenderer)
        registry.add("upsampler", "tiny", TinyUpsampler)
        registry.add("discriminator", "tiny", TinyDiscriminator)
        registry.add("method", "tiny", tiny_recipe)


def tiny_recipe(variant: str | None = None) -> Recipe:
    modules = {slot: ModuleSpec("tiny") for slot in (
        "stochasticity_mapper", "pose_sampler", "point_sampler", "point_embedder", "feature_decoder",
        "volume_renderer", "upsampler", "discriminator")}
    modules["loss"] = ModuleSpec("logistic", {"r1_gamma": 1.0, "r1_interval": 2})
    return Recipe(
        "tiny", modules, generator={"render_resolution": 8, "num_importance": 0},
        training={"batch_size": 4, "g_lr": 0.002, "d_lr": 0.002, "total_kimg": 0.02, "snapshot_kimg": 0.008,
                  "image_snapshot_kimg": 0.008, "log_every": 1, "ema_kimg": 0.01, "g_betas": [0.0, 0.99]},
    )


@pytest.fixture
def tiny_registry():
    """A registry with autoloading off holding gan3d-core's plugin and the tiny modules."""
    import gan3d.core.plugin as core_plugin

    registry = Registry(autoload=False)
    registry.register(core_plugin, name="core", distribution="gan3d-core")
    registry.register(TinyPlugin(), name="tiny", distribution="tests")
    return registry


class TinyDataset(GanDataset):
    """Random images with front-ish camera labels."""

    def __init__(self, n: int = 12, resolution: int = 8, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.images = torch.rand(n, 3, resolution, resolution, generator=g) * 2 - 1
        self.labels = TinyPoses()(n, generator=g).label

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i], self.labels[i]


@pytest.fixture(name="tiny_recipe")
def tiny_recipe_fixture():
    """The ``tiny_recipe`` factory (call it for a fresh recipe)."""
    return tiny_recipe


@pytest.fixture
def tiny_dataset():
    return TinyDataset()
