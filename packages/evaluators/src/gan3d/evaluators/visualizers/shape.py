"""The ``shape`` visualizer: the generated object's surface as a mesh (PLY, OBJ) and a shaded preview.

Per latent: sample the geometry field on a grid (:mod:`.field_volume`), run marching cubes at the
surface level of the field's kind (:mod:`.mesh_extraction`), write the mesh, and render a preview
from the generator's front camera (:mod:`.mesh_preview`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from gan3d.core.interfaces import Visualizer

from .camera_rig import CameraRig, camera_rig
from .field_volume import DENSITY_ACTIVATIONS, FALLBACK_CUBE_LENGTH, generator_cube, sample_field_volume
from .image_files import write_png
from .latents import evaluation_mode, front_cameras, map_latents, seeded_latents
from .mesh_extraction import NoSurfaceError, extract_mesh
from .mesh_files import write_obj, write_ply
from .mesh_preview import render_mesh_preview
from .mesh_rasterizer import BACKENDS
from .output_paths import refuse_existing

__all__ = ["ShapeVisualizer"]

logger = logging.getLogger(__name__)

MESH_FORMATS = ("ply", "obj")


class ShapeVisualizer(Visualizer):
    """Meshes of the latents of seeds ``seed .. seed + num - 1``: ``<prefix>_seedNNNN.{ply,obj}`` and
    ``<prefix>_seedNNNN_preview.png``.

    Args:
        num: number of latents.
        shape_res: grid points per side (EG3D's ``--shape-res`` default 512; 256 here for CPUs).
        cube_length, cube_center: the sampled cube (``cube_length=0``: the generator's cube, from
            ``bounds`` its point embedder declares, else side 2.0).
        chunk: points per field query (bounds memory).
        density_activation: how raw density is turned into the thresholded value (``renderer``,
            ``none``, ``relu``, ``softplus``, ``mipnerf``; see :mod:`.field_volume`).
        density_level, sdf_level, occupancy_level: the surface level per field kind (EG3D: density 10;
            SDF 0; occupancy 0.5).
        border_trim: fraction of the cube forced outside on every face (EG3D trims 30/256).
        formats: mesh files to write, any of ``ply`` and ``obj``.
        preview, preview_res, preview_backend: the shaded PNG, its side, its rasterizer (``auto``,
            ``torch``, ``nvdiffrast``).
        truncation_psi, truncation_cutoff, camera_*: as for ``image_grid``.
    """

    name = "shape"

    def __init__(
        self,
        *,
        num: int = 1,
        shape_res: int = 256,
        truncation_psi: float = 0.7,
        truncation_cutoff: int = -1,
        cube_length: float = 0.0,
        cube_center: tuple = (0.0, 0.0, 0.0),
        chunk: int = 262144,
        density_activation: str = "renderer",
        density_level: float = 10.0,
        sdf_level: float = 0.0,
        occupancy_level: float = 0.5,
        border_trim: float = 0.0,
        formats: tuple = ("ply", "obj"),
        preview: bool = True,
        preview_res: int = 256,
        preview_backend: str = "auto",
        camera_radius: float = 0.0,
        camera_pivot: tuple = (),
        camera_focal: float = 0.0,
        file_prefix: str = "shape",
    ) -> None:
        if num <= 0 or shape_res < 2 or chunk <= 0 or preview_res <= 0:
            raise ValueError(f"shape needs num > 0, shape_res >= 2, chunk > 0, preview_res > 0; got {num}, "
                             f"{shape_res}, {chunk}, {preview_res}")
        if density_activation not in DENSITY_ACTIVATIONS:
            raise ValueError(f"shape density_activation {density_activation!r} is unknown; "
                             f"choose one of {', '.join(DENSITY_ACTIVATIONS)}")
        unknown = [f for f in formats if f not in MESH_FORMATS]
        if unknown:
            raise ValueError(f"shape formats {unknown} are unknown; choose among {', '.join(MESH_FORMATS)}")
        if preview_backend not in BACKENDS:
            raise ValueError(f"shape preview_backend {preview_backend!r} is unknown; "
                             f"choose one of {', '.join(BACKENDS)}")
        if len(cube_center) != 3:
            raise ValueError(f"shape cube_center needs 3 numbers, got {list(cube_center)}")
        self.num = num
        self.shape_res = shape_res
        self.truncation_psi = truncation_psi
        self.truncation_cutoff = truncation_cutoff
        self.cube_length = cube_length
        self.cube_center = tuple(float(c) for c in cube_center)
        self.chunk = chunk
        self.density_activation = density_activation
        self.levels = {"density": density_level, "sdf": sdf_level, "occupancy": occupancy_level}
        self.border_trim = border_trim
        self.formats = tuple(formats)
        self.preview = preview
        self.preview_res = preview_res
        self.preview_backend = preview_backend
        self.camera_radius = camera_radius
        self.camera_pivot = tuple(camera_pivot)
        self.camera_focal = camera_focal
        self.file_prefix = file_prefix

    def rig(self, generator: nn.Module) -> CameraRig:
        return camera_rig(generator, pivot=self.camera_pivot, radius=self.camera_radius, focal=self.camera_focal)

    def output_paths(self, out_dir: Path | str, seed: int) -> dict[str, Path]:
        stem = Path(out_dir) / f"{self.file_prefix}_seed{seed:04d}"
        paths = {fmt: stem.with_suffix(f".{fmt}") for fmt in self.formats}
        if self.preview:
            paths["preview"] = stem.with_name(stem.name + "_preview.png")
        return paths

    def resolve_cube(self, generator: nn.Module) -> tuple[float, tuple[float, float, float]]:
        """``(side, centre)`` of the sampled cube: the options when ``cube_length > 0``, else the
        generator's (the bounds its point embedder declares), else side 2.0 about ``cube_center``."""
        if self.cube_length > 0:
            return float(self.cube_length), self.cube_center
        found = generator_cube(generator)
        if found is not None:
            return found
        logger.warning("the point embedder declares no scene bounds; sampling the cube of side %.1f. "
                       "Set the shape visualizer's cube_length to fit the object.", FALLBACK_CUBE_LENGTH)
        return FALLBACK_CUBE_LENGTH, self.cube_center

    def write_shape(self, generator: nn.Module, out_dir: Path | str, seed: int, *,
                    device: torch.device | str = "cpu", ws: torch.Tensor | None = None) -> list[Path]:
        """Extract, write and preview the shape of the latent of ``seed`` (or of the scene
        ``ws [1, num_ws, w_dim]`` when given, named by ``seed``); returns the written paths (none when
        the field has no surface at the chosen level, which is logged)."""
        paths = self.output_paths(out_dir, seed)
        for path in paths.values():
            refuse_existing(path)
        rig = self.rig(generator)
        with evaluation_mode(generator):
            if ws is None:
                z = seeded_latents(1, generator.z_dim, seed).to(device)
                ws = map_latents(generator, z, rig, truncation_psi=self.truncation_psi,
                                 truncation_cutoff=None if self.truncation_cutoff < 0 else self.truncation_cutoff)
            ws = ws.to(device)
            cube_length, cube_center = self.resolve_cube(generator)
            volume = sample_field_volume(generator, ws, resolution=self.shape_res, cube_length=cube_length,
                                         center=cube_center, chunk=self.chunk,
                                         density_activation=self.density_activation)
        try:
            vertices, faces = extract_mesh(volume, self.levels[volume.kind], border_trim=self.border_trim)
        except NoSurfaceError as error:
            logger.warning("seed %d: no shape written: %s (option %s_level)", seed, error, volume.kind)
            return []
        written = []
        if "ply" in paths:
            written.append(write_ply(paths["ply"], vertices, faces))
        if "obj" in paths:
            written.append(write_obj(paths["obj"], vertices, faces))
        if self.preview:
            camera = front_cameras(rig, 1, device)
            image = render_mesh_preview(
                torch.from_numpy(vertices).to(device), torch.from_numpy(faces).to(device), camera.cam2world[0],
                camera.intrinsics[0], (self.preview_res, self.preview_res), backend=self.preview_backend,
            )
            written.append(write_png(image, paths["preview"]))
        logger.info("seed %d: mesh with %d vertices, %d faces", seed, len(vertices), len(faces))
        return written

    def visualize(self, generator: nn.Module, out_dir, *, device: torch.device | str = "cpu", seed: int = 0,
                  on_written: Callable[[list[Path]], None] | None = None) -> list[Path]:
        """Write the shapes of ``num`` latents into ``out_dir``; returns the paths. Never overwrites a file.

        ``on_written`` (optional) is called with each latent's paths as soon as they are written.
        """
        for s in range(seed, seed + self.num):
            for path in self.output_paths(out_dir, s).values():
                refuse_existing(path)
        written: list[Path] = []
        for s in range(seed, seed + self.num):
            paths = self.write_shape(generator, out_dir, s, device=device)
            written += paths
            if on_written is not None:
                on_written(paths)
        return written
