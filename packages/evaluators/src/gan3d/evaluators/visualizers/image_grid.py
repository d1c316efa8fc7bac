"""The ``image_grid`` visualizer: images of seeded latents as one PNG grid (plus raw images, depth)."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import torch
from torch import nn

from gan3d.core.interfaces import Visualizer

from .camera_rig import camera_rig
from .depth_colormap import colorize_depth
from .image_files import images_to_uint8, save_image_grid, tile_images, write_png
from .latents import evaluation_mode, render_latents
from .output_paths import refuse_existing

__all__ = ["ImageGridVisualizer", "save_image_grid"]

logger = logging.getLogger(__name__)


class ImageGridVisualizer(Visualizer):
    """Render ``num`` latents drawn from ``seed`` and save them as a grid.

    Writes ``<prefix>_grid.png`` (final images), and when asked ``<prefix>_raw_grid.png`` (the
    volume-rendered image before the upsampler) and ``<prefix>_depth_grid.png`` (coloured depth).

    Args:
        num: number of latents.
        nrow: images per grid row (0: ``ceil(sqrt(num))``; with several ``yaw_offsets`` each latent
            gets one row of views).
        truncation_psi, truncation_cutoff: truncation towards ``w_avg`` (cutoff ``-1``: every layer).
        pose: ``'front'`` (the rig's camera turned by ``yaw_offsets``) or ``'sampled'`` (the pose sampler).
        yaw_offsets, polar_offset: view offsets in radians from the front (EG3D's ``gen_samples.py``
            uses yaws ``[0.4, 0.0, -0.4]`` at polar offset ``-0.2``).
        resolution: volume-rendering resolution (0: the generator's).
        batch_size: images rendered at once.
        save_raw, save_depth, colormap: the extra grids and the depth colormap.
        camera_radius, camera_pivot, camera_focal: override the rig (see :mod:`.camera_rig`).
        file_prefix: the file-name prefix.
    """

    name = "image_grid"

    def __init__(
        self,
        *,
        num: int = 8,
        nrow: int = 0,
        truncation_psi: float = 0.7,
        truncation_cutoff: int = -1,
        pose: str = "front",
        yaw_offsets: tuple = (0.0,),
        polar_offset: float = 0.0,
        resolution: int = 0,
        batch_size: int = 4,
        save_raw: bool = False,
        save_depth: bool = False,
        colormap: str = "inferno",
        camera_radius: float = 0.0,
        camera_pivot: tuple = (),
        camera_focal: float = 0.0,
        file_prefix: str = "image",
    ) -> None:
        if num <= 0:
            raise ValueError(f"image_grid num must be positive, got {num}")
        if pose not in ("front", "sampled"):
            raise ValueError(f"image_grid pose must be 'front' or 'sampled', got {pose!r}")
        self.num = num
        self.nrow = nrow
        self.truncation_psi = truncation_psi
        self.truncation_cutoff = truncation_cutoff
        self.pose = pose
        self.yaw_offsets = tuple(float(o) for o in yaw_offsets)
        self.polar_offset = polar_offset
        self.resolution = resolution
        self.batch_size = batch_size
        self.save_raw = save_raw
        self.save_depth = save_depth
        self.colormap = colormap
        self.camera_radius = camera_radius
        self.camera_pivot = tuple(camera_pivot)
        self.camera_focal = camera_focal
        self.file_prefix = file_prefix

    def _nrow(self) -> int:
        if self.pose == "front" and len(self.yaw_offsets) > 1:
            return len(self.yaw_offsets)
        return self.nrow or math.ceil(math.sqrt(self.num))

    def visualize(self, generator: nn.Module, out_dir, *, device: torch.device | str = "cpu",
                  seed: int = 0) -> list[Path]:
        """Write the grid(s) into ``out_dir``; returns their paths. Never overwrites a file."""
        out_dir = Path(out_dir)
        paths = {"image": out_dir / f"{self.file_prefix}_grid.png"}
        if self.save_raw:
            paths["image_raw"] = out_dir / f"{self.file_prefix}_raw_grid.png"
        if self.save_depth:
            paths["depth"] = out_dir / f"{self.file_prefix}_depth_grid.png"
        for path in paths.values():  # fail before spending time on rendering
            refuse_existing(path)
        rig = camera_rig(generator, pivot=self.camera_pivot, radius=self.camera_radius, focal=self.camera_focal)
        with evaluation_mode(generator):
            rendered = render_latents(
                generator, num=self.num, seed=seed, device=device, rig=rig,
                truncation_psi=self.truncation_psi,
                truncation_cutoff=None if self.truncation_cutoff < 0 else self.truncation_cutoff,
                pose=self.pose, yaw_offsets=self.yaw_offsets, polar_offset=self.polar_offset,
                resolution=self.resolution or None, batch_size=self.batch_size,
            )
        nrow = self._nrow()
        written = [save_image_grid(rendered["image"], paths["image"], nrow)]
        if self.save_raw:
            written.append(write_png(tile_images(images_to_uint8(rendered["image_raw"]), nrow), paths["image_raw"]))
        if self.save_depth:
            colored = colorize_depth(rendered["depth"], rendered["alpha"], colormap=self.colormap)
            written.append(write_png(tile_images(colored, nrow), paths["depth"]))
        logger.info("image_grid wrote %s", ", ".join(str(p) for p in written))
        return written
