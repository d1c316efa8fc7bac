"""GRAF (Schwarz et al. 2020, "GRAF: Generative Radiance Fields for 3D-Aware Image Synthesis"): its patch
discriminator, objective, patch schedule and recipes. The generator's modules live in gan3d-embedders
(``identity`` mapper, ``coordinate`` embedder, ``graf_nerf`` decoder), gan3d-samplers and gan3d-renderers;
the shared patch geometry is :mod:`gan3d.methods.patches`."""

from __future__ import annotations

from .discriminator import GRAFPatchDiscriminator
from .objective import GRAFObjective
from .official import GRAFImporter
from .recipe import graf_recipe

__all__ = ["GRAFPatchDiscriminator", "GRAFObjective", "GRAFImporter", "graf_recipe", "register"]


def register(registry) -> None:
    """Add GRAF's method, discriminator, loss and checkpoint importer to ``registry``."""
    registry.add("method", "graf", graf_recipe)
    registry.add("discriminator", "graf_patch", GRAFPatchDiscriminator)
    registry.add("loss", "graf", GRAFObjective)
    registry.add("importer", "graf", GRAFImporter)
