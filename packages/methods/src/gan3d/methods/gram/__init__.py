"""GRAM (Deng et al. 2022, "GRAM: Generative Radiance Manifolds for 3D-Aware Image Generation"): its
recipes, discriminator and objective. The manifold point sampler is in gan3d-samplers (``manifold``),
the radiance generator in gan3d-embedders (``gram_radiance``)."""

from __future__ import annotations

from .data import register_label_formats
from .discriminator import GRAMDiscriminator, gram_channels
from .objective import GRAMObjective
from .official import GRAMImporter
from .recipe import gram_recipe

__all__ = ["GRAMDiscriminator", "GRAMObjective", "GRAMImporter", "gram_recipe", "gram_channels", "register"]


def register(registry) -> None:
    """Add GRAM's method, discriminator, loss and importer to ``registry``, and its data sets' label formats
    (``gram_ffhq``, ``gram_cats``, ``gram_carla``) to the data readers."""
    registry.add("method", "gram", gram_recipe)
    registry.add("discriminator", "gram", GRAMDiscriminator)
    registry.add("loss", "gram", GRAMObjective)
    registry.add("importer", "gram", GRAMImporter)
    register_label_formats()
