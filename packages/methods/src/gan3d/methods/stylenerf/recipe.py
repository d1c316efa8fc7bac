"""StyleNeRF's recipes (Gu et al. 2022, "StyleNeRF: A Style-based 3D-Aware Generator for High-resolution Image
Synthesis"): the FFHQ model at the three published specs, and a CPU-sized ``synthetic`` variant.

Sources: facebookresearch/StyleNeRF ``conf/model/stylenerf_ffhq.yaml`` (the FFHQ model),
``conf/spec/paper256.yaml``, ``paper512.yaml``, ``paper1024.yaml`` (the schedules), ``conf/config.yaml``
(``aug: noaug``, ``cond: False``), ``scripts/train_ffhq_stylenerf.sh`` (``mirror=True``), ``run_train.py``
(Adam (0, 0.99); ``batch_gpu`` = the spec's ``mbstd``: every phase in rounds of that many, their gradients
summed) and ``training/training_loop.py`` (lazy regularization G every 4, D every 16; EMA
half-life ``spec.ema`` kimg, no ramp-up).

The variants are the FFHQ model at the three specs; the output side is the spec's:

==========  =====  =====  ===========  =========  =======  =====  ==========  ============
variant     spec   batch  D mbstd      D fmaps    lr       gamma  EMA (kimg)  kimg
==========  =====  =====  ===========  =========  =======  =====  ==========  ============
ffhq256     256    64     8            0.5        0.0025   0.5    20          25000
ffhq512     512    64     8            1          0.0025   0.5    20          25000
ffhq1024    1024   32     4            1          0.002    2      10          25000
==========  =====  =====  ===========  =========  =======  =====  ==========  ============

Common (``stylenerf_ffhq.yaml``): z = w = 512, 8 mapping layers (``spec.map``), ``w_avg`` decay 0.995
(StyleGAN2-ADA's ``MappingNetwork`` default); cameras on the unit sphere, yaw ``N(pi/2, 0.3)``, polar
``N(pi/2, 0.155)``, field of view 12 degrees (``camera_kwargs``, ``gaussian_camera``); 14 foreground
samples between depths 0.88 and 1.12 along the viewing axis plus 14 importance samples, the modulated NeRF
MLP (60 -> 128 x 8 -> 1 + 256, RGB head); 4 NeRF++ background samples from inverse radius 0.5 to 0 with
a plain MLP (80 + 32 -> 64 x 4 -> 1 + 256, RGB head) on a fresh 32-d latent; ReLU density with N(0, 1)
noise in training; renders at 32 px; the nn_cat upsampler (channel_base 32768, max 1024, 1x1 kernels,
magnitude EMA 0.999, clamp 256) growing from 32 px to the output between 500 and 5000 kimg
(``curriculum``); the skip discriminator from 32 px up; style mixing 0.9, path length 2 (every 4,
half batch, decay 0.01), NeRF path regularization on a 16 x 16 grid, R1 every 16; x-flips; no ADA.

``synthetic`` is not an official configuration: the same modules at CPU widths for the embedded 64-px
synthetic head set, rendering 16 px and growing through 32 to 64 px (two levels, as the official 32 -> 256
has three) early in a short run. It lives in StyleNeRF's own world, the set's scaled by 1 / 2.7 about its
pivot: the set's cameras are 2.7 from (0, 0, 0.2) with focal 4.2647, and NeRF++'s background is defined
outside the unit sphere about the origin (``depth2pts_outside``) with the cameras on that sphere, as in the
FFHQ model. So the cameras are 1 from the origin looking at it, the foreground samples lie between 2.25 / 2.7
and 3.3 / 2.7 along the viewing axis, and the background begins at radius 2 (``bg_start`` 0.5). The images
are those of the set's cameras (the same rays up to that similarity), and the official network can be built
from this recipe (``tools/official/stylenerf_train.py`` trains it so). The positional encodings' fixed
frequencies and the inverted-sphere coordinates are not scale-free, so the set's own world would be another
configuration; :data:`SYNTHETIC_DATA_WORLD` holds its ``--set`` lines (a background sphere of radius 3.3 that
holds the cameras), for comparison.

The background is a field group with its own sampler (``background/point_sampler`` ...), composited
behind the foreground by the renderer (each sample set with its own intervals, merged by depth); the options
the generator wires (decoder and upsampler ``in_channels``, ``w_dim``, the mapper's ``num_ws``) are left out.

Data (``data``): StyleGAN2-ADA's image folders or zips (README "Dataset"), no labels (``cond: False``);
``training/dataset.py ImageFolderDataset._load_raw_image`` resizes every image to the data set's resolution
with ``cv2.INTER_AREA`` (a no-op on a set stored at that size), flips with ``mirror=True``.
"""

from __future__ import annotations

import copy
import math
from typing import Any

from gan3d.core.recipe import ModuleSpec, Recipe

__all__ = ["stylenerf_recipe", "VARIANTS", "SPECS", "SYNTHETIC", "SYNTHETIC_DATA_WORLD", "DATA"]

#: ``conf/spec/paper*.yaml``: batch (``mb``), D minibatch-std group (``mbstd``), D width (``fmaps``),
#: learning rate (``lrate``, ``lrate_disc``), R1 ``gamma``, EMA half-life (``ema``, kimg), ``kimg``.
SPECS: dict[str, dict[str, Any]] = {
    "ffhq256": {"resolution": 256, "batch": 64, "mbstd": 8, "fmaps": 0.5, "lr": 0.0025, "gamma": 0.5, "ema": 20.0,
                "kimg": 25000.0},
    "ffhq512": {"resolution": 512, "batch": 64, "mbstd": 8, "fmaps": 1.0, "lr": 0.0025, "gamma": 0.5, "ema": 20.0,
                "kimg": 25000.0},
    "ffhq1024": {"resolution": 1024, "batch": 32, "mbstd": 4, "fmaps": 1.0, "lr": 0.002, "gamma": 2.0, "ema": 10.0,
                 "kimg": 25000.0},
}
VARIANTS = (*SPECS, "synthetic")

#: ``stylenerf_ffhq.yaml`` values shared by the FFHQ variants.
Z_DIM = W_DIM = 512
MAPPING_LAYERS = 8
W_AVG_BETA = 0.995  # StyleGAN2-ADA MappingNetwork default (mapping_kwargs give only num_layers)
RENDER_RESOLUTION = 32  # resolution_vol, resolution_start
NUM_SAMPLES = NUM_IMPORTANCE = 14  # n_ray_samples; hierarchical: as many fine samples
DEPTH_RANGE = (0.88, 1.12)  # camera_kwargs.depth_range, along the viewing axis
NUM_BACKGROUND_SAMPLES = 4  # renderer_kwargs.n_bg_samples
BACKGROUND_START = 0.5  # camera_kwargs.bg_start (inverse radius)
FEATURES = 256  # rgb_out_dim
PE_OCTAVES = 10  # NeRFBlock.n_freq_posenc
GENERATOR_CHANNEL_BASE, GENERATOR_CHANNEL_MAX = 32768, 1024  # synthesis channel_base 1, channel_max 1024
FADE_KIMG = (500.0, 5000.0)  # loss_kwargs.curriculum
NERF_PATH_GRID = 16  # n_reg_samples

#: How StyleNeRF reads its data (see the module docstring).
DATA: dict[str, Any] = {"labels": "unused", "preprocessing": [{"op": "resize", "size": "training", "filter": "area"}]}

#: The synthetic variant's sizes.
SYNTHETIC: dict[str, Any] = {
    "w": 64, "render": 16, "image": 64, "fg_hidden": 32, "fg_depth": 4, "features": 32, "bg_hidden": 16,
    "bg_depth": 2, "bg_latent": 8, "samples": 8, "up_channel_base": 2048, "up_channel_max": 64,
    "d_channel_base": 1024, "d_channel_max": 64, "batch": 8, "fade_kimg": (0.2, 1.0), "kimg": 2.0,
    # gan3d.core.data preset 'head' (cameras 2.7 from the pivot (0, 0, 0.2), focal 4.2647, foreground depths
    # 2.25 to 3.3) scaled by 1 / 2.7 about the pivot onto NeRF++'s unit sphere (module docstring).
    "radius": 1.0, "pivot": [0.0, 0.0, 0.0], "focal": 4.2647, "near": 2.25 / 2.7, "far": 3.3 / 2.7,
    "sphere_radius": 1.0,
}

#: ``--set`` lines that put the ``synthetic`` variant in the head set's own world instead (cameras 2.7 from
#: (0, 0, 0.2), depths 2.25 to 3.3), with the NeRF++ sphere widened to hold the cameras (up to 2.9 from the
#: origin): radius 3.3, the background from radius 6.6. Not StyleNeRF's configuration (module docstring).
SYNTHETIC_DATA_WORLD: list[str] = [
    "pose_sampler.radius=2.7", "pose_sampler.pivot=[0.0, 0.0, 0.2]", "pose_sampler.orbit_center=[0.0, 0.0, 0.2]",
    "point_sampler.ray_start=2.25", "point_sampler.ray_end=3.3",
    "background/point_sampler.sphere_radius=3.3", "background/point_embedder.sphere_radius=3.3",
]


def _official(variant: str) -> Recipe:
    spec = SPECS[variant]
    resolution = spec["resolution"]
    modules = {
        "stochasticity_mapper": ModuleSpec("stylegan2", {
            "z_dim": Z_DIM, "w_dim": W_DIM, "c_dim": 0, "num_layers": MAPPING_LAYERS, "lr_multiplier": 0.01,
            "w_avg_beta": W_AVG_BETA}),
        "pose_sampler": ModuleSpec("spherical", {
            "yaw_strategy": "normal", "yaw_mean": math.pi / 2, "yaw_stddev": 0.3,
            "polar_strategy": "normal", "polar_mean": math.pi / 2, "polar_stddev": 0.155,
            "radius": 1.0, "pivot": [0.0, 0.0, 0.0], "orbit_center": [0.0, 0.0, 0.0], "fov": 12.0, "focal": 0.0}),
        "point_sampler": ModuleSpec("uniform", {
            "num_samples": NUM_SAMPLES, "ray_start": DEPTH_RANGE[0], "ray_end": DEPTH_RANGE[1],
            "perturbation": "middle_uniform", "axis_depths": True, "smooth_importance_weights": False}),
        "point_embedder": ModuleSpec("coordinate", {
            "box_warp": 2.0, "num_frequencies": PE_OCTAVES, "include_input": False, "multiply_by_pi": True}),
        "feature_decoder": ModuleSpec("stylenerf_mlp", {
            "hidden_dim": 128, "depth": 8, "output_dim": FEATURES, "predict_rgb": True, "modulated": True}),
        "background/point_sampler": ModuleSpec("inverted_sphere", {
            "num_samples": NUM_BACKGROUND_SAMPLES, "inverse_radius_start": BACKGROUND_START,
            "perturbation": "middle_uniform", "sphere_radius": 1.0}),
        "background/point_embedder": ModuleSpec("inverted_sphere", {
            "num_frequencies": PE_OCTAVES, "include_input": False, "multiply_by_pi": True, "latent_dim": 32,
            "sphere_radius": 1.0}),
        "background/feature_decoder": ModuleSpec("stylenerf_mlp", {
            "hidden_dim": 64, "depth": 4, "output_dim": FEATURES, "predict_rgb": True, "modulated": False}),
        # ReLU density, N(0, 1) noise in training, drawn once per sample (get_density on each pass's samples; the
        # coarse ones keep theirs in the final composite); the foreground's last interval is 0 long in front of
        # the background, whose last sample is opaque (calc_volume_weights): last_back on the merged ray. Depth
        # and opacity are the foreground's (gen_optional_output), the background being at infinity.
        "volume_renderer": ModuleSpec("volume", {
            "density_activation": "relu", "quadrature": "last_delta", "last_delta": 0.0, "noise_std": 1.0,
            "noise_per_sample": True, "last_back": True, "eval_last_back": True, "depth_mode": "expected",
            "depth_from": "first"}),
        "upsampler": ModuleSpec("stylenerf", {
            "in_resolution": RENDER_RESOLUTION, "image_resolution": resolution,
            "channel_base": GENERATOR_CHANNEL_BASE, "channel_max": GENERATOR_CHANNEL_MAX, "upsample_mode": "nn_cat",
            "magnitude_ema_beta": 0.999, "conv_clamp": 256.0, "fade_start_kimg": FADE_KIMG[0],
            "fade_end_kimg": FADE_KIMG[1]}),
        "discriminator": ModuleSpec("stylenerf", {
            "img_resolution": resolution, "lowres_head": RENDER_RESOLUTION,
            "channel_base": int(spec["fmaps"] * 32768), "channel_max": 512, "conv_clamp": 256.0,
            "mbstd_group_size": spec["mbstd"], "mbstd_num_channels": 1}),
        "loss": ModuleSpec("stylenerf", {
            "r1_gamma": spec["gamma"], "r1_interval": 16, "style_mixing_prob": 0.9,
            "pl_weight": 2.0, "pl_interval": 4, "pl_batch_shrink": 2, "pl_decay": 0.01,
            "nerf_path_grid": NERF_PATH_GRID, "nerf_path_weight": 1.0}),
    }
    generator = {"render_resolution": RENDER_RESOLUTION, "num_importance": NUM_IMPORTANCE, "image_range": "tanh",
                 "groups": {"background": {"num_importance": 0}}}
    # run_train.py: ``args.batch_gpu = cfg.spec.mbstd``: each phase runs in rounds of the minibatch-std group.
    training = {"batch_size": spec["batch"], "batch_gpu": spec["mbstd"], "g_lr": spec["lr"], "d_lr": spec["lr"],
                "g_betas": [0.0, 0.99], "d_betas": [0.0, 0.99], "ema_kimg": spec["ema"], "ema_rampup": None,
                "total_kimg": spec["kimg"], "xflip": True, "lazy_reg_adam": True}
    return Recipe("stylenerf", modules, generator, training, variant, data=copy.deepcopy(DATA))


def _synthetic() -> Recipe:
    s = SYNTHETIC
    recipe = _official("ffhq256")
    m = {slot: spec.kwargs for slot, spec in recipe.modules.items()}
    m["stochasticity_mapper"].update(z_dim=s["w"], w_dim=s["w"])
    m["pose_sampler"].update(radius=s["radius"], pivot=list(s["pivot"]), orbit_center=list(s["pivot"]), fov=0.0,
                             focal=s["focal"])
    m["point_sampler"].update(num_samples=s["samples"], ray_start=s["near"], ray_end=s["far"])
    m["feature_decoder"].update(hidden_dim=s["fg_hidden"], depth=s["fg_depth"], output_dim=s["features"])
    m["background/point_sampler"].update(sphere_radius=s["sphere_radius"])
    m["background/point_embedder"].update(latent_dim=s["bg_latent"], sphere_radius=s["sphere_radius"])
    m["background/feature_decoder"].update(hidden_dim=s["bg_hidden"], depth=s["bg_depth"], output_dim=s["features"])
    m["upsampler"].update(in_resolution=s["render"], image_resolution=s["image"], channel_base=s["up_channel_base"],
                          channel_max=s["up_channel_max"], fade_start_kimg=s["fade_kimg"][0],
                          fade_end_kimg=s["fade_kimg"][1])
    m["discriminator"].update(img_resolution=s["image"], lowres_head=s["render"], channel_base=s["d_channel_base"],
                              channel_max=s["d_channel_max"], mbstd_group_size=4)
    m["loss"].update(r1_gamma=1.0)
    recipe.generator.update(render_resolution=s["render"], num_importance=s["samples"])
    recipe.training.update(batch_size=s["batch"], batch_gpu=4, ema_kimg=s["batch"] * 20.0 / 64 / 10,
                           total_kimg=s["kimg"], snapshot_kimg=0.5, image_snapshot_kimg=0.25, log_every=10)
    recipe.variant = "synthetic"
    # The embedded set is stored at its training size, square: nothing to do.
    recipe.data = {"labels": "unused", "preprocessing": []}
    return recipe


def stylenerf_recipe(variant: str | None = None) -> Recipe:
    """The StyleNeRF recipe of ``variant``: ``'ffhq256'`` (default), ``'ffhq512'``, ``'ffhq1024'`` (the FFHQ
    model at ``conf/spec/paper256/512/1024``) or ``'synthetic'`` (CPU-sized, for the embedded set).

    Example:
        >>> recipe = stylenerf_recipe("ffhq512")
        >>> recipe.modules["upsampler"].kwargs["image_resolution"], recipe.training["batch_size"]
        (512, 64)
    """
    variant = variant or "ffhq256"
    if variant not in VARIANTS:
        raise ValueError(f"StyleNeRF has no variant {variant!r}; variants: {', '.join(VARIANTS)}")
    return _synthetic() if variant == "synthetic" else _official(variant)
