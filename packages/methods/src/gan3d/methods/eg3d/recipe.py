"""EG3D's recipes (Chan et al. 2022): the released training commands of NVlabs/eg3d as gan3d recipes.

Variants (sources: ``eg3d/train.py`` defaults and ``--cfg`` rendering options, ``docs/models.md``
commands, ``training/training_loop.py`` defaults):

* ``ffhq512`` (default): ``--cfg=ffhq --batch=32 --gamma=1 --gen_pose_cond=True`` for 25000 kimg at
  neural rendering resolution 64 (``ffhq512-64.pkl``), then the fine-tuning run
  ``--neural_rendering_resolution_final=128 --kimg=2000`` (``ffhq512-128.pkl``), whose resolution
  rises from 64 to 128 over 1000 kimg (``rint(64 (1 - a) + 128 a)``, ``a = kimg / 1000``): expressed
  here as one stage per integer resolution, so the schedule is the official one step for step.
* ``afhq512``: ``--cfg=afhq --gamma=5 --gpc_reg_prob=0.8 --neural_rendering_resolution_final=128``,
  a fine-tuning run (``--resume=ffhq-64.pkl``): no blur and no swapping fade (train.py zeroes them on
  resume), no EMA ramp-up, resolution 64 -> 128 over its first 1000 kimg, 25000 kimg.
* ``shapenet128``: ``--cfg=shapenet --gamma=0.3`` (no generator pose conditioning: zeros), 64 + 64
  samples, rays 0.1 -> 2.6, ``box_warp`` 1.6, white background, 128-px output from 64-px renders.
* ``synthetic``: a CPU-sized EG3D for the embedded synthetic head set (64x64, FFHQ-like cameras), not
  an official configuration: the same modules and losses with small widths, a 32-px render, 12 + 12
  samples, and the blur and swapping fades shortened to the short run.

Common to all: z and w 512, mapping depth 2 (``--map-depth``), camera label of 25 floats, tri-plane
256 x 256 x 32 x 3 on StyleGAN2's synthesis network (no fp16, so no conv clamp), OSG decoder
32 -> 64 -> 1 + 32, MipNeRF density ``softplus(x - 1)``, midpoint quadrature, importance sampling with
EG3D's weight smoothing, super-resolution (``sr_antialias``, ``sr_noise_mode='none'``, clamp 256 for
its 4 fp16 layers), dual discriminator (conv clamp 256, mbstd group 4), Adam (0, 0.99) with
G lr 0.0025 and D lr 0.002, lazy R1 every 16 steps, density regularization 0.25 every 4 steps,
EMA half-life ``batch * 10 / 32`` kimg with ramp-up 0.05, blur 10 fading over ``batch * 200 / 32`` kimg.
Mixed precision (``sr_num_fp16_res``, ``d_num_fp16_res``) is a CUDA speed option and is not used.
Not carried over: ADA (AFHQ's ``--aug=ada``) is not in gan3d.
"""

from __future__ import annotations

import copy
import math
from typing import Any

from gan3d.core.recipe import ModuleSpec, Recipe

__all__ = ["eg3d_recipe", "VARIANTS", "resolution_fade_stages", "triplane_num_ws"]

#: Variant facts (train.py ``--cfg`` rendering options and docs/models.md commands).
VARIANTS: dict[str, dict[str, Any]] = {
    "ffhq512": {
        "image_resolution": 512, "r1_gamma": 1.0, "gen_pose_cond": True, "gpc_reg_prob": 0.5,
        "num_samples": 48, "num_importance": 48, "ray_start": 2.25, "ray_end": 3.3, "box_warp": 1.0,
        "white_back": False, "camera_pivot": [0.0, 0.0, 0.2],
        # ffhq512-64 (25000 kimg, the train.py default --kimg), then ffhq512-128 (--kimg=2000).
        "first_kimg": 25000.0, "fine_tune_kimg": 2000.0, "resumed": False,
    },
    "afhq512": {
        "image_resolution": 512, "r1_gamma": 5.0, "gen_pose_cond": True, "gpc_reg_prob": 0.8,
        "num_samples": 48, "num_importance": 48, "ray_start": 2.25, "ray_end": 3.3, "box_warp": 1.0,
        "white_back": False, "camera_pivot": [0.0, 0.0, -0.06],
        # One fine-tuning run from ffhq512-64 with --neural_rendering_resolution_final=128.
        "first_kimg": 0.0, "fine_tune_kimg": 25000.0, "resumed": True,
    },
    "shapenet128": {
        "image_resolution": 128, "r1_gamma": 0.3, "gen_pose_cond": False, "gpc_reg_prob": 0.5,
        "num_samples": 64, "num_importance": 64, "ray_start": 0.1, "ray_end": 2.6, "box_warp": 1.6,
        "white_back": True, "camera_pivot": [0.0, 0.0, 0.0],
        "first_kimg": 25000.0, "fine_tune_kimg": 0.0, "resumed": False,
    },
}

#: train.py / training_loop.py constants.
Z_DIM = W_DIM = 512
C_DIM = 25
MAPPING_LAYERS = 2            # --map-depth
TRIPLANE_RESOLUTION = 256     # TriPlaneGenerator: backbone img_resolution=256
TRIPLANE_CHANNELS = 32        # img_channels=32*3
DECODER_HIDDEN = 64           # OSGDecoder hidden_dim
DECODER_OUTPUT = 32           # decoder_output_dim
RENDER_RESOLUTION = 64        # --neural_rendering_resolution_initial
RENDER_RESOLUTION_FINAL = 128  # --neural_rendering_resolution_final (fine-tuning runs)
RESOLUTION_FADE_KIMG = 1000.0  # --neural_rendering_resolution_fade_kimg
BATCH = 32
G_LR, D_LR = 0.0025, 0.002
BLUR_INIT_SIGMA, BLUR_FADE_KIMG_AT_32 = 10.0, 200.0
EMA_KIMG_AT_32, EMA_RAMPUP = 10.0, 0.05
GPC_REG_FADE_KIMG = 1000.0
DENSITY_REG, DENSITY_REG_EVERY, DENSITY_REG_P_DIST = 0.25, 4, 0.004
#: --tick 4 kimg, --snap 50 ticks.
SNAPSHOT_KIMG = 4.0 * 50


def triplane_num_ws(resolution: int) -> int:
    """Latents StyleGAN2's synthesis network reads at ``resolution``: two per block from 8 px up, one
    conv and one toRGB at 4 px, plus the last toRGB (``2 log2(res) - 2``; 14 at 256)."""
    return 2 * int(math.log2(resolution)) - 2


def resolution_fade_stages(start_kimg: float, initial: int, final: int, fade_kimg: float) -> list[dict[str, Any]]:
    """Stages reproducing EG3D's render-resolution fade from ``start_kimg`` on.

    loss.py: ``int(rint(initial * (1 - a) + final * a))`` with ``a = min(kimg_since_start / fade_kimg, 1)``.
    Resolution ``r`` holds while ``initial + (final - initial) a`` rounds to ``r``, i.e. until
    ``a = (r - initial + 0.5) / (final - initial)``; the last stage (``final``) has no end.
    """
    span = final - initial
    stages = []
    for r in range(initial, final):
        end = start_kimg + fade_kimg * (r - initial + 0.5) / span
        stages.append({"until_kimg": end, "resolution": r})
    stages.append({"resolution": final})
    return stages


#: How EG3D reads its data (every variant): the images as ``dataset_tool.py`` stored them (its
#: ``training/dataset.py`` ``ImageFolderDataset`` decodes them and resizes nothing; the FFHQ, AFHQ and
#: ShapeNet crops are made by ``dataset_preprocessing/``), each with its camera label from
#: ``dataset.json``: the generator renders from, and is conditioned on, the data set's cameras
#: (``training/training_loop.py``: ``gen_c = training_set.get_label(...)``; ``--cond``).
DATA: dict[str, Any] = {"labels": "required", "label_format": "eg3d", "preprocessing": []}


def _synthetic_recipe() -> Recipe:
    """The CPU-sized EG3D for the embedded 64-px synthetic head set (see the module docstring)."""
    recipe = _official_recipe("ffhq512")
    w, res = 64, 32
    batch, total_kimg = 8, 1.0
    m = recipe.modules
    m["stochasticity_mapper"].kwargs.update(z_dim=w, w_dim=w)
    m["point_embedder"].kwargs.update(resolution=res, channels=8, channel_base=1024, channel_max=32)
    m["feature_decoder"].kwargs.update(hidden_dim=16, output_dim=8)
    m["point_sampler"].kwargs.update(num_samples=12)
    # 128 is the smallest official super-resolution output (Hybrid2X); the 64-px data are resized up.
    m["upsampler"].kwargs.update(image_resolution=128, block0_channels=16, block1_channels=8)
    m["discriminator"].kwargs.update(img_resolution=128, channel_base=512, channel_max=32, mapping_num_layers=2)
    m["loss"].kwargs.update(r1_gamma=1.0, blur_fade_kimg=total_kimg / 4, gpc_reg_fade_kimg=total_kimg / 4,
                            density_reg_num_points=256)
    recipe.generator.update(render_resolution=res, num_importance=12)
    recipe.training.update(batch_size=batch, ema_kimg=batch * EMA_KIMG_AT_32 / BATCH / 10, total_kimg=total_kimg,
                           stages=[], snapshot_kimg=1.0, image_snapshot_kimg=1.0, log_every=5)
    recipe.variant = "synthetic"
    return recipe


def _official_recipe(variant: str) -> Recipe:
    v = VARIANTS[variant]
    image_res = v["image_resolution"]
    batch = BATCH
    modules = {
        # num_ws (14 at 256: triplane_num_ws) is wired from the tri-plane backbone; the super-resolution
        # reads the backbone's last row.
        "stochasticity_mapper": ModuleSpec("stylegan2", {
            "z_dim": Z_DIM, "c_dim": C_DIM, "w_dim": W_DIM, "num_layers": MAPPING_LAYERS, "lr_multiplier": 0.01,
            "w_avg_beta": 0.998, "c_scale": 1.0,
            # Without --gen_pose_cond the official mapping sees zeros (c_gen_conditioning_zero); the
            # objective feeds zeros then, so the mapper keeps its label input as the official one does.
            "zero_condition": False,
        }),
        # all_gen_c: labels drawn from the training set (training_loop.py).
        "pose_sampler": ModuleSpec("dataset", {"orbit_center": list(v["camera_pivot"])}),
        "point_sampler": ModuleSpec("uniform", {
            "num_samples": v["num_samples"], "ray_start": v["ray_start"], "ray_end": v["ray_end"],
            # renderer.py sample_stratified: depth + U[0, 1) * delta, at inference too; sample_pdf with
            # det=False and the max-pool/avg-pool weight smoothing (+0.01).
            "perturbation": "forward", "disparity_space_sampling": False, "perturb_in_eval": True,
            "smooth_importance_weights": True, "importance_pdf": "eg3d",
        }),
        "point_embedder": ModuleSpec("triplane", {
            "resolution": TRIPLANE_RESOLUTION, "channels": TRIPLANE_CHANNELS,
            "box_warp": v["box_warp"], "plane_axes": "official", "channel_base": 32768, "channel_max": 512,
            "conv_clamp": None, "use_noise": True, "noise_mode": "random",
        }),
        "feature_decoder": ModuleSpec("eg3d_osg", {
            "hidden_dim": DECODER_HIDDEN, "output_dim": DECODER_OUTPUT,
            "lr_multiplier": 1.0,  # --decoder_lr_mul
        }),
        "volume_renderer": ModuleSpec("volume", {
            "density_activation": "mipnerf", "quadrature": "midpoint", "noise_std": 0.0,
            "white_back": v["white_back"], "depth_mode": "normalized_clamped", "unit_to_signed": True,
        }),
        "upsampler": ModuleSpec("eg3d_superres", {
            "image_resolution": image_res,
            "antialias": True, "noise_mode": "none", "conv_clamp": 256.0,
        }),
        "discriminator": ModuleSpec("eg3d_dual", {
            "c_dim": C_DIM, "img_resolution": image_res, "img_channels": 3, "architecture": "resnet",
            "channel_base": 32768, "channel_max": 512, "conv_clamp": 256.0, "mapping_num_layers": 8,
            "mbstd_group_size": 4, "disc_c_noise": 0.0, "filter_mode": "antialiased",
        }),
        "loss": ModuleSpec("eg3d", {
            "r1_gamma": v["r1_gamma"], "r1_interval": 16, "gen_pose_cond": v["gen_pose_cond"],
            "gpc_reg_prob": v["gpc_reg_prob"],
            # train.py on --resume (without --resume_blur): blur_init_sigma = 0, gpc_reg_fade_kimg = 0.
            "gpc_reg_fade_kimg": 0.0 if v["resumed"] else GPC_REG_FADE_KIMG,
            "blur_init_sigma": 0.0 if v["resumed"] else BLUR_INIT_SIGMA,
            "blur_fade_kimg": batch * BLUR_FADE_KIMG_AT_32 / 32,
            "blur_raw_target": True, "filter_mode": "antialiased",
            "density_reg": DENSITY_REG, "density_reg_every": DENSITY_REG_EVERY,
            "density_reg_p_dist": DENSITY_REG_P_DIST, "density_reg_num_points": 1000,
        }),
    }
    stages: list[dict[str, Any]] = []
    if v["fine_tune_kimg"] and variant != "shapenet128":
        # The first fade stage (resolution 64) also covers the 64-px run before the fine-tuning.
        stages = resolution_fade_stages(v["first_kimg"], RENDER_RESOLUTION, RENDER_RESOLUTION_FINAL,
                                        RESOLUTION_FADE_KIMG)
    training = {
        "batch_size": batch, "g_lr": G_LR, "d_lr": D_LR, "g_betas": [0.0, 0.99], "d_betas": [0.0, 0.99],
        "ema_kimg": batch * EMA_KIMG_AT_32 / 32,
        "ema_rampup": None if v["resumed"] else EMA_RAMPUP,
        "total_kimg": v["first_kimg"] + v["fine_tune_kimg"],
        "stages": stages,
        "snapshot_kimg": SNAPSHOT_KIMG, "image_snapshot_kimg": SNAPSHOT_KIMG,
        "xflip": False,  # --mirror default False (EG3D mirrors FFHQ in its data set instead)
        "lazy_reg_adam": True,
    }
    generator = {"render_resolution": RENDER_RESOLUTION, "num_importance": v["num_importance"], "image_range": "tanh"}
    return Recipe("eg3d", modules, generator, training, variant, data=copy.deepcopy(DATA))


def eg3d_recipe(variant: str | None = None) -> Recipe:
    """The EG3D recipe of ``variant``: ``'ffhq512'`` (default), ``'afhq512'``, ``'shapenet128'`` or
    ``'synthetic'`` (CPU-sized, for the embedded synthetic set).

    Example:
        >>> recipe = eg3d_recipe()
        >>> recipe.generator["render_resolution"], recipe.modules["upsampler"].kwargs["image_resolution"]
        (64, 512)
    """
    variant = variant or "ffhq512"
    if variant == "synthetic":
        return _synthetic_recipe()
    if variant not in VARIANTS:
        raise ValueError(f"eg3d has no variant {variant!r}; variants: {', '.join([*VARIANTS, 'synthetic'])}")
    return _official_recipe(variant)
