"""gan3d-fourier: an example third-party gan3d plugin (Gaussian Fourier-feature point embedder)."""

from .embedder import FourierFeatureEmbedder

__all__ = ["FourierFeatureEmbedder"]
