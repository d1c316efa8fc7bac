"""The ``object_edit`` visualizer: controllable generation of compositional generators (GIRAFFE).

One scene (a seed's latent) is held fixed while a single factor changes: one object is moved along a
world axis, rotated about the up axis or rescaled, or the camera turns (yaw) or rises (polar angle).
Each edit writes a PNG strip of ``num_steps`` images and an MP4 of ``num_frames`` frames, as GIRAFFE's
``render_object_rotation`` / ``render_object_translation_*`` / ``render_camera_elevation`` programs do
(im2scene/giraffe/rendering.py: the value sweeps the configured prior range, 32 steps by default).

Object edits need a scene latent with object frames (:class:`~gan3d.core.types.SceneLatent`; the
``giraffe`` mapper's group ``main``) and the mapper's declared priors (``frame_priors()``); camera edits
work with any generator. The fixed camera is the pose sampler's mean view (``camera_rig()``: the middle of
its ranges, GIRAFFE ``get_camera(0.5, 0.5, 0.5)``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from gan3d.core import latents as latent_ops
from gan3d.core.cameras import rotation_about_y
from gan3d.core.interfaces import Visualizer
from gan3d.core.types import SceneLatent

from .camera_rig import camera_rig, rig_cameras
from .image_files import images_to_uint8, tile_images, write_png
from .latents import evaluation_mode, map_latents, render_in_batches, seeded_latents
from .orbit_video import write_mp4
from .output_paths import refuse_existing

__all__ = ["EDITS", "OBJECT_EDITS", "ObjectEditVisualizer", "apply_object_edit", "centre_angles", "edit_values",
           "editable_objects", "object_edit_state", "render_object_edit", "write_object_edit"]

logger = logging.getLogger(__name__)

#: Edit names: object translation along a world axis (y is up), rotation about +y, uniform scale,
#: camera yaw (azimuth) and polar angle.
EDITS = ("translate_x", "translate_y", "translate_z", "rotate", "scale", "camera_yaw", "camera_polar")
#: The edits that change one object's transform (the others turn the camera).
OBJECT_EDITS = EDITS[:5]
_AXES = {"translate_x": 0, "translate_y": 1, "translate_z": 2}
#: The field group whose instances are the scene's objects.
OBJECT_GROUP = "main"


def _object_frames(generator: nn.Module, ws, edit: str):
    """The object frames of the scene latent ``ws`` and the mapper's priors, or a clear error."""
    priors = generator.mapper.frame_priors()
    if not isinstance(ws, SceneLatent) or OBJECT_GROUP not in ws.frames or priors is None:
        raise ValueError(f"object_edit {edit!r} needs a compositional generator whose latent holds object frames "
                         f"(e.g. stochasticity_mapper 'giraffe'); this generator's mapper is "
                         f"{type(generator.mapper).__name__}. Camera edits ('camera_yaw', 'camera_polar') work "
                         "with any generator")
    return ws.frames[OBJECT_GROUP], priors


def editable_objects(generator: nn.Module) -> int:
    """How many objects :func:`apply_object_edit` can move: the instances of the object group in the
    generator's scene latent (0 when its mapper has no object frames)."""
    if generator.mapper.frame_priors() is None:
        return 0
    with torch.no_grad():
        latent = generator.mapping(torch.zeros(1, generator.z_dim))
    return latent.instances(OBJECT_GROUP) if isinstance(latent, SceneLatent) and OBJECT_GROUP in latent.frames else 0


def centre_angles(generator: nn.Module) -> tuple[float, float]:
    """``(yaw, polar)`` in radians of the pose sampler's mean view (:meth:`camera_rig`)."""
    rig = generator.pose_sampler.camera_rig()
    return rig.yaw, rig.polar


def edit_values(generator: nn.Module, edit: str, num_steps: int, ws, *, object_index: int = 0,
                fallback_span: float = 0.2) -> list[float]:
    """``num_steps`` evenly spaced values of ``edit`` for one scene's latent ``ws``.

    Object edits sweep the mapper's configured prior (translation per axis, rotation in radians, scale
    as the first axis' factor); where that prior is a single value the sweep is ``value +- fallback_span``
    (translation), a full turn (rotation) or ``x (1 +- fallback_span)`` (scale). Camera edits sweep
    ``+-0.35`` rad of yaw and ``+-0.25`` rad of polar angle about the centre (the orbit video's swing).
    """
    if edit not in EDITS:
        raise ValueError(f"unknown object_edit {edit!r}; choose one of {', '.join(EDITS)}")
    if num_steps < 2:
        raise ValueError(f"num_steps must be >= 2, got {num_steps}")
    yaw, polar = centre_angles(generator)
    if edit == "camera_yaw":
        low, high = yaw - 0.35, yaw + 0.35
    elif edit == "camera_polar":
        low, high = max(polar - 0.25, 1e-3), min(polar + 0.25, math.pi - 1e-3)
    else:
        frames, ranges = _object_frames(generator, ws, edit)
        if edit in _AXES:
            axis = _AXES[edit]
            low, high = ranges["translation"][0][axis], ranges["translation"][1][axis]
            if high - low <= 0:
                current = float(frames.translation[0, object_index, axis])
                low, high = current - fallback_span, current + fallback_span
        elif edit == "rotate":
            low, high = ranges["rotation"]
            if high - low <= 0:
                low, high = low, low + 2 * math.pi
        else:
            low, high = ranges["scale"][0][0], ranges["scale"][1][0]
            if high - low <= 0:
                low, high = low * (1 - fallback_span), low * (1 + fallback_span)
    return [low + (high - low) * i / (num_steps - 1) for i in range(num_steps)]


def render_object_edit(generator: nn.Module, ws, *, edit: str, values: Sequence[float], object_index: int = 0,
                       resolution: int | None = None, batch_size: int = 8,
                       device: torch.device | str = "cpu") -> Tensor:
    """Render one scene's latent ``ws`` once per value of ``edit``; returns ``[len(values), 3, H, W]``
    in ``[-1, 1]`` on the CPU. Everything not edited stays fixed (the other objects, the codes, the
    camera at :func:`centre_angles`). Run it under :func:`.latents.evaluation_mode`.

    Values: translations are world coordinates of the object's centre along the edited axis, rotations
    radians about +y, scales the object's scale on every axis keeping its axis ratios, camera edits radians.
    """
    if edit not in EDITS:
        raise ValueError(f"unknown object_edit {edit!r}; choose one of {', '.join(EDITS)}")
    if latent_ops.batch_size(ws) != 1:
        raise ValueError(f"ws must hold one scene, got a batch of {latent_ops.batch_size(ws)}")
    n = len(values)
    if n == 0:
        raise ValueError("values is empty")
    rig = camera_rig(generator)
    yaw, polar = torch.full((n,), rig.yaw), torch.full((n,), rig.polar)
    batch = latent_ops.repeat(latent_ops.to(ws, device), n)
    value = torch.tensor([float(v) for v in values])
    if edit == "camera_yaw":
        yaw = value
    elif edit == "camera_polar":
        polar = value
    else:
        batch = apply_object_edit(generator, batch, edit, value.to(device=device), object_index=object_index)
    cameras = rig_cameras(rig, yaw, polar, device)
    outputs = render_in_batches(generator, batch, cameras, batch_size=batch_size, resolution=resolution)
    return torch.cat([o.image.detach().float().cpu() for o in outputs])


def apply_object_edit(generator: nn.Module, ws: SceneLatent, edit: str, values: Tensor | float, *,
                      object_index: int = 0) -> SceneLatent:
    """A copy of the scene latent ``ws`` with one object edit set to ``values`` (``[B]`` or a float).

    ``edit`` is one of :data:`OBJECT_EDITS`, in the units of :func:`render_object_edit` (world
    coordinates, radians about +y, the first axis' scale keeping the axis ratios). Several edits are
    applied one after another; each changes only what it names.
    """
    if edit not in OBJECT_EDITS:
        raise ValueError(f"unknown object edit {edit!r}; choose one of {', '.join(OBJECT_EDITS)}")
    frames, _ = _object_frames(generator, ws, edit)
    count = frames.scale.shape[1]
    if not 0 <= object_index < count:
        raise ValueError(f"object_index must be in [0, {count}), got {object_index}")
    value = torch.as_tensor(values, dtype=frames.scale.dtype, device=frames.scale.device).expand(ws.batch_size)
    if edit in _AXES:
        translation = frames.translation[:, object_index].clone()
        translation[:, _AXES[edit]] = value
        return ws.with_frame(OBJECT_GROUP, object_index, translation=translation)
    if edit == "rotate":
        return ws.with_frame(OBJECT_GROUP, object_index, rotation=rotation_about_y(value))
    scale = frames.scale[:, object_index]
    return ws.with_frame(OBJECT_GROUP, object_index, scale=scale / scale[:, :1] * value[:, None])


def object_edit_state(generator: nn.Module, ws: SceneLatent, *,
                      object_index: int = 0) -> dict[str, tuple[float, float, float]]:
    """``{edit: (low, current, high)}`` for each of :data:`OBJECT_EDITS` of one scene's latent ``ws``: the
    object's current value and the range :func:`edit_values` sweeps (widened to hold the value)."""
    frames, _ = _object_frames(generator, ws, "object edits")
    if ws.batch_size != 1:
        raise ValueError(f"ws must hold one scene, got a batch of {ws.batch_size}")
    count = frames.scale.shape[1]
    if not 0 <= object_index < count:
        raise ValueError(f"object_index must be in [0, {count}), got {object_index}")
    translation = frames.translation[0, object_index].detach().float().cpu()
    rotation = frames.rotation[0, object_index].detach().float().cpu()
    current = {name: float(translation[axis]) for name, axis in _AXES.items()}
    # rotation_about_y(a) has cos a and sin a in its first row's first and last entries.
    current["rotate"] = float(torch.atan2(rotation[0, 2], rotation[0, 0]))
    current["scale"] = float(frames.scale[0, object_index, 0])
    state = {}
    for edit in OBJECT_EDITS:
        low, high = edit_values(generator, edit, 2, ws, object_index=object_index)
        value = current[edit]
        if edit == "rotate":  # the angle modulo a full turn nearest to the sweep
            middle = 0.5 * (low + high)
            value = middle + math.remainder(value - middle, 2 * math.pi)
        state[edit] = (min(low, value), value, max(high, value))
    return state


class ObjectEditVisualizer(Visualizer):
    """Per seed and edit: ``<prefix>_<edit>_seedNNNN.png`` (a strip of ``num_steps`` images) and, with
    ``video``, ``<prefix>_<edit>_seedNNNN.mp4`` (``num_frames`` frames sweeping the same values).

    Args:
        num: number of seeds (``seed .. seed + num - 1``).
        edits: names from :data:`EDITS`.
        object_index: the object edited.
        num_steps: images per strip; num_frames, fps: the video.
        values: explicit values for every edit (overrides :func:`edit_values`'s sweep); empty: the sweep.
        truncation_psi: latent truncation (GIRAFFE renders with a sampling temperature below 1).
        resolution: render resolution (0: the generator's); batch_size: images rendered at once.
        video: also write the MP4; file_prefix: file names.
    """

    name = "object_edit"

    def __init__(self, *, num: int = 1, edits: Sequence[str] = ("rotate", "translate_x", "camera_yaw"),
                 object_index: int = 0, num_steps: int = 8, num_frames: int = 32, fps: int = 16,
                 values: Sequence[float] = (), truncation_psi: float = 1.0, resolution: int = 0, batch_size: int = 8,
                 video: bool = True, file_prefix: str = "object_edit") -> None:
        unknown = [e for e in edits if e not in EDITS]
        if unknown or not edits:
            raise ValueError(f"object_edit edits must be a non-empty list from {', '.join(EDITS)}; got {list(edits)}")
        if num <= 0 or num_steps < 2 or num_frames < 2 or fps <= 0:
            raise ValueError(f"object_edit needs num > 0, num_steps >= 2, num_frames >= 2, fps > 0; got {num}, "
                             f"{num_steps}, {num_frames}, {fps}")
        self.num, self.edits, self.object_index = num, list(edits), object_index
        self.num_steps, self.num_frames, self.fps = num_steps, num_frames, fps
        self.values = [float(v) for v in values]
        self.truncation_psi, self.resolution, self.batch_size = truncation_psi, resolution, batch_size
        self.video, self.file_prefix = video, file_prefix

    def paths(self, out_dir: Path | str, edit: str, seed: int) -> tuple[Path, Path]:
        stem = Path(out_dir) / f"{self.file_prefix}_{edit}_seed{seed:04d}"
        return stem.with_suffix(".png"), stem.with_suffix(".mp4")

    def _render(self, generator: nn.Module, ws, edit: str, count: int, device) -> np.ndarray:
        values = self.values or edit_values(generator, edit, count, ws, object_index=self.object_index)
        images = render_object_edit(generator, ws, edit=edit, values=values, object_index=self.object_index,
                                    resolution=self.resolution or None, batch_size=self.batch_size, device=device)
        return images_to_uint8(images)

    def visualize(self, generator: nn.Module, out_dir, *, device: torch.device | str = "cpu", seed: int = 0,
                  on_written: Callable[[Path], None] | None = None) -> list[Path]:
        """Write the strips (and videos) into ``out_dir``; returns their paths. Never overwrites a file."""
        jobs = [(edit, s) for s in range(seed, seed + self.num) for edit in self.edits]
        for edit, s in jobs:
            strip, video = self.paths(out_dir, edit, s)
            refuse_existing(strip)
            if self.video:
                refuse_existing(video)
        written: list[Path] = []
        with evaluation_mode(generator):
            for edit, s in jobs:
                z = seeded_latents(1, generator.z_dim, s).to(device)
                # A pose-conditioned mapper (EG3D) gets the front camera, as the other visualizers do.
                ws = map_latents(generator, z, camera_rig(generator), truncation_psi=self.truncation_psi,
                                 truncation_cutoff=None)
                strip, video = self.paths(out_dir, edit, s)
                frames = self._render(generator, ws, edit, len(self.values) or self.num_steps, device)
                written.append(write_png(tile_images(frames, nrow=len(frames)), strip))
                if self.video:
                    movie = frames if self.values else self._render(generator, ws, edit, self.num_frames, device)
                    written.append(write_mp4(movie, video, fps=self.fps))
                if on_written is not None:
                    for path in written[-(2 if self.video else 1):]:
                        on_written(path)
        logger.info("object_edit wrote %d file(s) into %s", len(written), out_dir)
        return written


def write_object_edit(generator: nn.Module, out_dir: Path | str, *, edits: Sequence[str] = ("rotate",),
                      seed: int = 0, num: int = 1, object_index: int = 0, num_steps: int = 8, num_frames: int = 32,
                      fps: int = 16, values: Sequence[float] = (), truncation_psi: float = 1.0, resolution: int = 0,
                      batch_size: int = 8, video: bool = True,
                      device: torch.device | str = "cpu") -> list[Path]:
    """The entry for ``tools/run.py infer``: :class:`ObjectEditVisualizer` with these options, run once.

    Returns the written PNG strips and MP4s, in the order seed-major, then edit.
    """
    return ObjectEditVisualizer(num=num, edits=edits, object_index=object_index, num_steps=num_steps,
                                num_frames=num_frames, fps=fps, values=values, truncation_psi=truncation_psi,
                                resolution=resolution, batch_size=batch_size,
                                video=video).visualize(generator, out_dir, device=device, seed=seed)
