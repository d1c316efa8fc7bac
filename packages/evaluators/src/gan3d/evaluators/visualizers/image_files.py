"""Generator images to ``uint8`` arrays, grids of them, and PNG files written without clobbering."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch
from torch import Tensor

from gan3d.core.images import tile_images

from .output_paths import write_new_file

__all__ = ["images_to_uint8", "tile_images", "encode_png", "save_image_grid", "write_png"]


def images_to_uint8(images: Tensor) -> np.ndarray:
    """``images [B, 3, H, W]`` in ``[-1, 1]`` -> ``uint8 [B, H, W, 3]``.

    EG3D's ``gen_samples.py``: ``(img * 127.5 + 128).clamp(0, 255)``, truncated to integers.
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be [B, 3, H, W], got {tuple(images.shape)}")
    pixels = (images.detach().float() * 127.5 + 128.0).clamp(0.0, 255.0).to(torch.uint8)
    return pixels.permute(0, 2, 3, 1).cpu().numpy()


def encode_png(image: np.ndarray) -> bytes:
    """``uint8 [H, W, 3]`` (or ``[H, W]``) -> PNG bytes."""
    return iio.imwrite("<bytes>", image, extension=".png")


def write_png(image: np.ndarray, path: Path | str) -> Path:
    """Write ``uint8 [H, W, 3]`` as a new PNG at ``path`` (refuses to overwrite)."""
    return write_new_file(path, encode_png(image))


def save_image_grid(images: Tensor, path: Path | str, nrow: int, *, padding: int = 0) -> Path:
    """Save ``images [B, 3, H, W]`` in ``[-1, 1]`` as one PNG grid with ``nrow`` images per row.

    Returns the written path; raises :class:`FileExistsError` when ``path`` exists.

    Example:
        >>> save_image_grid(torch.zeros(6, 3, 32, 32), "grid.png", nrow=3)   # doctest: +SKIP
        PosixPath('grid.png')                                                 # a 96 x 64 image
    """
    return write_png(tile_images(images_to_uint8(images), nrow, padding=padding), path)
