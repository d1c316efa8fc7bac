"""VolumeGAN (Xu et al., CVPR 2022, "3D-aware Image Synthesis via Learning Structural and Textural
Representations"): its discriminator, objective, recipes and official-weight conversion (its feature
volume, point MLP and neural renderer are gan3d-embedders' ``volume`` point embedder and
``volumegan_mlp`` decoder and gan3d-renderers' ``volumegan_neural_renderer`` upsampler)."""

from __future__ import annotations

from .discriminator import VolumeGANDiscriminator
from .objective import VolumeGANObjective
from .official import VolumeGANImporter, convert_official_state_dict
from .recipe import volumegan_recipe

__all__ = ["VolumeGANDiscriminator", "VolumeGANImporter", "VolumeGANObjective", "convert_official_state_dict",
           "volumegan_recipe", "register"]


def register(registry) -> None:
    """Add VolumeGAN's method, discriminator, loss and checkpoint importer to ``registry``."""
    registry.add("method", "volumegan", volumegan_recipe)
    registry.add("discriminator", "volumegan", VolumeGANDiscriminator)
    registry.add("loss", "volumegan", VolumeGANObjective)
    registry.add("importer", "volumegan", VolumeGANImporter)
