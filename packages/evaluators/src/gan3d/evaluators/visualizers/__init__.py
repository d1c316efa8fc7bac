"""Visualizers: image grids, coloured depth maps, orbit videos and meshes of any gan3d generator.

They use only the :class:`gan3d.core.generator.Generator` interface (``mapping``, ``synthesis``,
``pose_sampler``, ``embedder.scene``, ``field``), so every method can be visualized. Registered in
the family ``visualizer`` as ``image_grid``, ``depth_map``, ``orbit_video`` and ``shape``;
:func:`run_inference` is what ``tools/run.py infer`` runs. No visualizer overwrites a file.
"""

from .depth_colormap import colorize_depth
from .depth_map import DepthMapVisualizer
from .image_files import save_image_grid
from .image_grid import ImageGridVisualizer
from .inference import run_inference
from .mesh_files import read_obj, read_ply, write_obj, write_ply
from .mesh_preview import render_mesh_preview
from .orbit_video import OrbitVideoVisualizer, write_mp4
from .shape import ShapeVisualizer

__all__ = [
    "ImageGridVisualizer",
    "DepthMapVisualizer",
    "OrbitVideoVisualizer",
    "ShapeVisualizer",
    "run_inference",
    "save_image_grid",
    "colorize_depth",
    "write_mp4",
    "write_ply",
    "write_obj",
    "read_ply",
    "read_obj",
    "render_mesh_preview",
]
