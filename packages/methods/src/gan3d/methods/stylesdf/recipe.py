"""StyleSDF's recipes (Or-El et al. 2022, "StyleSDF: High-Resolution 3D-Consistent Image and Geometry
Generation"), one per training stage and data set.

StyleSDF trains in two stages (royorel/StyleSDF ``scripts/``):

1. ``*_volume`` (``train_volume_renderer.py``): the SDF volume renderer alone at 64x64 against a
   viewpoint-predicting discriminator, after fitting the SDF to a sphere; RGB rendered directly.
2. ``*_full`` (``train_full_pipeline.py``): the StyleGAN2 decoder on the rendered 256-d feature maps
   up to 1024 (FFHQ) or 512 (AFHQ), with the volume renderer (and its mapping network) frozen
   (``freeze_renderer``: only parameters named ``decoder`` are optimised): here
   ``training.frozen_slots``. Its weights come from the first stage (``train_full_pipeline.py`` loads
   its ``g_ema``): ``--set training.init_from.checkpoint=<stage-1 work dir>/checkpoints/<file>``.

Facts from ``options.py`` and the scripts: latent 256; SIREN 8 x 256; 24 samples per ray between
``near = 0.88`` and ``far = 1.12`` (cameras on the unit sphere, ``dist_radius`` 0.12), offset sampling
(StyleSDF eq. 3); field of view 12 degrees (``fov`` 6 is the half angle); azimuth/elevation normal
with stddev 0.3/0.15 (AFHQ azimuth 0.15); volume stage: batch 12 x 2 GPUs, Adam lr 2e-5 (G) and 2e-4
(D), betas (0, 0.9), R1 10 every step, 200k iterations; full pipeline: batch 8 x 4 GPUs, lr 0.002,
betas (0, 0.99) with StyleGAN2's lazy-regularisation adjustment (R1 every 16, path length every 4),
R1 10 (AFHQ 50), path length regularization 2 on half the batch (``--path_regularize``,
``--path_batch_shrink``), 300k iterations (``--iter``); EMA ``0.5 ** (32 / 10000)`` per step in both; random
horizontal flips (``dataset.py``).
"""

from __future__ import annotations

import math
from typing import Any

from gan3d.core.recipe import ModuleSpec, Recipe

__all__ = ["stylesdf_recipe", "VARIANTS"]

STYLE_DIM = 256
SIREN_WIDTH = 256
SIREN_DEPTH = 8
NUM_SAMPLES = 24
NEAR, FAR = 0.88, 1.12
RENDER_RESOLUTION = 64
#: ``accumulate(g_ema, g, 0.5 ** (32 / (10 * 1000)))`` every step, whatever the batch.
EMA_BETA = 0.5 ** (32 / 10000)
#: The slots of the volume renderer, which the full pipeline loads from the first stage and freezes.
RENDERER_SLOTS = ("stochasticity_mapper", "point_embedder", "feature_decoder", "volume_renderer")
#: ``VolumeRenderDiscriminator`` widths from 64x64 down to 2x2.
VOLUME_D_CHANNELS = [128, 256, 400, 400, 400, 400]

#: Per data set: the azimuth stddev, the output size and R1 weight of the full pipeline.
DATASETS: dict[str, dict[str, Any]] = {
    "ffhq": {"azim": 0.3, "size": 1024, "full_r1": 10.0},  # train_ffhq_*.sh
    "afhq": {"azim": 0.15, "size": 512, "full_r1": 50.0},  # train_afhq_*.sh: --azim 0.15 --r1 50.0
}
VARIANTS = [f"{d}_{stage}" for d in DATASETS for stage in ("volume", "full")] + ["synthetic"]


def _volume_recipe(dataset: str) -> Recipe:
    d = DATASETS[dataset]
    batch = 24  # --batch 12 on 2 GPUs
    modules = {
        "stochasticity_mapper": ModuleSpec("stylesdf", {"z_dim": STYLE_DIM, "num_layers": 3}),
        "pose_sampler": ModuleSpec("spherical", {
            "yaw_strategy": "normal", "yaw_mean": math.pi / 2, "yaw_stddev": d["azim"],
            "polar_strategy": "normal", "polar_mean": math.pi / 2, "polar_stddev": 0.15,
            "radius": 1.0, "pivot": [0.0, 0.0, 0.0], "orbit_center": [0.0, 0.0, 0.0], "fov": 12.0, "focal": 0.0,
        }),
        # Offset sampling: t_i = near + i (far - near) / N, i < N, each moved forward by U(0, (far - near) / N).
        # The depths are camera-space z (render_rays: rays_o + rays_d * z_vals, rays_d of z-length 1);
        # generate_shapes_and_images.py / render_video.py render with static_viewdirs.
        "point_sampler": ModuleSpec("uniform", {
            "num_samples": NUM_SAMPLES, "ray_start": NEAR, "ray_end": FAR - (FAR - NEAR) / NUM_SAMPLES,
            "perturbation": "forward", "perturb_in_eval": False, "smooth_importance_weights": False,
            "axis_depths": True, "static_view_directions_in_eval": True,
        }),
        # z_normalize: points * 2 / (far - near).
        "point_embedder": ModuleSpec("coordinate", {"box_warp": FAR - NEAR}),
        "feature_decoder": ModuleSpec("stylesdf_siren", {
            "width": SIREN_WIDTH, "depth": SIREN_DEPTH, "output_features": False,
        }),
        # force_background: set by the generation scripts (generate_shapes_and_images.py, render_video.py).
        "volume_renderer": ModuleSpec("sdf", {"beta_init": 0.1, "quadrature": "last_delta", "last_delta": 1e10,
                                              "depth_mode": "expected", "eval_last_back": True}),
        "upsampler": ModuleSpec("identity", {}),
        "discriminator": ModuleSpec("stylesdf_volume", {"channels": list(VOLUME_D_CHANNELS), "pose_dim": 2}),
        "loss": ModuleSpec("stylesdf", {
            "r1_gamma": 10.0, "r1_interval": 1, "view_lambda": 15.0, "eikonal_lambda": 0.1,
            "min_surf_lambda": 0.05, "min_surf_beta": 100.0, "style_mixing_prob": 0.9,
            "sphere_init_steps": 10000, "sphere_radius": (FAR - NEAR) / 4, "sphere_center": [0.0, 0.0, 0.0],
            "sphere_init_batch": 3, "sphere_init_lr": 2e-5,
        }),
    }
    generator = {"render_resolution": RENDER_RESOLUTION, "num_importance": 0, "image_range": "unit"}
    training = {
        "batch_size": batch, "g_lr": 2e-5, "d_lr": 2e-4, "g_betas": [0.0, 0.9], "d_betas": [0.0, 0.9],
        "ema_beta": EMA_BETA, "total_kimg": 200_000 * batch / 1000,
        "snapshot_kimg": 10_000 * batch / 1000, "image_snapshot_kimg": 1_000 * batch / 1000,
        "xflip": True, "frozen_slots": [],
    }
    return Recipe("stylesdf", modules, generator, training, f"{dataset}_volume", data=_data(None))


#: StyleSDF's data pipeline. prepare_data.py stores each image resized (short side, PIL LANCZOS) and
#: centre-cropped to each size; dataset.py ``MultiResolutionDataset`` reads the ``opt.model.size``
#: images (options.py default 256; ``--size`` 1024 / 512 for the full pipeline), flips half of them
#: (``training.xflip``) and, for the volume renderer, shrinks them to ``renderer_spatial_output_dim``
#: (64) with PIL's HAMMING filter (``thumb_img``, what train_volume_renderer.py's discriminator sees).
#: A StyleSDF LMDB is read as stored (the first two steps are what prepare_data.py applied).
VOLUME_STAGE_SIZE = 256


def _data(size: int | None) -> dict[str, Any]:
    """``size``: the stored size of the full pipeline (its images are not shrunk); ``None``: the volume stage."""
    stored = size or VOLUME_STAGE_SIZE
    steps = [{"op": "resize", "size": stored, "filter": "lanczos"}, {"op": "center_crop", "size": stored}]
    if size is None:
        steps.append({"op": "resize", "size": "training", "filter": "hamming"})
    return {"labels": "unused", "preprocessing": steps}


def _full_recipe(dataset: str) -> Recipe:
    d = DATASETS[dataset]
    recipe = _volume_recipe(dataset)
    size = d["size"]
    batch = 32  # --batch 8 on 4 GPUs
    m = recipe.modules
    m["feature_decoder"].kwargs.update(output_features=True)
    # Its 2 log2(size / 64) + 2 latents (Decoder.n_latent) start with the volume renderer's row.
    m["upsampler"] = ModuleSpec("stylesdf", {
        "skip_channels": 3, "in_resolution": RENDER_RESOLUTION, "out_resolution": size,
        "mapping_layers": 5, "mapping_lr_multiplier": 0.01, "channel_multiplier": 2, "noise_mode": "random",
    })
    m["discriminator"] = ModuleSpec("stylesdf_image", {"resolution": size, "channel_base": 32768, "channel_max": 512,
                                                       "mbstd_group_size": 4})
    m["loss"].kwargs.update(r1_gamma=d["full_r1"], r1_interval=16, view_lambda=0.0, eikonal_lambda=0.0,
                            min_surf_lambda=0.0, sphere_init_steps=0, path_regularize=2.0, g_reg_every=4,
                            path_batch_shrink=2)
    # StyleGAN2's lazy-regularisation Adam (lr * 4/5 and beta2 ** (4/5) for G, path length every 4 steps;
    # 16/17 for D, R1 every 16) is the trainer's lazy_reg_adam, from the loss's two intervals.
    recipe.training.update(
        batch_size=batch, g_lr=0.002, d_lr=0.002, g_betas=[0.0, 0.99], d_betas=[0.0, 0.99],
        total_kimg=300_000 * batch / 1000, snapshot_kimg=10_000 * batch / 1000,
        image_snapshot_kimg=1_000 * batch / 1000, lazy_reg_adam=True,
        frozen_slots=list(RENDERER_SLOTS),
        init_from={"checkpoint": "", "slots": list(RENDERER_SLOTS), "weights": "G_ema"},
    )
    recipe.variant = f"{dataset}_full"
    recipe.data = _data(size)
    return recipe


#: ``synthetic``: the volume-renderer stage sized for a CPU and fitted to the embedded synthetic
#: head set (``gan3d.core.data``, preset ``head``: EG3D's FFHQ cameras, radius 2.7 about the pivot
#: (0, 0, 0.2), focal 4.2647): rays from 2.25 to 3.3 with StyleSDF's normalisation (box_warp = far -
#: near) and sphere radius ((far - near) / 4), a narrow network, 32x32 renders, a short sphere fit.
_SYN_NEAR, _SYN_FAR, _SYN_SAMPLES = 2.25, 3.3, 12
SYNTHETIC_OVERRIDES = [
    "stochasticity_mapper.z_dim=32", "stochasticity_mapper.w_avg_samples=1000",
    "feature_decoder.width=32", "feature_decoder.depth=3",
    "pose_sampler.radius=2.7", "pose_sampler.pivot=[0.0, 0.0, 0.2]", "pose_sampler.fov=0.0",
    "pose_sampler.focal=4.2647", "pose_sampler.yaw_stddev=0.3", "pose_sampler.polar_stddev=0.155",
    f"point_sampler.num_samples={_SYN_SAMPLES}", f"point_sampler.ray_start={_SYN_NEAR}",
    f"point_sampler.ray_end={_SYN_FAR - (_SYN_FAR - _SYN_NEAR) / _SYN_SAMPLES}",
    f"point_embedder.box_warp={_SYN_FAR - _SYN_NEAR}",
    "discriminator.channels=[32, 64, 128, 128, 128]",
    # The synthetic set's background is empty space (black): render it as training does, not with
    # the generation scripts' force_background (as pi-GAN's synthetic recipe does).
    "volume_renderer.eval_last_back=false",
    "loss.sphere_init_steps=30", "loss.sphere_init_batch=2", "loss.sphere_init_lr=0.001",
    f"loss.sphere_radius={(_SYN_FAR - _SYN_NEAR) / 4}", "loss.sphere_center=[0.0, 0.0, 0.0]",
    "generator.render_resolution=32",
    "training.batch_size=8", "training.g_lr=0.0001", "training.d_lr=0.0004", "training.total_kimg=2.0",
    "training.snapshot_kimg=0.5", "training.image_snapshot_kimg=0.25", "training.log_every=10",
]


def stylesdf_recipe(variant: str | None = None) -> Recipe:
    """The StyleSDF recipe of ``variant``: ``'ffhq_full'`` (default: the published 1024 model),
    ``'afhq_full'`` (512), ``'ffhq_volume'``, ``'afhq_volume'`` (the first stage) or ``'synthetic'``.

    Example:
        >>> recipe = stylesdf_recipe("ffhq_volume")
        >>> recipe.modules["feature_decoder"].name, recipe.generator["render_resolution"]
        ('stylesdf_siren', 64)
    """
    variant = variant or "ffhq_full"
    if variant == "synthetic":
        recipe = _volume_recipe("ffhq").overrides(SYNTHETIC_OVERRIDES)
        recipe.variant = "synthetic"
        recipe.data = {"labels": "unused", "preprocessing": []}  # the embedded set: square, training-sized
        return recipe
    dataset, _, stage = variant.partition("_")
    if dataset not in DATASETS or stage not in ("volume", "full"):
        raise ValueError(f"StyleSDF has no variant {variant!r}; variants: {', '.join(VARIANTS)}")
    return _volume_recipe(dataset) if stage == "volume" else _full_recipe(dataset)
