"""Seeded sampling of latents and cameras from any generator, shared by every metric.

Every metric splits its samples into consecutive batches of ``batch_size`` and draws batch ``i``'s
latents, poses and rendering noise from its own ``torch.Generator`` (:func:`batch_generator`:
seeded with the evaluator's ``seed`` for batch 0, with a seed derived from ``(seed, i)`` for the
others), so a metric is a deterministic function of (generator, seed, sample count, batch size), and
each batch is the same whichever rank renders it under ``torch.distributed``
(:mod:`~.distributed`). Nothing is reseeded per sample (Carver reseeds per sample in its PE/DE
metrics, which gives every sample the same pose).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor, nn

from gan3d.core.cameras import look_at, spherical_origin
from gan3d.core.types import Cameras

__all__ = ["seeded_generator", "batch_seed", "batch_generator", "evaluation_mode", "sample_latents", "view_angles",
           "orbit_cameras", "look_at_pivot", "batches", "quantize", "wrap_angle", "render_latents"]


def seeded_generator(seed: int, device: torch.device | str) -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with ``seed``."""
    gen = torch.Generator(device=torch.device(device))
    gen.manual_seed(int(seed))
    return gen


def batch_seed(seed: int, index: int) -> int:
    """The seed of batch ``index`` of a metric seeded with ``seed``: ``seed`` itself for batch 0 (a
    one-batch evaluation draws what one generator seeded with ``seed`` draws), otherwise a 64-bit
    value mixed from ``(seed, index)`` by numpy's ``SeedSequence``, so batch streams do not overlap
    across batches or nearby seeds."""
    if index == 0:
        return int(seed)
    entropy = [int(seed) & 0xFFFFFFFFFFFFFFFF, int(index)]
    return int(np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint64)[0])


def batch_generator(seed: int, index: int, device: torch.device | str) -> torch.Generator:
    """The ``torch.Generator`` of batch ``index`` (:func:`batch_seed`) on ``device``."""
    return seeded_generator(batch_seed(seed, index), device)


@contextlib.contextmanager
def evaluation_mode(module: nn.Module) -> Iterator[nn.Module]:
    """``module.eval()`` and ``torch.no_grad()`` for the block; the training flag is restored after."""
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            yield module
    finally:
        module.train(was_training)


def batches(total: int, batch_size: int) -> Iterator[int]:
    """Sizes of consecutive batches covering ``total`` items."""
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    for start in range(0, total, batch_size):
        yield min(batch_size, total - start)


def sample_latents(generator: nn.Module, n: int, gen: torch.Generator, device: torch.device | str) -> Tensor:
    """``z [n, z_dim]`` from a standard normal, drawn with ``gen``."""
    return torch.randn(n, generator.z_dim, generator=gen, device=device)


def render_latents(generator: nn.Module, z: Tensor, cameras: Cameras, *, truncation_psi: float,
                   gen: torch.Generator | None, condition: Cameras | None = None):
    """Render ``z [B, z_dim]`` from ``cameras`` through ``mapping`` and ``synthesis``.

    A conditional mapper (EG3D) is conditioned on ``condition`` (default: the rendering cameras), so
    several views of one latent share one ``ws`` when the caller passes the same ``condition``.
    """
    cond = condition if condition is not None else cameras
    c = cond.label if generator.c_dim else None
    ws = generator.mapping(z, c, truncation_psi=truncation_psi)
    return generator.synthesis(ws, cameras, generator=gen)


def quantize(images: Tensor) -> Tensor:
    """Round ``[-1, 1]`` images to the 256 levels of an 8-bit file (StyleGAN's metrics do the same
    with generated images, so real and fake images pass through the same quantization)."""
    return ((images.clamp(-1, 1) * 127.5 + 128).floor().clamp(0, 255) - 127.5) / 127.5


def wrap_angle(angle: Tensor) -> Tensor:
    """Angles wrapped into ``(-pi, pi]``."""
    return torch.remainder(angle + math.pi, 2 * math.pi) - math.pi


def look_at_pivot(cam2world: Tensor) -> tuple[Tensor, Tensor]:
    """The point each camera turns about, taken as the point of its optical axis closest to the world
    origin, and the camera's distance to it: ``(pivot [B, 3], radius [B])``.

    Exact for cameras that look at the origin. A camera aimed at another pivot gets the axis point
    nearest the origin instead (for EG3D's FFHQ pivot (0, 0, 0.2) and a front camera: the origin,
    0.2 behind the pivot); pass the pivot to :func:`orbit_cameras` where it is known.
    """
    origin = cam2world[:, :3, 3]
    forward = cam2world[:, :3, 2]
    forward = forward / forward.norm(dim=-1, keepdim=True)
    t = -(origin * forward).sum(-1)
    return origin + t[:, None] * forward, t.abs()


def view_angles(cam2world: Tensor) -> Tensor:
    """``[B, 2]`` (yaw, polar) of cameras in gan3d's convention (:mod:`gan3d.core.cameras`), read from
    the viewing direction alone: the camera sits along ``-forward`` from what it looks at, at
    ``(-sin v cos h, cos v, sin v sin h)``. Independent of the pivot and the radius."""
    back = -cam2world[:, :3, 2]
    back = back / back.norm(dim=-1, keepdim=True)
    polar = torch.arccos(back[:, 1].clamp(-1.0, 1.0))
    yaw = torch.atan2(back[:, 2], -back[:, 0])
    return torch.stack([yaw, polar], dim=-1)


def orbit_cameras(base: Cameras, yaw_offset: float, *, around: str = "front",
                  pivot: Tensor | None = None, front: tuple[float, float] = (math.pi / 2, math.pi / 2)) -> Cameras:
    """Cameras turned by ``yaw_offset`` radians about the vertical axis through each base camera's
    pivot, keeping its radius and its intrinsics.

    Args:
        base: the sampled cameras.
        yaw_offset: added yaw in radians.
        around: ``'front'`` starts from the front view ``front`` (yaw = polar = pi/2, as Carver's RE; the
            pose sampler's mean view where it differs), ``'sampled'`` from the base camera's own yaw and polar.
        pivot: ``[3]`` the point the cameras turn about (default :func:`look_at_pivot`'s estimate).
    """
    if around not in ("front", "sampled"):
        raise ValueError(f"around must be 'front' or 'sampled', got {around!r}")
    if pivot is None:
        pivot, radius = look_at_pivot(base.cam2world)
    else:
        pivot = torch.as_tensor(pivot, dtype=base.cam2world.dtype, device=base.cam2world.device).expand(
            base.batch_size, 3)
        radius = (base.origins - pivot).norm(dim=-1)
    if around == "front":
        yaw = torch.full_like(radius, front[0])
        polar = torch.full_like(radius, front[1])
    else:
        yaw, polar = view_angles(base.cam2world).unbind(-1)
    yaw = yaw + yaw_offset
    origin = spherical_origin(yaw, polar, radius, pivot)
    cam2world = look_at(origin, pivot)
    angles = torch.stack([yaw, math.pi / 2 - polar], dim=-1)
    return Cameras(cam2world, base.intrinsics.clone(), angles)
