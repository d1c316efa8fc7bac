"""StyleSDF (Or-El et al. 2022, "StyleSDF: High-Resolution 3D-Consistent Image and Geometry
Generation"): its recipes, mapping network, discriminators and objective."""

from __future__ import annotations

from .image_discriminator import StyleSDFImageDiscriminator
from .mapping import StyleSDFMappingNetwork
from .objective import StyleSDFObjective
from .recipe import stylesdf_recipe
from .volume_discriminator import StyleSDFVolumeDiscriminator

__all__ = ["StyleSDFImageDiscriminator", "StyleSDFMappingNetwork", "StyleSDFObjective",
           "StyleSDFVolumeDiscriminator", "stylesdf_recipe", "register"]


def register(registry) -> None:
    """Add StyleSDF's method, mapper, discriminators and loss to ``registry``."""
    registry.add("method", "stylesdf", stylesdf_recipe)
    registry.add("stochasticity_mapper", "stylesdf", StyleSDFMappingNetwork)
    registry.add("discriminator", "stylesdf_volume", StyleSDFVolumeDiscriminator)
    registry.add("discriminator", "stylesdf_image", StyleSDFImageDiscriminator)
    registry.add("loss", "stylesdf", StyleSDFObjective)
