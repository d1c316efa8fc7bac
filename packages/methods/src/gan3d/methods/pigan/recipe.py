"""pi-GAN's recipes: the released curricula of marcoamonteiro/pi-GAN (``curriculums.py``) as gan3d recipes.

Variants (``curriculums.py`` names in brackets):

* ``celeba`` (``CelebA``, default): SPATIALSIRENBASELINE (TALLSIREN with ``UniformBoxWarp(0.24)``),
  ``CCSEncoderDiscriminator``, 64x64, 12 + 12 samples per ray, Gaussian poses, position loss 15.
* ``carla`` (``CARLA``): TALLSIREN (no box warp), ``ProgressiveEncoderDiscriminator``, 32 -> 64 -> 128,
  48 + 48 samples, spherical-uniform poses, white background, R1 10.
* ``cats`` (``CATS``): SPATIALSIRENBASELINE, ``StridedDiscriminator`` (no coordinates, no pose or latent
  head), 64x64, 24 + 24 samples, uniform poses.

Common to all (``train.py``, ``siren/siren.py``, ``generators/``): latent 256 (Gaussian), mapping
network 3x256 hidden, 8 FiLM layers of 256 plus the colour layer (9 latents), Adam betas (0, 0.9),
EMA decay 0.999 with torch_ema's warm-up, ``nerf_noise = max(0, 1 - step / 5000)``, ReLU density,
last interval 1e10, hierarchical sampling with as many fine samples as coarse ones, RGB in [0, 1]
mapped to [-1, 1], R1 every step, top-k generator loss.
"""

from __future__ import annotations

import copy
import math
from typing import Any

from gan3d.core.recipe import ModuleSpec, Recipe

__all__ = ["pigan_recipe", "VARIANTS"]

#: The variant-specific facts, from ``curriculums.py`` unless noted.
VARIANTS: dict[str, dict[str, Any]] = {
    "celeba": {
        "xflip": True,
        "fov": 12.0, "ray_start": 0.88, "ray_end": 1.12, "num_steps": 12,
        "pose_distribution": "normal", "h_mean": math.pi * 0.5, "v_mean": math.pi * 0.5,
        "h_stddev": 0.3, "v_stddev": 0.155,
        # SPATIALSIRENBASELINE's UniformBoxWarp(0.24): points scaled by 2 / 0.24.
        "box_warp": 0.24,
        "white_back": False, "last_back": False, "eval_last_back": True,
        "discriminator": {"channels": [32, 64, 128, 256, 400, 400, 400, 400], "block_layout": "strided",
                          "coord_conv": True, "kaiming_init": True, "latent_dim": 256, "pose_dim": 2},
        "loss": {"r1_gamma": 0.2, "r1_interval": 1, "pos_lambda": 15.0, "z_lambda": 0.0,
                 "topk_interval": 2000, "topk_v": 0.6, "batch_split": 2},
        "grad_clip": 10.0,
        # {0: 64 px, batch 28*2, gen_lr 6e-5, disc_lr 2e-4}, then int(200e3): {} ends the run.
        "stages": [{"until_step": 200_000, "resolution": 64, "batch_size": 56, "g_lr": 6e-5, "d_lr": 2e-4}],
    },
    "carla": {
        "xflip": False,
        "fov": 30.0, "ray_start": 0.7, "ray_end": 1.3, "num_steps": 48,
        "pose_distribution": "spherical_uniform", "h_mean": math.pi * 0.5, "v_mean": math.pi / 4 * 85 / 90,
        "h_stddev": math.pi, "v_stddev": math.pi / 4 * 85 / 90,
        "box_warp": 2.0,  # TALLSIREN: no box warp (scale 2 / 2 = 1)
        "white_back": True, "last_back": False, "eval_last_back": False,
        "discriminator": {"channels": [16, 32, 64, 128, 256, 400, 400, 400, 400], "block_layout": "pooled",
                          "coord_conv": True, "kaiming_init": False, "latent_dim": 256, "pose_dim": 2},
        "loss": {"r1_gamma": 10.0, "r1_interval": 1, "pos_lambda": 0.0, "z_lambda": 0.0,
                 "topk_interval": 1000, "topk_v": 1.0,
                 # CARLA's batch_split is 1, 2, 5 by stage; a loss option cannot follow stages yet.
                 "batch_split": 1},
        "grad_clip": 1.0,
        "stages": [
            {"until_step": 10_000, "resolution": 32, "batch_size": 30, "g_lr": 4e-5, "d_lr": 4e-4},
            {"until_step": 55_000, "resolution": 64, "batch_size": 14, "g_lr": 2e-5, "d_lr": 2e-4},
            {"until_step": 200_000, "resolution": 128, "batch_size": 10, "g_lr": 1e-5, "d_lr": 1e-4},
        ],
    },
    "cats": {
        "xflip": True,
        "fov": 12.0, "ray_start": 0.8, "ray_end": 1.2, "num_steps": 24,
        "pose_distribution": "uniform", "h_mean": math.pi * 0.5, "v_mean": math.pi * 0.5,
        "h_stddev": 0.5, "v_stddev": 0.4,
        "box_warp": 0.24,
        "white_back": False, "last_back": False, "eval_last_back": True,
        "discriminator": {"channels": [32, 64, 128, 256, 400, 400, 400, 400], "block_layout": "strided",
                          "coord_conv": False, "kaiming_init": True, "latent_dim": 0, "pose_dim": 0},
        "loss": {"r1_gamma": 0.2, "r1_interval": 1, "pos_lambda": 0.0, "z_lambda": 0.0,
                 "topk_interval": 2000, "topk_v": 0.6, "batch_split": 4},
        "grad_clip": 10.0,
        "stages": [{"until_step": 200_000, "resolution": 64, "batch_size": 28, "g_lr": 6e-5, "d_lr": 2e-4}],
    },
}

#: Latent size, FiLM width and depth shared by every variant (train.py ``latent_dim``; siren.py).
LATENT_DIM = 256
HIDDEN_DIM = 256
NUM_FILM_LAYERS = 8
#: How pi-GAN reads each data set (datasets.py). pi-GAN never reads a label (items are ``(X, 0)``);
#: its transforms are torchvision's. CelebA: ``Resize(320)`` (short side, PIL bilinear),
#: ``CenterCrop(256)``, ``ToTensor``, ``Normalize``, ``RandomHorizontalFlip``, then
#: ``Resize((img_size, img_size), interpolation=0)`` on the tensor: torch's nearest neighbour.
#: Cats and Carla: ``Resize((img_size, img_size), interpolation=0)`` on the PIL image (PIL's nearest),
#: Cats then flipped, Carla not (the flips are ``training.xflip``).
DATA: dict[str, dict[str, Any]] = {
    "celeba": {"labels": "unused", "preprocessing": [
        {"op": "resize", "size": 320, "filter": "bilinear"},
        {"op": "center_crop", "size": 256},
        {"op": "resize", "size": "training", "filter": "torch_nearest"},
    ]},
    "cats": {"labels": "unused", "preprocessing": [{"op": "resize", "size": "training", "filter": "nearest"}]},
    "carla": {"labels": "unused", "preprocessing": [{"op": "resize", "size": "training", "filter": "nearest"}]},
}
#: The embedded synthetic set is square and at the training size already.
SYNTHETIC_DATA: dict[str, Any] = {"labels": "unused", "preprocessing": []}

#: Discriminator fade-in length after each resolution change (``fade_steps``, every curriculum).
FADE_STEPS = 10_000
#: train.py ``nerf_noise = max(0, 1 - step / 5000)``.
NERF_NOISE_ANNEAL_STEPS = 5000
#: train.py: ``sample_interval`` 200 steps (image grids), ``model_save_interval`` 5000 steps.
SAMPLE_INTERVAL_STEPS = 200
SAVE_INTERVAL_STEPS = 5000


def _kimg(steps_and_batches: list[tuple[int, int]]) -> float:
    return sum(steps * batch for steps, batch in steps_and_batches) / 1000.0


def _pose_sampler_options(v: dict[str, Any]) -> dict[str, Any]:
    """``spherical`` pose-sampler options for pi-GAN's ``sample_dist`` (volumetric_rendering.py
    ``sample_camera_positions``): 'gaussian' draws N(mean, stddev) angles; 'uniform' draws in
    mean +- stddev; 'spherical_uniform' draws the yaw in mean +- stddev and ``phi = arccos(1 - 2 v / pi)``
    with ``v`` in mean +- stddev. Camera on the unit sphere looking at the origin."""
    kind = v["pose_distribution"]
    h_range = [v["h_mean"] - v["h_stddev"], v["h_mean"] + v["h_stddev"]]
    v_range = [v["v_mean"] - v["v_stddev"], v["v_mean"] + v["v_stddev"]]
    common = {"radius": 1.0, "pivot": [0.0, 0.0, 0.0], "orbit_center": [0.0, 0.0, 0.0], "fov": v["fov"], "focal": 0.0}
    if kind == "normal":
        return {"yaw_strategy": "normal", "yaw_mean": v["h_mean"], "yaw_stddev": v["h_stddev"],
                "polar_strategy": "normal", "polar_mean": v["v_mean"], "polar_stddev": v["v_stddev"], **common}
    if kind == "uniform":
        return {"yaw_strategy": "uniform", "yaw_range": h_range, "polar_strategy": "uniform", "polar_range": v_range,
                **common}
    if kind == "spherical_uniform":
        return {"yaw_strategy": "uniform", "yaw_range": h_range, "polar_strategy": "uniform", "polar_range": v_range,
                "polar_parametrization": "arccos", **common}
    raise ValueError(f"unknown pi-GAN pose distribution {kind!r}")


#: ``synthetic``: pi-GAN's CelebA recipe sized for a CPU and fitted to the embedded synthetic head
#: set (``gan3d.core.data``, preset ``head``): the data's cameras (EG3D's FFHQ convention: radius
#: 2.7 about the pivot (0, 0, 0.2), focal 4.2647, yaw/polar stddev 0.3/0.155), a ray range that
#: brackets the head, and a network a quarter of the width, so that
#: ``tools/run.py train --method pigan`` finishes a short run in minutes on two cores.
SYNTHETIC_OVERRIDES = [
    "stochasticity_mapper.z_dim=64", "stochasticity_mapper.hidden_dim=64", "stochasticity_mapper.film_dim=64",
    "feature_decoder.num_layers=3",
    "pose_sampler.radius=2.7", "pose_sampler.pivot=[0.0, 0.0, 0.2]", "pose_sampler.orbit_center=[0.0, 0.0, 0.2]",
    "pose_sampler.fov=0.0", "pose_sampler.focal=4.2647",
    "point_sampler.ray_start=2.25", "point_sampler.ray_end=3.3", "point_sampler.num_samples=12",
    "point_embedder.box_warp=1.0",
    "volume_renderer.noise_anneal_steps=500",
    # The synthetic set's background is empty space (black): samples must composite it the way
    # training does, not give the leftover weight to the last sample as CelebA's eval does.
    "volume_renderer.eval_last_back=false",
    "discriminator.channels=[16, 32, 64, 64, 128, 128, 128, 128]", "discriminator.latent_dim=64",
    "loss.batch_split=1", "loss.topk_interval=200",
    "generator.render_resolution=32", "generator.num_importance=12",
    'training.stages=[{"resolution": 32, "batch_size": 8, "g_lr": 0.0002, "d_lr": 0.0006, "fade_steps": 100}]',
    "training.batch_size=8", "training.total_kimg=2.0", "training.snapshot_kimg=0.5",
    "training.image_snapshot_kimg=0.25", "training.log_every=10", "training.xflip=true",
]


def pigan_recipe(variant: str | None = None) -> Recipe:
    """The pi-GAN recipe of ``variant`` (``'celeba'`` (default), ``'carla'``, ``'cats'``, or
    ``'synthetic'``, the CPU-sized recipe for the embedded synthetic head set).

    Example:
        >>> recipe = pigan_recipe()
        >>> recipe.generator["render_resolution"], recipe.generator["num_importance"]
        (64, 12)
    """
    variant = variant or "celeba"
    if variant == "synthetic":
        recipe = pigan_recipe("celeba").overrides(SYNTHETIC_OVERRIDES)
        recipe.variant = "synthetic"
        recipe.data = copy.deepcopy(SYNTHETIC_DATA)
        return recipe
    if variant not in VARIANTS:
        raise ValueError(f"pi-GAN has no variant {variant!r}; variants: {', '.join(VARIANTS)}, synthetic")
    v = VARIANTS[variant]
    first = v["stages"][0]
    # Stage lengths in images: each stage runs from the previous until_step to its own.
    spans, previous = [], 0
    for stage in v["stages"]:
        spans.append((stage["until_step"] - previous, stage["batch_size"]))
        previous = stage["until_step"]
    first_batch = first["batch_size"]
    modules = {
        # 9 latent rows (8 FiLM layers + the colour layer), wired from the decoder.
        "stochasticity_mapper": ModuleSpec("pigan", {"z_dim": LATENT_DIM, "hidden_dim": 256, "film_dim": HIDDEN_DIM}),
        "pose_sampler": ModuleSpec("spherical", _pose_sampler_options(v)),
        "point_sampler": ModuleSpec("uniform", {
            "num_samples": v["num_steps"], "ray_start": v["ray_start"], "ray_end": v["ray_end"],
            # perturb_points: each depth jittered within +-half a spacing, at inference too
            # (staged_forward perturbs as well); NeRF's sample_pdf without EG3D's weight smoothing,
            # with pi-GAN's extra 1e-5 (generators.py); rays on get_initial_rays_trig's corner-aligned
            # linspace(-1, 1) grid, not through pixel centres.
            "perturbation": "stratified", "perturb_in_eval": True, "smooth_importance_weights": False,
            "importance_pdf": "pigan", "align_corners": True,
        }),
        "point_embedder": ModuleSpec("coordinate", {"box_warp": v["box_warp"]}),
        # Its width is the FiLM width (film_dim): w_dim = 2 * hidden_dim is wired from the mapper.
        "feature_decoder": ModuleSpec("siren_film", {"num_layers": NUM_FILM_LAYERS}),
        "volume_renderer": ModuleSpec("volume", {
            "density_activation": "relu", "quadrature": "last_delta", "last_delta": 1e10,
            "noise_std": 1.0, "noise_anneal_steps": NERF_NOISE_ANNEAL_STEPS,
            "white_back": v["white_back"], "last_back": v["last_back"], "eval_last_back": v["eval_last_back"],
            "depth_mode": "expected",
        }),
        "upsampler": ModuleSpec("identity", {}),
        "discriminator": ModuleSpec("pigan_progressive", dict(v["discriminator"])),
        "loss": ModuleSpec("pigan", dict(v["loss"])),
    }
    generator = {
        "render_resolution": first["resolution"],
        "num_importance": v["num_steps"],  # hierarchical_sample: as many fine samples as coarse
        "image_range": "unit",  # pixels * 2 - 1 (generators.py)
    }
    training = {
        "batch_size": first_batch,
        "g_lr": first["g_lr"],
        "d_lr": first["d_lr"],
        "g_betas": [0.0, 0.9],
        "d_betas": [0.0, 0.9],
        "ema_beta": 0.999,
        # torch_ema's default use_num_updates=True: decay_t = min(0.999, (1 + t) / (10 + t)).
        "ema_warmup": True,
        "total_kimg": _kimg(spans),
        "stages": [{**stage, "fade_steps": FADE_STEPS} for stage in v["stages"]],
        # train.py clips D with grad_clip and G with grad_clip (0.3 only when the curriculum has none).
        "g_grad_clip": v["grad_clip"],
        "d_grad_clip": v["grad_clip"],
        "snapshot_kimg": SAVE_INTERVAL_STEPS * first_batch / 1000.0,
        "image_snapshot_kimg": SAMPLE_INTERVAL_STEPS * first_batch / 1000.0,
        # datasets.py: CelebA and Cats use RandomHorizontalFlip(p=0.5), Carla no flip.
        "xflip": v["xflip"],
    }
    return Recipe("pigan", modules, generator, training, variant, data=copy.deepcopy(DATA[variant]))
