"""StyleNeRF's NeRF path regularization (Gu et al. 2022, section 3.3, eq. 6): the upsampled image at a
few pixels must equal what the NeRF gives when its per-point features go through the upsampler's per-pixel
path before compositing.

Facts from facebookresearch/StyleNeRF ``training/stylenerf.py`` (``CameraRay.prepare_pixels_regularization``,
``VolumeRenderer.forward_volume_rendering`` with ``return_full``, ``NeRFSynthesisNetwork.forward``
"nerf_path_reg_loss"), FFHQ settings ``n_reg_samples: 16``, ``reg_full: True``:

1. pixels: a ``16 x 16`` grid with stride ``pace = R // 16`` over the current output image of side ``R``,
   shifted by one random offset per sample in ``x`` and one in ``y`` (``floor(U * pace)``), at pixel CENTRES
   of that grid (``get_pixel_coords(tgt_res, corner_aligned=False)``); flat index ``x + y R``, rows of the
   grid outer (:func:`regularization_pixels`);
2. the rays through them are rendered by the same NeRF (foreground and background, in the same pass as the
   image, so with the same background latent), keeping every sample's feature and weight: 28 foreground
   samples (coarse and fine, by depth) then the 4 background ones with weights ``[w_fg, T_fg * w_bg]``;
3. each sample's ``[rgb, feature]`` goes through the upsampler's per-pixel path
   (:meth:`gan3d.renderers.stylenerf_upsampler.StyleNeRFUpsampler.pixelwise`: the blocks active at the
   fade-in, not blended between levels), and the results are composited with the weights:
   ``I_nerf [B, 3, 256]`` (:func:`composite_points`);
4. ``I_up`` = the final image at the pixels (:func:`gather_pixels`);
   ``loss = 2 * mean_pixels(sum_channels (I_up - I_nerf)^2)`` per sample (:func:`nerf_path_penalty`),
   added to the generator's loss with weight 1 (``StyleGAN2Loss.get_loss`` sums every ``*_loss``).

It runs in training only and only once the upsampler is active (``end_l > 0``, i.e. fade-in ``alpha > 0``).

qiuyu96/Carver's port draws the grid on the 32-px NeRF grid (``pace = nerf_res // reg_res``) but gathers
``I_up`` from the full-resolution image with those indices, so its compared pixels do not correspond; the
official grid (on the output image) is the one here.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gan3d.core import random_draws

__all__ = ["regularization_pixels", "gather_pixels", "composite_points", "nerf_path_penalty", "nerf_path_rgb",
           "PENALTY_SCALE"]

#: ``reg_loss['reg_loss'] = l2(img_ff, img_rand) * 2.0`` (NeRFSynthesisNetwork.forward).
PENALTY_SCALE = 2.0


def regularization_pixels(batch_size: int, resolution: int, grid: int = 16, *, device: torch.device | str = "cpu",
                          generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """The pixels of the NeRF path regularization on an image of side ``resolution``.

    Returns ``indices [B, grid * grid]`` (flat ``x + y * resolution``, row-major over the grid) and
    ``pixels [B, grid * grid, 2]``: their centres as normalized image coordinates ``((x + 0.5) / R,
    (y + 0.5) / R)`` (``x`` right, ``y`` down), the rays to render.

    Example:
        >>> idx, px = regularization_pixels(1, 64, 16, generator=torch.Generator().manual_seed(0))
        >>> idx.shape, px.shape, int(idx[0, 1] - idx[0, 0])        # stride 64 // 16 = 4
        (torch.Size([1, 256]), torch.Size([1, 256, 2]), 4)
    """
    if grid <= 0 or resolution % grid:
        raise ValueError(f"NeRF path regularization: the image side {resolution} must be a positive multiple of "
                         f"the grid {grid} (StyleNeRF n_reg_samples)")
    pace = resolution // grid
    steps = torch.arange(0, resolution, pace, device=device)  # [grid]
    offsets = (random_draws.uniform((batch_size, 2), device=device, generator=generator) * pace).floor().long()
    x = steps[None, :] + offsets[:, :1]  # [B, grid]
    y = steps[None, :] + offsets[:, 1:]
    indices = (x[:, None, :] + y[:, :, None] * resolution).reshape(batch_size, -1)
    columns, rows = indices % resolution, indices // resolution
    pixels = torch.stack([(columns.float() + 0.5) / resolution, (rows.float() + 0.5) / resolution], dim=-1)
    return indices, pixels


def gather_pixels(image: Tensor, indices: Tensor) -> Tensor:
    """``image [B, C, H, W]`` at flat pixel ``indices [B, N]`` (``x + y W``) -> ``[B, C, N]``."""
    if image.ndim != 4 or indices.ndim != 2 or indices.shape[0] != image.shape[0]:
        raise ValueError(f"gather_pixels needs image [B, C, H, W] and indices [B, N] with the same B; got "
                         f"{tuple(image.shape)} and {tuple(indices.shape)}")
    flat = image.flatten(2)
    return flat.gather(2, indices[:, None, :].expand(-1, flat.shape[1], -1))


def composite_points(values: Tensor, weights: Tensor) -> Tensor:
    """``values [B, C, R, S]`` of the ``S`` samples of ``R`` rays, ``weights [B, R, S, 1]`` -> ``[B, C, R]``:
    ``sum_s w_s v_s`` (the compositing of the per-point upsampled colours)."""
    if weights.shape[:3] != (values.shape[0], values.shape[2], values.shape[3]) or weights.shape[-1] != 1:
        raise ValueError(f"composite_points: weights must be [B, R, S, 1] for values [B, C, R, S]; got "
                         f"{tuple(weights.shape)} and {tuple(values.shape)}")
    return (values * weights.squeeze(-1).unsqueeze(1)).sum(-1)


def nerf_path_penalty(upsampled: Tensor, nerf: Tensor) -> Tensor:
    """``2 * mean_pixels(sum_channels (upsampled - nerf)^2)`` per sample: ``[B, C, N]`` twice -> ``[B]``."""
    if upsampled.shape != nerf.shape:
        raise ValueError(f"nerf_path_penalty: shapes differ, {tuple(upsampled.shape)} vs {tuple(nerf.shape)}")
    return (upsampled - nerf).square().sum(1).mean(-1) * PENALTY_SCALE


def nerf_path_rgb(upsampler, point_features: Tensor, weights: Tensor, ws: Tensor, *,
                  alpha: float | None = None) -> Tensor:
    """``I_nerf``: every sample's ``[rgb, feature]`` ``point_features [B, R, S, 3 + C]`` through
    ``upsampler.pixelwise`` with its rows ``ws`` (at fade-in ``alpha``, default the upsampler's own), composited
    with ``weights [B, R, S, 1]`` -> ``[B, 3, R]``."""
    if point_features.ndim != 4:
        raise ValueError(f"point_features must be [B, R, S, F], got {tuple(point_features.shape)}")
    rgb = upsampler.pixelwise(point_features.permute(0, 3, 1, 2), ws, alpha=alpha)  # [B, 3, R, S]
    return composite_points(rgb, weights)
