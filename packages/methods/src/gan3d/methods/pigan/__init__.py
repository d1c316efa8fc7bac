"""pi-GAN (Chan et al. 2021, "pi-GAN: Periodic Implicit Generative Adversarial Networks for 3D-Aware
Image Synthesis"): its recipe, progressive discriminator and objective."""

from __future__ import annotations

from .discriminator import PiGANProgressiveDiscriminator
from .objective import PiGANObjective
from .official import PiGANImporter
from .recipe import pigan_recipe

__all__ = ["PiGANImporter", "PiGANProgressiveDiscriminator", "PiGANObjective", "pigan_recipe", "register"]


def register(registry) -> None:
    """Add pi-GAN's method, discriminator, loss and checkpoint importer to ``registry``."""
    registry.add("method", "pigan", pigan_recipe)
    registry.add("discriminator", "pigan_progressive", PiGANProgressiveDiscriminator)
    registry.add("loss", "pigan", PiGANObjective)
    registry.add("importer", "pigan", PiGANImporter)
