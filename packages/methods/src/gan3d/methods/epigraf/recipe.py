"""EpiGRAF's recipes (Skorokhodov et al. 2022): the released configurations of universome/epigraf as gan3d
recipes, written to the Generator v2 contract (the generator wires ``num_ws``, ``w_dim`` and
``in_channels``; these recipes do not set them).

Variants (configs/config.yaml composing model/epigraf, training/patch_beta and dataset/<name>):

* ``ffhq512`` (default; dataset/ffhq_posed.yaml, the released FFHQ 512 checkpoint): camera angles from the
  data set (GRAM's poses on uncropped FFHQ), radius 1, fov 12, rays 0.88 to 1.12, ``cube_scale`` 0.2.
* ``cats256`` (dataset/cats_aligned.yaml): the same camera numbers at 256 px (the discriminator gets 2
  size-keeping start blocks instead of 3; the tri-plane stays 512).
* ``synthetic``: a CPU-sized EpiGRAF for the embedded 64-px synthetic head set (not an official
  configuration).

Not drafted: M-Plants and M-Food (dataset/megascans_*.yaml) train class-conditionally (``c_dim`` 198 and 10;
README: ``training.use_labels=true``); gan3d's mapper condition is the camera label, so class labels need a
contract of their own.

Common (model/base.yaml, model/epigraf.yaml, training/base.yaml, training/patch_beta.yaml, src/train.py,
src/training/*.py): z and w 512, mapping depth 2, no generator pose conditioning; tri-plane 512 x 512 x 32 x 3
from StyleGAN2's synthesis network (conv clamp 256, fp32), read with EpiGRAF's planes and
``align_corners=True``, box ``2 * cube_scale``; MLP 32 -> 64 (lrelu) -> 3 colour + density, no sigmoid;
48 + 48 samples per ray (jittered between midpoints, also at inference), softplus density with noise std 1
falling to 0 over 5000 kimg, last interval 1e10, no background model; 64 x 64 patches with Beta-annealed
scales (min ``64 / resolution``) and their own draw for the reals; the patch-aware discriminator (channel
base 16384, hyper-modulation, no camera conditioning); non-saturating loss, blur 10 fading over 200 kimg,
lazy R1 every 16 steps; Adam (0, 0.99), lr G 0.0025 / D 0.002; batch 64; EMA half-life 20 kimg with ramp-up
0.05; x-flips; 50000 kimg.

The R1 weight. configs/training/base.yaml has ``gamma: auto``, which src/train.py turns into StyleGAN2-ADA's
heuristic ``0.0002 * resolution^2 / batch`` (FFHQ 512: 0.8192; 256: 0.2048). The README's training command
sets ``gamma=0.1`` (written ``model.training.gamma=0.1``, a key the composed config does not have and Hydra
1.0.7 refuses to create: the intended override is ``training.gamma``), and its tips say "we use gamma=0.05
everywhere for quite some time, but then found that gamma=0.1 works slightly better (~10% in terms of FID)
on FFHQ"; its Megascans command sets 0.05. We take the authors' documented values, not the heuristic no
documented run uses: **0.1 for ffhq512** (also Carver's EpiGRAF demo value), **0.05 for cats256**.
``--set loss.r1_gamma=0.8192`` restores the config default.

Data (``data`` section): the images as EpiGRAF's ``scripts/data_scripts/resize_dataset.py`` stores them
(``center_resize_crop``: the centred square of the short side, then a Lanczos resize to the data set's
resolution), each with its ``[yaw, pitch, roll]`` from ``dataset.json``'s ``camera_angles`` read as a camera
label (label format ``epigraf``, :mod:`gan3d.core.data.epigraf_labels`, with the data set's fov, radius and
resolution): the generator renders from the data set's cameras (``dataset.camera.dist: custom``).

Where we differ, and why:

* ADA (training/base.yaml ``augment.mode: ada``, target 0.6) is not in gan3d (as for EG3D's AFHQ).
* The density noise follows the schedule from the first step; EpiGRAF's synthesis network starts with
  ``nerf_noise_std = 0`` and sets it after each step (networks_epigraf.py ``progressive_update`` is called
  after the step in training_loop.py), so its very first step renders without noise.
* ``center_resize_crop`` crops with torchvision's rounding (``int(round((H - s) / 2))``); the
  ``square_center_crop`` step floors. They differ by one pixel only for non-square images whose sides differ
  by an odd number; FFHQ (1024 x 1024) and GRAM's Cats are square.
"""

from __future__ import annotations

import copy
import math
from typing import Any

from gan3d.core.data.epigraf_labels import epigraf_focal
from gan3d.core.recipe import ModuleSpec, Recipe

__all__ = ["epigraf_recipe", "VARIANTS", "DATA"]

#: Per-variant facts (dataset/<name>.yaml; R1 as discussed in the module docstring). ``fov`` and ``radius``
#: are the data set's camera (they turn its dataset.json angles into labels).
VARIANTS: dict[str, dict[str, Any]] = {
    "ffhq512": {"resolution": 512, "cube_scale": 0.2, "fov": 12.0, "radius": 1.0, "ray_start": 0.88,
                "ray_end": 1.12, "white_back": False, "r1_gamma": 0.1},
    "cats256": {"resolution": 256, "cube_scale": 0.2, "fov": 12.0, "radius": 1.0, "ray_start": 0.88,
                "ray_end": 1.12, "white_back": False, "r1_gamma": 0.05},
}

#: src/training/inference_utils.py: the default video camera ``front_circle`` swings the yaw by 0.5 and the
#: pitch by 0.3 about the front view (yaw 0, pitch pi/2): the rig's view ranges when no data set is bound.
YAW_DIFF, PITCH_DIFF = 0.5, 0.3

#: How EpiGRAF reads its data (module docstring); ``label_options`` are filled in per variant.
DATA: dict[str, Any] = {
    "labels": "required", "label_format": "epigraf",
    "preprocessing": [{"op": "square_center_crop"}, {"op": "resize", "size": "training", "filter": "lanczos"}],
}

#: model/base.yaml, model/epigraf.yaml, training/base.yaml, src/train.py.
Z_DIM = W_DIM = 512
MAP_DEPTH = 2
TRIPLANE_RESOLUTION, TRIPLANE_CHANNELS, MLP_HIDDEN = 512, 32, 64
NUM_STEPS = 48
PATCH = 64
BATCH = 64
G_LR, D_LR = 0.0025, 0.002
EMA_MULTIPLIER, EMA_RAMPUP = 0.3125, 0.05
NOISE_STD, NOISE_KIMG = 1.0, 5000.0
TOTAL_KIMG = 50000.0
#: training/base.yaml: tick 4 kimg, snap 250 ticks, image_snap 100 ticks.
TICK_KIMG, SNAP_TICKS, IMAGE_SNAP_TICKS = 4.0, 250, 100


def _rig(v: dict[str, Any], pivot: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> dict[str, Any]:
    """The ``dataset`` pose sampler's rig for a generator without data: EpiGRAF's camera at the front."""
    return {"pivot": list(pivot), "radius": v["radius"], "focal": epigraf_focal(v["fov"], v["resolution"]),
            "yaw_range": [math.pi / 2 - YAW_DIFF, math.pi / 2 + YAW_DIFF],
            "polar_range": [math.pi / 2 - PITCH_DIFF, math.pi / 2 + PITCH_DIFF]}


def _modules(v: dict[str, Any]) -> dict[str, ModuleSpec]:
    return {
        # num_ws (16: the 512-px backbone) is wired by the generator.
        "stochasticity_mapper": ModuleSpec("stylegan2", {
            "z_dim": Z_DIM, "c_dim": 0, "w_dim": W_DIM, "num_layers": MAP_DEPTH, "lr_multiplier": 0.01,
            "w_avg_beta": 0.998,
        }),
        # dataset.camera.dist 'custom': each fake is rendered from the angles of a random training image
        # (the labels the 'epigraf' label format reads from dataset.json).
        "pose_sampler": ModuleSpec("dataset", {"orbit_center": [0.0, 0.0, 0.0], "rig": _rig(v)}),
        "point_sampler": ModuleSpec("uniform", {
            "num_samples": NUM_STEPS, "ray_start": v["ray_start"], "ray_end": v["ray_end"],
            # rendering.py perturb_points (between midpoints), always on; sample_pdf without smoothing, given
            # weights + 1e-5 (networks_epigraf.py SynthesisNetwork.forward) to which it adds its own 1e-5, with
            # torch.searchsorted's default side: pi-GAN's importance PDF.
            "perturbation": "middle_uniform", "perturb_in_eval": True, "smooth_importance_weights": False,
            "importance_pdf": "pigan",
        }),
        # w_dim wired from the mapper.
        "point_embedder": ModuleSpec("triplane", {
            "resolution": TRIPLANE_RESOLUTION, "channels": TRIPLANE_CHANNELS, "box_warp": 2 * v["cube_scale"],
            "plane_axes": "epigraf", "align_corners": True, "channel_base": 32768, "channel_max": 512,
            "conv_clamp": 256.0, "use_noise": True, "noise_mode": "random",
        }),
        # in_channels wired from the embedder.
        "feature_decoder": ModuleSpec("eg3d_osg", {
            "hidden_dim": MLP_HIDDEN, "output_dim": 3, "lr_multiplier": 1.0, "hidden_activation": "lrelu",
            "feature_activation": "linear", "density_channel": "last",
        }),
        "volume_renderer": ModuleSpec("volume", {
            "density_activation": "softplus", "quadrature": "last_delta", "last_delta": 1e10, "noise_std": NOISE_STD,
            "noise_anneal_kimg": NOISE_KIMG,  # networks_epigraf.py progressive_update: 1 -> 0 over 5000 kimg
            "white_back": v["white_back"], "depth_mode": "expected",
        }),
        "upsampler": ModuleSpec("identity", {}),
        "discriminator": ModuleSpec("epigraf_patch", {
            "patch_resolution": PATCH, "image_resolution": v["resolution"], "c_dim": 0, "channel_base": 16384,
            "channel_max": 512, "conv_clamp": 256.0, "mbstd_group_size": 4, "patch_params_cond": True,
            "hyper_mod": True, "camera_cond": False, "mapping_num_layers": 2,
        }),
        "loss": ModuleSpec("epigraf", {
            "r1_gamma": v["r1_gamma"], "r1_interval": 16, "patch_size": PATCH, "image_resolution": v["resolution"],
            "min_scale": PATCH / v["resolution"], "max_scale": 1.0, "beta_start": 0.001, "beta_end": 0.8,
            "anneal_kimg": 10000.0, "group_size": 4, "blur_init_sigma": 10.0, "blur_fade_kimg": 200.0,
        }),
    }


def _training(batch: int) -> dict[str, Any]:
    return {
        "batch_size": batch, "g_lr": G_LR, "d_lr": D_LR, "g_betas": [0.0, 0.99], "d_betas": [0.0, 0.99],
        "ema_kimg": batch * EMA_MULTIPLIER, "ema_rampup": EMA_RAMPUP, "total_kimg": TOTAL_KIMG,
        "snapshot_kimg": TICK_KIMG * SNAP_TICKS, "image_snapshot_kimg": TICK_KIMG * IMAGE_SNAP_TICKS,
        "xflip": True, "lazy_reg_adam": True,
    }


def _official_recipe(variant: str) -> Recipe:
    v = VARIANTS[variant]
    # Full images render at the data resolution (G_ema at test time); training patches at PATCH px.
    generator = {"render_resolution": v["resolution"], "num_importance": NUM_STEPS, "image_range": "tanh"}
    data = copy.deepcopy(DATA)
    data["label_options"] = {"fov": v["fov"], "radius": v["radius"], "resolution": v["resolution"]}
    return Recipe("epigraf", _modules(v), generator, _training(BATCH), variant, data=data)


#: ``synthetic``: the embedded 64-px synthetic head set (radius 2.7 about the pivot (0, 0, 0.2), focal 4.2647;
#: its own camera labels drive the ``dataset`` pose sampler as EpiGRAF's do). EpiGRAF's modules and losses at a
#: CPU size: z/w 64, a 32-px tri-plane of 8 channels in EG3D's FFHQ box (side 1, which holds the head), 12 + 12
#: samples between 2.2 and 3.4, 16-px patches of the 64-px images (two size-keeping discriminator blocks),
#: the Beta schedule, blur and density noise over the run's first half, batch 8.
def _synthetic_recipe() -> Recipe:
    head = {"resolution": 64, "cube_scale": 0.5, "ray_start": 2.2, "ray_end": 3.4, "white_back": False,
            "r1_gamma": 0.1, "radius": 2.7, "fov": 2 * math.degrees(math.atan(1 / (2 * 4.2647)))}
    total_kimg, batch = 2.0, 8
    modules = _modules(head)
    # The synthetic set's cameras orbit and look at (0, 0, 0.2) with focal 4.2647 (EG3D's FFHQ rig).
    modules["pose_sampler"].kwargs.update(orbit_center=[0.0, 0.0, 0.2], rig={
        **_rig(head, (0.0, 0.0, 0.2)), "focal": 4.2647})
    modules["stochasticity_mapper"].kwargs.update(z_dim=64, w_dim=64)
    modules["point_sampler"].kwargs.update(num_samples=12)
    modules["point_embedder"].kwargs.update(resolution=32, channels=8, channel_base=1024, channel_max=32)
    modules["feature_decoder"].kwargs.update(hidden_dim=16)
    modules["volume_renderer"].kwargs.update(noise_anneal_kimg=total_kimg / 2)
    modules["discriminator"].kwargs.update(patch_resolution=16, channel_base=512, channel_max=32)
    modules["loss"].kwargs.update(patch_size=16, min_scale=0.25, anneal_kimg=total_kimg / 2,
                                  blur_fade_kimg=total_kimg / 4)
    training = _training(batch)
    training.update(ema_kimg=batch * EMA_MULTIPLIER / 10, total_kimg=total_kimg, snapshot_kimg=1.0,
                    image_snapshot_kimg=0.5, log_every=5)
    return Recipe("epigraf", modules, {"render_resolution": 64, "num_importance": 12, "image_range": "tanh"},
                  training, "synthetic", data={"labels": "required", "label_format": "eg3d", "preprocessing": []})


def epigraf_recipe(variant: str | None = None) -> Recipe:
    """The EpiGRAF recipe of ``variant``: ``'ffhq512'`` (default), ``'cats256'`` or ``'synthetic'``.

    Example:
        >>> recipe = epigraf_recipe()
        >>> recipe.modules["loss"].kwargs["r1_gamma"], recipe.modules["discriminator"].kwargs["image_resolution"]
        (0.1, 512)
    """
    variant = variant or "ffhq512"
    if variant == "synthetic":
        return _synthetic_recipe()
    if variant not in VARIANTS:
        raise ValueError(f"epigraf has no variant {variant!r}; variants: {', '.join([*VARIANTS, 'synthetic'])}")
    return _official_recipe(variant)
