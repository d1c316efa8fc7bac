"""GRAF's released checkpoints (autonomousvision/graf configs/pretrained_models.yaml: ``carla_64.pt`` ...
``carla_512.pt``, ``celebA_64.pt``, ``celebA_128.pt``, ``celebA_hq_256.pt``, ``celebA_hq_512.pt``; training
writes ``model.pt``, ``model_best.pt``, ``model_<it>.pt``) as gan3d checkpoints.

GAN_stability's ``CheckpointIO.save`` (submodules/GAN_stability/gan_training/checkpoints.py) writes
``torch.save(outdict)`` of state dicts: ``generator`` (the NeRF MLP, graf/models/generator.py ``module_dict``),
``generator_test`` (its moving average, registered by train.py and eval.py as ``<name>_test``),
``discriminator``, ``g_optimizer``, ``d_optimizer`` and the scalars ``it``, ``epoch_idx``, ``fid_best``,
``kid_best``. Plain tensors and containers: the restricted unpickler reads it without any class.

The file records neither the data set nor the image size: ``--variant`` gives them (``carla``, ``carla64``,
``celeba64``, ``celebahq256``...); without one, the released file names (``<data set>_<imsize>.pt``) tell. The
network's sizes come from the shapes (width, depth, skips, the shape and appearance codes), the positional
encodings' octaves are the variant's (10 and 4 in every config).

State-dict map (official -> gan3d ``graf``):

=====================================================  ===============================================
``generator.pts_linears.I.*``, ``views_linears.0.*``,   ``decoder.<same>`` (graf_nerf keeps NeRF's names)
``feature_linear``, ``alpha_linear``, ``rgb_linear``
``generator_test.*``                                    ``G_ema``'s ``decoder.<same>``
``discriminator.main.I.{weight_orig,weight_u,weight_v}``  ``main.I.<same>`` (``graf_patch``)
=====================================================  ===============================================

GRAF's world is z-up (graf/utils.py ``to_sphere``, ``look_at`` with up ``(0, 0, 1)``), gan3d's y-up: a point
``(x, y, z)`` of ours is GRAF's ``(x, -z, y)`` (see the recipe). So the columns of every layer that reads an
encoded point or view direction (``pts_linears.0``, the skip layer after ``skips``, ``views_linears.0``) are
permuted: our ``y`` columns are GRAF's ``z`` ones and our ``z`` columns GRAF's ``y`` ones, negated in the
input and ``sin`` blocks (``sin(-a) = -sin(a)``) and not in the ``cos`` blocks (:func:`z_up_columns`). The
network then computes GRAF's function of the same physical point.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import torch
from torch import Tensor

from gan3d.core.checkpoint import CheckpointError
from gan3d.core.official import KnownClasses, load_pickled
from gan3d.core.official.importer import ImportedCheckpoint, OfficialImporter, file_sha256
from gan3d.core.recipe import Recipe

from .discriminator import PATCH_SIZES
from .recipe import VARIANTS, graf_recipe

__all__ = ["GRAFImporter", "z_up_columns", "generator_state", "graf_pose", "FILE_NAME"]

logger = logging.getLogger(__name__)

#: configs/pretrained_models.yaml file names: ``<type>_<imsize>.pt`` (celebA_hq before celebA).
FILE_NAME = re.compile(r"(carla|celeba_hq|celeba)_(\d+)", re.IGNORECASE)
_DATASET_OF_TYPE = {"carla": "carla", "celeba": "celeba", "celeba_hq": "celebahq"}
_NERF_KEY = re.compile(r"(pts_linears\.\d+|views_linears\.\d+|feature_linear|alpha_linear|rgb_linear|output_linear)"
                       r"\.(weight|bias)")


def z_up_columns(num_frequencies: int, include_input: bool = True) -> tuple[Tensor, Tensor]:
    """``(source, sign)`` ``[C]`` for the ``C = 3 (include_input + 2 L)`` columns of a NeRF positional encoding
    (nerf-pytorch ``Embedder``: the input, then ``sin``, ``cos`` per octave, each block ``x, y, z``): our column
    ``i`` is GRAF's column ``source[i]`` times ``sign[i]``, for our point ``(x, y, z) = GRAF (x, z, -y)``.

    Example:
        >>> z_up_columns(1)[0].tolist(), z_up_columns(1)[1].tolist()
        ([0, 2, 1, 3, 5, 4, 6, 8, 7], [1.0, 1.0, -1.0, 1.0, 1.0, -1.0, 1.0, 1.0, 1.0])
    """
    kinds = (["input"] if include_input else []) + ["sin", "cos"] * num_frequencies
    source, sign = [], []
    for block, kind in enumerate(kinds):
        start = 3 * block
        # ours x <- GRAF x; ours y <- GRAF z; ours z <- GRAF y (GRAF y = -ours z).
        source += [start, start + 2, start + 1]
        sign += [1.0, 1.0, 1.0 if kind == "cos" else -1.0]
    return torch.tensor(source), torch.tensor(sign)


def graf_pose(cam2world: Tensor) -> Tensor:
    """GRAF's ``[B, 3, 4]`` camera poses (z-up world, OpenGL camera axes: what ``get_rays`` and
    ``sample_pose`` use) of gan3d cameras ``cam2world [B, 4, 4]`` (y-up world, OpenCV axes): the world turned by
    ``GRAF = (x, -z, y)`` of ours, the camera's y and z axes negated.

    Example:
        >>> from gan3d.core.cameras import look_at
        >>> front = look_at(torch.tensor([[0.0, 0.0, 2.0]]), torch.zeros(3))  # ours: on +z, looking at 0
        >>> (graf_pose(front)[0, :, 2:].T + 0.0).tolist()  # GRAF: on -y; its z axis points back from the target
        [[0.0, -1.0, 0.0], [0.0, -2.0, 0.0]]
    """
    to_graf = cam2world.new_tensor(((1.0, 0.0, 0.0), (0.0, 0.0, -1.0), (0.0, 1.0, 0.0)))
    rotation = to_graf @ cam2world[:, :3, :3] * cam2world.new_tensor([1.0, -1.0, -1.0])
    return torch.cat([rotation, (cam2world[:, :3, 3] @ to_graf.T)[:, :, None]], -1)


def _permute_columns(weight: Tensor, start: int, num_frequencies: int) -> Tensor:
    source, sign = z_up_columns(num_frequencies)
    out = weight.clone()
    block = weight[:, start:start + len(source)]
    out[:, start:start + len(source)] = block[:, source] * sign.to(weight.dtype)
    return out


def _layers(state: dict[str, Tensor], name: str) -> int:
    return len({m.group(1) for k in state if (m := re.fullmatch(rf"{name}\.(\d+)\.weight", k))})


def _decoder_options(state: dict[str, Tensor], point_frequencies: int, view_frequencies: int,
                     source: str) -> dict[str, object]:
    """graf_nerf options (and the latent size) read from a NeRF state dict's shapes."""
    if "pts_linears.0.weight" not in state:
        raise CheckpointError(f"{source}: its generator is not GRAF's NeRF (no pts_linears.0.weight)")
    first = state["pts_linears.0.weight"]
    width = int(first.shape[0])
    encoded = 3 * (1 + 2 * point_frequencies)
    shape_dim = int(first.shape[1]) - encoded
    depth = _layers(state, "pts_linears")
    # A layer i + 1 that takes the input again follows a skip after layer i (NeRF: skips=[4] -> pts_linears.5).
    skips = [i - 1 for i in range(1, depth) if int(state[f"pts_linears.{i}.weight"].shape[1]) != width]
    if shape_dim < 0:
        raise CheckpointError(f"{source}: pts_linears.0 takes {first.shape[1]} inputs, fewer than the {encoded} of "
                              f"{point_frequencies} octaves")
    if "views_linears.0.weight" in state and "rgb_linear.weight" in state:
        views = int(state["views_linears.0.weight"].shape[1]) - width
        view_encoded = 3 * (1 + 2 * view_frequencies)
        # create_nerf: input_ch_views = 27 (use_viewdirs) + dim_appearance; GRAF's configs keep use_viewdirs on
        # except CUB's, which has no released configuration here.
        appearance = views - view_encoded
        if appearance < 0:
            raise CheckpointError(f"{source}: views_linears.0 takes {views} view inputs, fewer than the "
                                  f"{view_encoded} of {view_frequencies} octaves")
        use_viewdirs = True
    else:
        appearance, use_viewdirs = 0, False
    return {"hidden_dim": width, "num_layers": depth, "skips": skips, "appearance_dim": appearance,
            "use_viewdirs": use_viewdirs, "z_dim": shape_dim + appearance}


def generator_state(state: dict[str, Tensor], options: dict[str, object], point_frequencies: int,
                    view_frequencies: int) -> dict[str, Tensor]:
    """Our generator's state dict (``decoder.*``) from a GRAF NeRF state dict, with the z-up columns permuted."""
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        match = _NERF_KEY.fullmatch(key)
        if match is None:
            raise CheckpointError(f"unexpected entry {key!r} in GRAF's generator state dict")
        out[f"decoder.{key}"] = value.detach().float()
    for layer in ["pts_linears.0", *(f"pts_linears.{s + 1}" for s in options["skips"])]:
        key = f"decoder.{layer}.weight"
        out[key] = _permute_columns(out[key], 0, point_frequencies)  # [gamma(x), z_shape(, h)]
    if options["use_viewdirs"]:
        key = "decoder.views_linears.0.weight"
        # views_linears.0 reads [feature, gamma(d), z_app].
        out[key] = _permute_columns(out[key], int(options["hidden_dim"]), view_frequencies)
    return out


def _variant_from_name(path: Path) -> str | None:
    match = FILE_NAME.search(path.name)
    if match is None:
        return None
    variant = f"{_DATASET_OF_TYPE[match.group(1).lower()]}{int(match.group(2))}"
    return "carla" if variant == "carla128" else variant


def _discriminator_options(state: dict[str, Tensor], source: str) -> dict[str, int]:
    convs = sorted(int(m.group(1)) for k in state if (m := re.fullmatch(r"main\.(\d+)\.weight_orig", k)))
    imsize = {4: 32, 5: 64, 6: 128}.get(len(convs))
    if imsize is None:
        raise CheckpointError(f"{source}: the discriminator has {len(convs)} convolutions; GRAF's have 4, 5 or 6 "
                              f"(patch sizes {PATCH_SIZES})")
    first = int(state["main.0.weight_orig"].shape[0])
    ndf = {32: first // 2, 64: first, 128: first * 2}[imsize]
    return {"imsize": imsize, "ndf": ndf}


def _recipe(variant: str, G: dict[str, Tensor], D: dict[str, Tensor] | None, source: str) -> tuple[Recipe, dict]:
    recipe = graf_recipe(variant)
    m = recipe.modules
    points = int(m["point_embedder"].kwargs["num_frequencies"])
    views = int(m["feature_decoder"].kwargs["num_view_frequencies"])
    options = _decoder_options(G, points, views, source)
    m["stochasticity_mapper"].kwargs["z_dim"] = options["z_dim"]
    m["feature_decoder"].kwargs.update({k: v for k, v in options.items() if k != "z_dim"})
    if D is not None:
        d = _discriminator_options(D, source)
        m["discriminator"].kwargs.update(d)
        m["loss"].kwargs["patch_size"] = d["imsize"]
    return recipe, options


class GRAFImporter(OfficialImporter):
    """autonomousvision/graf ``*.pt`` (GAN_stability CheckpointIO) -> gan3d ``graf``."""

    method = "graf"
    formats = ("GRAF .pt (GAN_stability CheckpointIO: torch.save of the 'generator', 'generator_test' and "
               "'discriminator' state dicts, optimizers and counters)")
    repository = "autonomousvision/graf"

    def load(self, path: Path, *, variant: str | None = None) -> ImportedCheckpoint:
        path = Path(path)
        source = str(path)
        data = load_pickled(path, KnownClasses(), what="a GRAF checkpoint")
        if not isinstance(data, dict) or not any(isinstance(data.get(k), dict)
                                                 for k in ("generator", "generator_test")):
            raise CheckpointError(f"{source}: not a GRAF checkpoint (no 'generator' or 'generator_test' state dict)")
        if variant is None:
            variant = _variant_from_name(path)
            if variant is None or variant not in VARIANTS:
                raise CheckpointError(
                    f"{source}: GRAF's checkpoints record neither the data set nor the image size; give --variant "
                    f"({', '.join(VARIANTS)})")
            logger.info("GRAF variant: %s (from the file name; --variant overrides)", variant)
        if variant not in (*VARIANTS, "synthetic"):
            raise CheckpointError(f"GRAF has no configuration {variant!r}; variants: {', '.join(VARIANTS)}, synthetic "
                                  f"(the official code trained on gan3d's synthetic set: "
                                  f"tools/official/graf_train.py)")
        G_official = data.get("generator") if isinstance(data.get("generator"), dict) else None
        ema_official = data.get("generator_test") if isinstance(data.get("generator_test"), dict) else None
        reference = G_official or ema_official
        D_official = data.get("discriminator") if isinstance(data.get("discriminator"), dict) else None
        recipe, options = _recipe(variant, reference, D_official, source)
        points = int(recipe.modules["point_embedder"].kwargs["num_frequencies"])
        views = int(recipe.modules["feature_decoder"].kwargs["num_view_frequencies"])
        states = {name: generator_state(s, options, points, views)
                  for name, s in (("G", G_official), ("G_ema", ema_official)) if s is not None}
        if "G" not in states:
            logger.warning("%s has no 'generator' entry: the imported G is its moving average", source)
        if "G_ema" not in states:
            logger.warning("%s has no 'generator_test' entry: the imported G_ema is the training generator", source)
        meta = {"source": source, "sha256": file_sha256(path), "official": self.repository,
                "entries": sorted(k for k in data if isinstance(data[k], dict)),
                "iteration": int(data["it"]) if isinstance(data.get("it"), int) else None,
                "world": "GRAF's z-up point and view-direction columns permuted into gan3d's y-up frame",
                "left_out": ["g_optimizer", "d_optimizer (RMSprop state: training restarts its optimizers)"]}
        return ImportedCheckpoint(recipe=recipe, G=states.get("G", states.get("G_ema")), G_ema=states.get("G_ema"),
                                  D={k: v.detach().float() for k, v in D_official.items()} if D_official else None,
                                  meta=meta)
