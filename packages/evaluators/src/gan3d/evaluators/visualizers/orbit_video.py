"""The ``orbit_video`` visualizer: one MP4 per latent, the camera swinging about the object.

The trajectory and encoding follow EG3D's ``gen_videos.py``: the latent stays fixed (its mapping
conditioned on the front camera), the camera yaw swings ``pi/2 + 0.35 sin(2 pi t)`` and its polar
angle ``pi/2 - 0.05 + 0.25 cos(2 pi t)``, 60 frames per second, H.264 at 10 Mbit/s. Frames are
written with imageio's ffmpeg plugin (imageio-ffmpeg bundles the ffmpeg binary).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import imageio
import numpy as np
import torch
from torch import nn

from gan3d.core import latents as latent_ops
from gan3d.core.interfaces import Visualizer

from .camera_rig import CameraRig, camera_rig, orbit_angles, rig_cameras
from .depth_colormap import COLORMAPS, colorize_depth, foreground_depth
from .image_files import images_to_uint8
from .latents import evaluation_mode, expected_depth, map_latents, render_in_batches, seeded_latents
from .output_paths import publish_new_file, refuse_existing, temporary_sibling

__all__ = ["OrbitVideoVisualizer", "write_mp4"]

logger = logging.getLogger(__name__)

IMAGE_MODES = ("image", "image_raw", "depth")


def write_mp4(frames: np.ndarray, path: Path | str, *, fps: int = 60, bitrate: str = "10M",
              codec: str = "libx264") -> Path:
    """Encode ``uint8 [F, H, W, 3]`` frames as a new MP4 at ``path`` (refuses to overwrite).

    H.264 in 4:2:0 needs even sides, so an odd height or width is padded by repeating the last
    row or column (never rescaled).
    """
    path = Path(path)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 [F, H, W, 3], got {frames.dtype} {frames.shape}")
    path.parent.mkdir(parents=True, exist_ok=True)
    refuse_existing(path)
    pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
    if pad_h or pad_w:
        frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    temporary = temporary_sibling(path)
    try:
        writer = imageio.get_writer(temporary, format="FFMPEG", mode="I", fps=fps, codec=codec, bitrate=bitrate,
                                    macro_block_size=1, ffmpeg_log_level="error")
        try:
            for frame in frames:
                writer.append_data(frame)
        finally:
            writer.close()
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return publish_new_file(temporary, path)


class OrbitVideoVisualizer(Visualizer):
    """An orbit video per latent: ``<prefix>_seedNNNN.mp4`` for seeds ``seed .. seed + num - 1``.

    Args:
        num: number of latents (one video each).
        num_frames, fps: frames per orbit (EG3D's ``--w-frames`` default 120) and frame rate (EG3D 60).
        yaw_range, pitch_range, polar_offset: the swing in radians (EG3D: 0.35, 0.25, -0.05); set
            ``pitch_range=0`` for a pure yaw swing.
        full_turn: a whole 360-degree turn of yaw instead of the swing.
        image_mode: ``'image'`` (final), ``'image_raw'`` (before the upsampler) or ``'depth'``
            (colour-mapped, one depth range for the whole video so colours do not flicker).
        truncation_psi, truncation_cutoff, resolution, camera_*: as for ``image_grid``.
        batch_size: frames rendered at once.
        bitrate, colormap, file_prefix: encoding, depth colours, file names.
    """

    name = "orbit_video"

    def __init__(
        self,
        *,
        num: int = 1,
        num_frames: int = 120,
        fps: int = 60,
        yaw_range: float = 0.35,
        pitch_range: float = 0.25,
        polar_offset: float = -0.05,
        full_turn: bool = False,
        image_mode: str = "image",
        truncation_psi: float = 0.7,
        truncation_cutoff: int = -1,
        resolution: int = 0,
        batch_size: int = 8,
        bitrate: str = "10M",
        colormap: str = "inferno",
        camera_radius: float = 0.0,
        camera_pivot: tuple = (),
        camera_focal: float = 0.0,
        file_prefix: str = "orbit",
    ) -> None:
        if num <= 0 or num_frames <= 0 or fps <= 0:
            raise ValueError(f"orbit_video num, num_frames and fps must be positive; got {num}, {num_frames}, {fps}")
        if image_mode not in IMAGE_MODES:
            raise ValueError(f"orbit_video image_mode must be one of {', '.join(IMAGE_MODES)}, got {image_mode!r}")
        if colormap not in COLORMAPS:
            raise ValueError(f"orbit_video colormap {colormap!r} is unknown; choose one of {', '.join(COLORMAPS)}")
        self.num = num
        self.num_frames = num_frames
        self.fps = fps
        self.yaw_range = yaw_range
        self.pitch_range = pitch_range
        self.polar_offset = polar_offset
        self.full_turn = full_turn
        self.image_mode = image_mode
        self.truncation_psi = truncation_psi
        self.truncation_cutoff = truncation_cutoff
        self.resolution = resolution
        self.batch_size = batch_size
        self.bitrate = bitrate
        self.colormap = colormap
        self.camera_radius = camera_radius
        self.camera_pivot = tuple(camera_pivot)
        self.camera_focal = camera_focal
        self.file_prefix = file_prefix

    def rig(self, generator: nn.Module) -> CameraRig:
        return camera_rig(generator, pivot=self.camera_pivot, radius=self.camera_radius, focal=self.camera_focal)

    def video_path(self, out_dir: Path | str, seed: int) -> Path:
        return Path(out_dir) / f"{self.file_prefix}_seed{seed:04d}.mp4"

    def render_frames(self, generator: nn.Module, seed: int, *, device: torch.device | str = "cpu",
                      ws: latent_ops.Latent | None = None) -> np.ndarray:
        """The ``uint8 [num_frames, H, W, 3]`` frames of the latent of ``seed``, or of one scene's latent
        ``ws`` when given (an edited one: the viewer's export)."""
        rig = self.rig(generator)
        yaw, polar = orbit_angles(self.num_frames, yaw_range=self.yaw_range, pitch_range=self.pitch_range,
                                  polar_offset=self.polar_offset, full_turn=self.full_turn,
                                  center=(rig.yaw, rig.polar))
        cameras = rig_cameras(rig, yaw, polar, device)
        with evaluation_mode(generator):
            if ws is None:
                z = seeded_latents(1, generator.z_dim, seed).to(device)
                ws = map_latents(generator, z, rig, truncation_psi=self.truncation_psi,
                                 truncation_cutoff=None if self.truncation_cutoff < 0 else self.truncation_cutoff)
            ws = latent_ops.repeat(latent_ops.to(ws, device), self.num_frames)
            outputs = render_in_batches(generator, ws, cameras, batch_size=self.batch_size,
                                        resolution=self.resolution or None)
        if self.image_mode != "depth":
            return images_to_uint8(torch.cat([getattr(o, self.image_mode).float().cpu() for o in outputs]))
        depth = torch.cat([expected_depth(o).float().cpu() for o in outputs])
        alpha = torch.cat([o.alpha.float().cpu() for o in outputs])
        surface, mask = foreground_depth(depth, alpha)
        depth_range = None
        if bool(mask.any()):
            depth_range = (float(surface[mask].min()), float(surface[mask].max()))
        return colorize_depth(depth, alpha, colormap=self.colormap, depth_range=depth_range)

    def write_video(self, generator: nn.Module, out_dir: Path | str, seed: int, *,
                    device: torch.device | str = "cpu") -> Path:
        """Render and encode the video of the latent of ``seed``; returns its path."""
        path = self.video_path(out_dir, seed)
        refuse_existing(path)
        return write_mp4(self.render_frames(generator, seed, device=device), path, fps=self.fps,
                         bitrate=self.bitrate)

    def visualize(self, generator: nn.Module, out_dir, *, device: torch.device | str = "cpu", seed: int = 0,
                  on_written: Callable[[Path], None] | None = None) -> list[Path]:
        """Write ``num`` videos into ``out_dir``; returns their paths. Never overwrites a file.

        ``on_written`` (optional) is called with each path as soon as it is written (progress bars).
        """
        for s in range(seed, seed + self.num):
            refuse_existing(self.video_path(out_dir, s))
        written = []
        for s in range(seed, seed + self.num):
            written.append(self.write_video(generator, out_dir, s, device=device))
            if on_written is not None:
                on_written(written[-1])
        logger.info("orbit_video wrote %d video(s) into %s", len(written), out_dir)
        return written
