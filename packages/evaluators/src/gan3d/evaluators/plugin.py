"""The gan3d plugin of gan3d-evaluators: registers its implementations."""

from __future__ import annotations

from gan3d.core import hookimpl


@hookimpl
def gan3d_register(registry) -> None:
    """Register gan3d-evaluators's implementations."""
    # Metrics and the depth/pose estimators DE and PE use.
    from gan3d.evaluators import metrics

    registry.add("evaluator", "fid", metrics.FIDEvaluator)
    registry.add("evaluator", "kid", metrics.KIDEvaluator)
    registry.add("evaluator", "identity", metrics.IdentityEvaluator)
    registry.add("evaluator", "reprojection", metrics.ReprojectionErrorEvaluator)
    registry.add("evaluator", "depth", metrics.DepthErrorEvaluator)
    registry.add("evaluator", "pose", metrics.PoseErrorEvaluator)
    registry.add("estimator", "trained", metrics.TrainedEstimator)
    registry.add("estimator", "face_reconstruction", metrics.FaceReconstructionEstimator)
    # Visualizers (images, depth maps, orbit videos, meshes).
    from gan3d.evaluators import visualizers

    registry.add("visualizer", "image_grid", visualizers.ImageGridVisualizer)
    registry.add("visualizer", "depth_map", visualizers.DepthMapVisualizer)
    registry.add("visualizer", "orbit_video", visualizers.OrbitVideoVisualizer)
    registry.add("visualizer", "shape", visualizers.ShapeVisualizer)
    from gan3d.evaluators.visualizers.object_edit import ObjectEditVisualizer

    registry.add("visualizer", "object_edit", ObjectEditVisualizer)
