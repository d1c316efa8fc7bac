"""The hook implementations of gan3d-fourier."""

from __future__ import annotations

from gan3d.core import hookimpl

from .embedder import FourierFeatureEmbedder


@hookimpl
def gan3d_register(registry) -> None:
    registry.add("point_embedder", "fourier", FourierFeatureEmbedder)
