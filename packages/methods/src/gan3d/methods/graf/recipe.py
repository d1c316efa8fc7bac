"""GRAF's recipes (Schwarz et al. 2020): the released configurations of autonomousvision/graf as gan3d
recipes (Generator v2 wires ``num_ws``, ``in_channels`` and ``w_dim``; these recipes do not set them).

Variants (configs/<name>.yaml over configs/default.yaml; configs/pretrained_models.yaml releases carla at 64,
128, 256 and 512 px, celebA at 64 and 128, celebA_hq at 256 and 512, chosen with ``data:imsize``):

* ``carla`` (default; configs/carla.yaml, ``carla_128``): 128 px, white background, radius 10, near/far
  7.5/12.5, fov 30, full azimuth, polar 0 to 85 degrees, min scale 0.25 annealed at 0.0025.
  ``carla64``, ``carla256``, ``carla512``: the same at the other released sizes.
* ``celeba64`` (configs/celebA.yaml), ``celeba128``: radius uniform in [9.5, 10.5], near/far 7.5/12.5
  relative to radius 10.5, fov 10, azimuth 0 to 90 degrees, polar 70 to 85 degrees, x-flips.
* ``celebahq256`` (configs/celebAHQ.yaml), ``celebahq512``: as celebA with min scale 0.125 annealed at 0.0019.
* ``synthetic``: GRAF's modules and losses at a CPU size for the embedded 64-px synthetic head set (not an
  official configuration; see :func:`_synthetic_recipe`).

Common (configs/default.yaml, graf/config.py, submodules): z 256 = 128 shape + 128 appearance, Gaussian, no
mapping network; NeRF MLP 8 x 256 with a skip after layer 4, positional encodings of 10 (points) and 4
(view directions) octaves; 64 samples per ray between planar depths, jittered between midpoints in training,
no hierarchical pass; ReLU density with noise std 1 annealed to 0 over 5000 iterations, last interval 1e10,
sigmoid colour; one 32 x 32 patch per image (:mod:`.patch_schedule`, :mod:`gan3d.methods.patches`); the patch
discriminator with ndf 64; BCE loss with R1 ``reg_param`` 10 on the real patches every step (``gamma = 20 /
1024`` in StyleGAN2's terms, see :mod:`.objective`); RMSprop (alpha 0.99, eps 1e-8), lr G 5e-4 / D 1e-4 halved
after 50k, 100k and 200k iterations (MultiStepLR stepped per iteration: the trainer's stages); batch 8; EMA of
the generator with decay 0.999 per iteration. Test-time renders (eval mode) neither jitter nor add noise
(nerf-pytorch ``render_kwargs_test``: ``perturb`` False, ``raw_noise_std`` 0).

Cameras: GRAF's z-up ``u, v`` sphere maps to gan3d's y-up yaw ``pi + 2 pi u`` and polar ``arccos(1 - 2 v)``
(see ``SphericalPoseSampler``; ``v`` uniform is the area-uniform ``spherical_uniform`` polar strategy), a
proper rotation: gan3d ``(x, y, z) = (x_g, z_g, -y_g)``. Its rays go through pixel indices ``(i - W/2) / f``
(nerf-pytorch ``get_rays``), so the principal point sits half a pixel right of and below the image centre:
the pose sampler's ``principal_point = 0.5 + 0.5 / W`` with ``W`` the variant's image size (renders at other
sizes keep that point, i.e. the shift of the trained size). Data (graf/config.py ``get_data``): ``Resize(imsize)``
(short side, bilinear); celebA ``CenterCrop(108)`` first, celebA_hq ``CenterCrop(650)`` first (its ``.npy``
images must be converted to PNG or JPEG), both with random x-flips (``training.xflip``); no labels.

Where we differ, and why:

* GRAF trains until stopped (train.py ``while True``); ``total_kimg`` is the trainer's default length.
* GRAF's density noise stays at ``1 - 4999/5000 = 2e-4`` after 5000 iterations (``decrease_nerf_noise``
  stops updating) and is updated between the D and the G step; the ``volume`` renderer anneals it to 0, set
  once per iteration before the D step (a 2e-4 difference in the noise's standard deviation).
"""

from __future__ import annotations

import copy
import math
from typing import Any

from gan3d.core.recipe import ModuleSpec, Recipe

__all__ = ["graf_recipe", "VARIANTS", "DATASETS", "pose_sampler_options"]

_V_85_DEG, _V_70_DEG = 0.45642212862617093, 0.32898992833716556  # configs: arccos(1 - 2 v) = 85, 70 degrees

#: Per-data-set facts (configs/<name>.yaml over configs/default.yaml; graf/config.py get_data).
_RESIZE = {"op": "resize", "size": "training", "fit": "short_side", "filter": "bilinear"}  # Resize(imsize)
DATASETS: dict[str, dict[str, Any]] = {
    "carla": {"white_bkgd": True, "radius": [10.0], "near": 7.5, "far": 12.5, "fov": 30.0, "u": [0.0, 1.0],
              "v": [0.0, _V_85_DEG], "min_scale": 0.25, "scale_anneal": 0.0025, "xflip": False,
              "preprocessing": [_RESIZE]},
    "celeba": {"white_bkgd": False, "radius": [9.5, 10.5], "near": 7.5, "far": 12.5, "fov": 10.0, "u": [0.0, 0.25],
               "v": [_V_70_DEG, _V_85_DEG], "min_scale": 0.25, "scale_anneal": 0.0025, "xflip": True,
               "preprocessing": [{"op": "center_crop", "size": 108}, _RESIZE]},
    "celebahq": {"white_bkgd": False, "radius": [9.5, 10.5], "near": 7.5, "far": 12.5, "fov": 10.0,
                 "u": [0.0, 0.25], "v": [_V_70_DEG, _V_85_DEG], "min_scale": 0.125, "scale_anneal": 0.0019,
                 "xflip": True, "preprocessing": [{"op": "center_crop", "size": 650}, _RESIZE]},
}

#: variant -> (data set, image size): the released models (configs/pretrained_models.yaml); ``carla`` is
#: configs/carla.yaml as it stands (128 px).
VARIANTS: dict[str, tuple[str, int]] = {
    "carla": ("carla", 128), "carla64": ("carla", 64), "carla256": ("carla", 256), "carla512": ("carla", 512),
    "celeba64": ("celeba", 64), "celeba128": ("celeba", 128),
    "celebahq256": ("celebahq", 256), "celebahq512": ("celebahq", 512),
}

#: configs/default.yaml.
Z_DIM, APPEARANCE_DIM = 256, 128
NET_DEPTH, NET_WIDTH, SKIPS = 8, 256, [4]
MULTIRES, MULTIRES_VIEWS = 10, 4
NUM_SAMPLES = 64
PATCH = 32  # ray_sampler.N_samples = 1024
NDF = 64
BATCH = 8
G_LR, D_LR, LR_ANNEAL, LR_MILESTONES = 5e-4, 1e-4, 0.5, (50_000, 100_000, 200_000)
REG_PARAM = 10.0
EMA_BETA = 0.999
NOISE_STD, NOISE_ANNEAL_STEPS = 1.0, 5000
#: train.py: sample_every 500 iterations, backup_every 50000 iterations, print_every 10.
SAMPLE_EVERY, BACKUP_EVERY, PRINT_EVERY = 500, 50_000, 10


def principal_point(imsize: int) -> list[float]:
    """GRAF's principal point for ``imsize``-pixel images (rays through pixel indices; see the module docstring)."""
    return [0.5 + 0.5 / imsize, 0.5 + 0.5 / imsize]


def pose_sampler_options(v: dict[str, Any], imsize: int) -> dict[str, Any]:
    """``spherical`` pose-sampler options of a GRAF configuration (see the module docstring)."""
    radius = v["radius"]
    options: dict[str, Any] = {
        "yaw_strategy": "uniform", "yaw_range": [math.pi + 2 * math.pi * v["u"][0], math.pi + 2 * math.pi * v["u"][1]],
        "polar_strategy": "spherical_uniform",
        "polar_range": [math.acos(1 - 2 * v["v"][0]), math.acos(1 - 2 * v["v"][1])],
        "pivot": [0.0, 0.0, 0.0], "orbit_center": [0.0, 0.0, 0.0], "fov": v["fov"], "focal": 0.0,
        "principal_point": principal_point(imsize),
    }
    if len(radius) == 2:
        options.update(radius_strategy="uniform", radius_range=list(radius), radius=float(max(radius)))
    else:
        options.update(radius_strategy="fix", radius=float(radius[0]))
    return options


def _lr_stages(g_lr: float, d_lr: float) -> list[dict[str, Any]]:
    """MultiStepLR(milestones, gamma 0.5) stepped once per iteration, as training stages."""
    stages, factor = [], 1.0
    for milestone in LR_MILESTONES:
        stages.append({"until_step": milestone, "g_lr": g_lr * factor, "d_lr": d_lr * factor})
        factor *= LR_ANNEAL
    stages.append({"g_lr": g_lr * factor, "d_lr": d_lr * factor})
    return stages


def _modules(v: dict[str, Any], imsize: int) -> dict[str, ModuleSpec]:
    radius = v["radius"]
    return {
        # No mapping network: ws = z (num_ws wired by the generator: the decoder reads one row).
        "stochasticity_mapper": ModuleSpec("identity", {"z_dim": Z_DIM}),
        "pose_sampler": ModuleSpec("spherical", pose_sampler_options(v, imsize)),
        "point_sampler": ModuleSpec("uniform", {
            "num_samples": NUM_SAMPLES, "ray_start": v["near"], "ray_end": v["far"],
            # run_nerf_mod.py render_rays: perturb=1 draws between midpoints; the test kwargs do not jitter.
            "perturbation": "middle_uniform", "perturb_in_eval": False, "smooth_importance_weights": False,
            # z_vals = linspace(near, far) are depths along the optical axis (pts = o + d z, d_z = -1).
            "axis_depths": True,
            # generator.py __call__: with a radius range, near/far follow each camera's distance from r_max.
            "range_reference_radius": float(max(radius)) if len(radius) == 2 else 0.0,
        }),
        # run_nerf_helpers_mod.py get_embedder(10): [x, sin(2^k x), cos(2^k x)], the points unscaled. The scene
        # (for shape extraction) reaches far - r_max beyond the origin, at least the unit cube.
        "point_embedder": ModuleSpec("coordinate", {"box_warp": 2.0, "num_frequencies": MULTIRES,
                                                    "include_input": True, "multiply_by_pi": False,
                                                    "scene_extent": max(1.0, v["far"] - max(radius))}),
        # in_channels (63) and w_dim (256) are wired from the embedder and the mapper.
        "feature_decoder": ModuleSpec("graf_nerf", {
            "appearance_dim": APPEARANCE_DIM, "hidden_dim": NET_WIDTH, "num_layers": NET_DEPTH, "skips": list(SKIPS),
            "num_view_frequencies": MULTIRES_VIEWS, "use_viewdirs": True,
        }),
        # raw2outputs: alpha = 1 - exp(-relu(raw + noise) * delta), last delta 1e10, white_bkgd adds 1 - acc.
        "volume_renderer": ModuleSpec("volume", {
            "density_activation": "relu", "quadrature": "last_delta", "last_delta": 1e10, "noise_std": NOISE_STD,
            "noise_anneal_steps": NOISE_ANNEAL_STEPS, "white_back": v["white_bkgd"], "depth_mode": "expected",
        }),
        "upsampler": ModuleSpec("identity", {}),
        "discriminator": ModuleSpec("graf_patch", {"imsize": PATCH, "ndf": NDF, "hflip": False}),
        "loss": ModuleSpec("graf", {
            "reg_param": REG_PARAM, "patch_size": PATCH, "min_scale": v["min_scale"], "max_scale": 1.0,
            "scale_anneal": v["scale_anneal"],
        }),
    }


def _training(batch: int, g_lr: float, d_lr: float, xflip: bool) -> dict[str, Any]:
    return {
        "batch_size": batch, "optimizer": "rmsprop", "g_lr": g_lr, "d_lr": d_lr,
        "stages": _lr_stages(g_lr, d_lr),
        # train.py: update_average(generator_test, generator, beta=0.999) after every step, no warm-up.
        "ema_beta": EMA_BETA, "ema_warmup": False,
        "total_kimg": 25000.0,  # GRAF trains until stopped; the trainer's default length
        "snapshot_kimg": BACKUP_EVERY * batch / 1000, "image_snapshot_kimg": SAMPLE_EVERY * batch / 1000,
        "log_every": PRINT_EVERY, "xflip": xflip, "lazy_reg_adam": False,
    }


def _official_recipe(variant: str) -> Recipe:
    dataset, imsize = VARIANTS[variant]
    v = DATASETS[dataset]
    # The generator renders full images at the data resolution; the objective renders patches (PATCH px).
    generator = {"render_resolution": imsize, "num_importance": 0, "image_range": "unit"}
    data = {"labels": "unused", "preprocessing": copy.deepcopy(v["preprocessing"])}
    return Recipe("graf", _modules(v, imsize), generator, _training(BATCH, G_LR, D_LR, v["xflip"]), variant, data)


def _synthetic_recipe() -> Recipe:
    """``synthetic``: the embedded 64-px synthetic head set (gan3d.core.data preset ``head``: radius 2.7 about the
    pivot (0, 0, 0.2), focal 4.2647, yaw and polar normal about the front with std 0.3 and 0.155, black
    background). GRAF's modules and losses at a CPU size: z 32 + 32, a 4-layer trunk of 48 with the skip after
    layer 1, 16 samples per ray between the planar depths 2.1 and 3.3 that bracket the head, 32 x 32 patches
    (the discriminator's smallest layout) with ndf 16, and the patch scale annealed 20x faster (0.05 per 1000
    iterations) so that a short run reaches small patches; the rest (R1, RMSprop, EMA, noise) as published."""
    head = {"white_bkgd": False, "radius": [2.7], "near": 2.1, "far": 3.3, "fov": 10.0, "u": [0.0, 1.0],
            "v": [0.0, 0.5], "min_scale": 0.25, "scale_anneal": 0.05}
    modules = _modules(head, 64)
    modules["stochasticity_mapper"].kwargs.update(z_dim=64)
    modules["pose_sampler"] = ModuleSpec("spherical", {
        "yaw_strategy": "normal", "yaw_mean": math.pi / 2, "yaw_stddev": 0.3,
        "polar_strategy": "normal", "polar_mean": math.pi / 2, "polar_stddev": 0.155,
        "radius": 2.7, "pivot": [0.0, 0.0, 0.2], "orbit_center": [0.0, 0.0, 0.2], "fov": 0.0, "focal": 4.2647,
        "principal_point": principal_point(64),
    })
    modules["point_sampler"].kwargs.update(num_samples=16)
    modules["feature_decoder"].kwargs.update(appearance_dim=32, hidden_dim=48, num_layers=4, skips=[1])
    modules["discriminator"].kwargs.update(ndf=16)
    training = _training(BATCH, G_LR, D_LR, True)
    training.update(stages=[], total_kimg=2.0, snapshot_kimg=1.0, image_snapshot_kimg=0.5, log_every=5)
    return Recipe("graf", modules, {"render_resolution": 64, "num_importance": 0, "image_range": "unit"}, training,
                  "synthetic", {"labels": "unused", "preprocessing": []})


def graf_recipe(variant: str | None = None) -> Recipe:
    """The GRAF recipe of ``variant`` (default ``'carla'``): one of :data:`VARIANTS` or ``'synthetic'``.

    Example:
        >>> recipe = graf_recipe("celeba64")
        >>> recipe.modules["loss"].kwargs["patch_size"], recipe.training["optimizer"]
        (32, 'rmsprop')
    """
    variant = variant or "carla"
    if variant == "synthetic":
        return _synthetic_recipe()
    if variant not in VARIANTS:
        raise ValueError(f"graf has no variant {variant!r}; variants: {', '.join([*VARIANTS, 'synthetic'])}")
    return _official_recipe(variant)
