"""GRAM's released checkpoints (microsoft/GRAM README: ``pretrained_models/<CONFIG>/`` with ``generator.pth``,
``ema.pth``, and, from training, ``discriminator.pth``) as gan3d checkpoints.

``training_loop.py`` saves ``generator.pth`` and ``discriminator.pth`` as state dicts
(``torch.save(module.state_dict())``) and ``ema.pth`` as the whole ``torch_ema`` ``ExponentialMovingAverage``
of the generator's parameters; ``render_multiview_images.py`` and ``fid_evaluation.py`` build the
config's ``GramGenerator``, load ``generator.pth`` and ``ema.copy_to`` the parameters that require grad,
in ``parameters()`` order, from the ``ema.pth`` beside it (``generator_file.replace('generator', 'ema')``).
The importer does the same: ``G`` is ``generator.pth``, ``G_ema`` those weights with the average's shadow
parameters put in (GRAM's generator has no buffers, so its state dict lists exactly its parameters, in
``parameters()`` order), ``D`` the ``discriminator.pth`` beside it. All files are read with the restricted
unpickler; nothing of GRAM runs.

The config (field of view, ray range, levels, box sizes) is not in the files; it is the variant's
(``--variant ffhq256|cats256|carla128``); without one the manifold predictor's width tells FFHQ (128),
Cats (64) and CARLA (256) apart (``configs.py`` ``hidden_dim_sample``).

State-dict map (official -> gan3d ``gram``):

===================================================  ============================================
``representation.sample_network.network.N.*``        ``point_sampler.scalar_field.network.N.*``
``representation.sample_network.output_layer.*``     ``point_sampler.scalar_field.output_layer.*``
``representation.rf_network.mapping_network.network.N.*``   ``mapper.network.N.*``
``representation.rf_network.network.I.layer.*``      ``decoder.film_layers.I.layer.*``
``representation.rf_network.color_layer.0.layer.*``  ``decoder.color_film.layer.*``
``representation.rf_network.output_sigma.I.*``       ``decoder.density_heads.I.*``
``representation.rf_network.output_color.I.*``       ``decoder.color_heads.I.*``
(``avg_frequencies``, not saved)                     ``mapper.w_avg``: the mean of 10000 mapped draws, as
                                                     ``GramRF.get_avg_w`` computes before truncated renders
``layers.I.network.{0,2}.conv.*``                    ``blocks.I.residual.{0,2}.conv.*`` (discriminator)
``layers.I.proj.*``                                  ``blocks.I.skip.*``
``fromRGB.model.0.*``                                ``from_rgb.0.*``
``final_layer.*``                                    ``head.*``, output rows 1 and 2 swapped: GRAM
                                                     predicts ``(phi, theta)``, gan3d ``(theta, phi)``
===================================================  ============================================
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import torch

from gan3d.core.checkpoint import CheckpointError
from gan3d.core.official import KnownClasses, OfficialObject, load_pickled
from gan3d.core.official.importer import ImportedCheckpoint, OfficialImporter, file_sha256, rename_keys
from gan3d.core.recipe import Recipe

from ..pigan.official import with_w_avg  # GramRF.get_avg_w is pi-GAN's generate_avg_frequencies
from .recipe import VARIANTS, gram_recipe

__all__ = ["GRAMImporter", "KNOWN_CLASSES", "GENERATOR_RENAMES", "DISCRIMINATOR_RENAMES", "discriminator_state"]

logger = logging.getLogger(__name__)

#: The classes GRAM's files name: only torch_ema's moving average (the generator and discriminator are
#: state dicts of plain tensors).
KNOWN_CLASSES = KnownClasses(objects={"torch_ema.ema.ExponentialMovingAverage", "torch_ema.ExponentialMovingAverage"})

_REP = r"representation\."
GENERATOR_RENAMES: list[tuple[str, str | None]] = [
    (_REP + r"sample_network\.network\.(\d+)\.(weight|bias)", r"point_sampler.scalar_field.network.\1.\2"),
    (_REP + r"sample_network\.output_layer\.(weight|bias)", r"point_sampler.scalar_field.output_layer.\1"),
    (_REP + r"rf_network\.mapping_network\.network\.(\d+)\.(weight|bias)", r"mapper.network.\1.\2"),
    (_REP + r"rf_network\.network\.(\d+)\.layer\.(weight|bias)", r"decoder.film_layers.\1.layer.\2"),
    (_REP + r"rf_network\.color_layer\.0\.layer\.(weight|bias)", r"decoder.color_film.layer.\1"),
    (_REP + r"rf_network\.output_sigma\.(\d+)\.(weight|bias)", r"decoder.density_heads.\1.\2"),
    (_REP + r"rf_network\.output_color\.(\d+)\.(weight|bias)", r"decoder.color_heads.\1.\2"),
]

DISCRIMINATOR_RENAMES: list[tuple[str, str | None]] = [
    (r"layers\.(\d+)\.network\.([02])\.conv\.(weight|bias)", r"blocks.\1.residual.\2.conv.\3"),
    (r"layers\.(\d+)\.proj\.(weight|bias)", r"blocks.\1.skip.\2"),
    (r"fromRGB\.model\.0\.(weight|bias)", r"from_rgb.0.\1"),
    (r"final_layer\.(weight|bias)", r"head.\1"),
]

#: configs.py hidden_dim_sample of each released config.
_VARIANT_OF_FIELD_WIDTH = {128: "ffhq256", 64: "cats256", 256: "carla128"}


def _beside(path: Path, name: str) -> Path:
    """``name`` in place of ``generator`` in the file name (render_multiview_images.py:
    ``opt.generator_file.replace('generator', name)``, taken on the file name)."""
    return path.with_name(path.name.replace("generator", name.removesuffix(".pth"), 1))


def _state_dict(obj, source: str, what: str) -> dict[str, torch.Tensor]:
    """The tensors of a ``torch.save(module.state_dict())`` file."""
    if not isinstance(obj, dict) or not obj or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                       for k, v in obj.items()):
        kind = type(obj).__name__ if not isinstance(obj, OfficialObject) else obj.class_name
        raise CheckpointError(f"{source}: holds a {kind}, not a state dict of tensors (GRAM's {what})")
    return dict(obj)


def _linear_widths(state: dict[str, torch.Tensor], prefix: str, suffix: str = "weight") -> list[tuple[int, int]]:
    """``(out, in)`` of the ``prefix<N>.<suffix>`` matrices, by ``N``."""
    pattern = re.compile(re.escape(prefix) + r"(\d+)\." + re.escape(suffix))
    found = sorted((int(m.group(1)), tuple(v.shape)) for k, v in state.items() if (m := pattern.fullmatch(k)))
    return [shape for _, shape in found]  # type: ignore[misc]


def _recipe(state: dict[str, torch.Tensor], variant: str | None, source: str) -> Recipe:
    field = _linear_widths(state, "representation.sample_network.network.")
    film = _linear_widths(state, "representation.rf_network.network.", "layer.weight")
    mapping = _linear_widths(state, "representation.rf_network.mapping_network.network.")
    if not field or not film or not mapping:
        raise CheckpointError(f"{source}: no representation.sample_network / rf_network weights; not a GRAM "
                              "GramGenerator state dict (generator.pth)")
    field_width, hidden = field[0][0], film[0][0]
    if variant is None:
        variant = _VARIANT_OF_FIELD_WIDTH.get(field_width)
        if variant is None:
            raise CheckpointError(f"{source}: a manifold predictor of width {field_width} matches no released "
                                  f"config (FFHQ 128, Cats 64, CARLA 256); give --variant")
        logger.info("GRAM config: %s (from the manifold predictor's width; --variant overrides)", variant)
    if variant not in VARIANTS:
        raise CheckpointError(f"GRAM has no released config {variant!r}; variants: {', '.join(VARIANTS)}")
    recipe = gram_recipe(variant)
    m = recipe.modules
    # CustomMappingNetwork(z_dim, 256, (8 + 1) * hidden * 2): z_dim from its first layer; film_dim wires
    # the decoder's width.
    m["stochasticity_mapper"].kwargs.update(z_dim=int(mapping[0][1]), hidden_dim=int(mapping[0][0]),
                                            film_dim=int(hidden))
    m["feature_decoder"].kwargs.update(num_layers=len(film))
    m["point_sampler"].kwargs.update(hidden_dim=int(field_width), num_layers=len(field))
    return recipe


def _ema_weights(state: dict[str, torch.Tensor], ema: OfficialObject, source: str) -> dict[str, torch.Tensor]:
    """``state`` with torch_ema's shadow parameters copied in, as ``ema.copy_to([p for p in
    G.parameters() if p.requires_grad])`` does: GramGenerator has no buffers and trains every parameter,
    so its state dict's order is that of ``parameters()``."""
    shadow = ema.get("shadow_params")
    if not isinstance(shadow, list):
        raise CheckpointError(f"{source}: not a torch_ema ExponentialMovingAverage (no shadow_params list)")
    if len(shadow) != len(state):
        raise CheckpointError(f"{source}: {len(shadow)} averaged parameters for a generator with {len(state)}; "
                              "the files do not belong together")
    out = dict(state)
    for (name, p), s in zip(state.items(), shadow, strict=True):
        if not isinstance(s, torch.Tensor) or s.shape != p.shape:
            raise CheckpointError(f"{source}: the average of {name} has shape {tuple(getattr(s, 'shape', ()))}, "
                                  f"the parameter {tuple(p.shape)}")
        out[name] = s.detach()
    return out


def discriminator_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """GramDiscriminator's state dict renamed, the pose rows of ``final_layer`` in gan3d's order."""
    out = rename_keys(state, DISCRIMINATOR_RENAMES)
    for key in ("head.weight", "head.bias"):
        if key in out and out[key].shape[0] == 3:
            out[key] = out[key][[0, 2, 1]].clone()
    return out


class GRAMImporter(OfficialImporter):
    """microsoft/GRAM ``generator.pth`` (+ ``ema.pth``, ``discriminator.pth`` beside it)."""

    method = "gram"
    formats = "GRAM generator.pth (GramGenerator state dict; ema.pth and discriminator.pth beside it)"
    repository = "microsoft/GRAM"

    def load(self, path: Path, *, variant: str | None = None) -> ImportedCheckpoint:
        path = Path(path)
        source = str(path)
        state = _state_dict(load_pickled(path, KNOWN_CLASSES, what="a GRAM generator.pth"), source, "generator.pth")
        recipe = _recipe(state, variant, source)
        files = {"generator": source}
        G_state = with_w_avg(recipe, rename_keys(state, GENERATOR_RENAMES))
        G_ema_state = None
        ema_path, d_path = _beside(path, "ema.pth"), _beside(path, "discriminator.pth")
        if ema_path.is_file() and ema_path != path:
            ema = load_pickled(ema_path, KNOWN_CLASSES, what="a GRAM ema.pth")
            if not isinstance(ema, OfficialObject) or ema.class_name != "ExponentialMovingAverage":
                raise CheckpointError(f"{ema_path}: holds {ema!r}, not a torch_ema ExponentialMovingAverage")
            G_ema_state = with_w_avg(recipe, rename_keys(_ema_weights(state, ema, str(ema_path)), GENERATOR_RENAMES))
            files["ema"] = str(ema_path)
        else:
            logger.warning("no %s beside %s: the imported G_ema is the training generator", ema_path.name, path)
        D_state = None
        if d_path.is_file() and d_path != path:
            D = load_pickled(d_path, KNOWN_CLASSES, what="a GRAM discriminator.pth")
            D_state = discriminator_state(_state_dict(D, str(d_path), "discriminator.pth"))
            files["discriminator"] = str(d_path)
        meta = {"source": source, "sha256": file_sha256(path), "official": self.repository, "files": files,
                "w_avg": "re-estimated from 10000 draws of z (seed 0), as GramRF.get_avg_w does"}
        return ImportedCheckpoint(recipe=recipe, G=G_state, G_ema=G_ema_state, D=D_state, meta=meta)
