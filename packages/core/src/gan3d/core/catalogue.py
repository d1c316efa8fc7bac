"""The names gan3d's own distributions provide, by family (generated: do not edit).

Used only for the error message when a name is missing ("it is provided by gan3d-embedders"). Made by
``python tools/catalogue.py --write`` from what the installed first-party plugins register;
``tests/core/test_catalogue.py`` fails when it is stale.
"""

from __future__ import annotations

FIRST_PARTY: dict[str, dict[str, str]] = {
    "discriminator": {
        "eg3d_dual": "gan3d-methods",
        "epigraf_patch": "gan3d-methods",
        "giraffe_dc": "gan3d-methods",
        "graf_patch": "gan3d-methods",
        "gram": "gan3d-methods",
        "pigan_progressive": "gan3d-methods",
        "stylenerf": "gan3d-methods",
        "stylesdf_image": "gan3d-methods",
        "stylesdf_volume": "gan3d-methods",
        "volumegan": "gan3d-methods",
    },
    "estimator": {
        "face_reconstruction": "gan3d-evaluators",
        "trained": "gan3d-evaluators",
    },
    "evaluator": {
        "depth": "gan3d-evaluators",
        "fid": "gan3d-evaluators",
        "identity": "gan3d-evaluators",
        "kid": "gan3d-evaluators",
        "pose": "gan3d-evaluators",
        "reprojection": "gan3d-evaluators",
    },
    "feature_decoder": {
        "eg3d_osg": "gan3d-embedders",
        "giraffe_field": "gan3d-embedders",
        "graf_nerf": "gan3d-embedders",
        "gram_radiance": "gan3d-embedders",
        "siren_film": "gan3d-embedders",
        "stylenerf_mlp": "gan3d-embedders",
        "stylesdf_siren": "gan3d-embedders",
        "volumegan_mlp": "gan3d-embedders",
    },
    "importer": {
        "eg3d": "gan3d-methods",
        "epigraf": "gan3d-methods",
        "giraffe": "gan3d-methods",
        "graf": "gan3d-methods",
        "gram": "gan3d-methods",
        "pigan": "gan3d-methods",
        "stylenerf": "gan3d-methods",
        "stylesdf": "gan3d-methods",
        "volumegan": "gan3d-methods",
    },
    "loss": {
        "eg3d": "gan3d-methods",
        "epigraf": "gan3d-methods",
        "giraffe": "gan3d-methods",
        "graf": "gan3d-methods",
        "gram": "gan3d-methods",
        "logistic": "gan3d-core",
        "pigan": "gan3d-methods",
        "stylenerf": "gan3d-methods",
        "stylesdf": "gan3d-methods",
        "volumegan": "gan3d-methods",
    },
    "method": {
        "ablation3d": "gan3d-methods",
        "eg3d": "gan3d-methods",
        "epigraf": "gan3d-methods",
        "giraffe": "gan3d-methods",
        "graf": "gan3d-methods",
        "gram": "gan3d-methods",
        "pigan": "gan3d-methods",
        "stylenerf": "gan3d-methods",
        "stylesdf": "gan3d-methods",
        "volumegan": "gan3d-methods",
    },
    "point_embedder": {
        "coordinate": "gan3d-embedders",
        "inverted_sphere": "gan3d-embedders",
        "position_encoded": "gan3d-embedders",
        "triplane": "gan3d-embedders",
        "volume": "gan3d-embedders",
    },
    "point_sampler": {
        "inverted_sphere": "gan3d-samplers",
        "manifold": "gan3d-samplers",
        "uniform": "gan3d-samplers",
    },
    "pose_sampler": {
        "dataset": "gan3d-samplers",
        "spherical": "gan3d-samplers",
    },
    "stochasticity_mapper": {
        "giraffe": "gan3d-embedders",
        "identity": "gan3d-embedders",
        "pigan": "gan3d-embedders",
        "stylegan2": "gan3d-embedders",
        "stylesdf": "gan3d-embedders",
    },
    "upsampler": {
        "eg3d_superres": "gan3d-renderers",
        "giraffe_neural_renderer": "gan3d-renderers",
        "identity": "gan3d-renderers",
        "stylenerf": "gan3d-renderers",
        "stylesdf": "gan3d-renderers",
        "volumegan_neural_renderer": "gan3d-renderers",
    },
    "visualizer": {
        "depth_map": "gan3d-evaluators",
        "image_grid": "gan3d-evaluators",
        "object_edit": "gan3d-evaluators",
        "orbit_video": "gan3d-evaluators",
        "shape": "gan3d-evaluators",
    },
    "volume_renderer": {
        "occupancy": "gan3d-renderers",
        "sdf": "gan3d-renderers",
        "volume": "gan3d-renderers",
    },
}
