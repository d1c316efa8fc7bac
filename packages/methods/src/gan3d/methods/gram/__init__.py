"""GRAM (Deng et al. 2022, "GRAM: Generative Radiance Manifolds for 3D-Aware Image Generation"): its
recipes, discriminator and objective. The manifold point sampler is in gan3d-samplers (``manifold``),
the radiance generator in gan3d-embedders (``gram_radiance``)."""

from __future__ import annotations

from .discriminator import GRAMDiscriminator, gram_channels
from .objective import GRAMObjective
from .recipe import gram_recipe

__all__ = ["GRAMDiscriminator", "GRAMObjective", "gram_recipe", "gram_channels", "register"]


def register(registry) -> None:
    """Add GRAM's method, discriminator and loss to ``registry``."""
    registry.add("method", "gram", gram_recipe)
    registry.add("discriminator", "gram", GRAMDiscriminator)
    registry.add("loss", "gram", GRAMObjective)
