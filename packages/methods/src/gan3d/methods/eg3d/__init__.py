"""EG3D (Chan et al. 2022, "Efficient Geometry-aware 3D Generative Adversarial Networks"): its
recipes, dual discriminator and objective."""

from __future__ import annotations

from .dual_discriminator import EG3DDualDiscriminator
from .objective import EG3DObjective
from .official import EG3DImporter
from .recipe import eg3d_recipe

__all__ = ["EG3DDualDiscriminator", "EG3DImporter", "EG3DObjective", "eg3d_recipe", "register"]


def register(registry) -> None:
    """Add EG3D's method, discriminator, loss and checkpoint importer to ``registry``."""
    registry.add("method", "eg3d", eg3d_recipe)
    registry.add("discriminator", "eg3d_dual", EG3DDualDiscriminator)
    registry.add("loss", "eg3d", EG3DObjective)
    registry.add("importer", "eg3d", EG3DImporter)
