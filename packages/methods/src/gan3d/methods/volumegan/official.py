"""genforce/volumegan's checkpoints as gan3d checkpoints, and the official -> gan3d state-dict names.

The official runner saves ``torch.save`` of a dict (``runners/base_runner.py`` ``BaseRunner.save``):
``models`` holds the ``generator``, ``discriminator`` and ``generator_smooth`` (the moving average)
state dicts, ``model_kwargs_init`` the networks' constructor arguments (``easydict.EasyDict``; the
official ``render.py`` and ``test_metrics.py`` rebuild the generator from them), plus optimizer, loss
and running states that are not read here. The released ``volumegan_ffhq256.pth`` is such a file.
:class:`VolumeGANImporter` reads it with the restricted unpickler (plain tensors and ``EasyDict``
containers only), builds the recipe from ``model_kwargs_init`` (sizes, cameras, ray range, sample
counts) and renames the weights.

The official ``VolumeGANGenerator`` and ``VolumeGANDiscriminator`` (``models/volumegan_generator.py``,
``models/volumegan_discriminator.py``) map onto gan3d's modules by renames only; no tensor changes
except the noise buffers' shape (``[1, 1, r, r]`` -> ``[r, r]``):
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

import logging
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import Tensor

from gan3d.core.checkpoint import CheckpointError
from gan3d.core.official import KnownClasses, load_pickled
from gan3d.core.official.importer import ImportedCheckpoint, OfficialImporter, file_sha256
from gan3d.core.recipe import Recipe

from .recipe import FFHQ_BOUNDS, VARIANTS, volumegan_recipe

__all__ = ["VolumeGANImporter", "KNOWN_CLASSES", "recipe_from_kwargs", "convert_official_state_dict",
           "generator_key", "discriminator_key"]

logger = logging.getLogger(__name__)

#: The only class a runner checkpoint names besides tensors and plain containers: its settings' container.
KNOWN_CLASSES = KnownClasses(dicts={"easydict.EasyDict"})


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


# ---------------------------------------------------------------------------------------- the importer
#: ``VolumeGANGenerator.__init__`` / ``NeRFSynthesisNetwork`` / ``VolumeGANDiscriminator.__init__`` defaults
#: of the options the recipe reads, for checkpoints whose kwargs leave them out.
_G_DEFAULTS: dict[str, Any] = {
    "z_dim": 512, "w_dim": 512, "repeat_w": True, "normalize_z": True, "mapping_layers": 8, "mapping_fmaps": 512,
    "mapping_lr_mul": 0.01, "label_size": 0, "nerf_res": 32, "image_channels": 3, "final_tanh": False,
    "demodulate": True, "noise_type": "spatial", "fmaps_base": 32 << 10, "fmaps_max": 512, "conv_clamp": None,
    "rgb_init_res_out": True, "bg_cfg": None, "out_dim": 512,
    "fv_cfg": {"feat_res": 32, "init_res": 4, "base_channels": 256, "output_channels": 32, "w_dim": 512},
    "embed_cfg": {"input_dim": 3, "max_freq_log2": 9, "N_freqs": 10},
    "fg_cfg": {"num_layers": 4, "hidden_dim": 256, "activation_type": "lrelu"},
    "ps_cfg": {}, "hs_cfg": {}, "vr_cfg": {},
}
_D_DEFAULTS: dict[str, Any] = {"init_res": 4, "image_channels": 3, "architecture": "resnet", "mbstd_groups": 4,
                               "mbstd_channels": 1, "fmaps_base": 32 << 10, "fmaps_max": 512, "conv_clamp": None,
                               "label_dim": 0}
#: ``points_sampling.py`` ``perturb_points`` modes -> the point sampler's ``perturbation``.
_PERTURBATIONS = {None: "stratified", "mid": "middle_uniform", "none": "none"}


def _require(condition: bool, source: str, what: str) -> None:
    if not condition:
        raise CheckpointError(f"{source}: {what}; gan3d's volumegan does not build such a network")


def recipe_from_kwargs(g_kwargs: Mapping[str, Any], d_kwargs: Mapping[str, Any] | None, *, variant: str | None = None,
                       source: str = "the checkpoint") -> Recipe:
    """The recipe of the networks the official constructor arguments describe (``model_kwargs_init``'s
    ``generator_smooth`` and ``discriminator``); the training schedule is the variant's (default
    ``ffhq256``). Raises :class:`CheckpointError` for official options gan3d does not implement."""
    g = {**_G_DEFAULTS, **dict(g_kwargs)}
    fv = {**_G_DEFAULTS["fv_cfg"], **dict(g["fv_cfg"] or {})}
    embed = {**_G_DEFAULTS["embed_cfg"], **dict(g["embed_cfg"] or {})}
    fg = {**_G_DEFAULTS["fg_cfg"], **dict(g["fg_cfg"] or {})}
    ps, hs, vr = dict(g["ps_cfg"] or {}), dict(g["hs_cfg"] or {}), dict(g["vr_cfg"] or {})
    _require(int(g.get("resolution", -1)) > 0, source, "model_kwargs_init gives no generator resolution")
    _require(int(g["label_size"]) == 0, source, f"a conditional generator (label_size {g['label_size']})")
    _require(g["bg_cfg"] is None, source, "a background field (bg_cfg)")
    _require(bool(g["repeat_w"]) and bool(g["normalize_z"]) and bool(g["demodulate"]) and not g["final_tanh"], source,
             "repeat_w, normalize_z and demodulate off or final_tanh on")
    _require(g["noise_type"] == "spatial" and int(g["image_channels"]) == 3, source,
             f"noise_type {g['noise_type']!r} or {g['image_channels']} image channels")
    _require(int(embed["input_dim"]) == 3 and float(embed["max_freq_log2"]) == int(embed["N_freqs"]) - 1
             and embed.get("log_sampling", True) and embed.get("include_input", True), source,
             f"a positional encoding other than 2^0 .. 2^(N - 1) with the input (embed_cfg {embed})")
    _require(fg["activation_type"] == "lrelu", source, f"a point MLP with {fg['activation_type']!r} activations")
    clamp = {hs.get("clamp_mode", "relu"), vr.get("clamp_mode", "relu")}
    _require(clamp <= {"relu", "softplus"} and len(clamp) == 1, source, f"density clamp modes {sorted(clamp)}")
    for key in ("last_back", "white_back", "render_mode", "fill_mode", "max_depth", "num_per_group"):
        _require(not vr.get(key) and not hs.get(key), source, f"renderer option {key}={vr.get(key, hs.get(key))!r}")
    dist = ps.get("camera_dist", "gaussian")
    _require(dist in ("gaussian", "normal"), source, f"camera_dist {dist!r} (gan3d reads 'gaussian')")
    _require(ps.get("perturb_mode") in _PERTURBATIONS, source, f"perturb_mode {ps.get('perturb_mode')!r}")
    nerf_res, resolution = int(g["nerf_res"]), int(g["resolution"])

    recipe = volumegan_recipe(variant or "ffhq256")
    m = recipe.modules
    m["stochasticity_mapper"].kwargs.update(
        z_dim=int(g["z_dim"]), w_dim=int(g["w_dim"]), num_layers=int(g["mapping_layers"]),
        lr_multiplier=float(g["mapping_lr_mul"]),
        layer_features=0 if int(g["mapping_fmaps"]) == int(g["w_dim"]) else int(g["mapping_fmaps"]))
    pose = m["pose_sampler"].kwargs
    pose.update(yaw_strategy="normal", polar_strategy="normal", fov=float(ps.get("fov", 12)), focal=0.0,
                yaw_mean=float(ps.get("horizontal_mean", math.pi / 2)),
                yaw_stddev=float(ps.get("horizontal_stddev", 0.3)),
                polar_mean=float(ps.get("vertical_mean", math.pi / 2)),
                polar_stddev=float(ps.get("vertical_stddev", 0.155)), radius=float(ps.get("radius", 1.0)))
    m["point_sampler"].kwargs.update(num_samples=int(ps.get("num_steps", 12)),
                                     ray_start=float(ps.get("ray_start", 0.8)), ray_end=float(ps.get("ray_end", 1.2)),
                                     perturbation=_PERTURBATIONS[ps.get("perturb_mode")], align_corners=True)
    bounds = fv.get("bounds", FFHQ_BOUNDS)
    m["point_embedder"].kwargs.update(
        feat_res=int(fv["feat_res"]), init_res=int(fv["init_res"]), base_channels=int(fv["base_channels"]),
        output_channels=int(fv["output_channels"]), bounds=[[float(v) for v in c] for c in bounds],
        num_frequencies=int(embed["N_freqs"]), include_input=True)
    _require(int(fv.get("w_dim", g["w_dim"])) == int(g["w_dim"]), source, "a feature volume with its own w_dim")
    m["feature_decoder"].kwargs.update(hidden_dim=int(fg["hidden_dim"]), num_layers=int(fg["num_layers"]),
                                       output_dim=int(g["out_dim"]))
    m["volume_renderer"].kwargs["density_activation"] = clamp.pop()
    conv_clamp = None if g["conv_clamp"] is None else float(g["conv_clamp"])
    m["upsampler"].kwargs.update(in_resolution=nerf_res, out_resolution=resolution, channel_base=int(g["fmaps_base"]),
                                 channel_max=int(g["fmaps_max"]), conv_clamp=conv_clamp,
                                 rgb_init_res_out=bool(g["rgb_init_res_out"]))
    recipe.generator.update(render_resolution=nerf_res, num_importance=int(ps.get("num_steps", 12)))
    disc = m["discriminator"].kwargs
    disc["init_lod"] = math.log2(resolution // nerf_res)
    disc["img_resolution"] = resolution
    if d_kwargs is not None:
        d = {**_D_DEFAULTS, **dict(d_kwargs)}
        _require(d["architecture"] == "resnet" and int(d["init_res"]) == 4 and int(d["label_dim"]) == 0
                 and int(d["image_channels"]) == 3, source,
                 f"a discriminator with architecture {d['architecture']!r}, init_res {d['init_res']}, label_dim "
                 f"{d['label_dim']}")
        _require(int(d.get("resolution", resolution)) == resolution, source,
                 "a discriminator at another resolution than the generator's")
        disc.update(channel_base=int(d["fmaps_base"]), channel_max=int(d["fmaps_max"]),
                    conv_clamp=None if d["conv_clamp"] is None else float(d["conv_clamp"]),
                    mbstd_group_size=int(d["mbstd_groups"]), mbstd_num_channels=int(d["mbstd_channels"]))
    return recipe


class VolumeGANImporter(OfficialImporter):
    """genforce/volumegan runner checkpoints (``volumegan_ffhq256.pth``) -> gan3d ``volumegan``."""

    method = "volumegan"
    formats = ("VolumeGAN .pth (torch.save of the runner's {'models': {generator, discriminator, generator_smooth}, "
               "'model_kwargs_init', ...})")
    repository = "genforce/volumegan"

    def load(self, path: Path, *, variant: str | None = None) -> ImportedCheckpoint:
        from gan3d.core.generator import build_generator, build_module

        path = Path(path)
        source = str(path)
        if variant is not None and variant not in VARIANTS:
            raise CheckpointError(f"volumegan has no variant {variant!r}; variants: {', '.join(VARIANTS)}")
        data = load_pickled(path, KNOWN_CLASSES, what="a VolumeGAN checkpoint")
        models = data.get("models") if isinstance(data, dict) else None
        if not isinstance(models, dict) or not any(isinstance(models.get(k), dict) for k in
                                                   ("generator_smooth", "generator")):
            raise CheckpointError(f"{source}: not a VolumeGAN runner checkpoint (no 'models' with a 'generator_smooth' "
                                  "or 'generator' state dict)")
        kwargs = data.get("model_kwargs_init") or {}
        g_kwargs = kwargs.get("generator_smooth") or kwargs.get("generator")
        if not isinstance(g_kwargs, dict):
            raise CheckpointError(f"{source}: no model_kwargs_init['generator_smooth'] (the generator's constructor "
                                  "arguments, which the official render.py needs too)")
        if g_kwargs.get("model_type", "VolumeGANGenerator") != "VolumeGANGenerator":
            raise CheckpointError(f"{source}: a {g_kwargs.get('model_type')} checkpoint, not VolumeGAN's")
        d_kwargs = kwargs.get("discriminator") if isinstance(models.get("discriminator"), dict) else None
        recipe = recipe_from_kwargs(g_kwargs, d_kwargs, variant=variant, source=source)
        G = build_generator(recipe)
        ours = G.state_dict()
        prefixes = G.slot_prefixes()
        nerf_res = recipe.generator["render_resolution"]
        resolution = recipe.modules["upsampler"].kwargs["out_resolution"]

        def convert(state: dict[str, Tensor]) -> dict[str, Tensor]:
            try:
                slots = convert_official_state_dict(state, nerf_resolution=nerf_res)
            except KeyError as exc:
                raise CheckpointError(f"{source}: {exc.args[0]}") from None
            out = {prefixes[slot] + name: value for slot, states in slots.items() for name, value in states.items()}
            # Constant low-pass filters are rebuilt, not stored.
            out.update({k: v for k, v in ours.items() if k.endswith("resample_filter")})
            return out

        states = {k: convert(models[k]) for k in ("generator", "generator_smooth") if isinstance(models.get(k), dict)}
        D = None
        if isinstance(models.get("discriminator"), dict):
            try:
                D = convert_official_state_dict(None, models["discriminator"],
                                                img_resolution=resolution)["discriminator"]
            except KeyError as exc:
                raise CheckpointError(f"{source}: {exc.args[0]}") from None
            built = build_module(recipe, "discriminator").state_dict()
            D.update({k: v for k, v in built.items() if k.endswith("resample_filter")})
        metadata = data.get("running_metadata") or {}
        meta = {"source": source, "sha256": file_sha256(path), "official": self.repository,
                "entries": sorted(k for k in data if isinstance(data[k], dict)),
                "dropped": ["filter buffers (constant, rebuilt)", "optimizer, loss and running states"],
                "seen_img": int(metadata.get("seen_img", 0)),
                "lod": float(states.get("generator_smooth", states.get("generator"))[prefixes["upsampler"] + "lod"])}
        return ImportedCheckpoint(recipe=recipe, G=states.get("generator", states.get("generator_smooth")),
                                  G_ema=states.get("generator_smooth"), D=D, meta=meta)
