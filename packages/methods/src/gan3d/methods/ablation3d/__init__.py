"""The point-embedder ablation (Carver's ``ablation3d``): EG3D with the point embedder and MLP swapped."""

from __future__ import annotations

from .encoded_embedder import PositionEncodedEmbedder
from .recipe import ablation3d_recipe

__all__ = ["PositionEncodedEmbedder", "ablation3d_recipe", "register"]


def register(registry) -> None:
    """Add the ablation recipe and the position-encoded embedder wrapper it uses to ``registry``."""
    registry.add("method", "ablation3d", ablation3d_recipe)
    registry.add("point_embedder", "position_encoded", PositionEncodedEmbedder)
