"""The point-embedder ablation (Carver's ``ablation3d``): EG3D with the point embedder and MLP swapped."""

from __future__ import annotations

from .recipe import ablation3d_recipe

__all__ = ["ablation3d_recipe", "register"]


def register(registry) -> None:
    """Add the ablation recipe (its ``position_encoded`` embedder is gan3d-embedders')."""
    registry.add("method", "ablation3d", ablation3d_recipe)
