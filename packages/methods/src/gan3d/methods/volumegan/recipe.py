"""VolumeGAN's recipes, written to the Generator v2 contract (slots wired at build time: the mapper's
``num_ws``, every ``w_dim``, the decoder's and the upsampler's ``in_channels`` are not set here).

Variants:

* ``ffhq256`` (default): the only released configuration, genforce/volumegan
  ``configs/volumegan_ffhq_config.py`` (``VolumeGANFFHQConfig``) with the flags of
  ``scripts/training_demos/volumegan_ffhq256.sh`` (qiuyu96/Carver's demo is identical): 32-px feature
  image from a 32^3 feature volume and a 4 x 256 point MLP, 12 + 12 samples per ray, the 1x1 neural
  renderer to 256 px grown from 32 px (750k + 750k images per octave), 25M images at batch 8 x 8 GPUs.
* ``synthetic``: the same networks sized for a CPU and the embedded 64-px synthetic head set
  (``gan3d.core.data`` preset ``head``; its cameras: radius 2.7 about ``(0, 0, 0.2)``, pixel-centred
  rays of focal 4.2647): 16-px feature images grown to 64 px over two octaves (250 + 250 images per
  octave), a 16^3 volume over the head's box ``[-0.5, 0.5]^3``, narrow layers, a 2k-image run.

Latent rows (allocated by the generator): feature volume 1 row, point MLP 4 rows starting on the
volume's row (``ws_from_previous``), neural renderer 8 rows: 12 rows, as the official ``num_layers``.

The official progressive scheduler clears both optimizers' states whenever ``int(lod)`` or ``ceil(lod)``
changes (``ProgressScheduler.reset_optimizer``): the loss's ``reset_optimizer`` (on). Not carried over:
mixed precision (``--num_fp16_res=128``); gan3d runs float32 with the same ``conv_clamp`` 256.

Data (``datasets/image_dataset.py`` ``parse_transform_config``): ``Decode(return_square=True,
center_crop=True)`` keeps the centred square of the short side (rows ``int((H - s) * 0.5)`` on), then
``Resize`` shrinks it to the training resolution with OpenCV's ``INTER_AREA``; flips are
``--train_data_mirror``; no labels.
"""

from __future__ import annotations

import copy
import math
from typing import Any

from gan3d.core.recipe import ModuleSpec, Recipe

__all__ = ["volumegan_recipe", "VARIANTS", "FFHQ_BOUNDS", "SYNTHETIC_OVERRIDES", "DATA"]

VARIANTS = ("ffhq256", "synthetic")

#: ``NeRFSynthesisNetwork.forward`` default ``bounds`` of the feature volume (FFHQ).
FFHQ_BOUNDS = [[-0.1886, -0.1671, -0.1956], [0.1887, 0.1692, 0.1872]]


#: ImageDataset's decode (centred square) and resize (cv2.INTER_AREA to the training resolution).
DATA: dict[str, Any] = {"labels": "unused", "preprocessing": [
    {"op": "square_center_crop"}, {"op": "resize", "size": "training", "filter": "area"}]}


def _ffhq256() -> dict[str, Any]:
    nerf_res, out_res = 32, 256
    init_lod = math.log2(out_res // nerf_res)
    lod = {"progressive": True, "lod_training_kimg": 750.0, "lod_transition_kimg": 750.0, "minibatch_repeats": 4}
    return {
        "modules": {
            # MappingNetwork: 8 layers of 512, lr_mul 0.01; w_avg decay --w_moving_decay 0.995.
            "stochasticity_mapper": ModuleSpec("stylegan2", {
                "z_dim": 512, "c_dim": 0, "w_dim": 512, "num_layers": 8, "lr_multiplier": 0.01, "w_avg_beta": 0.995}),
            # ps_cfg: camera on the unit sphere looking at the origin, yaw ~ N(pi/2, 0.3), pitch ~ N(pi/2, 0.155)
            # ('gaussian'), fov 12 degrees spanned by the corner-aligned grid (sample_pts_in_cam_coord:
            # linspace(-1, 1, W) at depth 1 / tan(fov / 2): the point sampler's align_corners).
            "pose_sampler": ModuleSpec("spherical", {
                "yaw_strategy": "normal", "yaw_mean": math.pi / 2, "yaw_stddev": 0.3,
                "polar_strategy": "normal", "polar_mean": math.pi / 2, "polar_stddev": 0.155,
                "radius": 1.0, "pivot": [0.0, 0.0, 0.0], "orbit_center": [0.0, 0.0, 0.0], "fov": 12.0, "focal": 0.0}),
            # ps_cfg num_steps 12, ray 0.8 -> 1.2 (distance along the unit ray), perturb_points' +-d/2 jitter
            # ('stratified'); hierarchicle_sampling.py: coarse weights + 1e-5, sample_pdf's own 1e-5 and
            # searchsorted's default side (pi-GAN's PDF), unsmoothed. Eval renders deterministically: the
            # README's FID command turns the jitter off (perturb_mode 'none'); the official fine samples stay
            # random at inference, ours take NeRF's deterministic quantiles (linspace(0, 1)).
            "point_sampler": ModuleSpec("uniform", {
                "num_samples": 12, "ray_start": 0.8, "ray_end": 1.2, "perturbation": "stratified",
                "perturb_in_eval": False, "smooth_importance_weights": False, "importance_pdf": "pigan",
                "align_corners": True}),
            # fv_cfg (FeatureVolume) and embed_cfg (Embedder: 10 octaves with the input).
            "point_embedder": ModuleSpec("volume", {
                "feat_res": 32, "init_res": 4, "base_channels": 256, "output_channels": 32,
                "bounds": FFHQ_BOUNDS, "num_frequencies": 10, "include_input": True}),
            # fg_cfg: 4 modulated layers of 256; out_dim 512.
            "feature_decoder": ModuleSpec("volumegan_mlp", {"hidden_dim": 256, "num_layers": 4, "output_dim": 512}),
            # renderer.py: relu(sigma), last interval 1e10, no noise (noise_std 0), no white background.
            "volume_renderer": ModuleSpec("volume", {
                "density_activation": "relu", "quadrature": "last_delta", "last_delta": 1e10, "noise_std": 0.0,
                "white_back": False, "last_back": False, "eval_last_back": False, "depth_mode": "expected"}),
            # SynthesisNetwork(init_res=nerf_res, resolution=256), fmaps 32768 / 512, conv_clamp 256 (the demo's
            # --num_fp16_res), noise 'random' in training and 'const' in eval, rgb_init_res_out False.
            "upsampler": ModuleSpec("volumegan_neural_renderer", {
                "in_resolution": nerf_res, "out_resolution": out_res, "channel_base": 32768, "channel_max": 512,
                "conv_clamp": 256.0, "use_noise": True, "noise_mode": "random", "eval_noise_mode": "const",
                "rgb_init_res_out": False, **lod}),
            "discriminator": ModuleSpec("volumegan", {
                "img_resolution": out_res, "channel_base": 32768, "channel_max": 512, "conv_clamp": 256.0,
                "mbstd_group_size": 4, "mbstd_num_channels": 1, "init_lod": init_lod, **lod}),
            "loss": ModuleSpec("volumegan", {
                "r1_gamma": 10.0, "r1_interval": 16, "style_mixing_prob": 0.9, "pl_weight": 2.0, "pl_interval": 4,
                "pl_batch_shrink": 2, "pl_decay": 0.01}),
        },
        # The fine pass draws as many samples as the coarse one; RGB is the raw feature (image range [-1, 1]).
        "generator": {"render_resolution": nerf_res, "num_importance": 12, "image_range": "tanh"},
        "training": {
            "batch_size": 64,  # 8 per GPU x 8 GPUs
            "g_lr": 0.002, "d_lr": 0.002, "g_betas": [0.0, 0.99], "d_betas": [0.0, 0.99],
            # parse_options: lr * i / (i + 1) and betas ** (i / (i + 1)) for the lazy regularizers.
            "lazy_reg_adam": True,
            "ema_kimg": 20.0,  # --g_ema_img=20000, no ramp-up (g_ema_rampup 0)
            "total_kimg": 25000.0,
            "xflip": True,  # --train_data_mirror
            # --ckpt_interval / --eval_interval 6400 iterations of 64 images.
            "snapshot_kimg": 409.6, "image_snapshot_kimg": 409.6,
        },
    }


#: ``synthetic``: the ffhq256 recipe sized for two CPU cores and the 64-px synthetic head set.
SYNTHETIC_OVERRIDES = [
    "stochasticity_mapper.z_dim=64", "stochasticity_mapper.w_dim=64",
    "pose_sampler.radius=2.7", "pose_sampler.pivot=[0.0, 0.0, 0.2]", "pose_sampler.orbit_center=[0.0, 0.0, 0.2]",
    "pose_sampler.fov=0.0", "pose_sampler.focal=4.2647", "point_sampler.align_corners=false",
    "point_sampler.ray_start=2.25", "point_sampler.ray_end=3.3",
    "point_embedder.feat_res=16", "point_embedder.base_channels=32", "point_embedder.output_channels=8",
    "point_embedder.bounds=[[-0.5, -0.5, -0.5], [0.5, 0.5, 0.5]]",
    "feature_decoder.hidden_dim=64", "feature_decoder.num_layers=2", "feature_decoder.output_dim=64",
    "upsampler.in_resolution=16", "upsampler.out_resolution=64", "upsampler.channel_base=2048",
    "upsampler.channel_max=64", "upsampler.lod_training_kimg=0.25", "upsampler.lod_transition_kimg=0.25",
    "discriminator.img_resolution=64", "discriminator.channel_base=2048", "discriminator.channel_max=64",
    "discriminator.init_lod=2.0", "discriminator.lod_training_kimg=0.25", "discriminator.lod_transition_kimg=0.25",
    "generator.render_resolution=16",
    "training.batch_size=8", "training.ema_kimg=0.25", "training.total_kimg=2.0", "training.snapshot_kimg=0.5",
    "training.image_snapshot_kimg=0.25", "training.log_every=10",
]


def volumegan_recipe(variant: str | None = None) -> Recipe:
    """The VolumeGAN recipe of ``variant`` (``'ffhq256'``, default, or ``'synthetic'``).

    Example:
        >>> recipe = volumegan_recipe()
        >>> recipe.modules["upsampler"].name, recipe.generator["render_resolution"]
        ('volumegan_neural_renderer', 32)
    """
    variant = variant or "ffhq256"
    if variant not in VARIANTS:
        raise ValueError(f"volumegan has no variant {variant!r}; variants: {', '.join(VARIANTS)}")
    data = _ffhq256()
    recipe = Recipe("volumegan", data["modules"], data["generator"], data["training"], "ffhq256",
                    data=copy.deepcopy(DATA))
    if variant == "synthetic":
        recipe = recipe.overrides(SYNTHETIC_OVERRIDES)
        recipe.variant = "synthetic"
    return recipe
