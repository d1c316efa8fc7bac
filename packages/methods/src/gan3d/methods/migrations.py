"""Checkpoints written before the Generator v2 contracts (format 1), brought up to date.

* GIRAFFE: its whole scene lived in ``ws`` columns and one ``giraffe_composite`` decoder held both MLPs.
  Now the ``giraffe`` mapper returns a scene latent, the objects are the ``main`` field group and the
  background the ``background`` group, each a ``giraffe_field`` decoder on the ``coordinate`` embedder,
  and the volume renderer composes them (adding the density noise the old decoder added). The weights
  move from ``decoder.object_field.*`` to ``decoder.*`` and from ``decoder.background_field.*`` to
  ``groups.background.decoder.*``; the images are the same.
* StyleSDF: ``loss.renderer_checkpoint`` became ``training.init_from`` (a trainer option).
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["migrate_v1"]

_RENAMES = {"decoder.object_field.": "decoder.", "decoder.background_field.": "groups.background.decoder."}


def _giraffe_modules(modules: dict[str, Any]) -> None:
    mapper = modules["stochasticity_mapper"]
    decoder = modules.pop("feature_decoder")
    options = decoder.get("kwargs", {})
    mapper.setdefault("kwargs", {})["box_padding"] = float(options.get("box_padding", 0.1))
    common = {"feature_dim": options.get("feature_dim", 128), "num_frequencies": options.get("num_frequencies", 10),
              "num_view_frequencies": options.get("num_view_frequencies", 4)}

    def field(prefix: str, defaults: dict[str, Any]) -> dict[str, Any]:
        return {"name": "giraffe_field", "kwargs": {
            "hidden_dim": options.get(f"{prefix}_hidden_dim", defaults["hidden_dim"]),
            "n_blocks": options.get(f"{prefix}_blocks", defaults["n_blocks"]),
            "skips": list(options.get(f"{prefix}_skips", defaults["skips"])),
            "downscale": float(options.get(f"{prefix}_downscale", defaults["downscale"])), **common}}

    from .giraffe.recipe import BACKGROUND_FIELD, OBJECT_FIELD

    modules["point_embedder"] = {"name": "coordinate", "kwargs": {"box_warp": 2.0}}
    modules["feature_decoder"] = field("object", OBJECT_FIELD)
    modules["background/point_embedder"] = {"name": "coordinate", "kwargs": {"box_warp": 2.0}}
    modules["background/feature_decoder"] = field("background", BACKGROUND_FIELD)
    renderer = modules["volume_renderer"].setdefault("kwargs", {})
    renderer["noise_std"] = float(options.get("noise_std", 1.0))
    modules["upsampler"].get("kwargs", {}).pop("in_channels", None)


def _rename(weights: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in weights.items():
        for old, new in _RENAMES.items():
            if key.startswith(old):
                key = new + key[len(old):]
                break
        out[key] = value
    return out


def migrate_v1(state: dict[str, Any]) -> None:
    """Format 1 -> 2 for gan3d-methods' recipes (see the module docstring); in place."""
    recipe = json.loads(state["recipe"])
    modules = recipe.get("modules", {})
    if modules.get("feature_decoder", {}).get("name") == "giraffe_composite":
        _giraffe_modules(modules)
        for key in ("G", "G_ema"):
            if isinstance(state.get(key), dict):
                state[key] = _rename(state[key])
    loss = modules.get("loss", {})
    if loss.get("name") == "stylesdf":
        checkpoint = loss.get("kwargs", {}).pop("renderer_checkpoint", "")
        training = recipe.setdefault("training", {})
        if checkpoint and "init_from" not in training:
            training["init_from"] = {"checkpoint": checkpoint, "weights": "G_ema", "slots": [
                "stochasticity_mapper", "point_embedder", "feature_decoder", "volume_renderer"]}
    state["recipe"] = json.dumps(recipe)
