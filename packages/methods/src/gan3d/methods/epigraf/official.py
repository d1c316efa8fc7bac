"""EpiGRAF's network pickles (universome/epigraf ``network-snapshot-*.pkl``; the released FFHQ 512 checkpoint)
as gan3d checkpoints.

A network pickle is ``src/training/training_loop.py``'s ``snapshot_data``: ``{'training_set_kwargs', 'G', 'D',
'G_ema', 'augment_pipe', 'G_opt', 'D_opt', 'vis', 'stats'}``. The networks are ``torch_utils.persistence``
objects that embed their module source (EpiGRAF imports itself as the package ``src``, so they name
``src.torch_utils.persistence``); each keeps the OmegaConf ``DictConfig`` it was built from (``cfg``: the
generator's or discriminator's node of the whole Hydra configuration, interpolations such as
``patch: ${training.patch}`` unresolved, pickled with its parents). Everything is read with the restricted
unpickler (nothing from the file runs); :func:`config_to_dict` turns the configuration stand-ins into plain
data, resolving ``${path}`` interpolations against the root. The recipe is the variant's with every size and
rendering option the file states, so a reduced network imports as well as a released one; options gan3d
does not reproduce (generator pose conditioning, a background model, class labels, another backbone) are
refused by name.

State-dict map (official ``Generator`` -> gan3d ``epigraf`` generator; the discriminator's names are ours):

====================================  ================================  ============================================
official                              gan3d                             note
====================================  ================================  ============================================
``mapping.*``                         ``mapper.network.*``
``mapping.mean_camera_pose``          (dropped)                         the data set's mean angles, read only by
                                                                        the mapping's camera conditioning (GPC)
``synthesis.tri_plane_decoder.*``     ``embedder.backbone.*``           the tri-plane StyleGAN2 backbone
``synthesis.tri_plane_mlp.model.0.*`` ``decoder.hidden.*``              TriPlaneMLP
``synthesis.tri_plane_mlp.model.1.*`` ``decoder.output.*``
====================================  ================================  ============================================
"""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path
from typing import Any

from gan3d.core.checkpoint import CheckpointError
from gan3d.core.data.epigraf_labels import epigraf_focal
from gan3d.core.official import KnownClasses, OfficialObject, load_pickled, torch_nn
from gan3d.core.official.importer import (
    ImportedCheckpoint,
    OfficialImporter,
    file_sha256,
    network_pickle_nets,
    rename_keys,
)
from gan3d.core.recipe import Recipe

from .recipe import PITCH_DIFF, VARIANTS, YAW_DIFF, epigraf_recipe

__all__ = ["EpiGRAFImporter", "KNOWN_CLASSES", "GENERATOR_RENAMES", "config_to_dict", "recipe_from_official"]

logger = logging.getLogger(__name__)

#: OmegaConf's containers and value nodes (omegaconf 2.0, which EpiGRAF's hydra-core 1.0.7 uses).
OMEGACONF_CLASSES = {
    "omegaconf.dictconfig.DictConfig", "omegaconf.listconfig.ListConfig", "omegaconf.base.ContainerMetadata",
    "omegaconf.base.Metadata", "omegaconf.nodes.AnyNode", "omegaconf.nodes.StringNode",
    "omegaconf.nodes.IntegerNode", "omegaconf.nodes.FloatNode", "omegaconf.nodes.BooleanNode",
    "omegaconf.nodes.EnumNode",
}

#: Every class an EpiGRAF network pickle names: the ``@persistence.persistent_class`` classes of
#: src/training/*.py by bare name, OmegaConf's classes, the torch layers and optimizers pickled by reference,
#: and the types OmegaConf's metadata keeps as values.
KNOWN_CLASSES = KnownClasses(
    objects=OMEGACONF_CLASSES | {"torch.optim.adam.Adam"} | torch_nn("Sequential", "Embedding", "Identity",
                                                                     "ModuleList", "ModuleDict"),
    dicts={"src.dnnlib.util.EasyDict"},
    persistent={
        "Generator", "SynthesisNetwork", "SynthesisBlocksSequence", "SynthesisBlock", "SynthesisLayer",
        "ToRGBLayer", "FullyConnectedLayer", "MappingNetwork", "TriPlaneMLP", "ScalarEncoder1d", "FourierEncoder1d",
        "Conv2dLayer", "Discriminator", "DiscriminatorBlock", "DiscriminatorEpilogue", "MinibatchStdLayer",
        "AugmentPipe",
    },
    persistence_modules={"src.torch_utils.persistence"},
    types={"typing.Any", "builtins.dict", "builtins.list", "builtins.int", "builtins.float", "builtins.str",
           "builtins.bool", "builtins.object"},
)

#: official Generator state-dict names -> ours (first match wins; None drops).
GENERATOR_RENAMES: list[tuple[str, str | None]] = [
    (r"mapping\.mean_camera_pose", None),
    (r"mapping\.(.*)", r"mapper.network.\1"),
    (r"synthesis\.tri_plane_decoder\.(.*)", r"embedder.backbone.\1"),
    (r"synthesis\.tri_plane_mlp\.model\.0\.(.*)", r"decoder.hidden.\1"),
    (r"synthesis\.tri_plane_mlp\.model\.1\.(.*)", r"decoder.output.\1"),
]

_INTERPOLATION = re.compile(r"\$\{([A-Za-z0-9_.]+)\}")
_MISSING = object()


class _Config:
    """The plain data of a pickled OmegaConf tree (stand-ins), interpolations resolved against its root."""

    def __init__(self, node: OfficialObject, source: str) -> None:
        self.source = source
        root, seen = node, set()
        while isinstance(root.get("_parent"), OfficialObject) and id(root) not in seen:
            seen.add(id(root))
            root = root.get("_parent")
        self.root = root

    def lookup(self, path: str, depth: int) -> Any:
        """The value at ``path`` from the root; ``_MISSING`` when the tree does not hold it (an interpolation
        of a section the pickle does not carry, such as ``${env.datasets_dir}``)."""
        node: Any = self.root
        for part in path.split("."):
            content = node.get("_content") if isinstance(node, OfficialObject) else None
            if isinstance(content, dict) and part in content:
                node = content[part]
            elif isinstance(content, list) and part.isdigit() and int(part) < len(content):
                node = content[int(part)]
            else:
                return _MISSING
        return self.value(node, depth + 1)

    def resolve(self, text: str, depth: int) -> Any:
        """``${path}`` -> its value; interpolations inside a string (a run name) substituted. What cannot be
        resolved here (a missing section, ``${resolver:...}``) stays as written: the recipe reads only keys
        that must resolve, and a string where it expects a number is an error naming the key."""
        whole = _INTERPOLATION.fullmatch(text)
        if whole:
            value = self.lookup(whole.group(1), depth)
            return text if value is _MISSING else value

        def substitute(match: re.Match) -> str:
            value = self.lookup(match.group(1), depth)
            return match.group(0) if value is _MISSING else str(value)

        return _INTERPOLATION.sub(substitute, text)

    def value(self, node: Any, depth: int = 0) -> Any:
        if depth > 64:
            raise CheckpointError(f"{self.source}: the configuration's interpolations do not end (a cycle?)")
        if not isinstance(node, OfficialObject):
            return self.resolve(node, depth) if isinstance(node, str) else node
        name = node.official_name
        if name not in OMEGACONF_CLASSES:
            raise CheckpointError(f"{self.source}: the configuration holds a {node.class_name}, not OmegaConf data")
        if "_content" in node.state:
            content = node.state["_content"]
            if isinstance(content, str):  # the whole container is an interpolation (or '???')
                return self.resolve(content, depth)
            if isinstance(content, dict):
                return {k: self.value(v, depth) for k, v in content.items()}
            if isinstance(content, list):
                return [self.value(v, depth) for v in content]
            return None
        return self.value(node.state.get("_val"), depth)


def config_to_dict(node: OfficialObject, source: str = "the file") -> dict[str, Any]:
    """The plain ``dict`` of a pickled OmegaConf ``DictConfig`` stand-in (nested dicts and lists, ``${path}``
    interpolations resolved against the tree's root)."""
    value = _Config(node, source).value(node)
    if not isinstance(value, dict):
        raise CheckpointError(f"{source}: the networks' cfg is not an OmegaConf DictConfig")
    return value


def root_config(node: OfficialObject, source: str = "the file") -> dict[str, Any]:
    """The whole configuration the node belongs to (its root), as plain data."""
    config = _Config(node, source)
    return config_to_dict(config.root, source)


def _refuse(source: str, what: str) -> CheckpointError:
    return CheckpointError(f"{source}: {what}; gan3d's epigraf does not reproduce it")


def _infer_variant(resolution: int) -> str:
    for name, v in VARIANTS.items():
        if v["resolution"] == resolution:
            return name
    return "ffhq512"


def recipe_from_official(G: OfficialObject, D: OfficialObject | None, variant: str | None, source: str) -> Recipe:
    """The gan3d recipe of an official EpiGRAF ``Generator`` (and patch ``Discriminator``) stand-in."""
    kw = dict(G.require("_init_kwargs"))
    if G.get("_init_args"):
        raise CheckpointError(f"{source}: the Generator was built with positional arguments; expected keywords")
    cfg_node = kw.get("cfg")
    if not isinstance(cfg_node, OfficialObject):
        raise CheckpointError(f"{source}: the Generator holds no OmegaConf cfg")
    g = config_to_dict(cfg_node, source)
    root = root_config(cfg_node, source)
    dataset, patch = g["dataset"], g["patch"]
    camera = dataset["camera"]
    if g.get("backbone", "stylegan2") != "stylegan2":
        raise _refuse(source, f"the tri-plane backbone {g['backbone']!r} (gan3d has EpiGRAF's 'stylegan2')")
    if (g.get("bg_model") or {}).get("type") is not None:
        raise _refuse(source, f"a background model ({g['bg_model']['type']!r})")
    if g.get("camera_cond"):
        raise _refuse(source, "generator pose conditioning (model.generator.camera_cond)")
    if int(kw.get("c_dim", 0)):
        raise _refuse(source, f"class-conditional training (c_dim {kw['c_dim']})")
    tri = g["tri_plane"]
    if int(tri["mlp"]["n_layers"]) != 2 or tri.get("has_view_cond") or tri.get("posenc_period_len", 0):
        raise _refuse(source, f"the tri-plane MLP {tri['mlp']} with view conditioning "
                              f"{tri.get('has_view_cond')} and coordinates {tri.get('posenc_period_len')} "
                              "(gan3d has EpiGRAF's 2-layer MLP)")
    if g.get("clamp_mode", "softplus") != "softplus" or float(g.get("density_shift", 0.0)) != 0.0:
        raise _refuse(source, f"density clamp {g.get('clamp_mode')!r} with shift {g.get('density_shift')}")
    if dataset.get("last_back"):
        raise _refuse(source, "last_back (the last sample taking the ray's remaining weight)")
    if camera.get("dist", "custom") != "custom":
        raise _refuse(source, f"camera distribution {camera['dist']!r} (gan3d's epigraf renders from the data set's "
                              "cameras)")
    if int(kw.get("img_channels", 3)) != 3:
        raise CheckpointError(f"{source}: img_channels {kw['img_channels']}; gan3d renders RGB")
    mapping = dict(kw.get("mapping_kwargs") or {})
    if mapping.get("camera_cond"):
        raise _refuse(source, "generator pose conditioning (mapping camera_cond)")

    resolution = int(dataset["resolution"])
    variant = variant or _infer_variant(resolution)
    recipe = epigraf_recipe(variant)
    m = recipe.modules
    fov, radius = float(camera["fov"]), float(camera["radius"])
    m["stochasticity_mapper"].kwargs.update(z_dim=int(kw["z_dim"]), c_dim=0, w_dim=int(kw["w_dim"]),
                                            num_layers=int(mapping.get("num_layers", g.get("map_depth", 2))))
    m["pose_sampler"].kwargs["rig"].update(radius=radius, focal=epigraf_focal(fov, resolution),
                                           yaw_range=[math.pi / 2 - YAW_DIFF, math.pi / 2 + YAW_DIFF],
                                           polar_range=[math.pi / 2 - PITCH_DIFF, math.pi / 2 + PITCH_DIFF])
    m["point_sampler"].kwargs.update(num_samples=int(g["num_ray_steps"]), ray_start=float(camera["ray_start"]),
                                     ray_end=float(camera["ray_end"]))
    m["point_embedder"].kwargs.update(
        resolution=int(tri["res"]), channels=int(tri["feat_dim"]), box_warp=2 * float(dataset["cube_scale"]),
        channel_base=int(kw.get("channel_base", 32768)), channel_max=int(kw.get("channel_max", 512)),
        use_noise=bool(g.get("use_noise", True)),
        conv_clamp=None if "conv_clamp" in kw and kw["conv_clamp"] is None else float(kw.get("conv_clamp", 256)))
    m["feature_decoder"].kwargs.update(hidden_dim=int(tri["mlp"]["hid_dim"]))
    m["volume_renderer"].kwargs.update(noise_std=float(g.get("nerf_noise_std_init", 1.0)),
                                       noise_anneal_kimg=float(g.get("nerf_noise_kimg_growth", 5000)),
                                       white_back=bool(dataset.get("white_back", False)))
    recipe.generator.update(render_resolution=resolution, num_importance=int(g["num_ray_steps"]))
    recipe.data["label_options"] = {"fov": fov, "radius": radius, "resolution": resolution}
    patch_resolution = int(patch["resolution"])
    loss = m["loss"].kwargs
    loss.update(patch_size=patch_resolution, image_resolution=resolution, min_scale=float(patch["min_scale_trg"]),
                max_scale=float(patch.get("max_scale", 1.0)), group_size=int(patch.get("mbstd_group_size", 4)))
    if patch.get("distribution", "beta") != "beta":
        raise _refuse(source, f"patch distribution {patch['distribution']!r} (gan3d has EpiGRAF's 'beta')")
    loss.update(beta_start=float(patch["beta_val_start"]), beta_end=float(patch["beta_val_end"]),
                anneal_kimg=float(patch["anneal_kimg"]))
    blur = ((root.get("model") or {}).get("loss_kwargs") or {})
    loss.update({k: float(blur[k]) for k in ("blur_init_sigma", "blur_fade_kimg") if k in blur})
    gamma = (root.get("training") or {}).get("gamma")
    if isinstance(gamma, int | float) and not isinstance(gamma, bool):
        loss["r1_gamma"] = float(gamma)
    if D is not None:
        dkw = dict(D.require("_init_kwargs"))
        d = config_to_dict(dkw["cfg"], source) if isinstance(dkw.get("cfg"), OfficialObject) else {}
        if int(dkw.get("c_dim", 0)):
            raise _refuse(source, f"a class-conditional discriminator (c_dim {dkw['c_dim']})")
        m["discriminator"].kwargs.update(
            patch_resolution=int(dkw["img_resolution"]),
            image_resolution=int(dkw["img_resolution"]) * 2 ** int(d.get("num_additional_start_blocks", 0)),
            channel_base=int(dkw.get("channel_base", 16384)), channel_max=int(dkw.get("channel_max", 512)),
            mbstd_group_size=int((dkw.get("epilogue_kwargs") or {}).get("mbstd_group_size", 4)),
            patch_params_cond=bool(d.get("patch", patch).get("patch_params_cond", True)),
            hyper_mod=bool(d.get("hyper_mod", True)), camera_cond=bool(d.get("camera_cond", False)),
            camera_cond_drop_p=float(d.get("camera_cond_drop_p", 0.0)),
            camera_cond_noise_std=float(d.get("camera_cond_noise_std", 0.0)),
            camera_cond_raw=bool(d.get("camera_cond_raw", False)),
            freeze_layers=int((dkw.get("block_kwargs") or {}).get("freeze_layers", 0)),
            # src/train.py: conv_clamp None with training.fp32, else the Discriminator's default 256.
            conv_clamp=0.0 if "conv_clamp" in dkw and dkw["conv_clamp"] is None else float(dkw.get("conv_clamp", 256)))
        span = m["discriminator"].kwargs["image_resolution"]
        if span != resolution:
            raise CheckpointError(f"{source}: the discriminator's blocks span {span} px but the data set is "
                                  f"{resolution} px")
    return recipe


class EpiGRAFImporter(OfficialImporter):
    """universome/epigraf network pickles (``*.pkl``) -> gan3d ``epigraf`` checkpoints (G, G_ema and D)."""

    method = "epigraf"
    formats = "EpiGRAF network pickle (*.pkl, training_loop.py snapshot: G, G_ema, D)"
    repository = "universome/epigraf"

    def load(self, path: Path, *, variant: str | None = None) -> ImportedCheckpoint:
        path = Path(path)
        source = str(path)
        data = load_pickled(path, KNOWN_CLASSES, what="an EpiGRAF network pickle")
        nets = network_pickle_nets(data, source, {"G": "Generator", "G_ema": "Generator", "D": "Discriminator"},
                                   label="an EpiGRAF")
        reference = nets.get("G_ema") or nets["G"]
        recipe = recipe_from_official(reference, nets.get("D"), variant, source)
        states = {k: rename_keys(v.state_dict(), GENERATOR_RENAMES) for k, v in nets.items() if k != "D"}
        meta = {
            "source": source, "sha256": file_sha256(path), "official": self.repository,
            "official_classes": {k: v.class_name for k, v in nets.items()},
            "dropped": ["mapping.mean_camera_pose (the data set's mean camera angles, read only by the mapping's "
                        "camera conditioning)"],
            "training_set_kwargs": {k: v for k, v in (data.get("training_set_kwargs") or {}).items()
                                    if isinstance(v, str | int | float | bool | type(None))},
        }
        return ImportedCheckpoint(
            recipe=recipe, G=states.get("G", states.get("G_ema")), G_ema=states.get("G_ema"),
            D=nets["D"].state_dict() if "D" in nets else None, meta=meta)
