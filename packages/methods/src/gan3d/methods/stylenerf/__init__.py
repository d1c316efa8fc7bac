"""StyleNeRF (Gu et al. 2022, "StyleNeRF: A Style-based 3D-Aware Generator for High-resolution Image
Synthesis"): its recipes, discriminator, objective and checkpoint importer.

The generator's parts live with their families: the modulated and background NeRF MLPs
(``feature_decoder`` ``stylenerf_mlp``), the NeRF++ background (``point_sampler`` and ``point_embedder``
``inverted_sphere``, a field group ``background`` with its own samples) and the progressively grown upsampler
(``upsampler`` ``stylenerf``).
"""

from __future__ import annotations

from .discriminator import StyleNeRFDiscriminator
from .objective import StyleNeRFObjective
from .official import StyleNeRFImporter
from .recipe import VARIANTS, stylenerf_recipe

__all__ = ["StyleNeRFDiscriminator", "StyleNeRFImporter", "StyleNeRFObjective", "stylenerf_recipe", "VARIANTS",
           "register"]


def register(registry) -> None:
    """Add StyleNeRF's method, discriminator, loss and checkpoint importer to ``registry``."""
    registry.add("method", "stylenerf", stylenerf_recipe)
    registry.add("discriminator", "stylenerf", StyleNeRFDiscriminator)
    registry.add("loss", "stylenerf", StyleNeRFObjective)
    registry.add("importer", "stylenerf", StyleNeRFImporter)
