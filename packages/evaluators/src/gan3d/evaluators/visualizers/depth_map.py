"""The ``depth_map`` visualizer: rendered depth of seeded latents, colour-mapped, background masked."""

from __future__ import annotations

import io
import logging
import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

from gan3d.core.interfaces import Visualizer

from .camera_rig import camera_rig
from .depth_colormap import COLORMAPS, colorize_depth, foreground_depth
from .image_files import tile_images, write_png
from .latents import evaluation_mode, render_latents
from .output_paths import refuse_existing, write_new_file

__all__ = ["DepthMapVisualizer"]

logger = logging.getLogger(__name__)


class DepthMapVisualizer(Visualizer):
    """Colour-mapped depth of ``num`` latents drawn from ``seed``.

    Writes ``<prefix>.png`` (a grid), with ``save_each`` also ``<prefix>_NNN.png`` per latent, and
    with ``save_array`` ``<prefix>.npy``: ``float32 [N, h, w]`` surface depth, NaN on the background.

    Depth is divided by the rendered opacity (see :func:`.depth_colormap.foreground_depth`); pixels
    with opacity at most ``alpha_threshold`` are background. Near is bright.

    Args:
        num, nrow, truncation_psi, truncation_cutoff, pose, resolution, batch_size, camera_*: as for
            ``image_grid``.
        colormap: ``inferno`` (default), ``magma``, ``plasma``, ``viridis``, ``cividis`` or ``turbo``.
        alpha_threshold, normalize_by_alpha: the foreground mask and depth normalization.
    """

    name = "depth_map"

    def __init__(
        self,
        *,
        num: int = 8,
        nrow: int = 0,
        truncation_psi: float = 0.7,
        truncation_cutoff: int = -1,
        pose: str = "front",
        resolution: int = 0,
        batch_size: int = 4,
        colormap: str = "inferno",
        alpha_threshold: float = 0.5,
        normalize_by_alpha: bool = True,
        save_each: bool = False,
        save_array: bool = False,
        camera_radius: float = 0.0,
        camera_pivot: tuple = (),
        camera_focal: float = 0.0,
        file_prefix: str = "depth_maps",
    ) -> None:
        if num <= 0:
            raise ValueError(f"depth_map num must be positive, got {num}")
        if colormap not in COLORMAPS:
            raise ValueError(f"depth_map colormap {colormap!r} is unknown; choose one of {', '.join(COLORMAPS)}")
        if pose not in ("front", "sampled"):
            raise ValueError(f"depth_map pose must be 'front' or 'sampled', got {pose!r}")
        self.num = num
        self.nrow = nrow
        self.truncation_psi = truncation_psi
        self.truncation_cutoff = truncation_cutoff
        self.pose = pose
        self.resolution = resolution
        self.batch_size = batch_size
        self.colormap = colormap
        self.alpha_threshold = alpha_threshold
        self.normalize_by_alpha = normalize_by_alpha
        self.save_each = save_each
        self.save_array = save_array
        self.camera_radius = camera_radius
        self.camera_pivot = tuple(camera_pivot)
        self.camera_focal = camera_focal
        self.file_prefix = file_prefix

    def visualize(self, generator: nn.Module, out_dir, *, device: torch.device | str = "cpu",
                  seed: int = 0) -> list[Path]:
        """Write the depth maps into ``out_dir``; returns their paths. Never overwrites a file."""
        out_dir = Path(out_dir)
        grid_path = out_dir / f"{self.file_prefix}.png"
        each_paths = [out_dir / f"{self.file_prefix}_{i:03d}.png" for i in range(self.num)] if self.save_each else []
        array_path = out_dir / f"{self.file_prefix}.npy"
        for path in [grid_path, *each_paths, *([array_path] if self.save_array else [])]:
            refuse_existing(path)
        rig = camera_rig(generator, pivot=self.camera_pivot, radius=self.camera_radius, focal=self.camera_focal)
        with evaluation_mode(generator):
            rendered = render_latents(
                generator, num=self.num, seed=seed, device=device, rig=rig,
                truncation_psi=self.truncation_psi,
                truncation_cutoff=None if self.truncation_cutoff < 0 else self.truncation_cutoff,
                pose=self.pose, resolution=self.resolution or None, batch_size=self.batch_size,
            )
        colored = colorize_depth(rendered["depth"], rendered["alpha"], colormap=self.colormap,
                                 alpha_threshold=self.alpha_threshold, normalize_by_alpha=self.normalize_by_alpha)
        written = [write_png(tile_images(colored, self.nrow or math.ceil(math.sqrt(self.num))), grid_path)]
        written += [write_png(image, path) for image, path in zip(colored, each_paths)]
        if self.save_array:
            surface, mask = foreground_depth(rendered["depth"], rendered["alpha"], alpha_threshold=self.alpha_threshold,
                                             normalize_by_alpha=self.normalize_by_alpha)
            array = torch.where(mask, surface, torch.full_like(surface, float("nan")))[:, 0].numpy()
            buffer = io.BytesIO()
            np.save(buffer, array.astype(np.float32))
            written.append(write_new_file(array_path, buffer.getvalue()))
        logger.info("depth_map wrote %d file(s) into %s", len(written), out_dir)
        return written
