"""GIRAFFE (Niemeyer & Geiger 2021, "GIRAFFE: Representing Scenes as Compositional Generative Neural
Feature Fields"): its recipes, DC discriminator and objective. The generator's modules live in
gan3d-embedders (the ``giraffe`` mapper, whose scene latent holds the objects' codes and frames, and the
``giraffe_field`` decoder of the object and background field groups) and gan3d-renderers (the volume
renderer, which composes the fields, and ``giraffe_neural_renderer``)."""

from __future__ import annotations

from .discriminator import GiraffeDCDiscriminator
from .objective import GiraffeObjective
from .official import GiraffeImporter
from .recipe import giraffe_recipe

__all__ = ["GiraffeDCDiscriminator", "GiraffeImporter", "GiraffeObjective", "giraffe_recipe", "register"]


def register(registry) -> None:
    """Add GIRAFFE's method, discriminator, loss and checkpoint importer to ``registry``."""
    registry.add("method", "giraffe", giraffe_recipe)
    registry.add("discriminator", "giraffe_dc", GiraffeDCDiscriminator)
    registry.add("loss", "giraffe", GiraffeObjective)
    registry.add("importer", "giraffe", GiraffeImporter)
