"""GIRAFFE's recipes: the released configs of autonomousvision/giraffe (``configs/``) as gan3d recipes.

Common to all (configs/default.yaml; im2scene/giraffe/models/generator.py ``Generator`` defaults):
object codes ``z_dim = 256``, background codes ``z_dim_bg = 128``; a 16x16 feature image rendered with
64 samples per ray over depths ``[0.5, 6]``, jittered between the midpoints in training
(``add_noise_to_interval``), no hierarchical pass, ReLU density, last interval 1e10; cameras at radius
2.732 with ``range_u = (0, 0)`` (a fixed azimuth: objects rotate instead) and polar angles
``arccos(1 - 2 v)``, ``v`` uniform in ``range_v``; the neural renderer to ``img_size``; the ``dc``
discriminator; BCE GAN loss with R1 ``reg_param = 10`` every step; EMA 0.999 per step (no warm-up);
batch 32, ``learning_rate`` 5e-4 (2.5e-4 in the 256 configs) for G and ``learning_rate_d`` 1e-4 for D;
random horizontal flips (im2scene/data/datasets.py); RMSprop (train.py ``optim.RMSprop``, PyTorch's
alpha 0.99 and eps 1e-8) for both networks.

The generator: field group ``main`` holds the objects (one instance per object of the scene latent, all
sharing one ``giraffe_field`` MLP), group ``background`` the background MLP on the same samples; the volume
renderer composes them (GIRAFFE eq. 4) after adding the density noise per field, and each object's own
render is available with ``requests={'layers'}``.

Variants (config file in brackets; box ranges given in GIRAFFE's z-up axes, converted by
:func:`gan3d.embedders.giraffe_scene.giraffe_box_ranges`):

* ``cars64`` (64res/cars_64.yaml, the default), ``celeba64``, ``cats64``, ``chairs64``, ``church64``;
* ``cars256``, ``celebahq256``, ``ffhq256``, ``church256`` (256res/; features, neural renderer and background
  256 wide);
* ``clevr2`` (256res/clevr2_256.yaml: two objects on the plane ``z = 0.1665``). Its translations come
  from a prior file of data-set object positions when that file exists; without it (as here, no data
  is downloaded) GIRAFFE's bounding-box generator falls back to uniform translations in the config's
  ranges, which is what this recipe does;
* ``synthetic``: a CPU-sized GIRAFFE for the embedded 64-px synthetic head set (8x8 features, 12
  samples, narrow fields), with that set's cameras.
"""

from __future__ import annotations

import copy
import math
from typing import Any

from gan3d.core.recipe import ModuleSpec, Recipe
from gan3d.embedders.giraffe_scene import giraffe_box_ranges

__all__ = ["giraffe_recipe", "VARIANTS"]


def _box(scale_min, scale_max, translation_min=(0.0, 0.0, 0.0), translation_max=(0.0, 0.0, 0.0),
         rotation_range=(0.0, 1.0), n_boxes=1, z_level_plane=None) -> dict[str, Any]:
    """GIRAFFE's ``bounding_box_generator_kwargs`` (z-up) as ``giraffe`` mapper options (y-up)."""
    t0, t1 = list(translation_min), list(translation_max)
    if z_level_plane is not None:  # object_on_plane: t_z = z_level_plane (bounding_box_generator.py)
        t0[2] = t1[2] = z_level_plane
    return {"n_objects": n_boxes, **giraffe_box_ranges(scale_min, scale_max, t0, t1),
            "rotation_range": list(rotation_range)}


_FACE_BOX = _box([0.21] * 3, [0.21] * 3, rotation_range=(0.40278, 0.59722))
_CAR_BOX = _box([0.2, 0.16, 0.16], [0.25, 0.2, 0.2], [-0.22, -0.12, 0.0], [0.22, 0.12, 0.0])

#: Per-config facts; keys not given take the defaults of configs/default.yaml and generator.py.
VARIANTS: dict[str, dict[str, Any]] = {
    "cars64": {"box": _CAR_BOX, "range_v": [0.41667, 0.5], "fov": 10.0},
    "celeba64": {"box": _FACE_BOX, "range_v": [0.4167, 0.5], "fov": 10.0},
    "cats64": {"box": _FACE_BOX, "range_v": [0.41667, 0.5], "fov": 10.0},
    "chairs64": {"box": _box([0.5] * 3, [0.5] * 3), "range_v": [0.05, 0.5]},
    "church64": {"box": _box([0.45] * 3, [0.55] * 3, [-0.15, -0.15, 0.0], [0.15, 0.15, 0.0]),
                 "range_v": [0.5, 0.5], "fov": 30.0, "background_rotation_range": [0.0, 0.25]},
    "cars256": {"box": _CAR_BOX, "range_v": [0.41667, 0.5], "fov": 10.0, "img_size": 256},
    "celebahq256": {"box": _box([0.21] * 3, [0.21] * 3, rotation_range=(0.375, 0.625)), "range_v": [0.4167, 0.5],
                    "fov": 10.0, "img_size": 256},
    "ffhq256": {"box": _FACE_BOX, "range_v": [0.4167, 0.5], "fov": 10.0, "img_size": 256},
    "church256": {"box": _box([0.45] * 3, [0.55] * 3, [-0.15, -0.15, 0.0], [0.15, 0.15, 0.0]),
                  "range_v": [0.5, 0.5], "fov": 30.0, "background_rotation_range": [0.0, 0.25], "img_size": 256},
    "clevr2": {"box": _box([0.17] * 3, [0.17] * 3, [-0.713, -0.713, 0.0], [0.713, 0.713, 0.0], (0.0, 0.0),
                           n_boxes=2, z_level_plane=0.1665),
               "range_v": [0.33333, 0.33333], "img_size": 256},
}

#: How GIRAFFE reads each data set (im2scene/data/datasets.py, the configs' ``data`` keys; torchvision
#: transforms on PIL images, whose default filter is bilinear). ``ImagesDataset``: ``random_crop``
#: (Comprehensive Cars): ``Resize(size)`` (short side) then ``RandomCrop(size)``; ``celebA_center_crop``:
#: ``CenterCrop(108)`` (``size <= 128``, CelebA) or ``CenterCrop(650)`` (CelebA-HQ), then
#: ``Resize((size, size))``; otherwise ``Resize((size, size))``. ``LSUNClass`` (church, an LMDB):
#: ``Resize((size, size))`` (its CelebA-HQ images are 1024-px ``.npy`` files; we read the same images
#: as PNG or JPEG). Every one then ``RandomHorizontalFlip`` (``training.xflip``). No labels.
_RESIZE = {"op": "resize", "size": "training", "filter": "bilinear"}
_CARS = [{"op": "resize", "size": "training", "fit": "short_side", "filter": "bilinear"},
         {"op": "random_crop", "size": "training"}]
DATA_PREPROCESSING: dict[str, list[dict[str, Any]]] = {
    "cars64": _CARS, "cars256": _CARS,
    "celeba64": [{"op": "center_crop", "size": 108}, _RESIZE],
    "celebahq256": [{"op": "center_crop", "size": 650}, _RESIZE],
    "cats64": [_RESIZE], "chairs64": [_RESIZE], "church64": [_RESIZE], "church256": [_RESIZE], "ffhq256": [_RESIZE],
    "clevr2": [_RESIZE],
    "synthetic": [],
}


def _data(variant: str) -> dict[str, Any]:
    return {"labels": "unused", "preprocessing": copy.deepcopy(DATA_PREPROCESSING[variant])}


#: generator.py ``Generator`` defaults and configs/default.yaml ``model``/``training``.
Z_DIM, Z_DIM_BG = 256, 128
N_RAY_SAMPLES, DEPTH_RANGE, RESOLUTION_VOL = 64, (0.5, 6.0), 16
RADIUS, DEFAULT_FOV = 2.732, 49.13
BATCH_SIZE, D_LR, EMA_BETA = 32, 1e-4, 0.999
#: configs/default.yaml: checkpoint_every 500 and visualize_every 1000 iterations.
CHECKPOINT_EVERY, VISUALIZE_EVERY = 500, 1000


def _polar_range(range_v: list[float]) -> list[float]:
    """GIRAFFE's ``v`` range as polar angles: ``phi = arccos(1 - 2 v)`` (camera.py ``to_sphere``)."""
    return [math.acos(1 - 2 * range_v[0]), math.acos(1 - 2 * range_v[1])]


def _pose_sampler(v: dict[str, Any]) -> dict[str, Any]:
    """The ``spherical`` sampler for GIRAFFE's cameras: ``range_u = (0, 0)`` is our yaw ``pi`` (see the
    sampler's docstring for the z-up to y-up mapping), ``v`` spherical-uniform, fixed radius."""
    polar = _polar_range(v["range_v"])
    options: dict[str, Any] = {"yaw_strategy": "fix", "yaw_mean": math.pi}
    if polar[0] == polar[1]:
        options.update(polar_strategy="fix", polar_mean=polar[0])
    else:
        options.update(polar_strategy="spherical_uniform", polar_range=polar)
    return {**options, "radius": RADIUS, "pivot": [0.0, 0.0, 0.0], "orbit_center": [0.0, 0.0, 0.0],
            "fov": v.get("fov", DEFAULT_FOV), "focal": 0.0}


#: generator.py ``volume_render_image``: the rays of its ``res x res`` feature image go through
#: ``arange_pixels``' corner-aligned grid (``2 j / (res - 1) - 1`` on the image plane's ``[-1, 1]``, so
#: ``fov`` spans the outermost rays); ``get_camera_mat``'s focal ``1 / tan(fov / 2)`` on that ``[-1, 1]``
#: is our normalized ``1 / (2 tan(fov / 2))``. Samples at ``camera_world + d_i * ray`` with ``ray`` of
#: camera depth 1 (``image_points_to_world`` at depth -1): the depths ``d_i`` are camera depths.
GIRAFFE_RAYS = {"align_corners": True, "axis_depths": True}

#: decoder.py ``Decoder`` for the objects (generator.py defaults) and the background (``background_generator``
#: in configs/default.yaml): width, density layers, skips, and the points' downscale.
OBJECT_FIELD = {"hidden_dim": 128, "n_blocks": 8, "skips": [4], "downscale": 2.0}
BACKGROUND_FIELD = {"hidden_dim": 64, "n_blocks": 4, "skips": [], "downscale": 12.0}


def _field(options: dict[str, Any], feature_dim: int, **extra: Any) -> ModuleSpec:
    return ModuleSpec("giraffe_field", {**options, "feature_dim": feature_dim, "num_frequencies": 10,
                                        "num_view_frequencies": 4, **extra})


def _recipe(variant: str, v: dict[str, Any]) -> Recipe:
    img_size = v.get("img_size", 64)
    features = 256 if img_size == 256 else 128  # rgb_out_dim / input_dim / n_feat of the 256 configs
    lr = 2.5e-4 if img_size == 256 else 5e-4
    box = v["box"]
    layout = {"n_objects": box["n_objects"], "object_z_dim": Z_DIM, "background_z_dim": Z_DIM_BG}
    modules = {
        "stochasticity_mapper": ModuleSpec("giraffe", {
            **layout, **{k: val for k, val in box.items() if k != "n_objects"},
            "background_rotation_range": v.get("background_rotation_range", [0.0, 0.0]), "fix_scale_ratio": True,
            "box_padding": 0.1,
        }),
        "pose_sampler": ModuleSpec("spherical", _pose_sampler(v)),
        "point_sampler": ModuleSpec("uniform", {
            "num_samples": N_RAY_SAMPLES, "ray_start": DEPTH_RANGE[0], "ray_end": DEPTH_RANGE[1],
            "perturbation": "middle_uniform", "perturb_in_eval": False, "smooth_importance_weights": False,
            **GIRAFFE_RAYS,
        }),
        # The fields encode the (unscaled) points themselves: the embedder hands them over.
        "point_embedder": ModuleSpec("coordinate", {"box_warp": 2.0}),
        "feature_decoder": _field(OBJECT_FIELD, features),
        "background/point_embedder": ModuleSpec("coordinate", {"box_warp": 2.0}),
        "background/feature_decoder": _field(BACKGROUND_FIELD, features),
        # Noise of std 1 on each field's raw density in training, then ReLU, then composition.
        "volume_renderer": ModuleSpec("volume", {
            "density_activation": "relu", "quadrature": "last_delta", "last_delta": 1e10, "noise_std": 1.0,
            "depth_mode": "expected",
        }),
        "upsampler": ModuleSpec("giraffe_neural_renderer", {
            "n_feat": features, "min_feat": 32, "out_resolution": img_size,
            "in_resolution": RESOLUTION_VOL, "use_rgb_skip": True, "upsample_feat": "nn",
            "upsample_rgb": "bilinear", "use_norm": False, "final_sigmoid": True,
        }),
        "discriminator": ModuleSpec("giraffe_dc", {"img_size": img_size, "n_feat": 512, "input_range": "unit"}),
        "loss": ModuleSpec("giraffe", {"reg_param": 10.0, "image_scale": 2.0}),
    }
    training = _training(lr)
    return Recipe("giraffe", modules, {"render_resolution": RESOLUTION_VOL, "num_importance": 0,
                                       "image_range": "tanh"}, training, variant, data=_data(variant))


def _training(g_lr: float, batch_size: int = BATCH_SIZE) -> dict[str, Any]:
    return {
        "batch_size": batch_size,
        "g_lr": g_lr,
        "d_lr": D_LR,
        "optimizer": "rmsprop",
        "ema_beta": EMA_BETA,
        "ema_warmup": False,
        # GIRAFFE trains until stopped (train.py `while True`); this is the trainer's default length.
        "total_kimg": 25000.0,
        "snapshot_kimg": CHECKPOINT_EVERY * batch_size / 1000.0,
        "image_snapshot_kimg": VISUALIZE_EVERY * batch_size / 1000.0,
        "xflip": True,
        "lazy_reg_adam": False,
    }


def _synthetic_recipe() -> Recipe:
    """CPU-sized GIRAFFE for the embedded synthetic head set (64 px, EG3D-FFHQ-like cameras: radius 2.7,
    pivot (0, 0, 0.2), focal 4.2647, yaw and polar normal about the front with std 0.3 and 0.155)."""
    z, zb, features = 16, 8, 32
    layout = {"n_objects": 1, "object_z_dim": z, "background_z_dim": zb}
    modules = {
        "stochasticity_mapper": ModuleSpec("giraffe", {
            **layout, "scale_min": [0.3, 0.3, 0.3], "scale_max": [0.3, 0.3, 0.3],
            "translation_min": [0.0, 0.0, 0.0], "translation_max": [0.0, 0.0, 0.0],
            "rotation_range": [-0.05, 0.05], "background_rotation_range": [0.0, 0.0], "fix_scale_ratio": True,
            "box_padding": 0.1,
        }),
        "pose_sampler": ModuleSpec("spherical", {
            "yaw_strategy": "normal", "yaw_mean": math.pi / 2, "yaw_stddev": 0.3,
            "polar_strategy": "normal", "polar_mean": math.pi / 2, "polar_stddev": 0.155,
            "radius": 2.7, "pivot": [0.0, 0.0, 0.2], "orbit_center": [0.0, 0.0, 0.0], "fov": 0.0, "focal": 4.2647,
        }),
        "point_sampler": ModuleSpec("uniform", {
            "num_samples": 12, "ray_start": 2.2, "ray_end": 3.4, "perturbation": "middle_uniform",
            "perturb_in_eval": False, "smooth_importance_weights": False, **GIRAFFE_RAYS,
        }),
        "point_embedder": ModuleSpec("coordinate", {"box_warp": 2.0}),
        "feature_decoder": ModuleSpec("giraffe_field", {
            "feature_dim": features, "hidden_dim": 32, "n_blocks": 4, "skips": [2], "downscale": 2.0,
            "num_frequencies": 6, "num_view_frequencies": 2,
        }),
        "background/point_embedder": ModuleSpec("coordinate", {"box_warp": 2.0}),
        "background/feature_decoder": ModuleSpec("giraffe_field", {
            "feature_dim": features, "hidden_dim": 16, "n_blocks": 2, "skips": [], "downscale": 12.0,
            "num_frequencies": 6, "num_view_frequencies": 2,
        }),
        "volume_renderer": ModuleSpec("volume", {
            "density_activation": "relu", "quadrature": "last_delta", "last_delta": 1e10, "noise_std": 1.0,
            "depth_mode": "expected",
        }),
        "upsampler": ModuleSpec("giraffe_neural_renderer", {
            "n_feat": features, "min_feat": 8, "out_resolution": 64, "in_resolution": 8,
            "use_rgb_skip": True, "upsample_feat": "nn", "upsample_rgb": "bilinear", "use_norm": False,
            "final_sigmoid": True,
        }),
        "discriminator": ModuleSpec("giraffe_dc", {"img_size": 64, "n_feat": 64, "input_range": "unit"}),
        "loss": ModuleSpec("giraffe", {"reg_param": 10.0, "image_scale": 2.0}),
    }
    training = _training(5e-4, batch_size=4)
    training.update(total_kimg=10.0, snapshot_kimg=1.0, image_snapshot_kimg=0.5, log_every=5)
    return Recipe("giraffe", modules, {"render_resolution": 8, "num_importance": 0, "image_range": "tanh"},
                  training, "synthetic", data=_data("synthetic"))


def giraffe_recipe(variant: str | None = None) -> Recipe:
    """The GIRAFFE recipe of ``variant`` (default ``'cars64'``, configs/default.yaml's data set).

    Example:
        >>> recipe = giraffe_recipe("celebahq256")
        >>> recipe.modules["upsampler"].kwargs["out_resolution"], recipe.generator["render_resolution"]
        (256, 16)
    """
    variant = variant or "cars64"
    if variant == "synthetic":
        return _synthetic_recipe()
    if variant not in VARIANTS:
        raise ValueError(f"giraffe has no variant {variant!r}; variants: {', '.join([*VARIANTS, 'synthetic'])}")
    return _recipe(variant, VARIANTS[variant])
