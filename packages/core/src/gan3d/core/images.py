"""Writing images: grids of ``[-1, 1]`` tensors to PNG (used by the trainer's sample snapshots)."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import Tensor

__all__ = ["to_uint8", "image_grid", "save_image_grid"]


def to_uint8(images: Tensor, value_range: tuple[float, float] = (-1.0, 1.0)) -> np.ndarray:
    """``[B, C, H, W]`` float images -> ``[B, H, W, C]`` uint8 (clipped)."""
    lo, hi = value_range
    x = (images.detach().float().cpu() - lo) * (255.0 / (hi - lo))
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def image_grid(images: Tensor, nrow: int | None = None, value_range: tuple[float, float] = (-1.0, 1.0)) -> np.ndarray:
    """Tile ``[B, C, H, W]`` images into one ``[rows*H, nrow*W, C]`` uint8 array (row-major)."""
    if images.ndim != 4:
        raise ValueError(f"images must be [B, C, H, W], got {tuple(images.shape)}")
    b, c, h, w = images.shape
    nrow = nrow or math.ceil(math.sqrt(b))
    rows = math.ceil(b / nrow)
    arr = to_uint8(images, value_range)
    grid = np.zeros((rows * h, nrow * w, c), dtype=np.uint8)
    for i in range(b):
        r, col = divmod(i, nrow)
        grid[r * h:(r + 1) * h, col * w:(col + 1) * w] = arr[i]
    return grid


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
