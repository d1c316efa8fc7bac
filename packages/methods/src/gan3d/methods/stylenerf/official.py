"""StyleNeRF's released network pickles (facebookresearch/StyleNeRF README: ``ffhq_256.pkl``, ``ffhq_512.pkl``,
``ffhq_1024.pkl`` of ``facebook/stylenerf-ffhq-config-basic``) as gan3d checkpoints.

A network pickle is ``training/training_loop.py``'s ``snapshot_data``: ``{'training_set_kwargs', 'G', 'D',
'G_ema', 'augment_pipe'}``, the networks being ``torch_utils.persistence`` objects that embed the source of
their modules (``training/networks.py``, ``training/stylenerf.py``). It is read with the restricted unpickler
(the embedded source is never run). The recipe is the variant's at the pickle's output size, with every size
and option the constructors were given (``G._init_kwargs``: ``mapping_kwargs``, ``synthesis_kwargs`` with its
``camera_kwargs``, ``renderer_kwargs``, ``foreground_kwargs``, ``background_kwargs``, ``upsampler_kwargs``;
``D._init_kwargs``), so a reduced-width network imports as well as a released one; options gan3d does not
reproduce (view directions, other density types, depth warps, the AFHQ/CompCars camera priors...) are refused
by name. A fully grown network (fade-in ``alpha`` 1, as every released one) imports with its fade-in over
(``fade_start_kimg = fade_end_kimg = 0``), so training on from it keeps the full resolution.

State-dict map (official ``Generator`` -> gan3d ``stylenerf``):

=====================================================  ===========================================  ==============
official                                               gan3d                                        note
=====================================================  ===========================================  ==============
``mapping.*``                                          ``mapper.network.*``
``synthesis.fg_nerf.*``                                ``decoder.*``                                 see *frame*
``synthesis.bg_nerf.*``                                ``groups.background.decoder.*``               see *frame*
``synthesis.{fg,bg}_nerf.{fc_in,blocks.N}.resample_filter``  (dropped)                                 unused by 1x1
``synthesis.b{res}.*``                                 ``upsampler.b{res}.*``
``synthesis.alpha``                                    ``upsampler.alpha``                           -1 (never
                                                                                                    faded) -> 1
``D.*``                                                ``D.*`` (``alpha`` dropped: its fade is dead code)
=====================================================  ===========================================  ==============

*Frame.* StyleNeRF's world is z-up with the front camera on +x (``dnnlib/camera.py``: ``to_sphere`` puts the
camera at ``(sin v cos u, sin v sin u, cos v)``, ``look_at`` with up +z); gan3d's is y-up with the front camera
on +z. The two are one rotation apart, gan3d ``(x, y, z)`` = official ``(y, z, x)`` (a cyclic permutation: no
axis changes sign), which maps the official cameras onto gan3d's ``spherical`` pose sampler's at yaw ``pi/2 +
u``, polar ``v`` and the images onto each other. The NeRF MLPs read world coordinates (positional encoding of
the foreground points; the unit vector of NeRF++'s background points), so their first layers' input channels
are permuted accordingly (and the modulated ``fc_in``'s style rows with them): the imported networks compute the
official function of the official scene, seen by gan3d's cameras.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

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

from .recipe import SPECS, stylenerf_recipe

__all__ = ["StyleNeRFImporter", "KNOWN_CLASSES", "GENERATOR_RENAMES", "recipe_from_official", "OFFICIAL_AXES"]

logger = logging.getLogger(__name__)

#: Every class a StyleNeRF network pickle names: the ``@persistence.persistent_class`` classes of
#: training/networks.py and training/stylenerf.py that the FFHQ model uses (by bare name, as
#: ``_reconstruct_persistent_obj`` gives them), and the containers pickled by reference.
KNOWN_CLASSES = KnownClasses(
    objects=torch_nn("Sequential", "ModuleList"),
    dicts={"dnnlib.util.EasyDict"},
    persistent={
        "Generator", "MappingNetwork", "FullyConnectedLayer", "Conv2dLayer", "SynthesisLayer", "ToRGBLayer",
        "SynthesisBlock", "NeRFSynthesisNetwork", "NeRFBlock", "Style2Layer", "CameraRay", "VolumeRenderer",
        "Upsampler", "Discriminator", "DiscriminatorBlock", "DiscriminatorEpilogue", "MinibatchStdLayer",
        "AugmentPipe",
    },
)

#: official Generator state-dict names -> ours (first match wins; None drops).
GENERATOR_RENAMES: list[tuple[str, str | None]] = [
    (r"mapping\.(.*)", r"mapper.network.\1"),
    # Style2Layer registers a [1, 3, 3, 1] filter it never uses with 1x1 kernels; to_rgb (a Conv2dLayer) keeps its own.
    (r"synthesis\.(fg|bg)_nerf\.(fc_in|blocks\.\d+)\.resample_filter", None),
    (r"synthesis\.fg_nerf\.(.*)", r"decoder.\1"),
    (r"synthesis\.bg_nerf\.(.*)", r"groups.background.decoder.\1"),
    (r"synthesis\.alpha", r"upsampler.alpha"),
    (r"synthesis\.(b\d+\..*)", r"upsampler.\1"),
]

#: For each gan3d world axis, the official one (gan3d (x, y, z) = official (y, z, x); see the module docstring).
OFFICIAL_AXES = (1, 2, 0)

#: The defaults of the official classes (training/stylenerf.py class attributes, at the importer's commit) for
#: options a pickle's constructor kwargs may leave out, and the values gan3d reproduces.
_CAMERA_DEFAULTS = {"gaussian_camera": False, "angular_camera": False, "intersect_ball": False, "fov": 49.13,
                    "bg_start": 1.0, "depth_transform": None, "dists_normalized": False, "random_rotate": False,
                    "ray_align_corner": True}
_RENDERER_DEFAULTS = {"n_ray_samples": 14, "n_bg_samples": 4, "n_final_samples": None, "sigma_type": "relu",
                      "hierarchical": True, "fine_only": False, "no_background": False, "white_background": False,
                      "mask_background": False, "pre_volume_size": None, "bound": None, "density_p_target": 1.0,
                      "tv_loss_weight": 0.0}
_NERF_DEFAULTS = {"hidden_size": 128, "n_blocks": 8, "use_skip": False, "use_viewdirs": False, "add_rgb": False,
                  "predict_rgb": False, "inverse_sphere": False, "merge_sigma_feat": False, "no_sigma": False,
                  "tcnn_backend": False, "use_normal": False, "use_sdf": None, "normalized_feat": False,
                  "final_sigmoid_act": False, "use_pos": False, "n_freq_posenc": 10, "downscale_p_by": 1,
                  "positional_encoding": "normal", "magnitude_ema_beta": -1, "disable_latents": False,
                  "skips": [], "shuffle_factor": 1}
_UPSAMPLER_DEFAULTS = {"no_2d_renderer": False, "no_residual_img": False, "block_reses": None,
                       "shared_rgb_style": False, "channel_base_sz": None, "channel_dict": None,
                       "out_channel_dict": None}
#: Options that change nothing gan3d computes: speed paths (fp16, batching), attributes nothing reads
#: (``use_style``, ``upsample_type``, ``abs_sigma``), the training-only regularization settings (read into the
#: objective), margins of zero.
_IGNORED = {"num_fp16_res", "max_batch_size", "implementation", "use_style", "upsample_type", "abs_sigma",
            "n_reg_samples", "reg_full", "no_bbox", "margin", "module_name", "progressive", "activation"}


def _refuse(source: str, what: str, value: Any, supported: str) -> CheckpointError:
    return CheckpointError(f"{source}: {what} is {value!r}; gan3d's StyleNeRF reproduces {supported}")


def _options(given: dict[str, Any] | None, defaults: dict[str, Any]) -> dict[str, Any]:
    return {**defaults, **dict(given or {})}


def _require(source: str, options: dict[str, Any], expected: dict[str, Any], what: str) -> None:
    for key, value in expected.items():
        got = options.get(key)
        if got != value and not (isinstance(value, list) and got in (None, []) and value == []):
            raise _refuse(source, f"{what}.{key}", got, repr(value))


def _channel_base(options: dict[str, Any]) -> int:
    """Upsampler.build_network / Discriminator: ``channel_base * 32768`` (or ``channel_base_sz``)."""
    if options.get("channel_base_sz") is not None:
        return int(options["channel_base_sz"])
    return int(float(options.get("channel_base", 1)) * 32768)


def recipe_from_official(G: OfficialObject, D: OfficialObject | None, variant: str | None, source: str) -> Recipe:
    """The gan3d recipe of an official StyleNeRF ``Generator`` (and ``Discriminator``) stand-in."""
    kw = dict(G.require("_init_kwargs"))
    if G.get("_init_args"):
        raise CheckpointError(f"{source}: the Generator was built with positional arguments; expected keywords")
    if int(kw.get("c_dim", 0)) != 0:
        raise _refuse(source, "the generator's c_dim", kw["c_dim"], "unconditional networks (c_dim 0, cond=False)")
    if kw.get("encoder_kwargs"):
        raise _refuse(source, "encoder_kwargs", "set", "networks without an image encoder")
    img_resolution = int(kw["img_resolution"])
    syn = dict(kw.get("synthesis_kwargs") or {})
    if syn.get("module_name") != "training.stylenerf.NeRFSynthesisNetwork":
        raise _refuse(source, "synthesis_kwargs.module_name", syn.get("module_name"),
                      "training.stylenerf.NeRFSynthesisNetwork")
    for key, value in (("kernel_size", 1), ("architecture", "skip"), ("use_noise", False), ("z_dim", 0),
                       ("prog_nerf_only", False), ("predict_camera", False), ("rectangular", None),
                       ("interp_steps", None), ("cam_based_sampler", False), ("freeze_nerf", False),
                       ("rgb_out_dim_bg", None), ("input_kwargs", {})):
        if (syn.get(key) or None) != (value or None):
            raise _refuse(source, f"synthesis_kwargs.{key}", syn.get(key), repr(value))
    unknown = set(syn) - _IGNORED - {
        "channel_base", "channel_max", "conv_clamp", "kernel_size", "architecture", "upsample_mode", "z_dim_bg",
        "z_dim", "resolution_vol", "resolution_start", "rgb_out_dim", "use_noise", "magnitude_ema_beta",
        "camera_kwargs", "renderer_kwargs", "foreground_kwargs", "background_kwargs", "upsampler_kwargs",
        "prog_nerf_only", "predict_camera", "rectangular", "interp_steps", "cam_based_sampler", "freeze_nerf",
        "rgb_out_dim_bg", "input_kwargs", "regularization"}
    if unknown:
        raise CheckpointError(f"{source}: synthesis_kwargs has options gan3d does not reproduce: {sorted(unknown)}")
    if syn.get("regularization"):
        raise _refuse(source, "synthesis_kwargs.regularization", syn["regularization"], "none")

    camera = _options(syn.get("camera_kwargs"), _CAMERA_DEFAULTS)
    _require(source, camera, {"gaussian_camera": True, "angular_camera": True, "intersect_ball": False,
                              "depth_transform": None, "dists_normalized": False, "random_rotate": False,
                              "ray_align_corner": False}, "camera_kwargs")
    renderer = _options(syn.get("renderer_kwargs"), _RENDERER_DEFAULTS)
    _require(source, renderer, {"n_final_samples": None, "sigma_type": "relu", "fine_only": False,
                                "no_background": False, "white_background": False, "mask_background": False,
                                "pre_volume_size": None, "density_p_target": 1.0, "tv_loss_weight": 0.0},
             "renderer_kwargs")
    fg = _options(syn.get("foreground_kwargs"), _NERF_DEFAULTS)
    bg = _options(syn.get("background_kwargs"), _NERF_DEFAULTS)
    plain = {"use_skip": False, "use_viewdirs": False, "add_rgb": False, "predict_rgb": True, "merge_sigma_feat": False,
             "no_sigma": False, "tcnn_backend": False, "use_normal": False, "use_sdf": None, "normalized_feat": False,
             "final_sigmoid_act": False, "use_pos": False, "downscale_p_by": 1, "positional_encoding": "normal",
             "magnitude_ema_beta": -1, "disable_latents": False, "skips": [], "shuffle_factor": 1}
    _require(source, fg, {**plain, "inverse_sphere": False}, "foreground_kwargs")
    _require(source, bg, {**plain, "inverse_sphere": True}, "background_kwargs")
    up = _options(syn.get("upsampler_kwargs"), _UPSAMPLER_DEFAULTS)
    _require(source, up, {"no_2d_renderer": False, "no_residual_img": False, "block_reses": None,
                          "shared_rgb_style": False, "channel_dict": None, "out_channel_dict": None},
             "upsampler_kwargs")
    resolution_vol = min(int(syn.get("resolution_vol", 32)), img_resolution)
    if int(syn.get("resolution_start") or resolution_vol) != resolution_vol:
        raise _refuse(source, "synthesis_kwargs.resolution_start", syn.get("resolution_start"),
                      f"the render resolution ({resolution_vol})")
    range_u, range_v, radius = camera.get("range_u"), camera.get("range_v"), camera.get("range_radius")
    if not (range_u and range_v and radius) or float(radius[0]) != float(radius[1]):
        raise _refuse(source, "camera_kwargs.range_radius", radius, "a fixed camera radius")
    upsample_mode = syn.get("upsample_mode", "default")
    if upsample_mode not in ("nn_cat", "pixelshuffle"):
        raise _refuse(source, "synthesis_kwargs.upsample_mode", upsample_mode, "'nn_cat' and 'pixelshuffle'")

    variant = variant or next((v for v, s in SPECS.items() if s["resolution"] == img_resolution), "ffhq256")
    recipe = stylenerf_recipe(variant)
    m = {slot: spec.kwargs for slot, spec in recipe.modules.items()}
    mapping = dict(kw.get("mapping_kwargs") or {})
    unknown = set(mapping) - {"num_layers", "lr_multiplier", "w_avg_beta", "embed_features", "layer_features",
                              "activation"}
    if unknown or mapping.get("activation", "lrelu") != "lrelu" or mapping.get("embed_features") or \
            mapping.get("layer_features"):
        raise CheckpointError(f"{source}: mapping_kwargs {mapping} has options gan3d does not reproduce")
    m["stochasticity_mapper"].update(z_dim=int(kw["z_dim"]), w_dim=int(kw["w_dim"]),
                                     num_layers=int(mapping.get("num_layers", 8)),
                                     lr_multiplier=float(mapping.get("lr_multiplier", 0.01)),
                                     w_avg_beta=float(mapping.get("w_avg_beta", 0.995)))
    # get_camera_pose_v2 with gaussian: u ~ mean(range_u) + half-range * N(0, 1), the same for v.
    m["pose_sampler"].update(
        yaw_mean=math.pi / 2 + sum(map(float, range_u)) / 2, yaw_stddev=(float(range_u[1]) - float(range_u[0])) / 2,
        polar_mean=sum(map(float, range_v)) / 2, polar_stddev=(float(range_v[1]) - float(range_v[0])) / 2,
        radius=float(radius[0]), fov=float(camera["fov"]), focal=0.0,
        # The official world, stated here rather than taken from the variant whose settings the rest comes from
        # (every variant has it now; the importer describes the network in the file): the cameras look at the
        # origin (camera.py look_at) and NeRF++'s background lies outside the unit sphere about it
        # (depth2pts_outside).
        pivot=[0.0, 0.0, 0.0], orbit_center=[0.0, 0.0, 0.0])
    m["background/point_sampler"].update(sphere_radius=1.0)
    m["background/point_embedder"].update(sphere_radius=1.0)
    depth_range = [float(x) for x in camera["depth_range"]]
    m["point_sampler"].update(num_samples=int(renderer["n_ray_samples"]), ray_start=depth_range[0],
                              ray_end=depth_range[1])
    m["point_embedder"].update(num_frequencies=int(fg["n_freq_posenc"]))
    features = int(syn.get("rgb_out_dim", 256))
    m["feature_decoder"].update(hidden_dim=int(fg["hidden_size"]), depth=int(fg["n_blocks"]), output_dim=features)
    m["background/point_sampler"].update(num_samples=int(renderer["n_bg_samples"]),
                                         inverse_radius_start=float(camera["bg_start"]))
    m["background/point_embedder"].update(num_frequencies=int(bg["n_freq_posenc"]),
                                          latent_dim=int(syn.get("z_dim_bg", 128)))
    m["background/feature_decoder"].update(hidden_dim=int(bg["hidden_size"]), depth=int(bg["n_blocks"]),
                                           output_dim=features)
    # NeRFSynthesisNetwork hands the upsampler its own channel_base and channel_max (upsampler_kwargs.update).
    m["upsampler"].update(in_resolution=resolution_vol, image_resolution=img_resolution,
                          channel_base=_channel_base({"channel_base": syn.get("channel_base", 1),
                                                      "channel_base_sz": up.get("channel_base_sz")}),
                          channel_max=int(syn.get("channel_max", 1024)), upsample_mode=upsample_mode,
                          magnitude_ema_beta=max(0.0, float(syn.get("magnitude_ema_beta", -1))),
                          conv_clamp=None if syn.get("conv_clamp") is None else float(syn["conv_clamp"]))
    recipe.generator.update(render_resolution=resolution_vol,
                            num_importance=int(renderer["n_ray_samples"]) if renderer["hierarchical"] else 0)
    m["loss"].update(nerf_path_grid=int(syn.get("n_reg_samples", 0)) if syn.get("reg_full") else 0)
    if D is not None:
        dkw = dict(D.require("_init_kwargs"))
        known = {"c_dim", "img_resolution", "img_channels", "architecture", "channel_base", "channel_max",
                 "num_fp16_res", "conv_clamp", "progressive", "lowres_head", "upsample_type", "resize_real_early",
                 "epilogue_kwargs", "block_kwargs", "mapping_kwargs", "cmap_dim"}
        unknown = set(dkw) - known
        if unknown or int(dkw.get("c_dim", 0)) != 0 or dkw.get("architecture") != "skip":
            raise CheckpointError(f"{source}: the Discriminator has options gan3d does not reproduce "
                                  f"({sorted(unknown) or dkw.get('architecture')}); gan3d has the unconditional "
                                  "'skip' discriminator of the FFHQ model")
        epilogue = dict(dkw.get("epilogue_kwargs") or {})
        m["discriminator"].update(img_resolution=int(dkw["img_resolution"]),
                                  lowres_head=int(dkw.get("lowres_head") or dkw["img_resolution"]),
                                  channel_base=_channel_base(dkw), channel_max=int(dkw.get("channel_max", 512)),
                                  conv_clamp=None if dkw.get("conv_clamp") is None else float(dkw["conv_clamp"]),
                                  mbstd_group_size=int(epilogue.get("mbstd_group_size", 4)),
                                  mbstd_num_channels=int(epilogue.get("mbstd_num_channels", 1)))
    return recipe


def _permute_coordinates(weight: Tensor, dim: int, coordinates: int, frequencies: int) -> Tensor:
    """Reorder the positional-encoding channels along ``dim`` from the official world axes to gan3d's: the
    layout is ``[sin, cos]`` per octave over ``coordinates`` channels (``dnnlib/geometry.py
    positional_encoding``), of which the first three are x, y, z; channels after the encoding stay."""
    index = []
    for octave in range(frequencies):
        for wave in range(2):
            base = (2 * octave + wave) * coordinates
            index += [base + (OFFICIAL_AXES[c] if c < 3 else c) for c in range(coordinates)]
    index += list(range(len(index), weight.shape[dim]))
    return weight.index_select(dim, torch.tensor(index))


def to_gan3d_frame(state: dict[str, Tensor], recipe: Recipe) -> dict[str, Tensor]:
    """The NeRF MLPs' first layers with their inputs in gan3d's world axes (module docstring, *frame*)."""
    out = dict(state)
    fg = recipe.modules["point_embedder"].kwargs["num_frequencies"]
    bg = recipe.modules["background/point_embedder"].kwargs["num_frequencies"]
    for key, dim, coordinates, frequencies in (
            ("decoder.fc_in.weight", 1, 3, fg), ("decoder.fc_in.affine.weight", 0, 3, fg),
            ("decoder.fc_in.affine.bias", 0, 3, fg), ("groups.background.decoder.fc_in.weight", 1, 4, bg)):
        if key in out:
            out[key] = _permute_coordinates(out[key], dim, coordinates, frequencies)
    return out


def generator_state(state: dict[str, Tensor], recipe: Recipe) -> dict[str, Tensor]:
    """An official ``Generator``'s state dict in gan3d's names (``GENERATOR_RENAMES``) and y-up world
    (:func:`to_gan3d_frame`); a fade-in ``alpha`` of -1 (never faded: the full size) becomes 1."""
    state = rename_keys(state, GENERATOR_RENAMES)
    if "upsampler.alpha" in state and float(state["upsampler.alpha"]) < 0:  # -1: never faded, full size
        state["upsampler.alpha"] = torch.ones_like(state["upsampler.alpha"])
    return to_gan3d_frame(state, recipe)


class StyleNeRFImporter(OfficialImporter):
    """facebookresearch/StyleNeRF network pickles (``*.pkl``) -> gan3d ``stylenerf`` checkpoints (G, G_ema, D)."""

    method = "stylenerf"
    formats = "StyleNeRF network pickle (*.pkl, training_loop.py snapshot: G, G_ema, D)"
    repository = "facebookresearch/StyleNeRF"

    def load(self, path: Path, *, variant: str | None = None) -> ImportedCheckpoint:
        path = Path(path)
        source = str(path)
        data = load_pickled(path, KNOWN_CLASSES, what="a StyleNeRF network pickle")
        nets = network_pickle_nets(data, source, {"G": "Generator", "G_ema": "Generator", "D": "Discriminator"},
                                   label="a StyleNeRF")
        reference = nets.get("G_ema") or nets["G"]
        recipe = recipe_from_official(reference, nets.get("D"), variant, source)
        alpha = reference.submodule("synthesis").state_dict().get("alpha")
        if alpha is None or float(alpha) < 0 or float(alpha) >= 1:
            # Fully grown (or never progressive): no fade-in left, so training on from the import (a resume counts
            # from kimg 0) stays at the full resolution, as the official run would after its curriculum.
            recipe.modules["upsampler"].kwargs.update(fade_start_kimg=0.0, fade_end_kimg=0.0)
        states = {}
        for key, net in nets.items():
            if key == "D":
                continue
            states[key] = generator_state(net.state_dict(), recipe)
        d_state = None
        if "D" in nets:
            d_state = {k: v for k, v in nets["D"].state_dict().items() if k != "alpha"}
        meta = {
            "source": source, "sha256": file_sha256(path), "official": self.repository,
            "official_classes": {k: v.class_name for k, v in nets.items()},
            "dropped": ["the NeRF layers' resample_filter buffers (a [1,3,3,1] filter 1x1 layers never use)",
                        "D.alpha (the discriminator's fade-in, which the official code never applies)"],
            "frame": "official z-up world (front camera on +x) rotated to gan3d's y-up one (front on +z)",
            "training_set_kwargs": {k: v for k, v in (data.get("training_set_kwargs") or {}).items()
                                    if isinstance(v, str | int | float | bool | type(None))},
        }
        return ImportedCheckpoint(recipe=recipe, G=states.get("G", states.get("G_ema")), G_ema=states.get("G_ema"),
                                  D=d_state, meta=meta)
