"""Fixtures of the method tests.

``build_wired``: a phase-A stand-in for Generator v2's build-time wiring, for testing recipes written to the
v2 contract.

The v2 plan (issue 15): the generator hands ``w_dim`` (from the mapper) to the embedder and decoder,
``in_channels`` (from the embedder) to the decoder, and the total of the rows its consumers declare
(``num_ws``) to the mapper. Options listed as pending (modules that accept them only after v2) are left out.
"""

from __future__ import annotations

import inspect

import pytest

from gan3d.core.generator import Generator
from gan3d.core.recipe import Recipe
from gan3d.core.registry import get_registry


def _build(slot: str, name: str, options: dict, wired: dict):
    registry = get_registry()
    cls = registry.get(slot, name)
    accepted = inspect.signature(cls).parameters
    for key, value in wired.items():
        if key in options:
            raise AssertionError(f"{slot}.{key} is wired in Generator v2; the recipe must not set it")
        if key in accepted:
            options = {**options, key: value}
    return registry.build(slot, name, **options)


def build_wired(recipe: Recipe, pending: tuple = ()):
    """``(generator, discriminator, loss)`` of ``recipe`` with v2's wiring applied by hand."""
    options = {slot: dict(spec.kwargs) for slot, spec in recipe.modules.items()}
    for slot, key in pending:
        options[slot].pop(key, None)
    m = recipe.modules
    mapper = _build("stochasticity_mapper", m["stochasticity_mapper"].name, options["stochasticity_mapper"], {})
    embedder = _build("point_embedder", m["point_embedder"].name, options["point_embedder"], {"w_dim": mapper.w_dim})
    decoder = _build("feature_decoder", m["feature_decoder"].name, options["feature_decoder"],
                     {"in_channels": embedder.out_channels, "w_dim": mapper.w_dim})
    num_ws = sum(getattr(x, "num_ws", 0) or 0 for x in (embedder, decoder))
    mapper = _build("stochasticity_mapper", m["stochasticity_mapper"].name, options["stochasticity_mapper"],
                    {"num_ws": max(num_ws, 1)})
    others = {slot: get_registry().build(slot, m[slot].name, **options[slot])
              for slot in ("pose_sampler", "point_sampler", "volume_renderer", "upsampler")}
    generator = Generator(mapper, others["pose_sampler"], others["point_sampler"], embedder, decoder,
                          others["volume_renderer"], others["upsampler"], **recipe.generator)
    discriminator = get_registry().build("discriminator", m["discriminator"].name, **options["discriminator"])
    loss = get_registry().build("loss", m["loss"].name, **options["loss"])
    return generator, discriminator, loss


@pytest.fixture(name="build_wired")
def build_wired_fixture():
    """:func:`build_wired`, for tests of recipes written to the v2 contract."""
    return build_wired
