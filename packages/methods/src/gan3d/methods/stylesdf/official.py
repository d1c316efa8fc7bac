"""StyleSDF's released checkpoints (royorel/StyleSDF ``download_models.py``: ``full_models/ffhq1024x1024.pt``,
``afhq512x512.pt``, ``pretrained_renderer/ffhq_vol_renderer.pt``, ...) as gan3d checkpoints.

The training scripts save ``torch.save({'g': ..., 'd': ..., 'g_ema': ...})`` of state dicts (the
released files may hold ``g_ema`` alone); it is read with the restricted unpickler (plain tensors
only). Everything the network's sizes need is in the shapes: the style size, the SIREN's depth and
width, and, for a full-pipeline file, the decoder's input and output resolutions and channel
multiplier. The data set (pose spread, R1 weight) is the variant's (``--variant ffhq_full`` ...);
without one, a 512-px decoder means AFHQ and anything else FFHQ.

State-dict map (official -> gan3d ``stylesdf``):

==============================================  ===========================================
``style.N.*``                                   ``mapper.layers.N.*``
``renderer.network.pts_linears.I.{weight,bias}`` ``decoder.layers.I.linear.*``
``renderer.network.pts_linears.I.{gamma,beta}.*`` ``decoder.layers.I.{gamma,beta}.*``
``renderer.network.views_linears.*``            ``decoder.view_layer.(linear.)*``
``renderer.network.{rgb,sigma}_linear.*``       ``decoder.{rgb,sdf}_head.*``
``renderer.sigmoid_beta``                       ``renderer.sigmoid_beta``
``decoder.style.{1..5}.*`` (0 is PixelNorm)     ``upsampler.mapping.fc{0..4}.*``
``decoder.conv1`` / ``decoder.to_rgb1``         ``upsampler.conv_in`` / ``upsampler.torgb_in``
``decoder.convs.{2k,2k+1}``, ``to_rgbs.k``      ``upsampler.b<res>.{conv0,conv1,torgb}``
  ``conv.weight [1, O, I, k, k]``                 ``weight [O, I, k, k]``
  ``conv.modulation.*``                           ``affine.*``
  ``activate.bias`` / ``noise.weight [1]``        ``bias`` / ``noise_strength []``
  ``bias`` of a ToRGB ``[1, 3, 1, 1]``            ``bias [3]``
  ``bias`` of a StyledConv                        (dropped: StyledConv.forward never reads it)
``decoder.noises.noise_i [1, 1, H, W]``         ``noise_const [H, W]`` of the i-th styled conv
blur kernels (constant)                         (ours: the layers' own ``resample_filter``)
==============================================  ===========================================

The full-pipeline discriminator (rosinality's ``Discriminator``) maps onto ``stylesdf_image``'s
StyleGAN2 blocks (``convs.0`` -> ``b<size>.fromrgb``, ``convs.k.{conv1,conv2,skip}`` ->
``b<res>.{conv0,conv1,skip}``, ``final_conv`` -> ``b4.conv``, ``final_linear.{0,1}`` ->
``b4.{fc,out}``), the volume stage's ``VolumeRenderDiscriminator`` onto ``stylesdf_volume``.
"""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path

import torch
from torch import Tensor

from gan3d.core.checkpoint import CheckpointError
from gan3d.core.official import KnownClasses, load_pickled
from gan3d.core.official.importer import ImportedCheckpoint, OfficialImporter, file_sha256, rename_keys
from gan3d.core.recipe import Recipe

from .recipe import DATASETS, stylesdf_recipe

__all__ = ["StyleSDFImporter", "RENDERER_RENAMES"]

logger = logging.getLogger(__name__)

#: The volume renderer and its mapping network (first match wins).
RENDERER_RENAMES: list[tuple[str, str | None]] = [
    (r"style\.(\d+)\.(weight|bias)", r"mapper.layers.\1.\2"),
    (r"renderer\.sigmoid_beta", r"renderer.sigmoid_beta"),
    (r"renderer\.network\.pts_linears\.(\d+)\.(weight|bias)", r"decoder.layers.\1.linear.\2"),
    (r"renderer\.network\.pts_linears\.(\d+)\.(gamma|beta)\.(weight|bias)", r"decoder.layers.\1.\2.\3"),
    (r"renderer\.network\.views_linears\.(weight|bias)", r"decoder.view_layer.linear.\1"),
    (r"renderer\.network\.views_linears\.(gamma|beta)\.(weight|bias)", r"decoder.view_layer.\1.\2"),
    (r"renderer\.network\.rgb_linear\.(weight|bias)", r"decoder.rgb_head.\1"),
    (r"renderer\.network\.sigma_linear\.(weight|bias)", r"decoder.sdf_head.\1"),
]


def _count(state: dict[str, Tensor], pattern: str) -> int:
    regex = re.compile(pattern)
    return len({m.group(1) for k in state if (m := regex.fullmatch(k))})


def _styled(state: dict[str, Tensor], src: str, dst: str, noise: Tensor | None) -> dict[str, Tensor]:
    """One rosinality StyledConv (or ToRGB, ``noise=None``) -> our SynthesisLayer (ToRGBLayer)."""
    out = {
        f"{dst}.weight": state[f"{src}.conv.weight"][0],
        f"{dst}.affine.weight": state[f"{src}.conv.modulation.weight"],
        f"{dst}.affine.bias": state[f"{src}.conv.modulation.bias"],
    }
    if noise is None:  # ToRGB: bias [1, 3, 1, 1]
        out[f"{dst}.bias"] = state[f"{src}.bias"].flatten()
    else:  # StyledConv: its own bias [1, O, 1, 1] is never used; FusedLeakyReLU's is
        out[f"{dst}.bias"] = state[f"{src}.activate.bias"]
        out[f"{dst}.noise_strength"] = state[f"{src}.noise.weight"].reshape(())
        out[f"{dst}.noise_const"] = noise[0, 0]
    return out


def decoder_state(state: dict[str, Tensor], in_res: int) -> dict[str, Tensor]:
    """The official ``decoder.*`` (rosinality StyleGAN2) entries as our ``upsampler.*``."""
    d = {k[len("decoder."):]: v for k, v in state.items() if k.startswith("decoder.")}
    out: dict[str, Tensor] = {}
    for i in range(1, _count(d, r"style\.(\d+)\.weight") + 1):
        out[f"upsampler.mapping.fc{i - 1}.weight"] = d[f"style.{i}.weight"]
        out[f"upsampler.mapping.fc{i - 1}.bias"] = d[f"style.{i}.bias"]
    out.update(_styled(d, "conv1", "upsampler.conv_in", d["noises.noise_0"]))
    out.update(_styled(d, "to_rgb1", "upsampler.torgb_in", None))
    for k in range(_count(d, r"to_rgbs\.(\d+)\.conv\.weight")):
        res = in_res * 2 ** (k + 1)
        out.update(_styled(d, f"convs.{2 * k}", f"upsampler.b{res}.conv0", d[f"noises.noise_{2 * k + 1}"]))
        out.update(_styled(d, f"convs.{2 * k + 1}", f"upsampler.b{res}.conv1", d[f"noises.noise_{2 * k + 2}"]))
        out.update(_styled(d, f"to_rgbs.{k}", f"upsampler.b{res}.torgb", None))
    return out


def _image_discriminator_state(state: dict[str, Tensor], size: int) -> dict[str, Tensor]:
    """rosinality's ``Discriminator`` -> ``stylesdf_image`` (core's StyleGAN2 discriminator)."""
    out = {f"network.b{size}.fromrgb.weight": state["convs.0.0.weight"],
           f"network.b{size}.fromrgb.bias": state["convs.0.1.bias"]}
    for k in range(1, _count(state, r"convs\.(\d+)\.conv1\.0\.weight") + 1):
        res = size // 2 ** (k - 1)
        out[f"network.b{res}.conv0.weight"] = state[f"convs.{k}.conv1.0.weight"]
        out[f"network.b{res}.conv0.bias"] = state[f"convs.{k}.conv1.1.bias"]
        out[f"network.b{res}.conv1.weight"] = state[f"convs.{k}.conv2.1.weight"]
        out[f"network.b{res}.conv1.bias"] = state[f"convs.{k}.conv2.2.bias"]
        out[f"network.b{res}.skip.weight"] = state[f"convs.{k}.skip.1.weight"]
    for ours, theirs in (("conv", "final_conv.0"), ("fc", "final_linear.0"), ("out", "final_linear.1")):
        out[f"network.b4.{ours}.weight"] = state[f"{theirs}.weight"]
    out["network.b4.conv.bias"] = state["final_conv.1.bias"]  # ConvLayer's FusedLeakyReLU
    out["network.b4.fc.bias"] = state["final_linear.0.bias"]
    out["network.b4.out.bias"] = state["final_linear.1.bias"]
    return out


def _volume_discriminator_state(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """``VolumeRenderDiscriminator`` -> ``stylesdf_volume``: ``convs.0`` (1x1 conv, FusedLeakyReLU with
    scale 1 holding the bias) -> ``from_rgb.0``; ``convs.k`` (k >= 1: two CoordConvLayers and a 1x1
    skip) -> ``blocks.{k-1}``; ``final_conv`` -> ``head``."""
    out = {"from_rgb.0.weight": state["convs.0.conv.weight"], "from_rgb.0.bias": state["convs.0.activation.bias"],
           "head.weight": state["final_conv.conv.weight"], "head.bias": state["final_conv.conv.bias"]}
    for k in range(1, _count(state, r"convs\.(\d+)\.conv1\.conv\.conv\.weight") + 1):
        for conv, index in (("conv1", 0), ("conv2", 2)):
            out[f"blocks.{k - 1}.residual.{index}.conv.weight"] = state[f"convs.{k}.{conv}.conv.conv.weight"]
            out[f"blocks.{k - 1}.residual.{index}.conv.bias"] = state[f"convs.{k}.{conv}.activation.bias"]
        if f"convs.{k}.skip.conv.weight" in state:
            out[f"blocks.{k - 1}.skip.weight"] = state[f"convs.{k}.skip.conv.weight"]
            out[f"blocks.{k - 1}.skip.bias"] = state[f"convs.{k}.skip.conv.bias"]
    return out


def _volume_discriminator_options(state: dict[str, Tensor]) -> dict[str, object]:
    """``stylesdf_volume`` widths and pose head from a VolumeRenderDiscriminator state dict."""
    blocks = _count(state, r"convs\.(\d+)\.conv1\.conv\.conv\.weight")
    channels = [int(state["convs.0.conv.weight"].shape[0])]
    channels += [int(state[f"convs.{k}.conv1.conv.conv.weight"].shape[0]) for k in range(1, blocks + 1)]
    return {"channels": channels, "pose_dim": int(state["final_conv.conv.weight"].shape[0]) - 1}


def _recipe(state: dict[str, Tensor], variant: str | None, source: str) -> Recipe:
    full = any(k.startswith("decoder.") for k in state)
    style_dim = int(state["style.0.weight"].shape[1])
    width = int(state["renderer.network.pts_linears.0.weight"].shape[0])
    depth = _count(state, r"renderer\.network\.pts_linears\.(\d+)\.weight")
    size = in_res = multiplier = None
    if full:
        in_res = int(state["decoder.noises.noise_0"].shape[-1])
        size = in_res * 2 ** _count(state, r"decoder\.to_rgbs\.(\d+)\.conv\.weight")
        channels = int(state["decoder.conv1.conv.weight"].shape[1])
        multiplier = max(1, channels * in_res // 16384) if in_res >= 64 else 2
    if variant is None:
        dataset = "afhq" if size == 512 else "ffhq"
        variant = f"{dataset}_{'full' if full else 'volume'}"
        logger.info("StyleSDF variant: %s (from the decoder's size; --variant overrides)", variant)
    stage = variant.partition("_")[2]
    if stage not in ("full", "volume") or variant.partition("_")[0] not in DATASETS:
        raise CheckpointError(f"StyleSDF has no released variant {variant!r}; use ffhq_full, afhq_full, "
                              "ffhq_volume or afhq_volume")
    if (stage == "full") != full:
        raise CheckpointError(f"{source}: a {'full-pipeline' if full else 'volume-renderer'} checkpoint, but "
                              f"--variant {variant} is the {stage} stage")
    recipe = stylesdf_recipe(variant)
    m = recipe.modules
    m["stochasticity_mapper"].kwargs.update(z_dim=style_dim, num_layers=_count(state, r"style\.(\d+)\.weight"))
    m["feature_decoder"].kwargs.update(width=width, depth=depth, style_dim=style_dim)
    if full:
        up = m["upsampler"].kwargs
        up.update(in_channels=width, in_resolution=in_res, out_resolution=size, style_dim=style_dim,
                  mapping_layers=_count(state, r"decoder\.style\.(\d+)\.weight"), channel_multiplier=multiplier)
        m["stochasticity_mapper"].kwargs["num_ws"] = 2 * int(math.log2(size // in_res)) + 2
        recipe.generator["render_resolution"] = in_res
        # rosinality's channels table is StyleGAN2's channel_base = 16384 x channel_multiplier.
        m["discriminator"].kwargs.update(resolution=size, channel_base=16384 * multiplier)
    return recipe


class StyleSDFImporter(OfficialImporter):
    """royorel/StyleSDF ``*.pt`` files (``{'g', 'd', 'g_ema'}`` state dicts) -> gan3d ``stylesdf``."""

    method = "stylesdf"
    formats = "StyleSDF .pt (torch.save of {'g', 'd', 'g_ema'} state dicts; full pipeline or volume renderer)"
    repository = "royorel/StyleSDF"

    def load(self, path: Path, *, variant: str | None = None) -> ImportedCheckpoint:
        from gan3d.core.generator import build_generator, build_module

        path = Path(path)
        source = str(path)
        data = load_pickled(path, KnownClasses(), what="a StyleSDF checkpoint")
        if not isinstance(data, dict) or not any(k in data for k in ("g_ema", "g")):
            raise CheckpointError(f"{source}: not a StyleSDF checkpoint (no 'g_ema' or 'g' state dict)")
        reference = data.get("g_ema") or data["g"]
        if "style.0.weight" not in reference:
            raise CheckpointError(f"{source}: 'g_ema' is not a StyleSDF Generator state dict (no style.0.weight)")
        recipe = _recipe(reference, variant, source)
        G = build_generator(recipe)
        ours = G.state_dict()
        constants = {k: v for k, v in ours.items() if k.endswith("resample_filter")}
        in_res = recipe.generator["render_resolution"]

        def convert(state: dict[str, Tensor]) -> dict[str, Tensor]:
            renderer = rename_keys({k: v for k, v in state.items() if not k.startswith("decoder.")}, RENDERER_RENAMES)
            decoder = decoder_state(state, in_res) if "upsampler.mapping.fc0.weight" in ours else {}
            # w_avg is StyleSDF's mean_latent, estimated from draws at inference: ours re-estimates it.
            mapper = build_module(recipe, "stochasticity_mapper")
            mapper.load_state_dict({k[len("mapper."):]: v for k, v in renderer.items() if k.startswith("mapper.")}
                                   | {"w_avg": mapper.w_avg}, strict=True)
            z = torch.randn(10000, mapper.z_dim, generator=torch.Generator().manual_seed(0))
            with torch.no_grad():
                w_avg = mapper(z)[:, 0].mean(0)
            return {**renderer, **decoder, **constants, "mapper.w_avg": w_avg}

        states = {k: convert(data[k]) for k in ("g", "g_ema") if isinstance(data.get(k), dict)}
        D = None
        d = data.get("d")
        kind = recipe.modules["discriminator"].name if "discriminator" in recipe.modules else None
        if isinstance(d, dict) and kind == "stylesdf_image" and "convs.0.0.weight" in d:
            D = _image_discriminator_state(d, recipe.modules["upsampler"].kwargs["out_resolution"])
            built = build_module(recipe, "discriminator").state_dict()
            D.update({k: v for k, v in built.items() if k.endswith("resample_filter")})
        elif isinstance(d, dict) and kind == "stylesdf_volume" and "convs.0.conv.weight" in d:
            recipe.modules["discriminator"].kwargs.update(_volume_discriminator_options(d))
            D = _volume_discriminator_state(d)
        elif isinstance(d, dict):
            logger.warning("%s: its discriminator does not fit the %s stage's; not imported", source, recipe.variant)
        meta = {"source": source, "sha256": file_sha256(path), "official": self.repository,
                "entries": sorted(k for k in data if isinstance(data[k], dict)),
                "dropped": ["StyledConv.bias (unused by its forward)", "blur kernels (constant)"],
                "w_avg": "re-estimated from 10000 draws of z (seed 0), as mean_latent does"}
        return ImportedCheckpoint(recipe=recipe, G=states.get("g", states.get("g_ema")), G_ema=states.get("g_ema"),
                                  D=D, meta=meta)
