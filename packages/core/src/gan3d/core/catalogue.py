"""The names gan3d's own distributions provide, by family.

Used only for the error message when a name is missing ("it is provided by gan3d-embedders").
``tests/test_catalogue.py`` checks that this table equals what the installed first-party plugins
register, so it cannot go stale.
"""

from __future__ import annotations

FIRST_PARTY: dict[str, dict[str, str]] = {}


def _add(distribution: str, family: str, *names: str) -> None:
    for name in names:
        FIRST_PARTY.setdefault(family, {})[name] = distribution


_add("gan3d-methods", "discriminator", "eg3d_dual", "giraffe_dc", "pigan_progressive", "stylenerf", "stylesdf_image", "stylesdf_volume")
_add("gan3d-evaluators", "estimator", "face_reconstruction", "trained")
_add("gan3d-evaluators", "evaluator", "depth", "fid", "identity", "kid", "pose", "reprojection")
_add("gan3d-embedders", "feature_decoder", "eg3d_osg", "giraffe_composite", "siren_film", "stylenerf_mlp", "stylesdf_siren")
_add("gan3d-core", "loss", "logistic")
_add("gan3d-methods", "loss", "eg3d", "giraffe", "pigan", "stylesdf")
_add("gan3d-methods", "method", "ablation3d", "eg3d", "giraffe", "pigan", "stylesdf")
_add("gan3d-embedders", "point_embedder", "coordinate", "giraffe_composite", "inverted_sphere", "position_encoded", "triplane", "volume")
_add("gan3d-samplers", "point_sampler", "inverted_sphere", "uniform")
_add("gan3d-samplers", "pose_sampler", "dataset", "spherical")
_add("gan3d-embedders", "stochasticity_mapper", "giraffe", "pigan", "stylegan2", "stylesdf")
_add("gan3d-renderers", "upsampler", "eg3d_superres", "giraffe_neural_renderer", "identity", "stylenerf", "stylesdf")
_add("gan3d-evaluators", "visualizer", "depth_map", "image_grid", "object_edit", "orbit_video", "shape")
_add("gan3d-renderers", "volume_renderer", "occupancy", "sdf", "volume")
