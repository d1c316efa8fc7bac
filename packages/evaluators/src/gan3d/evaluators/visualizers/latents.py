"""Seeded latents and how visualizers turn them into images.

All visualizers draw the latent of a seed the same way, so the image grid, the orbit video and the
shape of seed 3 show the same object.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor, nn

from gan3d.core import latents as latent_ops
from gan3d.core.types import Cameras, GeneratorOutput

from .camera_rig import CameraRig, rig_cameras

__all__ = ["seeded_latents", "map_latents", "front_cameras", "evaluation_mode", "render_in_batches"]


def seeded_latents(num: int, z_dim: int, seed: int) -> Tensor:
    """``z [num, z_dim]``: latent ``i`` is drawn from seed ``seed + i``.

    As EG3D's ``gen_samples.py``/``gen_videos.py`` do for each seed of ``--seeds``:
    ``np.random.RandomState(seed).randn(z_dim)``, so a seed gives the same latent on every device,
    whatever ``num`` is, and the same latent as EG3D's scripts.
    """
    if num <= 0:
        raise ValueError(f"the number of latents must be positive, got {num}")
    return torch.from_numpy(
        np.stack([np.random.RandomState(seed + i).randn(z_dim) for i in range(num)])
    ).float()


def front_cameras(rig: CameraRig, batch_size: int, device: torch.device | str = "cpu",
                  yaw_offset: float = 0.0, polar_offset: float = 0.0) -> Cameras:
    """``batch_size`` copies of the rig's mean view (the front, ``pi/2``, for EG3D's rig) turned by
    ``yaw_offset`` and ``polar_offset``."""
    yaw = torch.full((batch_size,), rig.yaw + yaw_offset)
    polar = torch.full((batch_size,), rig.polar + polar_offset)
    return rig_cameras(rig, yaw, polar, device)


def map_latents(generator: nn.Module, z: Tensor, rig: CameraRig, *, truncation_psi: float,
                truncation_cutoff: int | None) -> latent_ops.Latent:
    """``z [B, z_dim]`` -> the generator's latent (``ws [B, num_ws, w_dim]`` or a scene latent).

    A pose-conditioned mapper gets the front camera's label, as EG3D's ``gen_samples.py`` and
    ``gen_videos.py`` condition on ``LookAtPoseSampler.sample(pi/2, pi/2, pivot, radius)``.
    """
    condition = None
    if generator.c_dim:
        condition = front_cameras(rig, z.shape[0], z.device).label
    return generator.mapping(z, condition, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)


@contextlib.contextmanager
def evaluation_mode(generator: nn.Module) -> Iterator[None]:
    """Run ``generator`` in eval mode without autograd, then restore its training flag."""
    was_training = generator.training
    generator.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        generator.train(was_training)


def render_in_batches(generator: nn.Module, ws: latent_ops.Latent, cameras: Cameras, *, batch_size: int,
                      resolution: int | None, requests: tuple[str, ...] = ()) -> list[GeneratorOutput]:
    """``generator.synthesis`` over the latents ``ws`` and ``cameras`` (``B`` of each) in batches."""
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    return [
        generator.synthesis(latent_ops.take(ws, slice(i, i + batch_size)), cameras[i:i + batch_size],
                            resolution=resolution, requests=requests)
        for i in range(0, latent_ops.batch_size(ws), batch_size)
    ]


def render_latents(
    generator: nn.Module,
    *,
    num: int,
    seed: int,
    device: torch.device | str,
    rig: CameraRig,
    truncation_psi: float,
    truncation_cutoff: int | None,
    pose: str = "front",
    yaw_offsets: tuple[float, ...] = (0.0,),
    polar_offset: float = 0.0,
    resolution: int | None = None,
    batch_size: int = 4,
) -> dict[str, Tensor]:
    """Render the ``num`` latents of ``seed``; returns ``image [N, 3, H, W]``, ``image_raw [N, 3, h, w]``,
    ``depth [N, 1, h, w]`` and ``alpha [N, 1, h, w]`` on the CPU.

    ``pose='front'``: each latent from the rig's front camera turned by each of ``yaw_offsets``
    (latent-major, so ``N = num * len(yaw_offsets)``; EG3D's ``gen_samples.py`` shows yaws
    ``0.4, 0, -0.4``). ``pose='sampled'``: one pose per latent from ``generator.pose_sampler``, drawn
    with a generator seeded by ``seed`` (``N = num``).
    """
    if pose not in ("front", "sampled"):
        raise ValueError(f"pose must be 'front' or 'sampled', got {pose!r}")
    if pose == "front" and not len(yaw_offsets):
        raise ValueError("yaw_offsets is empty; give at least one yaw offset (0.0 is the front)")
    z = seeded_latents(num, generator.z_dim, seed).to(device)
    ws = map_latents(generator, z, rig, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
    if pose == "front":
        views = len(yaw_offsets)
        ws = latent_ops.repeat_interleave(ws, views)
        yaw = torch.tensor([rig.yaw + float(o) for o in yaw_offsets]).repeat(num)
        polar = torch.full_like(yaw, rig.polar + polar_offset)
        cameras = rig_cameras(rig, yaw, polar, device)
    else:
        rng = torch.Generator(device=device).manual_seed(seed)
        cameras = generator.pose_sampler(num, device=device, generator=rng)
    outputs = render_in_batches(generator, ws, cameras, batch_size=batch_size, resolution=resolution)
    rendered = {name: torch.cat([getattr(o, name).detach().float().cpu() for o in outputs])
                for name in ("image", "image_raw", "alpha")}
    rendered["depth"] = torch.cat([expected_depth(o).detach().float().cpu() for o in outputs])
    return rendered


def expected_depth(out) -> Tensor:
    """``surface depth * alpha`` (``sum_i w_i t_i`` on foreground, 0 on background): one definition
    for every renderer's ``depth_mode``, which the depth colouring divides by alpha again."""
    if out.surface_depth is None:
        return out.depth
    return torch.nan_to_num(out.surface_depth, nan=0.0) * out.alpha
