"""StyleSDF (Or-El et al. 2022, "StyleSDF: High-Resolution 3D-Consistent Image and Geometry
Generation"): its recipes, discriminators and objective (its mapping network is gan3d-embedders'
``stylesdf`` stochasticity mapper)."""

from __future__ import annotations

from .image_discriminator import StyleSDFImageDiscriminator
from .objective import StyleSDFObjective
from .official import StyleSDFImporter
from .recipe import stylesdf_recipe
from .volume_discriminator import StyleSDFVolumeDiscriminator

__all__ = ["StyleSDFImageDiscriminator", "StyleSDFImporter", "StyleSDFObjective",
           "StyleSDFVolumeDiscriminator", "stylesdf_recipe", "register"]


def register(registry) -> None:
    """Add StyleSDF's method, discriminators, loss and checkpoint importer to ``registry``."""
    registry.add("method", "stylesdf", stylesdf_recipe)
    registry.add("discriminator", "stylesdf_volume", StyleSDFVolumeDiscriminator)
    registry.add("discriminator", "stylesdf_image", StyleSDFImageDiscriminator)
    registry.add("loss", "stylesdf", StyleSDFObjective)
    registry.add("importer", "stylesdf", StyleSDFImporter)
