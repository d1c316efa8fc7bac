"""StyleNeRF's training schedule pieces: style mixing and the real-image resize (the progressive fade-in
is the upsampler's, :func:`gan3d.renderers.stylenerf_upsampler.fade_in_alpha`).

Facts from facebookresearch/StyleNeRF ``training/loss.py`` (``StyleGAN2Loss.run_G``),
``training/training_loop.py`` and ``training/data_utils.py`` (``resize_image``), FFHQ settings from
``conf/model/stylenerf_ffhq.yaml`` (``style_mixing_prob: 0.9``) and ``D_kwargs.resize_real_early: True``.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import Tensor

from gan3d.core import random_draws

__all__ = ["style_mixing_cutoff", "mix_styles", "resize_reals_lanczos"]


def style_mixing_cutoff(num_ws: int, probability: float, *, device: torch.device | str = "cpu",
                        generator: torch.Generator | None = None) -> int:
    """The row from which a second latent replaces the first (``run_G``): with ``probability`` a cutoff drawn
    uniformly from ``1 .. num_ws - 1`` for the whole batch, else ``num_ws`` (no mixing). StyleNeRF mixes over
    all rows, the NeRF's and the upsampler's. Both numbers are drawn every call, in the official order."""
    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"style mixing probability must lie in [0, 1], got {probability}")
    if num_ws < 2:
        return num_ws
    cutoff = int(random_draws.randint(num_ws - 1, (), device=device, generator=generator)) + 1
    mix = float(random_draws.uniform((), device=device, generator=generator)) < probability
    return cutoff if mix else num_ws


def mix_styles(ws: Tensor, ws_other: Tensor, cutoff: int) -> Tensor:
    """``ws [B, N, D]`` with rows ``cutoff:`` taken from ``ws_other`` (a new tensor)."""
    if ws.shape != ws_other.shape:
        raise ValueError(f"mix_styles: shapes differ, {tuple(ws.shape)} vs {tuple(ws_other.shape)}")
    return torch.cat([ws[:, :cutoff], ws_other[:, cutoff:]], dim=1)


def resize_reals_lanczos(images: Tensor, resolution: int) -> Tensor:
    """Real images ``[B, C, H, W]`` in ``[-1, 1]`` (8-bit data) -> ``[B, C, resolution, resolution]`` as
    StyleNeRF feeds its discriminator: the 8-bit image resized by OpenCV's Lanczos-4 filter
    (``resize_image``: ``albumentations...resize(interpolation=cv2.INTER_LANCZOS4)`` on the uint8 batch),
    then ``x / 127.5 - 1``."""
    if images.ndim != 4:
        raise ValueError(f"images must be [B, C, H, W], got {tuple(images.shape)}")
    if images.shape[-2:] == (resolution, resolution):
        return images
    pixels = ((images.detach().float().cpu() + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)
    pixels = pixels.permute(0, 2, 3, 1).numpy()
    resized = np.stack([cv2.resize(p, (resolution, resolution), interpolation=cv2.INTER_LANCZOS4).reshape(
        resolution, resolution, -1) for p in pixels])
    out = torch.from_numpy(resized).permute(0, 3, 1, 2).to(device=images.device, dtype=images.dtype)
    return out / 127.5 - 1.0
