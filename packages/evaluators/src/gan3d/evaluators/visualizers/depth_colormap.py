"""Colouring rendered depth with a perceptual colormap, background masked by the rendered opacity."""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import Tensor

__all__ = ["COLORMAPS", "colorize_depth", "foreground_depth"]

#: Perceptually uniform colormaps of OpenCV (viridis family, cividis) and Google's turbo.
COLORMAPS: dict[str, int] = {
    "inferno": cv2.COLORMAP_INFERNO,
    "magma": cv2.COLORMAP_MAGMA,
    "plasma": cv2.COLORMAP_PLASMA,
    "viridis": cv2.COLORMAP_VIRIDIS,
    "cividis": cv2.COLORMAP_CIVIDIS,
    "turbo": cv2.COLORMAP_TURBO,
}


def foreground_depth(depth: Tensor, alpha: Tensor, *, alpha_threshold: float = 0.5,
                     normalize_by_alpha: bool = True) -> tuple[Tensor, Tensor]:
    """The depth of the surface seen at each pixel and the foreground mask.

    Args:
        depth: ``[B, 1, h, w]`` rendered depth. The renderer contract (:class:`~gan3d.core.types.Render`)
            is the weighted sum ``sum_i w_i t_i``, which a partly transparent pixel pulls towards 0;
            dividing by ``alpha = sum_i w_i`` gives the mean depth of what the ray hit.
        alpha: ``[B, 1, h, w]`` accumulated opacity.

    Returns:
        ``depth [B, 1, h, w]`` (normalized by alpha where asked) and ``mask [B, 1, h, w]`` (bool,
        ``alpha > alpha_threshold``).
    """
    if depth.shape != alpha.shape:
        raise ValueError(f"depth {tuple(depth.shape)} and alpha {tuple(alpha.shape)} must have the same shape")
    mask = alpha > alpha_threshold
    if normalize_by_alpha:
        depth = depth / alpha.clamp_min(1e-6)
    return depth, mask


def colorize_depth(
    depth: Tensor,
    alpha: Tensor,
    *,
    colormap: str = "inferno",
    alpha_threshold: float = 0.5,
    normalize_by_alpha: bool = True,
    depth_range: tuple[float, float] | None = None,
    background: tuple[int, int, int] = (255, 255, 255),
) -> np.ndarray:
    """Colour-mapped depth images, ``uint8 [B, h, w, 3]`` RGB; near is bright, background is ``background``.

    Args:
        depth, alpha: ``[B, 1, h, w]`` rendered depth and opacity (see :func:`foreground_depth`).
        colormap: a name in :data:`COLORMAPS`.
        depth_range: ``(near, far)`` shared by all images (an orbit video uses one range so colours
            do not flicker); ``None`` stretches each image's foreground depths over the whole map.

    Example:
        >>> out = G(z)                                            # doctest: +SKIP
        >>> colorize_depth(out.depth, out.alpha).shape           # doctest: +SKIP
        (4, 64, 64, 3)
    """
    if colormap not in COLORMAPS:
        raise ValueError(f"unknown colormap {colormap!r}; choose one of {', '.join(COLORMAPS)}")
    surface, mask = foreground_depth(depth.float(), alpha.float(), alpha_threshold=alpha_threshold,
                                     normalize_by_alpha=normalize_by_alpha)
    surface = surface[:, 0].detach().cpu()
    mask = mask[:, 0].detach().cpu()
    out = np.empty((*surface.shape, 3), dtype=np.uint8)
    for i in range(surface.shape[0]):
        out[i] = np.asarray(background, dtype=np.uint8)
        if not bool(mask[i].any()):
            continue
        if depth_range is None:
            near, far = float(surface[i][mask[i]].min()), float(surface[i][mask[i]].max())
        else:
            near, far = depth_range
        closeness = ((far - surface[i]) / max(far - near, 1e-8)).clamp(0.0, 1.0)
        levels = (closeness * 255.0).round().to(torch.uint8).numpy()
        rgb = cv2.applyColorMap(levels, COLORMAPS[colormap])[..., ::-1]  # OpenCV returns BGR
        out[i][mask[i].numpy()] = rgb[mask[i].numpy()]
    return out
