"""GRAM's recipes: the released configurations of microsoft/GRAM (``configs.py``, commit 5a5ac8e) as gan3d
recipes.

Variants (``configs.py`` names in brackets; iterations and batch sizes from the README's table, the
batch being ``batch_size`` per GPU times 8 GPUs):

* ``ffhq256`` (``FFHQ_default``, default): 256x256, batch 32 for 150k iterations, 24 manifolds (23
  levels from 23 down to 8 plus the background plane), manifold predictor of width 128, Gaussian
  poses (yaw stddev 0.3, pitch 0.155), fov 12, rays 0.88 to 1.12, real-pose loss 15, batch_split 4.
* ``cats256`` (``CATS_default``): as FFHQ with a manifold predictor of width 64, batch 16 for 80k
  iterations, real-pose loss 30, batch_split 2.
* ``carla128`` (``CARLA_default``): 128x128, batch 32 for 70k iterations, 48 manifolds (levels 35 down
  to 5), no background plane, interval 0.02, white background, predictor width 256 centred on the
  origin, radiance points unscaled (``normalize=2``), spherical-uniform poses over the upper
  hemisphere, fov 30, rays 0.7 to 1.3, gradient clipping 0.3, the manifold predictor at a tenth of the
  generator's learning rate (``sampling_network_lr`` 2e-6: ``training.lr_multipliers``).
* ``synthetic``: not an official configuration: GRAM sized for a CPU and fitted to the embedded
  synthetic head set (see :data:`SYNTHETIC_OVERRIDES`).

Common to all (``training_loop.py``, ``processes/processes.py``, ``generators/``): latent 256
(Gaussian), pi-GAN's mapping network (3 x 256 hidden, 9 FiLM rows), GRAM's radiance generator (8 FiLM
layers of 256 with a density and a colour head on each layer from the second, summed; widened
sigmoid on RGB; softplus density), 64 coarse samples per ray to find the crossings (no jitter),
fixed interval 0.04 (1e10 for the background and the last sample), depth normalized by the weights,
fixed-resolution residual coordinate-conv discriminator with a pose head, Adam (0, 0.9) with G lr
2e-5 and D lr 2e-4 (constant), R1 1 every step, position loss 15 on fakes, EMA 0.999 with torch_ema's
warm-up, random x-flips of the data with the pose mirrored, D step before G step.

Full-image rays lie on GRAM's corner-aligned grid (``get_initial_rays_trig``: ``linspace(-1, 1, W)``,
the outermost rays on the edges of the field of view): the manifold sampler's ``align_corners``.

Data (``data`` section; ``datasets.py``): every set carries one pose file per image, read as camera labels
by the label formats ``gram_ffhq``, ``gram_cats``, ``gram_carla`` (:mod:`gan3d.methods.gram.data`); the
labels are required, because the discriminator's pose head also learns from the real poses. Images are
resized to the training size with PIL's Lanczos filter (``transforms.Resize(interpolation=1)``), then
flipped at random with the pose mirrored. The landmark alignment of ``preprocess_dataset.py`` (FFHQ, Cats)
needs the landmark files GRAM distributes and is run before, as GRAM's README says.

Not carried over: GRAM trains with mixed precision (fp16 autocast and a GradScaler), a speed option;
GRAM's second EMA (0.9999) is saved but no official script uses it; ``--patch_split`` (rendering in
pixel ranges to save memory) gives the same step and is not needed; ``partial_grad`` is off in every
config (``feature_decoder.grad_ray_fraction`` and ``point_sampler.detach_intersections`` reproduce it);
``lock_view_dependence`` (every sample seen along ``(0, 0, -1)``) is set only by
``render_multiview_images.py`` for its FFHQ and Cats videos, not in training or ``fid_evaluation.py``.

The issue asked for a progressive discriminator; GRAM's ``GramDiscriminator`` is not progressive (one
``fromRGB`` at the fixed training size), and the code is followed.
"""

from __future__ import annotations

import copy
import math
from typing import Any

from gan3d.core.recipe import ModuleSpec, Recipe

from ..pigan.recipe import _pose_sampler_options

__all__ = ["gram_recipe", "VARIANTS", "SYNTHETIC_OVERRIDES"]

#: The variant-specific facts, from configs.py unless noted.
VARIANTS: dict[str, dict[str, Any]] = {
    "ffhq256": {
        "resolution": 256, "batch_size": 32, "iterations": 150_000,
        "pose_distribution": "normal", "h_mean": math.pi * 0.5, "v_mean": math.pi * 0.5,
        "h_stddev": 0.3, "v_stddev": 0.155,
        "fov": 12.0, "ray_start": 0.88, "ray_end": 1.12,
        "num_manifolds": 24, "levels_start": 23.0, "levels_end": 8.0, "background": True, "delta": 0.04,
        "field_hidden_dim": 128, "field_center": [0.0, 0.0, -1.5],
        "box_warp": 0.24,  # GramRF normalize=0.24 (the default)
        "white_back": False,
        "loss": {"r1_gamma": 1.0, "r1_interval": 1, "pos_lambda": 15.0, "real_pos_lambda": 15.0,
                 "batch_split": 4},
        "grad_clip": 1.0,
        "label_format": "gram_ffhq",
    },
    "cats256": {
        "resolution": 256, "batch_size": 16, "iterations": 80_000,
        "pose_distribution": "normal", "h_mean": math.pi * 0.5, "v_mean": math.pi * 0.5,
        "h_stddev": 0.3, "v_stddev": 0.155,
        "fov": 12.0, "ray_start": 0.88, "ray_end": 1.12,
        "num_manifolds": 24, "levels_start": 23.0, "levels_end": 8.0, "background": True, "delta": 0.04,
        "field_hidden_dim": 64, "field_center": [0.0, 0.0, -1.5],
        "box_warp": 0.24,
        "white_back": False,
        "loss": {"r1_gamma": 1.0, "r1_interval": 1, "pos_lambda": 15.0, "real_pos_lambda": 30.0,
                 "batch_split": 2},
        "grad_clip": 1.0,
        "label_format": "gram_cats",
    },
    "carla128": {
        "resolution": 128, "batch_size": 32, "iterations": 70_000,
        "pose_distribution": "spherical_uniform", "h_mean": math.pi * 0.5, "v_mean": math.pi * 42.5 / 180,
        "h_stddev": math.pi, "v_stddev": math.pi * 42.5 / 180,
        "fov": 30.0, "ray_start": 0.7, "ray_end": 1.3,
        "num_manifolds": 48, "levels_start": 35.0, "levels_end": 5.0, "background": False, "delta": 0.02,
        "field_hidden_dim": 256, "field_center": [0.0, 0.0, 0.0],
        "box_warp": 2.0,  # GramRF normalize=2: points unscaled
        "white_back": True,
        "loss": {"r1_gamma": 1.0, "r1_interval": 1, "pos_lambda": 15.0, "real_pos_lambda": 15.0,
                 "batch_split": 4},
        # configs.py CARLA_default grad_clip 0.3 (also processes.py's default when a config has none).
        "grad_clip": 0.3,
        "label_format": "gram_carla",
        # training_loop.py set_optimizer_G: representation.sample_network in its own group at
        # sampling_network_lr 2e-6 = gen_lr 2e-5 x 0.1.
        "lr_multipliers": {"point_sampler": 0.1},
    },
}

#: Shared by every variant (configs.py, gram.py, manifold_renderer.py, training_loop.py).
LATENT_DIM = 256                 # z_dim
HIDDEN_DIM = 256                 # GramRF hidden_dim
NUM_FILM_LAYERS = 8              # GramRF.network
NUM_COARSE_SAMPLES = 64          # renderer num_samples
FIELD_LAYERS = 3                 # layer_num_sample
BACKGROUND_Z = -0.12             # get_intersection_with_MPI(mpi_start=-0.12, mpi_end=-0.12, mpi_num=1)
DELTA_FINAL = 1e10               # ManifoldRenderer delta_final
G_LR, D_LR = 2e-5, 2e-4          # configs.py gen_lr, disc_lr
BETAS = [0.0, 0.9]
EMA_DECAY = 0.999                # training_loop.py set_generator: ExponentialMovingAverage(decay=0.999)
SAMPLE_INTERVAL_STEPS = 500      # train.py --sample_interval
SAVE_INTERVAL_STEPS = 5000       # train.py --model_save_interval
#: datasets.py FFHQ, CATS, CARLA: transforms.Resize((img_size, img_size), interpolation=1) (PIL LANCZOS).
PREPROCESSING = [{"op": "resize", "size": "training", "filter": "lanczos"}]
#: The embedded synthetic set carries EG3D camera labels and is stored at the training size.
SYNTHETIC_DATA: dict[str, Any] = {"labels": "required", "label_format": "eg3d", "preprocessing": []}


#: ``synthetic``: GRAM's FFHQ recipe sized for a CPU and fitted to the embedded synthetic head set
#: (``gan3d.core.data``, preset ``head``: EG3D's FFHQ cameras, radius 2.7 about the pivot (0, 0, 0.2),
#: focal 4.2647, yaw/pitch stddev 0.3/0.155). GRAM's geometry is kept in units of its box: the box
#: (``box_warp``, 0.24 in GRAM) becomes 0.7 wide around the head, the rays span it (2.9 +- 0.35, as
#: GRAM's 1 +- 0.12), the background plane is its back face (GRAM -0.12), and the predictor's centre
#: and levels stay in warped units, so the initial level sets bracket the head as GRAM's bracket a
#: face. Narrow networks, 32-px renders with 11 levels, and the learning rates of pi-GAN's synthetic
#: recipe (GRAM's generator is pi-GAN's with more heads); to be checked by learning runs.
SYNTHETIC_OVERRIDES = [
    "stochasticity_mapper.z_dim=64", "stochasticity_mapper.hidden_dim=64", "stochasticity_mapper.film_dim=64",
    "feature_decoder.num_layers=3",
    "pose_sampler.radius=2.7", "pose_sampler.pivot=[0.0, 0.0, 0.2]", "pose_sampler.orbit_center=[0.0, 0.0, 0.2]",
    "pose_sampler.fov=0.0", "pose_sampler.focal=4.2647",
    "point_sampler.ray_start=2.55", "point_sampler.ray_end=3.25", "point_sampler.num_samples=24",
    "point_sampler.num_manifolds=12", "point_sampler.background_z=-0.35", "point_sampler.field_box_warp=0.7",
    "point_sampler.hidden_dim=32",
    "point_embedder.box_warp=0.7",
    "discriminator.img_resolution=32", "discriminator.channels=[16, 32, 64, 64, 64]",
    "loss.batch_split=1",
    "generator.render_resolution=32",
    "training.batch_size=8", "training.g_lr=0.0002", "training.d_lr=0.0006",
    "training.total_kimg=2.0", "training.snapshot_kimg=0.5", "training.image_snapshot_kimg=0.25",
    "training.log_every=10",
]


def gram_recipe(variant: str | None = None) -> Recipe:
    """The GRAM recipe of ``variant``: ``'ffhq256'`` (default), ``'cats256'``, ``'carla128'``, or
    ``'synthetic'`` (the CPU-sized recipe for the embedded synthetic head set).

    Example:
        >>> recipe = gram_recipe("cats256")
        >>> recipe.modules["point_sampler"].kwargs["hidden_dim"], recipe.training["batch_size"]
        (64, 16)
    """
    variant = variant or "ffhq256"
    if variant == "synthetic":
        recipe = gram_recipe("ffhq256").overrides(SYNTHETIC_OVERRIDES)
        recipe.variant = "synthetic"
        recipe.data = copy.deepcopy(SYNTHETIC_DATA)
        return recipe
    if variant not in VARIANTS:
        raise ValueError(f"GRAM has no variant {variant!r}; variants: {', '.join(VARIANTS)}, synthetic")
    v = VARIANTS[variant]
    batch = v["batch_size"]
    modules = {
        # CustomMappingNetwork(z_dim, 256, (8 + 1) * 256 * 2): pi-GAN's; its num_ws (9) is wired from the
        # decoder by Generator v2.
        "stochasticity_mapper": ModuleSpec("pigan", {"z_dim": LATENT_DIM, "hidden_dim": 256, "film_dim": HIDDEN_DIM}),
        # generators.py sample_camera_positions is pi-GAN's: radius 1, looking at the origin.
        "pose_sampler": ModuleSpec("spherical", _pose_sampler_options(v)),
        "point_sampler": ModuleSpec("manifold", {
            "num_samples": NUM_COARSE_SAMPLES, "ray_start": v["ray_start"], "ray_end": v["ray_end"],
            "num_manifolds": v["num_manifolds"], "levels_start": v["levels_start"], "levels_end": v["levels_end"],
            "background": v["background"], "background_z": BACKGROUND_Z, "delta": v["delta"],
            "delta_final": DELTA_FINAL, "hidden_dim": v["field_hidden_dim"], "num_layers": FIELD_LAYERS,
            "center": v["field_center"], "init_radius": 0.0, "align_corners": True,
        }),
        "point_embedder": ModuleSpec("coordinate", {"box_warp": v["box_warp"]}),
        # Its width (HIDDEN_DIM) is wired from the mapper's film_dim: w_dim = 2 * hidden_dim.
        "feature_decoder": ModuleSpec("gram_radiance", {
            "num_layers": NUM_FILM_LAYERS, "rgb_activation": "widen_sigmoid",
        }),
        # fancy_integration: softplus density (sigma_clamp_mode), the sampler's deltas, no noise,
        # depth = sum w t / sum w.
        "volume_renderer": ModuleSpec("volume", {
            "density_activation": "softplus", "quadrature": "last_delta", "last_delta": DELTA_FINAL,
            "noise_std": 0.0, "white_back": v["white_back"], "last_back": False, "eval_last_back": False,
            "depth_mode": "normalized",
        }),
        "upsampler": ModuleSpec("identity", {}),
        # GramDiscriminator(img_size): widths min(400, 2^i) (gram_channels).
        "discriminator": ModuleSpec("gram", {"img_resolution": v["resolution"], "pose_dim": 2}),
        "loss": ModuleSpec("gram", dict(v["loss"])),
    }
    generator = {
        "render_resolution": v["resolution"],
        "num_importance": 0,
        "image_range": "unit",  # pixels * 2 - 1 (manifold_renderer.py)
    }
    training = {
        "batch_size": batch,
        "g_lr": G_LR,
        "d_lr": D_LR,
        "g_betas": list(BETAS),
        "d_betas": list(BETAS),
        "ema_beta": EMA_DECAY,
        "ema_warmup": True,  # torch_ema use_num_updates: min(0.999, (1 + t) / (10 + t))
        "total_kimg": v["iterations"] * batch / 1000.0,
        "g_grad_clip": v["grad_clip"],
        "d_grad_clip": v["grad_clip"],
        "snapshot_kimg": SAVE_INTERVAL_STEPS * batch / 1000.0,
        "image_snapshot_kimg": SAMPLE_INTERVAL_STEPS * batch / 1000.0,
        "xflip": True,  # datasets.py: every set flips with p = 0.5 and mirrors the pose
    }
    if "lr_multipliers" in v:
        training["lr_multipliers"] = dict(v["lr_multipliers"])
    data = {"labels": "required", "label_format": v["label_format"], "preprocessing": copy.deepcopy(PREPROCESSING)}
    return Recipe("gram", modules, generator, training, variant, data=data)
