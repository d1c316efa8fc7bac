"""FID: Fréchet distance between Inception features of real and generated images."""

from __future__ import annotations

import torch
from torch import nn

from gan3d.core.interfaces import Evaluator

from .distributed import on_main_process
from .feature_statistics import frechet_distance_of_features
from .inception_features import distribution_features

__all__ = ["FIDEvaluator"]


class FIDEvaluator(Evaluator):
    """``evaluate(G, dataset=...)`` -> ``{"fid": float}``; under ``torch.distributed`` the generated and
    real images are shared among the ranks and every rank returns the one-process value.

    Args:
        inception_weights: path of pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth``.
        num_gen: generated images (50k as in the FID paper and EG3D).
        num_real: data set images used at most (the first ones).
        batch_size: images per forward pass.
        truncation_psi: truncation of the generated latents.
        quantize: round generated images to 8 bits first, as real images are stored.
        cache_dir: where real features are cached ('' = ``$GAN3D_CACHE_DIR/metrics`` or
            ``~/.cache/gan3d/metrics``).
        use_cache: read and write the cache.
    """

    name = "fid"

    def __init__(self, *, inception_weights: str = "", num_gen: int = 50000, num_real: int = 50000,
                 batch_size: int = 32, truncation_psi: float = 1.0, quantize: bool = True, cache_dir: str = "",
                 use_cache: bool = True) -> None:
        self.inception_weights = inception_weights
        self.num_gen = num_gen
        self.num_real = num_real
        self.batch_size = batch_size
        self.truncation_psi = truncation_psi
        self.quantize = quantize
        self.cache_dir = cache_dir
        self.use_cache = use_cache

    def evaluate(self, generator: nn.Module, *, dataset=None, device: torch.device | str = "cpu",
                 seed: int = 0) -> dict[str, float]:
        real, fake = distribution_features(self, generator, dataset, device, seed)
        # Every rank holds all features; rank 0 computes the distance and all return its number.
        return {"fid": on_main_process(lambda: frechet_distance_of_features(real, fake))}
