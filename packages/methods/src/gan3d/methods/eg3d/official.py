"""EG3D's released network pickles (NVlabs/eg3d ``docs/models.md``: ``ffhq512-64.pkl``,
``ffhq512-128.pkl``, ``afhqcats512-128.pkl``, ``shapenetcars128-64.pkl``, ...) as gan3d checkpoints.

A network pickle is ``training_loop.py``'s ``snapshot_data``: ``{'training_set_kwargs', 'G', 'D',
'G_ema', 'augment_pipe'}``, the networks being ``torch_utils.persistence`` objects that embed the
source of their modules. It is read with the restricted unpickler (the embedded source is never
run); the recipe is the variant's, with every size and rendering option the pickle states (the
networks' ``_init_kwargs``, ``rendering_kwargs`` and ``neural_rendering_resolution``), so a
reduced-width network imports as well as a released one.

State-dict map (official ``TriPlaneGenerator`` -> gan3d ``eg3d`` generator):

==================================  =====================================  ==========================
official                            gan3d                                  note
==================================  =====================================  ==========================
``backbone.mapping.*``              ``mapper.network.*``
``backbone.synthesis.*``            ``embedder.backbone.*``                tri-plane StyleGAN2
``decoder.net.0.*``                 ``decoder.hidden.*``                   OSGDecoder
``decoder.net.2.*``                 ``decoder.output.*``
``superresolution.block0/1.*``      ``upsampler.block0/1.*``
``superresolution.resample_filter`` (dropped)                              unused by its forward
==================================  =====================================  ==========================

The ``DualDiscriminator``'s names are ours already (``b<res>.*``, ``mapping.*``, ``b4.*``,
``resample_filter``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from gan3d.core.checkpoint import CheckpointError
from gan3d.core.official import KnownClasses, OfficialObject, load_pickled, torch_nn
from gan3d.core.official.importer import (
    ImportedCheckpoint,
    OfficialImporter,
    file_sha256,
    network_pickle_nets,
    rename_keys,
)
from gan3d.core.recipe import Recipe

from .recipe import VARIANTS, eg3d_recipe, triplane_num_ws

__all__ = ["EG3DImporter", "KNOWN_CLASSES", "GENERATOR_RENAMES", "recipe_from_official"]

logger = logging.getLogger(__name__)

#: Every class an EG3D network pickle names: the ``@persistence.persistent_class`` classes of
#: training/*.py (by bare name, as ``_reconstruct_persistent_obj`` gives them) and the plain classes
#: pickled by reference (the renderer, ray sampler and ray marcher, OSGDecoder and its layers).
KNOWN_CLASSES = KnownClasses(
    objects={
        "training.triplane.OSGDecoder",
        "training.volumetric_rendering.renderer.ImportanceRenderer",
        "training.volumetric_rendering.ray_marcher.MipRayMarcher2",
        "training.volumetric_rendering.ray_sampler.RaySampler",
    } | torch_nn("Sequential", "Softplus"),
    dicts={"dnnlib.util.EasyDict"},
    persistent={
        "TriPlaneGenerator", "Generator", "MappingNetwork", "SynthesisNetwork", "SynthesisBlock",
        "SynthesisLayer", "ToRGBLayer", "FullyConnectedLayer", "Conv2dLayer", "SynthesisInput",
        "SuperresolutionHybrid2X", "SuperresolutionHybrid4X", "SuperresolutionHybrid8X",
        "SuperresolutionHybrid8XDC", "SuperresolutionHybridDeepfp32", "SynthesisBlockNoUp",
        "DualDiscriminator", "SingleDiscriminator", "DummyDualDiscriminator", "Discriminator",
        "DiscriminatorBlock", "DiscriminatorEpilogue", "MinibatchStdLayer", "AugmentPipe",
    },
)

#: official TriPlaneGenerator state-dict names -> ours (first match wins; None drops).
GENERATOR_RENAMES: list[tuple[str, str | None]] = [
    (r"backbone\.mapping\.(.*)", r"mapper.network.\1"),
    (r"backbone\.synthesis\.(.*)", r"embedder.backbone.\1"),
    (r"decoder\.net\.0\.(.*)", r"decoder.hidden.\1"),
    (r"decoder\.net\.2\.(.*)", r"decoder.output.\1"),
    (r"superresolution\.resample_filter", None),
    (r"superresolution\.(block[01]\..*)", r"upsampler.\1"),
]

#: train.py: the super-resolution module per output resolution (the only ones gan3d has).
SUPERRESOLUTION_MODULES = {
    128: "training.superresolution.SuperresolutionHybrid2X",
    256: "training.superresolution.SuperresolutionHybrid4X",
    512: "training.superresolution.SuperresolutionHybrid8XDC",
}

#: Options of the official constructors that only choose a speed path (fp16 layers, fused
#: modulated convolutions) and do not change the function on a CPU in float32.
_SPEED_ONLY = {"num_fp16_res", "fused_modconv_default", "sr_num_fp16_res"}


def _infer_variant(rendering: dict[str, Any], img_resolution: int) -> str:
    """The released configuration a generator's rendering options belong to (ffhq512, afhq512 or
    shapenet128), told apart by resolution, box and camera pivot (train.py ``--cfg``)."""
    for name, v in VARIANTS.items():
        if (v["image_resolution"] == img_resolution and float(rendering.get("box_warp", 0)) == v["box_warp"]
                and [float(x) for x in rendering.get("avg_camera_pivot", [])] == v["camera_pivot"]):
            return name
    return "shapenet128" if rendering.get("white_back") else "ffhq512"


def _check_known(options: dict[str, Any], known: set[str], what: str, source: str) -> None:
    unknown = sorted(set(options) - known)
    if unknown:
        raise CheckpointError(f"{source}: {what} has options gan3d does not reproduce: {', '.join(unknown)}")


def recipe_from_official(G: OfficialObject, D: OfficialObject | None, variant: str | None, source: str) -> Recipe:
    """The gan3d recipe of an official ``TriPlaneGenerator`` (and ``DualDiscriminator``) stand-in."""
    kw = dict(G.require("_init_kwargs"))
    args = G.get("_init_args") or ()
    if args:
        raise CheckpointError(f"{source}: TriPlaneGenerator was built with positional arguments; expected keywords")
    rendering = dict(G.get("rendering_kwargs") or kw.get("rendering_kwargs") or {})
    img_resolution = int(kw["img_resolution"])
    variant = variant or _infer_variant(rendering, img_resolution)
    recipe = eg3d_recipe(variant)
    m = recipe.modules

    if rendering.get("clamp_mode", "softplus") != "softplus":
        raise CheckpointError(f"{source}: clamp_mode {rendering['clamp_mode']!r}; EG3D's ray marcher supports "
                              "only 'softplus'")
    if rendering.get("ray_start") == "auto":
        raise CheckpointError(f"{source}: ray_start='auto' (rays clipped to the box) is not reproduced by gan3d")
    expected_sr = SUPERRESOLUTION_MODULES.get(img_resolution)
    if rendering.get("superresolution_module") != expected_sr:
        raise CheckpointError(f"{source}: super-resolution module {rendering.get('superresolution_module')!r} at "
                              f"{img_resolution} px; gan3d has the released ones: {SUPERRESOLUTION_MODULES}")
    if rendering.get("reg_type", "l1") != "l1":
        raise CheckpointError(f"{source}: density regularization {rendering['reg_type']!r}; gan3d has 'l1'")
    mapping = dict(kw.get("mapping_kwargs") or {})
    _check_known(mapping, {"num_layers", "embed_features", "layer_features", "lr_multiplier", "w_avg_beta",
                           "activation"}, "mapping_kwargs", source)
    if mapping.get("activation", "lrelu") != "lrelu":
        raise CheckpointError(f"{source}: mapping activation {mapping['activation']!r}; gan3d has 'lrelu'")
    synthesis = {k: v for k, v in kw.items() if k not in (
        "z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs", "rendering_kwargs",
        "sr_kwargs", "sr_num_fp16_res")}
    _check_known(synthesis, {"channel_base", "channel_max", "conv_clamp"} | _SPEED_ONLY, "the synthesis network",
                 source)
    if int(kw.get("img_channels", 3)) != 3:
        raise CheckpointError(f"{source}: img_channels {kw['img_channels']}; gan3d renders RGB")

    w_dim = int(kw["w_dim"])
    m["stochasticity_mapper"].kwargs.update(
        z_dim=int(kw["z_dim"]), c_dim=int(kw["c_dim"]), w_dim=w_dim, num_ws=triplane_num_ws(256),
        num_layers=int(mapping.get("num_layers", 8)), lr_multiplier=float(mapping.get("lr_multiplier", 0.01)),
        w_avg_beta=float(mapping.get("w_avg_beta", 0.998)),
        embed_features=int(mapping.get("embed_features") or 0), layer_features=int(mapping.get("layer_features") or 0),
        # triplane.py mapping(): c * rendering_kwargs.get('c_scale', 0), zeros with c_gen_conditioning_zero.
        c_scale=float(rendering.get("c_scale", 0.0)),
        zero_condition=bool(rendering.get("c_gen_conditioning_zero", False)),
    )
    m["pose_sampler"].kwargs.update(orbit_center=[float(x) for x in rendering.get("avg_camera_pivot", [0, 0, 0])])
    m["point_sampler"].kwargs.update(
        num_samples=int(rendering["depth_resolution"]), ray_start=float(rendering["ray_start"]),
        ray_end=float(rendering["ray_end"]),
        disparity_space_sampling=bool(rendering.get("disparity_space_sampling", False)))
    m["point_embedder"].kwargs.update(
        resolution=256, channels=32, w_dim=w_dim, box_warp=float(rendering["box_warp"]),
        channel_base=int(kw.get("channel_base", 32768)), channel_max=int(kw.get("channel_max", 512)),
        conv_clamp=None if kw.get("conv_clamp") is None else float(kw["conv_clamp"]))
    m["feature_decoder"].kwargs.update(in_channels=32, hidden_dim=64, output_dim=32,
                                       lr_multiplier=float(rendering.get("decoder_lr_mul", 1.0)))
    m["volume_renderer"].kwargs.update(white_back=bool(rendering.get("white_back", False)),
                                       noise_std=float(rendering.get("density_noise", 0.0)))
    # superresolution.py: conv_clamp=256 when its layers run in fp16 (sr_num_fp16_res > 0).
    m["upsampler"].kwargs.update(
        image_resolution=img_resolution, in_channels=32, w_dim=w_dim, block0_channels=0, block1_channels=0,
        antialias=bool(rendering.get("sr_antialias", True)),
        noise_mode=str(rendering.get("superresolution_noise_mode", "none")),
        conv_clamp=256.0 if int(kw.get("sr_num_fp16_res", 0)) > 0 else 0.0)
    recipe.generator.update(num_importance=int(rendering.get("depth_resolution_importance", 0)),
                            render_resolution=int(G.get("neural_rendering_resolution", 64)))
    loss = m["loss"].kwargs
    loss.update(gen_pose_cond=not bool(rendering.get("c_gen_conditioning_zero", False)),
                gpc_reg_prob=float(rendering.get("gpc_reg_prob", loss["gpc_reg_prob"])),
                density_reg=float(rendering.get("density_reg", loss["density_reg"])),
                density_reg_p_dist=float(rendering.get("density_reg_p_dist", loss["density_reg_p_dist"])))
    if D is not None:
        dkw = dict(D.require("_init_kwargs"))
        _check_known(dkw, {"c_dim", "img_resolution", "img_channels", "architecture", "channel_base", "channel_max",
                           "num_fp16_res", "conv_clamp", "cmap_dim", "disc_c_noise", "block_kwargs", "mapping_kwargs",
                           "epilogue_kwargs"}, "DualDiscriminator", source)
        dmap = dict(dkw.get("mapping_kwargs") or {})
        depi = dict(dkw.get("epilogue_kwargs") or {})
        dblock = dict(dkw.get("block_kwargs") or {})
        _check_known(dmap, {"num_layers"}, "the discriminator's mapping_kwargs", source)
        _check_known(depi, {"mbstd_group_size", "mbstd_num_channels"}, "the discriminator's epilogue_kwargs", source)
        _check_known(dblock, {"freeze_layers"}, "the discriminator's block_kwargs", source)
        m["discriminator"].kwargs.update(
            c_dim=int(dkw.get("c_dim", 25)), img_resolution=int(dkw["img_resolution"]),
            img_channels=int(dkw.get("img_channels", 3)), architecture=str(dkw.get("architecture", "resnet")),
            channel_base=int(dkw.get("channel_base", 32768)), channel_max=int(dkw.get("channel_max", 512)),
            conv_clamp=float(dkw["conv_clamp"]) if dkw.get("conv_clamp") is not None else 0.0,
            cmap_dim=int(dkw.get("cmap_dim") or 0), mapping_num_layers=int(dmap.get("num_layers", 8)),
            mbstd_group_size=int(depi.get("mbstd_group_size", 4)),
            mbstd_num_channels=int(depi.get("mbstd_num_channels", 1)),
            freeze_layers=int(dblock.get("freeze_layers", 0)), disc_c_noise=float(dkw.get("disc_c_noise", 0.0)))
    return recipe


class EG3DImporter(OfficialImporter):
    """NVlabs/eg3d network pickles (``*.pkl``) -> gan3d ``eg3d`` checkpoints (G, G_ema and D)."""

    method = "eg3d"
    formats = "EG3D network pickle (*.pkl, training_loop.py snapshot: G, G_ema, D)"
    repository = "NVlabs/eg3d"

    def load(self, path: Path, *, variant: str | None = None) -> ImportedCheckpoint:
        path = Path(path)
        source = str(path)
        data = load_pickled(path, KNOWN_CLASSES, what="an EG3D network pickle")
        nets = network_pickle_nets(data, source, {"G": "TriPlaneGenerator", "G_ema": "TriPlaneGenerator",
                                                  "D": "DualDiscriminator"}, label="an EG3D")
        reference = nets.get("G_ema") or nets["G"]
        recipe = recipe_from_official(reference, nets.get("D"), variant, source)
        states = {k: rename_keys(v.state_dict(), GENERATOR_RENAMES) for k, v in nets.items() if k != "D"}
        meta = {
            "source": source, "sha256": file_sha256(path), "official": self.repository,
            "official_classes": {k: v.class_name for k, v in nets.items()},
            "dropped": ["superresolution.resample_filter (a constant [1,3,3,1] filter its forward does not use)"],
            "training_set_kwargs": {k: v for k, v in (data.get("training_set_kwargs") or {}).items()
                                    if isinstance(v, str | int | float | bool | type(None))},
        }
        return ImportedCheckpoint(
            recipe=recipe, G=states.get("G", states.get("G_ema")), G_ema=states.get("G_ema"),
            D=nets["D"].state_dict() if "D" in nets else None, meta=meta)
