"""Load genforce/volumegan's weights: official state-dict names -> gan3d's, per generator slot.

The official ``VolumeGANGenerator`` and ``VolumeGANDiscriminator`` (``models/volumegan_generator.py``,
``models/volumegan_discriminator.py``; their checkpoint ``volumegan_ffhq256.pth`` holds the state dicts
under ``generator``, ``generator_smooth`` and ``discriminator``) map onto gan3d's modules by renames
only; no tensor changes except the noise buffers' shape (``[1, 1, r, r]`` -> ``[r, r]``):

===========================================  =================================================
official                                     gan3d slot and name
===========================================  =================================================
``mapping.dense{i}.*``, ``w_avg``            stochasticity_mapper ``network.fc{i}.*``, ``network.w_avg``
``nerfmlp.fv.const``                         point_embedder ``network.const``
``nerfmlp.fv.layer{i}.*``                    point_embedder ``network.convs.{i}.*``
``nerfmlp.fv.mapping_network.*``             point_embedder ``network.style.*``
``nerfmlp.fg_mlps.{i}.style.*``              feature_decoder ``layers.{i}.affine.*``
``nerfmlp.fg_mlps.{i}.{weight,bias}``        feature_decoder ``layers.{i}.{weight,bias}``
``nerfmlp.fg_density.*``, ``fg_color.*``     feature_decoder ``density_head.*``, ``feature_head.*``
``synthesis.layer{2b-1}`` / ``{2b}``         upsampler ``b{res}.conv0`` / ``b{res}.conv1``
``synthesis.output{b}``                      upsampler ``b{res}.torgb``
``synthesis.rgb_init_res.*``                 upsampler ``torgb_init.*``
``synthesis.lod``                            upsampler ``lod``
``input{i}.*``                               discriminator ``fromrgb{res}.*``
``layer{2i}``, ``layer{2i+1}``, ``residual{i}``  discriminator ``b{res}.conv0``, ``conv1``, ``skip``
``layer{2n}``, ``layer{2n+1}``, ``output``   discriminator ``b4.conv``, ``b4.fc``, ``b4.out``
===========================================  =================================================

(inside StyleGAN2 layers ``style`` is our ``affine`` and ``noise`` our ``noise_const``; ``filter``
buffers are rebuilt, not loaded).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from torch import Tensor

__all__ = ["convert_official_state_dict", "generator_key", "discriminator_key"]


def _layer_tail(tail: str) -> str | None:
    """Names inside an official StyleGAN2 layer -> ours (``None``: a buffer we rebuild)."""
    if tail == "filter":
        return None
    if tail.startswith("style."):
        return "affine." + tail[len("style."):]
    if tail == "noise":
        return "noise_const"
    return tail


def generator_key(name: str, *, nerf_resolution: int = 32) -> tuple[str, str] | None:
    """``(slot, our name)`` for an official generator state-dict name, ``None`` for rebuilt buffers.

    ``nerf_resolution`` is the neural renderer's input side (``nerf_res``), which names its blocks.
    Raises ``KeyError`` for a name this converter does not know.
    """
    if name == "w_avg":
        return "stochasticity_mapper", "network.w_avg"
    if m := re.fullmatch(r"mapping\.dense(\d+)\.(weight|bias)", name):
        return "stochasticity_mapper", f"network.fc{m[1]}.{m[2]}"
    if name == "nerfmlp.fv.const":
        return "point_embedder", "network.const"
    if m := re.fullmatch(r"nerfmlp\.fv\.layer(\d+)\.(weight|bias)", name):
        return "point_embedder", f"network.convs.{m[1]}.{m[2]}"
    if m := re.fullmatch(r"nerfmlp\.fv\.mapping_network\.(weight|bias)", name):
        return "point_embedder", f"network.style.{m[1]}"
    if m := re.fullmatch(r"nerfmlp\.fg_mlps\.(\d+)\.(.+)", name):
        return "feature_decoder", f"layers.{m[1]}.{_layer_tail(m[2])}"
    if m := re.fullmatch(r"nerfmlp\.fg_(density|color)\.(weight|bias)", name):
        return "feature_decoder", f"{'density' if m[1] == 'density' else 'feature'}_head.{m[2]}"
    if name == "synthesis.lod":
        return "upsampler", "lod"
    if name == "synthesis.filter":
        return None
    if m := re.fullmatch(r"synthesis\.rgb_init_res\.(weight|bias)", name):
        return "upsampler", f"torgb_init.{m[1]}"
    if m := re.fullmatch(r"synthesis\.(layer|output)(\d+)\.(.+)", name):
        index = int(m[2])
        if m[1] == "output":
            block, layer = index, "torgb"
        else:
            block, layer = (index + 1) // 2, "conv0" if index % 2 else "conv1"
        tail = _layer_tail(m[3])
        return None if tail is None else ("upsampler", f"b{nerf_resolution << block}.{layer}.{tail}")
    raise KeyError(f"unknown official VolumeGAN generator parameter {name!r}")


def discriminator_key(name: str, *, img_resolution: int = 256) -> str | None:
    """Our discriminator name for an official one (``None``: a rebuilt buffer); ``KeyError`` if unknown."""
    num_blocks = int(math.log2(img_resolution)) - 2  # blocks at R .. 8, then the 4x4 epilogue
    if name in ("lod",):
        return name
    if name == "filter" or name.endswith(".filter"):
        return None
    if m := re.fullmatch(r"input(\d+)\.(weight|bias)", name):
        return f"fromrgb{img_resolution >> int(m[1])}.{m[2]}"
    if m := re.fullmatch(r"residual(\d+)\.weight", name):
        return f"b{img_resolution >> int(m[1])}.skip.weight"
    if m := re.fullmatch(r"layer(\d+)\.(weight|bias)", name):
        index = int(m[1])
        block = index // 2
        if block < num_blocks:
            return f"b{img_resolution >> block}.{'conv0' if index % 2 == 0 else 'conv1'}.{m[2]}"
        if index == 2 * num_blocks:
            return f"b4.conv.{m[2]}"
        if index == 2 * num_blocks + 1:
            return f"b4.fc.{m[2]}"
    if m := re.fullmatch(r"output\.(weight|bias)", name):
        return f"b4.out.{m[1]}"
    raise KeyError(f"unknown official VolumeGAN discriminator parameter {name!r}")


def convert_official_state_dict(
    generator: Mapping[str, Tensor] | None = None,
    discriminator: Mapping[str, Tensor] | None = None,
    *,
    nerf_resolution: int = 32,
    img_resolution: int = 256,
) -> dict[str, dict[str, Tensor]]:
    """Official state dicts -> ``{slot: state dict}`` for ``load_state_dict`` of each gan3d module
    (slots ``stochasticity_mapper``, ``point_embedder``, ``feature_decoder``, ``upsampler``,
    ``discriminator``). Pass ``generator_smooth`` as ``generator`` for the EMA weights.

    Example:
        >>> states = convert_official_state_dict({"nerfmlp.fv.const": torch.ones(1, 4, 2, 2, 2)})  # doctest: +SKIP
        >>> list(states["point_embedder"])                                                       # doctest: +SKIP
        ['network.const']
    """
    out: dict[str, dict[str, Tensor]] = {}
    for name, value in (generator or {}).items():
        target = generator_key(name, nerf_resolution=nerf_resolution)
        if target is None:
            continue
        slot, ours = target
        if ours.endswith("noise_const"):
            value = value.reshape(value.shape[-2:])
        out.setdefault(slot, {})[ours] = value
    for name, value in (discriminator or {}).items():
        ours = discriminator_key(name, img_resolution=img_resolution)
        if ours is not None:
            out.setdefault("discriminator", {})[ours] = value
    return out
