"""The point-embedder ablation (``ablation3d``): EG3D's pipeline with the point embedder and the MLP
swapped, everything else held equal, as Carver's ``Ablation3DGenerator`` does.

Sources: qiuyu96/Carver ``configs/ablation3d_config.py`` (option names and defaults),
``scripts/training_demos/ablation3d.sh`` (the demo run: 256-px FFHQ, batch 4 x 8 GPUs, 25M images,
Adam (0, 0.99), R1 gamma 1.5 every 16 steps, no path-length regularization, generator pose
conditioning, mapping depth 2, render 64) and ``models/ablation3d_generator.py`` (the wiring):

* ``ref_mode='coordinate'``: the point itself, or with ``use_positional_encoding`` only its encoding;
* ``ref_mode='volume'``: VolumeGAN's feature volume (``fv_feat_res`` 32 from 4, 256 -> 32 channels)
  over the box ``[-0.5, 0.5]^3`` (``coordinate_scale`` 1);
* ``ref_mode='triplane'``: EG3D's 256 x 256 x 32 x 3 tri-plane, ``box_warp`` 1, Carver's default
  corrected plane axes (``use_raw_triplane_axes`` False);
* with ``use_positional_encoding`` (Carver's default) the volume and tri-plane features follow the
  encoding ``sin/cos(2^k pi p)``, ``k < 10`` (gan3d-embedders' ``position_encoded`` point embedder);
* ``mlp_type='eg3d'``: EG3D's OSG decoder (``mlp_depth`` 2, hidden 64, output 32);
  ``mlp_type='stylenerf'``: StyleNeRF's modulated MLP with ``mlp_depth`` layers and no RGB head (its
  first three feature channels are the colour, as Carver's ``StyleNeRFMLPNetwork``).

The rest is the EG3D recipe at 256 px (``SuperresolutionHybrid4X``, dual discriminator, EG3D loss
with density regularization, blur and pose-conditioning swaps). Carver's ``hybrid`` mode and its
``pigan`` MLP are not offered.
"""

from __future__ import annotations

from typing import Any

from gan3d.core.recipe import ModuleSpec, Recipe

from ..eg3d.recipe import BATCH, eg3d_recipe

__all__ = ["ablation3d_recipe", "REF_MODES", "MLP_TYPES", "VARIANTS"]

REF_MODES = ("coordinate", "volume", "triplane")
MLP_TYPES = ("eg3d", "stylenerf")
VARIANTS = ("ffhq256", "synthetic")
#: Carver configs/ablation3d_config.py ``pe_num_freqs`` 10, ``fv_init_res`` 4, FeatureVolume
#: ``fv_base_channels`` 256 / ``fv_output_channels`` 32; the demo's ``--resolution=256``, ``--total_img``.
PE_NUM_FREQS = 10
FV_INIT_RES, FV_BASE_CHANNELS, FV_OUTPUT_CHANNELS = 4, 256, 32
IMAGE_RESOLUTION = 256
TOTAL_KIMG = 25000.0


def _embedder(ref_mode: str, use_pe: bool, fv_feat_res: int, sizes: dict[str, Any]) -> ModuleSpec:
    pe = {"num_frequencies": PE_NUM_FREQS, "include_input": False, "multiply_by_pi": True}
    if ref_mode == "coordinate":
        # Carver: PE(points) with the encoding, else the raw world point (box_warp 2: unscaled).
        if use_pe:
            return ModuleSpec("coordinate", {"box_warp": 2.0, **pe})
        return ModuleSpec("coordinate", {"box_warp": 2.0, "num_frequencies": 0, "include_input": True})
    if ref_mode == "volume":
        base = ModuleSpec("volume", {
            "feat_res": fv_feat_res, "init_res": sizes["fv_init_res"], "base_channels": sizes["fv_base_channels"],
            "output_channels": sizes["fv_output_channels"],
            "bounds": [[-0.5, -0.5, -0.5], [0.5, 0.5, 0.5]], "num_frequencies": 0, "include_input": False,
        })
    else:
        base = ModuleSpec("triplane", {
            "resolution": sizes["triplane_resolution"], "channels": sizes["triplane_channels"],
            "box_warp": 1.0, "plane_axes": "corrected", "channel_base": sizes["channel_base"],
            "channel_max": sizes["channel_max"], "conv_clamp": None, "use_noise": True, "noise_mode": "random",
        })
    if not use_pe:
        return base
    return ModuleSpec("position_encoded", {"base": base.name, "base_options": base.kwargs, **pe})


def ablation3d_recipe(
    variant: str | None = None,
    *,
    ref_mode: str = "triplane",
    use_positional_encoding: bool = True,
    mlp_type: str = "eg3d",
    mlp_depth: int = 2,
    mlp_hidden_dim: int = 64,
    mlp_output_dim: int = 32,
    fv_feat_res: int = 32,
    r1_gamma: float = 1.5,
) -> Recipe:
    """The ablation recipe: ``variant`` ``'ffhq256'`` (default, Carver's demo) or ``'synthetic'``
    (CPU-sized, the EG3D ``synthetic`` sizes); the options are Carver's (see :data:`cli_options`).

    Example:
        >>> recipe = ablation3d_recipe(ref_mode="volume", mlp_type="stylenerf")
        >>> recipe.modules["point_embedder"].name, recipe.modules["feature_decoder"].name
        ('position_encoded', 'stylenerf_mlp')
    """
    variant = variant or "ffhq256"
    if variant not in VARIANTS:
        raise ValueError(f"ablation3d has no variant {variant!r}; variants: {', '.join(VARIANTS)}")
    if ref_mode not in REF_MODES:
        raise ValueError(f"ablation3d: ref_mode must be one of {', '.join(REF_MODES)}, got {ref_mode!r}")
    if mlp_type not in MLP_TYPES:
        raise ValueError(f"ablation3d: mlp_type must be one of {', '.join(MLP_TYPES)}, got {mlp_type!r}")
    if mlp_type == "eg3d" and mlp_depth != 2:
        raise ValueError(f"ablation3d: mlp_type 'eg3d' is EG3D's OSG decoder, which has exactly 2 layers; got "
                         f"mlp_depth={mlp_depth} (use mlp_depth=2, or mlp_type='stylenerf' for a deeper MLP)")
    for name, value in (("mlp_depth", mlp_depth), ("mlp_hidden_dim", mlp_hidden_dim),
                        ("mlp_output_dim", mlp_output_dim), ("fv_feat_res", fv_feat_res)):
        if value <= 0:
            raise ValueError(f"ablation3d: {name} must be positive, got {value}")
    if mlp_output_dim < 3:
        raise ValueError(f"ablation3d: mlp_output_dim must be >= 3 (the first three channels are RGB), "
                         f"got {mlp_output_dim}")

    if variant == "synthetic":
        recipe = eg3d_recipe("synthetic")
        sizes = {"triplane_resolution": 32,
                 "triplane_channels": 8, "channel_base": 1024, "channel_max": 32,
                 "fv_init_res": FV_INIT_RES, "fv_base_channels": 16, "fv_output_channels": 8}
        image_resolution = recipe.modules["upsampler"].kwargs["image_resolution"]
    else:
        recipe = eg3d_recipe("ffhq512")
        sizes = {"triplane_resolution": 256, "triplane_channels": 32, "channel_base": 32768,
                 "channel_max": 512, "fv_init_res": FV_INIT_RES, "fv_base_channels": FV_BASE_CHANNELS,
                 "fv_output_channels": FV_OUTPUT_CHANNELS}
        image_resolution = IMAGE_RESOLUTION
        # Carver's demo: one run at render resolution 64 for 25M images, batch 4 x 8 GPUs.
        recipe.training.update(stages=[], total_kimg=TOTAL_KIMG, batch_size=BATCH)
        recipe.modules["upsampler"].kwargs["image_resolution"] = image_resolution
        recipe.modules["discriminator"].kwargs["img_resolution"] = image_resolution

    m = recipe.modules
    # The embedder's output channels, the latent width and the latent rows are wired by the generator: the
    # decoder's rows follow the embedder's (Carver broadcasts one w to every layer, and so does the
    # stylegan2 mapper here, so the split changes no image).
    m["point_embedder"] = _embedder(ref_mode, use_positional_encoding, fv_feat_res, sizes)
    if mlp_type == "eg3d":
        m["feature_decoder"] = ModuleSpec("eg3d_osg", {"hidden_dim": mlp_hidden_dim, "output_dim": mlp_output_dim,
                                                       "lr_multiplier": 1.0})
    else:
        m["feature_decoder"] = ModuleSpec("stylenerf_mlp", {
            "hidden_dim": mlp_hidden_dim, "depth": mlp_depth, "output_dim": mlp_output_dim, "predict_rgb": False,
        })
    m["loss"].kwargs["r1_gamma"] = float(r1_gamma)
    # The data are read as EG3D reads them (Carver's ablation3d uses its EG3D data set and pose sampler).
    return Recipe("ablation3d", m, recipe.generator, recipe.training, variant, data=recipe.data)


ablation3d_recipe.cli_options = [
    {"name": "--ref_mode", "type": "str", "default": "triplane", "choices": list(REF_MODES),
     "help": "point embedder: raw coordinates, a feature volume or a tri-plane (Carver --ref_mode)"},
    {"name": "--use_positional_encoding", "type": "bool", "default": True,
     "help": "prepend sin/cos(2^k pi p), k < 10, to the point features (Carver default: on)"},
    {"name": "--mlp_type", "type": "str", "default": "eg3d", "choices": list(MLP_TYPES),
     "help": "feature decoder: EG3D's OSG MLP or StyleNeRF's modulated MLP"},
    {"name": "--mlp_depth", "type": "int", "default": 2, "help": "MLP layers (eg3d: 2 only)"},
    {"name": "--mlp_hidden_dim", "type": "int", "default": 64, "help": "MLP width"},
    {"name": "--mlp_output_dim", "type": "int", "default": 32, "help": "feature channels (first three RGB)"},
    {"name": "--fv_feat_res", "type": "int", "default": 32, "help": "feature-volume side (ref_mode volume)"},
    {"name": "--r1_gamma", "type": "float", "default": 1.5,
     "help": "R1 weight (Carver's demo 1.5; its config default is 10)"},
]
