"""What the viewer shows and exports, for any gan3d generator, through the visualizers' helpers.

Nothing here knows a method: the camera comes from :func:`~gan3d.evaluators.visualizers.camera_rig.camera_rig`
(turned and zoomed by the viewer's controls), the latent of a seed from
:func:`~gan3d.evaluators.visualizers.latents.seeded_latents` and
:func:`~gan3d.evaluators.visualizers.latents.map_latents` (the same object as ``infer`` draws for that
seed), object edits from :mod:`gan3d.evaluators.visualizers.object_edit`, and the exports are
``infer``'s own writers: :class:`~gan3d.evaluators.visualizers.orbit_video.OrbitVideoVisualizer`,
:class:`~gan3d.evaluators.visualizers.shape.ShapeVisualizer` and
:func:`~gan3d.evaluators.visualizers.image_files.encode_png`.

What uses the generator (``latent``, ``scene``, ``render``, the exports) must run on one thread at
a time: the viewer's server runs it on its render thread
(:class:`~gan3d.evaluators.viewer.render_worker.RenderWorker`). ``info``, ``default_view``,
``check_edits`` and ``view_from`` only read settings and are answered on the request threads.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from gan3d.core.cameras import intrinsics_to_fov

from ..visualizers.camera_rig import CameraRig, camera_rig, rig_cameras
from ..visualizers.depth_colormap import colorize_depth
from ..visualizers.image_files import encode_png, images_to_uint8
from ..visualizers.latents import evaluation_mode, expected_depth, map_latents, seeded_latents
from ..visualizers.object_edit import apply_object_edit, centre_angles, editable_objects, object_edit_state
from ..visualizers.orbit_video import OrbitVideoVisualizer, write_mp4
from ..visualizers.shape import ShapeVisualizer
from .query import IMAGE_MODES, ObjectEdit, QueryError

__all__ = ["ViewRenderer", "View", "RenderedImage", "ExportedFile", "ExportError", "fov_to_focal"]


class ExportError(RuntimeError):
    """An export could not produce its file for these settings (HTTP 422), e.g. no surface at the level."""


def fov_to_focal(fov_degrees: float) -> float:
    """Normalized focal length of a pinhole with horizontal field of view ``fov_degrees``:
    ``1 / (2 tan(fov / 2))``, the inverse of :func:`gan3d.core.cameras.intrinsics_to_fov`."""
    return 1.0 / (2.0 * math.tan(math.radians(fov_degrees) / 2.0))


@dataclass(frozen=True)
class View:
    """One view of one scene. Angles in degrees (see :mod:`.query`); ``resolution`` 0 is the generator's."""

    yaw: float
    pitch: float
    radius: float
    fov: float
    seed: int = 0
    psi: float = 0.7
    mode: str = "image"
    resolution: int = 0
    edits: tuple[ObjectEdit, ...] = ()


@dataclass(frozen=True)
class RenderedImage:
    """A PNG of a view, its pixel size and how long the render and encoding took."""

    png: bytes
    width: int
    height: int
    resolution: int
    milliseconds: float


@dataclass(frozen=True)
class ExportedFile:
    data: bytes
    filename: str
    content_type: str


class ViewRenderer:
    """Renders views of ``generator`` and exports its images, orbit videos and meshes.

    Args:
        generator: a :class:`gan3d.core.generator.Generator` on ``device`` (eval mode is set per call).
        method, variant: names shown by the page and used in file names (a checkpoint's recipe).
        device: where the generator lives.
        preview_resolution: the volume-rendering side while the camera moves (0: half of the
            generator's ``render_resolution``, at least 8: a quarter of the rays).
        truncation_psi: the initial psi (``infer``'s default 0.7).
    """

    def __init__(self, generator: nn.Module, *, method: str = "model", variant: str | None = None,
                 device: torch.device | str = "cpu", preview_resolution: int = 0, truncation_psi: float = 0.7,
                 source: str = "") -> None:
        if preview_resolution < 0:
            raise ValueError(f"preview_resolution must be >= 0 (0: half the render resolution), "
                             f"got {preview_resolution}")
        self.generator = generator
        self.method = method
        self.variant = variant
        self.device = torch.device(device)
        self.source = source
        self.render_resolution = int(generator.render_resolution)
        self.preview_resolution = preview_resolution or max(8, self.render_resolution // 2)
        self.truncation_psi = truncation_psi
        self.rig: CameraRig = camera_rig(generator)
        self.centre_yaw, self.centre_polar = centre_angles(generator)
        self.num_objects = editable_objects(generator)

    @classmethod
    def load(cls, path: Path | str, *, device: torch.device | str = "cpu", **options) -> ViewRenderer:
        """The renderer of a checkpoint's generator (EMA weights when saved), via
        :func:`gan3d.core.checkpoint.load_generator`; a file that cannot be loaded raises its
        :class:`~gan3d.core.checkpoint.CheckpointError`."""
        from gan3d.core.checkpoint import load_generator

        generator, recipe = load_generator(path, device=device)
        return cls(generator, method=recipe.method, variant=recipe.variant, device=device, source=str(path),
                   **options)

    # ------------------------------------------------------------------ what the page needs to know
    def default_view(self) -> View:
        """The rig's mean camera at the centre of the pose sampler's angles (inside the controls' ranges)."""
        yaw = (math.degrees(self.centre_yaw - math.pi / 2) + 180.0) % 360.0 - 180.0
        pitch = min(max(math.degrees(math.pi / 2 - self.centre_polar), -89.0), 89.0)
        return View(yaw=yaw, pitch=pitch, radius=self.rig.radius,
                    fov=float(intrinsics_to_fov(self.rig.focal)), psi=self.truncation_psi)

    def info(self) -> dict:
        """The model's names, sizes and the controls' defaults (JSON-able)."""
        view = self.default_view()
        return {
            "method": self.method, "variant": self.variant, "source": self.source,
            "z_dim": int(self.generator.z_dim), "render_resolution": self.render_resolution,
            "preview_resolution": self.preview_resolution, "device": str(self.device),
            "modes": list(IMAGE_MODES), "objects": self.num_objects,
            "defaults": {"yaw": view.yaw, "pitch": view.pitch, "radius": view.radius, "fov": view.fov,
                         "seed": view.seed, "psi": view.psi, "mode": view.mode},
            "rig": {"pivot": list(self.rig.pivot), "orbit_center": list(self.rig.orbit_center)},
        }

    def check_edits(self, edits: Sequence[ObjectEdit]) -> None:
        """Raise :class:`QueryError` when an edit names an object this generator does not have."""
        for edit in edits:
            if not self.num_objects:
                raise QueryError("this generator has no editable objects (its stochasticity mapper keeps no object "
                                 "transforms); remove the edit parameters")
            if edit.object_index >= self.num_objects:
                raise QueryError(f"edit object {edit.object_index} does not exist; this generator has "
                                 f"{self.num_objects} object(s), 0 to {self.num_objects - 1}")

    def view_from(self, values: dict, edits: Sequence[ObjectEdit] = ()) -> View:
        """A :class:`View` from parsed query ``values``; what is not given is the default view's."""
        self.check_edits(edits)
        default = self.default_view()
        return View(yaw=values.get("yaw", default.yaw), pitch=values.get("pitch", default.pitch),
                    radius=values.get("radius", default.radius), fov=values.get("fov", default.fov),
                    seed=values.get("seed", default.seed), psi=values.get("psi", default.psi),
                    mode=values.get("mode", default.mode), resolution=values.get("res", 0), edits=tuple(edits))

    # ------------------------------------------------------------------ latents
    def latent(self, seed: int, psi: float, edits: Sequence[ObjectEdit] = ()) -> Tensor:
        """``ws [1, num_ws, w_dim]`` of ``seed`` (as ``infer`` draws it), with the object edits applied."""
        self.check_edits(edits)
        with evaluation_mode(self.generator):
            z = seeded_latents(1, self.generator.z_dim, seed).to(self.device)
            ws = map_latents(self.generator, z, self.rig, truncation_psi=psi, truncation_cutoff=None)
            for edit in edits:
                value = math.radians(edit.value) if edit.name == "rotate" else edit.value
                ws = apply_object_edit(self.generator, ws, edit.name, value, object_index=edit.object_index)
        return ws

    def scene(self, seed: int, psi: float) -> dict:
        """Each object's edits as ``{low, value, high}`` (``rotate`` in degrees) for the latent of ``seed``."""
        if not self.num_objects:
            return {"objects": []}
        ws = self.latent(seed, psi)
        objects = []
        for index in range(self.num_objects):
            state = object_edit_state(self.generator, ws, object_index=index)
            edits = {}
            for name, (low, value, high) in state.items():
                if name == "rotate":
                    low, value, high = math.degrees(low), math.degrees(value), math.degrees(high)
                edits[name] = {"low": low, "value": value, "high": high}
            objects.append({"index": index, "edits": edits})
        return {"objects": objects}

    # ------------------------------------------------------------------ views
    def cameras(self, view: View):
        """The camera of ``view``: the rig at the view's distance and field of view, turned about its orbit centre."""
        rig = camera_rig(self.generator, radius=view.radius, focal=fov_to_focal(view.fov))
        yaw = torch.tensor([math.pi / 2 + math.radians(view.yaw)])
        polar = torch.tensor([math.pi / 2 - math.radians(view.pitch)])
        return rig_cameras(rig, yaw, polar, self.device)

    def render_pixels(self, view: View) -> np.ndarray:
        """``uint8 [H, W, 3]`` of ``view`` in its mode."""
        if view.mode not in IMAGE_MODES:
            raise QueryError(f"mode={view.mode!r} is not one of {', '.join(IMAGE_MODES)}")
        ws = self.latent(view.seed, view.psi, view.edits)
        # The sampler's random draws (stratified jitter, importance samples) seeded by the latent's seed:
        # the same query always gives the same picture, so what changes on screen is what the user changed.
        draws = torch.Generator(device=self.device).manual_seed(view.seed)
        with evaluation_mode(self.generator):
            out = self.generator.synthesis(ws, self.cameras(view), resolution=view.resolution or None,
                                           generator=draws)
        if view.mode in ("image", "image_raw"):
            return images_to_uint8(getattr(out, view.mode).float())[0]
        if view.mode == "depth":
            return colorize_depth(expected_depth(out).float(), out.alpha.float())[0]
        alpha = (out.alpha[0, 0].float().clamp(0.0, 1.0) * 255.0).round().to(torch.uint8).cpu().numpy()
        return np.repeat(alpha[:, :, None], 3, axis=2)

    def render(self, view: View) -> RenderedImage:
        """Render ``view`` and encode it as PNG, timing both."""
        start = time.perf_counter()
        pixels = self.render_pixels(view)
        png = encode_png(pixels)
        elapsed = (time.perf_counter() - start) * 1000.0
        return RenderedImage(png, int(pixels.shape[1]), int(pixels.shape[0]),
                             view.resolution or self.render_resolution, elapsed)

    # ------------------------------------------------------------------ exports (infer's writers)
    def _stem(self, seed: int) -> str:
        return f"{self.method}_seed{seed:04d}"

    def export_png(self, view: View) -> ExportedFile:
        """The current view as PNG (at the generator's resolution unless ``view.resolution`` says otherwise)."""
        return ExportedFile(self.render(view).png, f"{self._stem(view.seed)}_{view.mode}.png", "image/png")

    def export_video(self, view: View, *, frames: int = 120, fps: int = 60) -> ExportedFile:
        """``infer --save_video``'s orbit (EG3D's trajectory about the front) of the view's scene, at the
        view's camera distance and field of view, in ``view.mode`` (image, image_raw or depth)."""
        visualizer = OrbitVideoVisualizer(num_frames=frames, fps=fps, image_mode=view.mode,
                                          truncation_psi=view.psi, camera_radius=view.radius,
                                          camera_focal=fov_to_focal(view.fov))
        ws = self.latent(view.seed, view.psi, view.edits)
        frames_uint8 = visualizer.render_frames(self.generator, view.seed, device=self.device, ws=ws)
        with tempfile.TemporaryDirectory(prefix="gan3d-viewer-") as folder:
            path = write_mp4(frames_uint8, Path(folder) / "orbit.mp4", fps=fps, bitrate=visualizer.bitrate)
            data = path.read_bytes()
        return ExportedFile(data, f"{self._stem(view.seed)}_orbit_{view.mode}.mp4", "video/mp4")

    def export_mesh(self, view: View, *, fmt: str = "ply", shape_res: int = 256,
                    density_level: float = 10.0) -> ExportedFile:
        """``infer --save_shape``'s marching-cubes mesh of the view's scene as PLY or OBJ.

        Raises :class:`ExportError` when the field has no surface at the level.
        """
        shapes = ShapeVisualizer(shape_res=shape_res, truncation_psi=view.psi, density_level=density_level,
                                 formats=(fmt,), preview=False)
        ws = self.latent(view.seed, view.psi, view.edits)
        with tempfile.TemporaryDirectory(prefix="gan3d-viewer-") as folder:
            written = shapes.write_shape(self.generator, folder, view.seed, device=self.device, ws=ws)
            if not written:
                raise ExportError(f"the field has no surface at the iso-level (density fields: level="
                                  f"{density_level:g}; SDF fields: 0; occupancy: 0.5); try another level or seed")
            data = written[0].read_bytes()
        content_type = "model/obj" if fmt == "obj" else "application/octet-stream"
        return ExportedFile(data, f"{self._stem(view.seed)}.{fmt}", content_type)
