"""EpiGRAF (Skorokhodov et al. 2022, "EpiGRAF: Rethinking training of 3D GANs"): its patch-aware
discriminator, objective, Beta patch schedule, camera angles and recipes. The generator reuses EG3D's
modules with EpiGRAF's options (``stylegan2`` mapper, ``triplane`` embedder with ``plane_axes='epigraf'``,
``eg3d_osg`` decoder with EpiGRAF's activations).

The method itself (``epigraf_recipe``) is registered once Generator v2 wires its recipes (issue 16, phase B)."""

from __future__ import annotations

from .discriminator import EpiGRAFPatchDiscriminator
from .objective import EpiGRAFObjective
from .recipe import epigraf_recipe

__all__ = ["EpiGRAFPatchDiscriminator", "EpiGRAFObjective", "epigraf_recipe", "register"]


def register(registry) -> None:
    """Add EpiGRAF's discriminator and loss to ``registry``."""
    registry.add("discriminator", "epigraf_patch", EpiGRAFPatchDiscriminator)
    registry.add("loss", "epigraf", EpiGRAFObjective)
