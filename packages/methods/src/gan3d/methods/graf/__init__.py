"""GRAF (Schwarz et al. 2020, "GRAF: Generative Radiance Fields for 3D-Aware Image Synthesis"): its patch
discriminator, objective, patch schedule and recipes. The generator's modules live in gan3d-embedders
(``identity`` mapper, ``coordinate`` embedder, ``graf_nerf`` decoder), gan3d-samplers and gan3d-renderers.

The method itself (``graf_recipe``) is registered once Generator v2 wires its recipes (issue 16, phase B)."""

from __future__ import annotations

from .discriminator import GRAFPatchDiscriminator
from .objective import GRAFObjective
from .recipe import graf_recipe

__all__ = ["GRAFPatchDiscriminator", "GRAFObjective", "graf_recipe", "register"]


def register(registry) -> None:
    """Add GRAF's discriminator and loss to ``registry``."""
    registry.add("discriminator", "graf_patch", GRAFPatchDiscriminator)
    registry.add("loss", "graf", GRAFObjective)
