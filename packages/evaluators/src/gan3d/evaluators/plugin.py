"""The gan3d plugin of gan3d-evaluators: registers its implementations."""

from __future__ import annotations

from gan3d.core import hookimpl


@hookimpl
def gan3d_register(registry) -> None:
    """Register gan3d-evaluators's implementations."""
    # Visualizers (images, depth maps, orbit videos, meshes).
    from gan3d.evaluators import visualizers

    registry.add("visualizer", "image_grid", visualizers.ImageGridVisualizer)
    registry.add("visualizer", "depth_map", visualizers.DepthMapVisualizer)
    registry.add("visualizer", "orbit_video", visualizers.OrbitVideoVisualizer)
    registry.add("visualizer", "shape", visualizers.ShapeVisualizer)
