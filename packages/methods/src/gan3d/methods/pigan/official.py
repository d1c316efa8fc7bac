"""pi-GAN's released checkpoints (marcoamonteiro/pi-GAN README: a folder per data set with
``generator.pth``, ``ema.pth``, ``discriminator.pth``, ...) as gan3d checkpoints.

train.py saves whole modules with ``torch.save``: the generator (``ImplicitGenerator3d`` around a
``TALLSIREN`` or ``SPATIALSIRENBASELINE``), the discriminator, and ``torch_ema``'s
``ExponentialMovingAverage`` of the generator's parameters; the render scripts load the generator,
then ``ema.copy_to(generator.parameters())`` from the ``ema.pth`` beside it. The importer does the
same: ``G`` is ``generator.pth``, ``G_ema`` the generator with the moving average's shadow parameters
put in, in ``parameters()`` order (when ``<prefix>ema.pth`` sits beside ``<prefix>generator.pth``),
``D`` the ``<prefix>discriminator.pth`` beside it. All are read with the restricted unpickler.

The curriculum (field of view, ray range, sample counts, pose distribution) is not in the files; it
is the variant's (``--variant celeba|carla|cats``); without one, the discriminator's class (or the
SIREN's) tells CelebA, CARLA and Cats apart.

State-dict map (official -> gan3d ``pigan``):

=======================================  ===================================
``siren.mapping_network.network.N.*``    ``mapper.network.N.*``
``siren.network.I.layer.*``              ``decoder.film_layers.I.layer.*``
``siren.final_layer.*``                  ``decoder.density_head.*``
``siren.color_layer_sine.layer.*``       ``decoder.color_film.layer.*``
``siren.color_layer_linear.0.*``         ``decoder.color_head.*``
(``avg_frequencies``, not a buffer)      ``mapper.w_avg``: re-estimated from 10000 draws, as
                                         ``staged_forward`` does before each render
``layers.I.network.{0,2}[.conv].*``      ``blocks.I.residual.{0,2}[.conv].*`` (discriminator)
``layers.I.proj.*``                      ``blocks.I.skip.*``
``fromRGB.I.model.0.*``                  ``from_rgb.I.0.*``
``final_layer.*``                        ``head.*``
``pose_layer.*`` (Cats' D, unused)       (dropped)
=======================================  ===================================
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from gan3d.core.checkpoint import CheckpointError
from gan3d.core.official import KnownClasses, OfficialObject, load_pickled, torch_nn
from gan3d.core.official.importer import ImportedCheckpoint, OfficialImporter, file_sha256, rename_keys
from gan3d.core.recipe import Recipe

from .recipe import VARIANTS, pigan_recipe

__all__ = ["PiGANImporter", "KNOWN_CLASSES", "GENERATOR_RENAMES", "DISCRIMINATOR_RENAMES"]

logger = logging.getLogger(__name__)

_SIREN = "siren.siren"
_SG = "discriminators.sgdiscriminators"
_PD = "discriminators.discriminators"

#: Every class pi-GAN's torch.save files name (generators/, siren/, discriminators/, torch_ema).
KNOWN_CLASSES = KnownClasses(objects={
    "generators.generators.ImplicitGenerator3d",
    f"{_SIREN}.TALLSIREN", f"{_SIREN}.SPATIALSIRENBASELINE", f"{_SIREN}.FiLMLayer",
    f"{_SIREN}.CustomMappingNetwork", f"{_SIREN}.UniformBoxWarp", f"{_SIREN}.Sine",
    "torch_ema.ema.ExponentialMovingAverage", "torch_ema.ExponentialMovingAverage",
    f"{_SG}.CCSEncoderDiscriminator", f"{_SG}.StridedDiscriminator", f"{_SG}.ResidualCCBlock",
    f"{_SG}.StridedResidualConvBlock", f"{_SG}.CoordConv", f"{_SG}.AddCoords", f"{_SG}.AdapterBlock",
    f"{_PD}.ProgressiveEncoderDiscriminator", f"{_PD}.ResidualCoordConvBlock", f"{_PD}.CoordConv",
    f"{_PD}.AddCoords", f"{_PD}.AdapterBlock",
} | torch_nn("Linear", "Sequential", "ModuleList", "LeakyReLU", "Sigmoid", "Conv2d"))

GENERATOR_RENAMES: list[tuple[str, str | None]] = [
    (r"siren\.mapping_network\.network\.(\d+)\.(weight|bias)", r"mapper.network.\1.\2"),
    (r"siren\.network\.(\d+)\.layer\.(weight|bias)", r"decoder.film_layers.\1.layer.\2"),
    (r"siren\.final_layer\.(weight|bias)", r"decoder.density_head.\1"),
    (r"siren\.color_layer_sine\.layer\.(weight|bias)", r"decoder.color_film.layer.\1"),
    (r"siren\.color_layer_linear\.0\.(weight|bias)", r"decoder.color_head.\1"),
]

DISCRIMINATOR_RENAMES: list[tuple[str, str | None]] = [
    (r"layers\.(\d+)\.network\.([02])\.(conv\.)?(weight|bias)", r"blocks.\1.residual.\2.\3\4"),
    (r"layers\.(\d+)\.proj\.(weight|bias)", r"blocks.\1.skip.\2"),
    (r"fromRGB\.(\d+)\.model\.0\.(weight|bias)", r"from_rgb.\1.0.\2"),
    (r"final_layer\.(weight|bias)", r"head.\1"),
    # StridedDiscriminator (Cats) builds a Linear(2, 400) its forward never uses.
    (r"pose_layer\.(weight|bias)", None),
]

#: curriculums.py: each data set's discriminator and SIREN.
_VARIANT_OF_DISCRIMINATOR = {"CCSEncoderDiscriminator": "celeba", "ProgressiveEncoderDiscriminator": "carla",
                             "StridedDiscriminator": "cats"}
_VARIANT_OF_SIREN = {"SPATIALSIRENBASELINE": "celeba", "TALLSIREN": "carla"}


def _beside(path: Path, name: str) -> Path:
    """``<prefix>name`` beside ``<prefix>generator.pth`` (render_multiview_images.py:
    ``opt.path.split('generator')[0] + 'ema.pth'``, taken on the file name)."""
    return path.with_name(path.name.split("generator")[0] + name)


def _recipe(G: OfficialObject, D: OfficialObject | None, variant: str | None, source: str) -> Recipe:
    siren = G.submodule("siren")
    if siren.class_name not in _VARIANT_OF_SIREN:
        raise CheckpointError(f"{source}: the generator's SIREN is {siren.class_name}; gan3d has pi-GAN's "
                              f"{' and '.join(_VARIANT_OF_SIREN)}")
    if variant is None:
        variant = _VARIANT_OF_DISCRIMINATOR.get(D.class_name) if D is not None else None
        variant = variant or _VARIANT_OF_SIREN[siren.class_name]
        logger.info("pi-GAN curriculum: %s (from the checkpoint's classes; --variant overrides)", variant)
    if variant not in VARIANTS:
        raise CheckpointError(f"pi-GAN has no released curriculum {variant!r}; variants: {', '.join(VARIANTS)}")
    recipe = pigan_recipe(variant)
    layers = len(siren.submodule("network").children())
    hidden = int(siren.require("hidden_dim"))
    mapping = siren.submodule("mapping_network.network").children()
    first = mapping["0"].state_dict()["weight"]
    warp = siren.children().get("gridwarper")
    m = recipe.modules
    m["stochasticity_mapper"].kwargs.update(z_dim=int(G.require("z_dim")), hidden_dim=int(first.shape[0]),
                                            num_ws=layers + 1, film_dim=hidden)
    m["feature_decoder"].kwargs.update(in_channels=3, hidden_dim=hidden, num_layers=layers)
    # UniformBoxWarp(s) scales points by 2 / s; TALLSIREN has none (scale 1, box_warp 2).
    m["point_embedder"].kwargs.update(box_warp=2.0 / float(warp.require("scale_factor")) if warp else 2.0)
    return recipe


def _ema_weights(G: OfficialObject, ema: OfficialObject, source: str) -> dict[str, torch.Tensor]:
    """G's state dict with torch_ema's shadow parameters copied in, as ``ema.copy_to(G.parameters())``
    does (torch_ema 0.2: zip(shadow_params, parameters), only where ``requires_grad``)."""
    shadow = ema.get("shadow_params")
    if not isinstance(shadow, list):
        raise CheckpointError(f"{source}: not a torch_ema ExponentialMovingAverage (no shadow_params list)")
    state = dict(G.state_dict())
    named = G.named_parameters()
    trained = [(n, p) for n, p in named if p.requires_grad]
    if len(shadow) != len(trained) or len(trained) != len(named):
        raise CheckpointError(f"{source}: {len(shadow)} averaged parameters for a generator with {len(named)} "
                              f"({len(trained)} trainable); the files do not belong together")
    for (name, p), s in zip(named, shadow, strict=True):
        if not isinstance(s, torch.Tensor) or s.shape != p.shape:
            raise CheckpointError(f"{source}: the average of {name} has shape {getattr(s, 'shape', None)}, "
                                  f"the parameter {tuple(p.shape)}")
        state[name] = s.detach()
    return state


def with_w_avg(recipe: Recipe, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Add ``mapper.w_avg``: the mean of 10000 mapped draws (pi-GAN's generate_avg_frequencies; GRAM's
    GramRF.get_avg_w is the same and its importer calls this)."""
    from gan3d.core.registry import get_registry

    spec = recipe.modules["stochasticity_mapper"]
    mapper = get_registry().build("stochasticity_mapper", spec.name, **{**spec.kwargs, "w_avg_samples": 0})
    mapping = {k[len("mapper."):]: v for k, v in state.items() if k.startswith("mapper.network.")}
    mapper.load_state_dict({**mapping, "w_avg": mapper.w_avg}, strict=True)
    mapper.estimate_w_avg(10000, generator=torch.Generator().manual_seed(0))
    return {**state, "mapper.w_avg": mapper.w_avg.detach().clone()}


class PiGANImporter(OfficialImporter):
    """marcoamonteiro/pi-GAN ``generator.pth`` (+ ``ema.pth``, ``discriminator.pth`` beside it)."""

    method = "pigan"
    formats = "pi-GAN generator.pth (torch.save of ImplicitGenerator3d; ema.pth and discriminator.pth beside it)"
    repository = "marcoamonteiro/pi-GAN"

    def load(self, path: Path, *, variant: str | None = None) -> ImportedCheckpoint:
        path = Path(path)
        source = str(path)
        G = load_pickled(path, KNOWN_CLASSES, what="a pi-GAN generator.pth")
        if not isinstance(G, OfficialObject) or G.class_name != "ImplicitGenerator3d":
            raise CheckpointError(f"{source}: holds {G!r}, not a pi-GAN ImplicitGenerator3d (generator.pth)")
        files = {"generator": source}
        ema_path, d_path = _beside(path, "ema.pth"), _beside(path, "discriminator.pth")
        D = None
        if d_path.is_file() and d_path != path:
            D = load_pickled(d_path, KNOWN_CLASSES, what="a pi-GAN discriminator.pth")
            if not isinstance(D, OfficialObject) or D.class_name not in _VARIANT_OF_DISCRIMINATOR:
                raise CheckpointError(f"{d_path}: holds {D!r}, not a pi-GAN discriminator")
            files["discriminator"] = str(d_path)
        recipe = _recipe(G, D, variant, source)
        if D is not None and _VARIANT_OF_DISCRIMINATOR[D.class_name] != recipe.variant:
            logger.warning("%s is a %s, the discriminator of %s, not of the %s curriculum; not imported", d_path,
                           D.class_name, _VARIANT_OF_DISCRIMINATOR[D.class_name], recipe.variant)
            D = None
            del files["discriminator"]
        G_state = with_w_avg(recipe, rename_keys(G.state_dict(), GENERATOR_RENAMES))
        G_ema_state = None
        if ema_path.is_file() and ema_path != path:
            ema = load_pickled(ema_path, KNOWN_CLASSES, what="a pi-GAN ema.pth")
            if not isinstance(ema, OfficialObject) or ema.class_name != "ExponentialMovingAverage":
                raise CheckpointError(f"{ema_path}: holds {ema!r}, not a torch_ema ExponentialMovingAverage")
            G_ema_state = with_w_avg(recipe, rename_keys(_ema_weights(G, ema, str(ema_path)), GENERATOR_RENAMES))
            files["ema"] = str(ema_path)
        else:
            logger.warning("no %s beside %s: the imported G_ema is the training generator", ema_path.name, path)
        meta = {"source": source, "sha256": file_sha256(path), "official": self.repository, "files": files,
                "official_classes": {"G": G.class_name, "siren": G.submodule("siren").class_name,
                                     **({"D": D.class_name} if D is not None else {})},
                "w_avg": "re-estimated from 10000 draws of z (seed 0), as staged_forward does"}
        return ImportedCheckpoint(recipe=recipe, G=G_state, G_ema=G_ema_state,
                                  D=rename_keys(D.state_dict(), DISCRIMINATOR_RENAMES) if D is not None else None,
                                  meta=meta)
