"""StyleNeRF (Gu et al. 2022, "StyleNeRF: A Style-based 3D-Aware Generator for High-resolution Image
Synthesis"): its discriminator, NeRF path regularization, schedule and recipe data.

The generator's parts live with their families: the modulated and background NeRF MLPs
(``feature_decoder`` ``stylenerf_mlp``), the NeRF++ background (``point_sampler`` and ``point_embedder``
``inverted_sphere``) and the upsampler (``upsampler`` ``stylenerf``). The method itself is registered once the
generator takes field groups (see :mod:`.recipe`).
"""

from __future__ import annotations

from .discriminator import StyleNeRFDiscriminator
from .recipe import VARIANTS, stylenerf_recipe_data

__all__ = ["StyleNeRFDiscriminator", "stylenerf_recipe_data", "VARIANTS", "register"]


def register(registry) -> None:
    """Add StyleNeRF's discriminator to ``registry``."""
    registry.add("discriminator", "stylenerf", StyleNeRFDiscriminator)
