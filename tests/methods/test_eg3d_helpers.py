"""Shared helpers (no tests) of the EG3D and ablation3d tests: FFHQ-like camera labels, tiny loss inputs."""

from __future__ import annotations

import math

import torch

from gan3d.core.cameras import focal_to_intrinsics, look_at, spherical_origin
from gan3d.core.objective import LossInputs
from gan3d.core.types import Cameras


def ffhq_like_labels(batch: int, seed: int = 0) -> torch.Tensor:
    """``[B, 25]`` EG3D labels: radius 2.7 about (0, 0, 0.2), focal 4.2647, small yaw/pitch."""
    g = torch.Generator().manual_seed(seed)
    yaw = math.pi / 2 + 0.3 * torch.randn(batch, generator=g)
    polar = math.pi / 2 + 0.15 * torch.randn(batch, generator=g)
    pivot = torch.tensor([0.0, 0.0, 0.2])
    origin = spherical_origin(yaw, polar, 2.7, pivot)
    cams = Cameras(look_at(origin, pivot.expand(batch, 3)), focal_to_intrinsics(4.2647, batch))
    return cams.label


def tiny_loss_inputs(G, batch: int, real_resolution: int, *, kimg: float = 0.0, step: int = 0,
                     seed: int = 0) -> LossInputs:
    g = torch.Generator().manual_seed(seed)
    labels = ffhq_like_labels(batch, seed)
    return LossInputs(
        real_images=torch.rand(batch, 3, real_resolution, real_resolution, generator=g) * 2 - 1,
        real_labels=labels,
        z=torch.randn(batch, G.z_dim, generator=g),
        gen_cameras=Cameras.from_label(ffhq_like_labels(batch, seed + 1)),
        resolution=G.render_resolution,
        kimg=kimg,
        step=step,
    )


def missing_grads(module: torch.nn.Module) -> list[str]:
    return [n for n, p in module.named_parameters()
            if p.requires_grad and (p.grad is None or not torch.isfinite(p.grad).all() or p.grad.abs().sum() == 0)]
