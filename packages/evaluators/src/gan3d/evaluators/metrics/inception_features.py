"""The Inception features shared by FID and KID: real features (cached) and generated features."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from ..networks.inception import FIDInceptionV3, load_fid_inception
from ..networks.weights import file_digest
from .distributed import BatchPlan, is_main_process
from .feature_statistics import real_features
from .sampling import batch_generator, evaluation_mode, quantize, sample_latents

__all__ = ["InceptionExtractor", "generated_features", "distribution_features"]

logger = logging.getLogger(__name__)


class InceptionExtractor:
    """2048-d FID Inception features of ``[-1, 1]`` images, with the weight file's digest.

    Args:
        weights: path of ``pt_inception-2015-12-05-6726825d.pth``.
        option: the option name the path came from (for the error message).
        device: where the network runs.
    """

    def __init__(self, weights: str, *, option: str = "inception_weights", device: torch.device | str = "cpu"):
        self.net: FIDInceptionV3 = load_fid_inception(weights, option=option).to(device)
        self.digest = file_digest(weights)
        self.device = device

    def __call__(self, images: Tensor) -> Tensor:
        with torch.no_grad():
            return self.net(images.to(self.device))


def generated_features(generator: nn.Module, extractor, *, num_samples: int, batch_size: int,
                       truncation_psi: float, seed: int, device: torch.device | str,
                       quantize_images: bool = True) -> np.ndarray:
    """Features ``[num_samples, D]`` of generated images: each batch's latents and poses (from
    ``generator.pose_sampler``) drawn from its own seeded generator (:func:`~.sampling.batch_generator`).

    Under ``torch.distributed`` each rank renders its share of the batches and every rank returns all
    ``num_samples`` rows, in the order one process gives them.
    """
    plan = BatchPlan(num_samples, batch_size)
    feats = []
    with evaluation_mode(generator):
        for index, n in plan:
            gen = batch_generator(seed, index, device)
            z = sample_latents(generator, n, gen, device)
            cameras = generator.pose_sampler(n, device=device, generator=gen)
            images = generator(z, cameras, truncation_psi=truncation_psi, generator=gen).image
            if quantize_images:
                images = quantize(images)
            feats.append(extractor(images).float().cpu())
    return plan.gather(feats).numpy()


def distribution_features(evaluator, generator: nn.Module, dataset, device, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(real, fake) features for an FID/KID evaluator's options."""
    if dataset is None:
        raise ValueError(f"{evaluator.name} compares generated images with a data set: pass dataset=...")
    extractor = InceptionExtractor(evaluator.inception_weights, option=f"{evaluator.name}.inception_weights",
                                   device=device)
    real = real_features(dataset, extractor, extractor_digest=extractor.digest, num_items=evaluator.num_real,
                         batch_size=evaluator.batch_size, device=device,
                         cache_dir=Path(evaluator.cache_dir) if evaluator.cache_dir else None,
                         use_cache=evaluator.use_cache)
    fake = generated_features(generator, extractor, num_samples=evaluator.num_gen, batch_size=evaluator.batch_size,
                              truncation_psi=evaluator.truncation_psi, seed=seed, device=device,
                              quantize_images=evaluator.quantize)
    if is_main_process():
        logger.info("%s: %d real and %d generated feature vectors", evaluator.name, len(real), len(fake))
    return real, fake
