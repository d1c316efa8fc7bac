"""EpiGRAF (Skorokhodov et al. 2022, "EpiGRAF: Rethinking training of 3D GANs"): its recipes, patch-aware
discriminator, objective, Beta patch schedule and patch geometry. The generator reuses EG3D's modules with
EpiGRAF's options (``stylegan2`` mapper, ``triplane`` embedder with ``plane_axes='epigraf'``, ``eg3d_osg``
decoder with EpiGRAF's activations); its data sets' ``camera_angles`` are read by the ``epigraf`` label
format (:mod:`gan3d.core.data.epigraf_labels`)."""

from __future__ import annotations

from .discriminator import EpiGRAFPatchDiscriminator
from .objective import EpiGRAFObjective
from .official import EpiGRAFImporter
from .recipe import epigraf_recipe

__all__ = ["EpiGRAFPatchDiscriminator", "EpiGRAFImporter", "EpiGRAFObjective", "epigraf_recipe", "register"]


def register(registry) -> None:
    """Add EpiGRAF's method, discriminator, loss and checkpoint importer to ``registry``."""
    registry.add("method", "epigraf", epigraf_recipe)
    registry.add("discriminator", "epigraf_patch", EpiGRAFPatchDiscriminator)
    registry.add("loss", "epigraf", EpiGRAFObjective)
    registry.add("importer", "epigraf", EpiGRAFImporter)
