"""KID: unbiased kernel MMD^2 between Inception features of real and generated images."""

from __future__ import annotations

import torch
from torch import nn

from gan3d.core.interfaces import Evaluator

from .distributed import on_main_process
from .feature_statistics import kernel_inception_distance
from .inception_features import distribution_features

__all__ = ["KIDEvaluator"]


class KIDEvaluator(Evaluator):
    """``evaluate(G, dataset=...)`` -> ``{"kid": float}`` (StyleGAN2-ADA's protocol); under
    ``torch.distributed`` the images are shared among the ranks and every rank returns the
    one-process value.

    Args:
        inception_weights: path of pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth``.
        num_gen: generated images (StyleGAN2-ADA: 50k).
        num_real: data set images used at most (StyleGAN2-ADA: 1M, i.e. all).
        num_subsets: subsets averaged (100).
        max_subset_size: samples per subset at most (1000).
        batch_size, truncation_psi, quantize, cache_dir, use_cache: as :class:`~.fid.FIDEvaluator`;
        the two share the cache of real features.
    """

    name = "kid"

    def __init__(self, *, inception_weights: str = "", num_gen: int = 50000, num_real: int = 1000000,
                 num_subsets: int = 100, max_subset_size: int = 1000, batch_size: int = 32,
                 truncation_psi: float = 1.0, quantize: bool = True, cache_dir: str = "",
                 use_cache: bool = True) -> None:
        self.inception_weights = inception_weights
        self.num_gen = num_gen
        self.num_real = num_real
        self.num_subsets = num_subsets
        self.max_subset_size = max_subset_size
        self.batch_size = batch_size
        self.truncation_psi = truncation_psi
        self.quantize = quantize
        self.cache_dir = cache_dir
        self.use_cache = use_cache

    def evaluate(self, generator: nn.Module, *, dataset=None, device: torch.device | str = "cpu",
                 seed: int = 0) -> dict[str, float]:
        real, fake = distribution_features(self, generator, dataset, device, seed)
        kid = on_main_process(lambda: kernel_inception_distance(real, fake, num_subsets=self.num_subsets,
                                                                max_subset_size=self.max_subset_size, seed=seed))
        return {"kid": kid}
