"""GIRAFFE's released checkpoints (autonomousvision/giraffe README and ``configs/*_pretrained.yaml``:
``checkpoint_compcars64-e85060a0.pt``, ``checkpoint_celebahq256-d5b11030.pt``, ...) as gan3d checkpoints.

``CheckpointIO.save`` (im2scene/checkpoints.py) writes ``torch.save({'model': GIRAFFE.state_dict(),
'optimizer', 'optimizer_d', 'epoch_it', 'it', 'loss_val_best'})``: plain tensors under one ``GIRAFFE``
module (im2scene/giraffe/models/__init__.py) holding ``generator`` (training), ``generator_test`` (the
moving average, ``take_generator_average``, what render.py and eval.py render with) and
``discriminator``. It is read with the restricted unpickler. The sizes are in the shapes (codes, widths,
depths, encodings, the neural renderer's and the discriminator's resolution); the data set (box and
camera ranges, field of view) is not: it is the variant's (``--variant cars64`` ...), told by the
released file's name (``checkpoint_<data set>-<hash>.pt``) when ``--variant`` is not given.

Axes. GIRAFFE's world and object frames are z-up, ours y-up: a point ``p`` of GIRAFFE is ``A p`` here,
``A: (x, y, z) -> (x, z, -y)`` (see :mod:`gan3d.embedders.giraffe_scene`). The fields read the point and
the viewing direction in the object's (or background's) frame, so an imported MLP must see
``gamma(A^-1 p)`` where ours computes ``gamma(p)``: in every octave of the encodings
``[sin(2^k pi p / s), cos(2^k pi p / s)]``, the columns of the layers that read them (``fc_in``,
``fc_p_skips``, ``fc_view``) are permuted (``y <-> z``), and the sine columns of GIRAFFE's ``y``
negated (``sin`` is odd: ``sin(-y) = -sin(y)``; ``cos`` is even). This is exact: the same products, only
added in another order.

State-dict map (official -> gan3d ``giraffe``; ``generator.`` gives ``G``, ``generator_test.`` ``G_ema``):

=====================================================  ==============================================
``decoder.*``                                          ``decoder.*`` (encoding columns to our axes)
``background_generator.*``                             ``groups.background.decoder.*`` (the same)
``neural_renderer.{conv_in,conv_layers,conv_rgb}.*``   ``upsampler.*``
``neural_renderer.upsample_{rgb,2}.1.f``               (dropped: Blur's constant [1, 2, 1], checked)
``discriminator.{blocks.N,conv_out}.weight``           ``D``: the same names
=====================================================  ==============================================

:func:`scene_latent` and :func:`cameras` turn GIRAFFE's own latent codes, object transformations and
camera matrices into ours, to render what GIRAFFE renders for them.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import torch
from torch import Tensor

from gan3d.core.checkpoint import CheckpointError
from gan3d.core.official import KnownClasses, load_pickled
from gan3d.core.official.importer import ImportedCheckpoint, OfficialImporter, file_sha256, rename_keys
from gan3d.core.recipe import Recipe
from gan3d.core.types import Cameras, ObjectFrames, SceneLatent

from .recipe import VARIANTS, giraffe_recipe

__all__ = ["GiraffeImporter", "GENERATOR_RENAMES", "AXES", "to_our_axes", "scene_latent", "cameras",
           "RELEASED_FILES"]

logger = logging.getLogger(__name__)

#: GIRAFFE's world (z-up) -> ours (y-up): ``(x, y, z) -> (x, z, -y)``, a proper rotation.
AXES = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])

#: The released files' data-set names (configs/*/*_pretrained.yaml ``model_file``) and our variants.
RELEASED_FILES = {
    "compcars64": "cars64", "celeba64": "celeba64", "cats64": "cats64", "chairs64": "chairs64",
    "church64": "church64", "cars256": "cars256", "celebahq256": "celebahq256", "ffhq256": "ffhq256",
    "church256": "church256", "clevr2256": "clevr2", "clevr2345256": None,
}

#: ``generator.`` / ``generator_test.`` prefixes stripped before these apply.
GENERATOR_RENAMES: list[tuple[str, str | None]] = [
    (r"decoder\.(.*)", r"decoder.\1"),
    (r"background_generator\.(.*)", r"groups.background.decoder.\1"),
    (r"neural_renderer\.upsample_(rgb|2)\.1\.f", None),
    (r"neural_renderer\.(conv_in|conv_layers|conv_rgb|norms)\.(.*)", r"upsampler.\1.\2"),
]

#: The layers of a GIRAFFE ``Decoder`` that read a point (or direction) encoding.
_ENCODED_INPUTS = re.compile(r"(decoder|groups\.background\.decoder)\.(fc_in|fc_p_skips\.\d+|fc_view)\.weight")


def to_our_axes(weight: Tensor) -> Tensor:
    """The weight ``[out, 6 L]`` of a layer that reads GIRAFFE's encoding ``gamma(p)`` (per octave
    ``sin`` of x, y, z then ``cos`` of x, y, z) rearranged to read ``gamma(A p)`` (see the module doc)."""
    if weight.ndim != 2 or weight.shape[1] % 6:
        raise CheckpointError(f"a GIRAFFE encoding layer has 6 L input columns, got weight {tuple(weight.shape)}")
    octaves = weight.reshape(weight.shape[0], -1, 2, 3)  # [out, L, (sin, cos), (x, y, z)]
    ours = octaves[..., [0, 2, 1]].clone()  # our (x, y, z) reads GIRAFFE's (x, z, y)
    ours[:, :, 0, 2] = -ours[:, :, 0, 2]  # our z is GIRAFFE's -y: sin(-y) = -sin(y)
    return ours.reshape_as(weight)


def _axes(matrix: Tensor) -> Tensor:
    return AXES.to(matrix.dtype).to(matrix.device)


def scene_latent(codes: tuple[Tensor, Tensor, Tensor, Tensor], transformations: tuple[Tensor, Tensor, Tensor],
                 bg_rotation: Tensor, *, box_padding: float = 0.1) -> SceneLatent:
    """GIRAFFE's latent codes and transformations (generator.py ``get_latent_codes``,
    ``get_random_transformations``, ``get_random_bg_rotation``; z-up) as our scene latent.

    Args:
        codes: ``z_shape_obj, z_app_obj [B, N, z_dim]``, ``z_shape_bg, z_app_bg [B, z_dim_bg]``.
        transformations: scales, translations ``[B, N, 3]`` and rotations ``[B, N, 3, 3]`` (an object
            sees ``R (p - t) / s``).
        bg_rotation: ``[B, 3, 3]``.
        box_padding: generator.py ``volume_render_image``'s ``padd`` (0.1).

    Scales permute to our axes, translations map by ``A``, rotations by ``A R A^T``.
    """
    z_shape, z_app, z_shape_bg, z_app_bg = codes
    scale, translation, rotation = transformations
    a = _axes(translation)
    frames = {
        "main": ObjectFrames(scale[..., [0, 2, 1]], translation @ a.T, a @ rotation @ a.T, box_padding),
        "background": ObjectFrames(torch.ones_like(scale[:, :1]), torch.zeros_like(translation[:, :1]),
                                   (a @ bg_rotation @ a.T)[:, None]),
    }
    return SceneLatent({"main": torch.stack([z_shape, z_app], dim=2),
                        "background": torch.stack([z_shape_bg, z_app_bg], dim=1)[:, None]}, frames)


def cameras(camera_mat: Tensor, world_mat: Tensor) -> Cameras:
    """GIRAFFE's camera matrices (generator.py ``get_random_camera``/``get_camera``: ``camera_mat`` the
    inverted intrinsics ``diag(1/f, 1/f, 1, 1)`` with ``f = 1 / tan(fov / 2)`` on the image's ``[-1, 1]``,
    ``world_mat`` cam2world with OpenGL axes in its z-up world) as our cameras (OpenCV axes, y-up,
    normalized intrinsics ``fx = f / 2``)."""
    a = _axes(world_mat)
    cam2world = torch.eye(4, dtype=world_mat.dtype, device=world_mat.device).repeat(world_mat.shape[0], 1, 1)
    flip = torch.diag(world_mat.new_tensor([1.0, -1.0, -1.0]))  # OpenGL (x right, y up, z back) -> OpenCV
    cam2world[:, :3, :3] = a @ world_mat[:, :3, :3] @ flip
    cam2world[:, :3, 3] = world_mat[:, :3, 3] @ a.T
    focal = 1.0 / camera_mat[:, 0, 0]
    intrinsics = torch.zeros(world_mat.shape[0], 3, 3, dtype=world_mat.dtype, device=world_mat.device)
    intrinsics[:, 0, 0] = intrinsics[:, 1, 1] = focal / 2
    intrinsics[:, :2, 2] = 0.5
    intrinsics[:, 2, 2] = 1.0
    return Cameras(cam2world, intrinsics)


def _variant(path: Path, variant: str | None) -> str:
    if variant is None:
        match = re.fullmatch(r"checkpoint_([a-z0-9]+)-[0-9a-f]+\.pt", path.name)
        if match is None or match.group(1) not in RELEASED_FILES:
            raise CheckpointError(f"{path}: GIRAFFE's files do not say which data set they were trained on; "
                                  f"pass --variant (one of {', '.join(VARIANTS)})")
        variant = RELEASED_FILES[match.group(1)]
        if variant is None:
            raise CheckpointError(f"{path}: GIRAFFE's clevr2345 model samples how many objects exist "
                                  "(sample_object_existance), which gan3d's giraffe has no recipe for")
        logger.info("GIRAFFE data set: %s (from the file name; --variant overrides)", variant)
    if variant not in VARIANTS:
        raise CheckpointError(f"giraffe has no released configuration {variant!r}; variants: {', '.join(VARIANTS)}")
    return variant


def _count(state: dict[str, Tensor], pattern: str) -> int:
    """How many distinct indices ``(\\d+)`` of ``pattern`` the state dict has."""
    regex = re.compile(pattern)
    return len({m.group(1) for k in state if (m := regex.fullmatch(k))})


def _field_options(state: dict[str, Tensor], prefix: str, what: str, default_skips: list[int]) -> dict:
    def shape(name: str) -> tuple[int, ...]:
        if f"{prefix}{name}" not in state:
            raise CheckpointError(f"{what}: no {prefix}{name}; not a GIRAFFE Decoder state dict")
        return tuple(state[f"{prefix}{name}"].shape)

    hidden, encoded = shape("fc_in.weight")
    n_blocks = 1 + _count(state, rf"{re.escape(prefix)}blocks\.(\d+)\.weight")
    n_skips = _count(state, rf"{re.escape(prefix)}fc_z_skips\.(\d+)\.weight")
    skips = [s for s in default_skips if s < n_blocks - 1]
    if len(skips) != n_skips:
        raise CheckpointError(f"{what}: {n_skips} skip connection(s), where GIRAFFE's config has {default_skips}; "
                              "the state dict does not say after which layers")
    if encoded % 6 or shape("fc_view.weight")[1] % 6:
        raise CheckpointError(f"{what}: fc_in reads {encoded} and fc_view {shape('fc_view.weight')[1]} inputs, not "
                              "GIRAFFE's sin/cos encodings of 3D points (6 per octave)")
    return {"hidden_dim": hidden, "n_blocks": n_blocks, "skips": skips, "num_frequencies": encoded // 6,
            "num_view_frequencies": shape("fc_view.weight")[1] // 6, "feature_dim": shape("feat_out.weight")[0],
            "_z_dim": shape("fc_z.weight")[1]}


def _recipe(state: dict[str, Tensor], variant: str, source: str) -> Recipe:
    recipe = giraffe_recipe(variant)
    m = recipe.modules
    objects = _field_options(state, "decoder.", f"{source} (decoder)", m["feature_decoder"].kwargs["skips"])
    background = _field_options(state, "groups.background.decoder.", f"{source} (background_generator)",
                                m["background/feature_decoder"].kwargs["skips"])
    m["stochasticity_mapper"].kwargs.update(object_z_dim=objects.pop("_z_dim"),
                                            background_z_dim=background.pop("_z_dim"))
    m["feature_decoder"].kwargs.update(objects)
    m["background/feature_decoder"].kwargs.update(background)
    layers = range(_count(state, r"upsampler\.conv_layers\.(\d+)\.weight"))
    if not layers or "upsampler.conv_rgb.0.weight" not in state:
        raise CheckpointError(f"{source}: no neural_renderer.conv_layers / conv_rgb (GIRAFFE's NeuralRenderer "
                              "with its RGB skips)")
    img_size = 16 * 2 ** len(layers)  # neural_renderer.py: n_blocks = log2(img_size) - 4
    expected = m["upsampler"].kwargs["out_resolution"]
    if img_size != expected:
        raise CheckpointError(f"{source}: its neural renderer makes {img_size}-px images, the {variant} configuration "
                              f"{expected}-px ones; choose the matching --variant")
    widths = [state[f"upsampler.conv_layers.{k}.weight"].shape[0] for k in layers]
    m["upsampler"].kwargs.update(n_feat=state["upsampler.conv_layers.0.weight"].shape[1], min_feat=min(widths))
    return recipe


def _check_blur(state: dict[str, Tensor], source: str) -> None:
    for name, value in state.items():
        if re.fullmatch(r"neural_renderer\.upsample_(rgb|2)\.1\.f", name) and value.tolist() != [1.0, 2.0, 1.0]:
            raise CheckpointError(f"{source}: {name} is {value.tolist()}, not im2scene/layers.py Blur's [1, 2, 1]")


def generator_state(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """An official ``Generator``'s state dict (keys without the ``generator.`` prefix) in gan3d's names,
    the layers that read an encoded point or direction turned to our axes (:func:`to_our_axes`)."""
    renamed = rename_keys(state, GENERATOR_RENAMES)
    return {k: to_our_axes(v) if _ENCODED_INPUTS.fullmatch(k) else v for k, v in renamed.items()}


def _generator_state(model: dict[str, Tensor], prefix: str, source: str) -> dict[str, Tensor] | None:
    state = {k[len(prefix):]: v for k, v in model.items() if k.startswith(prefix)}
    if not state:
        return None
    _check_blur(state, source)
    return generator_state(state)


class GiraffeImporter(OfficialImporter):
    """autonomousvision/giraffe ``*.pt`` files (``{'model': GIRAFFE.state_dict(), ...}``) -> gan3d ``giraffe``."""

    method = "giraffe"
    formats = ("GIRAFFE .pt (CheckpointIO: torch.save of {'model': state dict of generator, generator_test, "
               "discriminator})")
    repository = "autonomousvision/giraffe"

    def load(self, path: Path, *, variant: str | None = None) -> ImportedCheckpoint:
        path = Path(path)
        source = str(path)
        data = load_pickled(path, KnownClasses(), what="a GIRAFFE checkpoint")
        model = data.get("model") if isinstance(data, dict) else None
        if not isinstance(model, dict) or not any(k.startswith(("generator.", "generator_test.")) for k in model):
            raise CheckpointError(f"{source}: not a GIRAFFE checkpoint (no 'model' state dict with generator weights)")
        variant = _variant(path, variant)
        G = _generator_state(model, "generator.", source)
        G_ema = _generator_state(model, "generator_test.", source)
        recipe = _recipe(G_ema if G_ema is not None else G, variant, source)
        if G is None:
            logger.warning("%s has no training generator: G is the moving average", source)
        elif G_ema is None:
            logger.warning("%s has no generator_test: the imported G_ema is the training generator", source)
        D = {k[len("discriminator."):]: v for k, v in model.items() if k.startswith("discriminator.")} or None
        if D is not None:
            n_layers = len([k for k in D if re.fullmatch(r"blocks\.\d+\.weight", k)])
            d_size = 2 ** (n_layers + 2)  # conv.py: n_layers = log2(img_size) - 2
            if "conv_out.weight" not in D or d_size != recipe.modules["discriminator"].kwargs["img_size"]:
                logger.warning("%s: its discriminator (for %d-px images) does not fit the %s recipe; not imported",
                               source, d_size, variant)
                D = None
            else:
                recipe.modules["discriminator"].kwargs["n_feat"] = int(D["conv_out.weight"].shape[1])
        meta = {"source": source, "sha256": file_sha256(path), "official": self.repository,
                "entries": sorted(k for k in data if isinstance(data[k], dict)),
                "iteration": data.get("it") if isinstance(data.get("it"), int) else None,
                "dropped": ["neural_renderer Blur kernels (constant [1, 2, 1])"],
                "axes": "encoding columns of fc_in, fc_p_skips, fc_view rearranged from GIRAFFE's z-up frames to "
                        "gan3d's y-up frames"}
        return ImportedCheckpoint(recipe=recipe, G=G if G is not None else G_ema, G_ema=G_ema, D=D, meta=meta)
