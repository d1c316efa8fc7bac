"""Writing images: grids of ``[-1, 1]`` tensors to PNG (used by the trainer's sample snapshots)."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import Tensor

__all__ = ["to_uint8", "tile_images", "image_grid", "save_image_grid", "resize_images"]


def resize_images(images: Tensor, resolution: int) -> Tensor:
    """``images [B, C, H, W]`` resized to ``resolution x resolution`` (bilinear, antialiased when shrinking);
    returned as they are when they already have that size."""
    if images.shape[-1] == resolution and images.shape[-2] == resolution:
        return images
    return torch.nn.functional.interpolate(images, size=(resolution, resolution), mode="bilinear",
                                           align_corners=False, antialias=images.shape[-1] > resolution)


def to_uint8(images: Tensor, value_range: tuple[float, float] = (-1.0, 1.0)) -> np.ndarray:
    """``[B, C, H, W]`` float images -> ``[B, H, W, C]`` uint8 (clipped)."""
    lo, hi = value_range
    x = (images.detach().float().cpu() - lo) * (255.0 / (hi - lo))
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def tile_images(images: np.ndarray, nrow: int, *, padding: int = 0, pad_value: int = 255) -> np.ndarray:
    """Lay ``images [B, H, W, C]`` out row-major, ``nrow`` per row -> ``[rows*(H+p)-p, nrow*(W+p)-p, C]``.

    ``nrow`` is the number of images per row (torchvision's ``make_grid`` convention); the last row
    is filled with ``pad_value`` where images run out.
    """
    if images.ndim != 4:
        raise ValueError(f"images must be [B, H, W, C], got shape {images.shape}")
    if nrow <= 0:
        raise ValueError(f"nrow must be positive, got {nrow}")
    count, height, width, channels = images.shape
    cols = min(nrow, count)
    rows = math.ceil(count / cols)
    grid = np.full((rows * (height + padding) - padding, cols * (width + padding) - padding, channels),
                   pad_value, dtype=images.dtype)
    for index in range(count):
        r, c = divmod(index, cols)
        top, left = r * (height + padding), c * (width + padding)
        grid[top:top + height, left:left + width] = images[index]
    return grid


def image_grid(images: Tensor, nrow: int | None = None, value_range: tuple[float, float] = (-1.0, 1.0)) -> np.ndarray:
    """Tile ``[B, C, H, W]`` images into one ``[rows*H, nrow*W, C]`` uint8 array (row-major)."""
    if images.ndim != 4:
        raise ValueError(f"images must be [B, C, H, W], got {tuple(images.shape)}")
    nrow = nrow or math.ceil(math.sqrt(images.shape[0]))
    return tile_images(to_uint8(images, value_range), nrow, pad_value=0)


def save_image_grid(images: Tensor, path: Path | str, nrow: int | None = None,
                    value_range: tuple[float, float] = (-1.0, 1.0)) -> Path:
    """Save ``[B, C, H, W]`` images (C is 1 or 3, RGB) as one PNG grid; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    grid = image_grid(images, nrow, value_range)
    if grid.shape[-1] == 3:
        grid = cv2.cvtColor(grid, cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(str(path), grid):
        raise OSError(f"could not write image {path}")
    return path
