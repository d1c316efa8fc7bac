"""Feature statistics for FID and KID, with a cache of the real data set's features.

* :func:`frechet_distance`: ``|mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))`` (Heusel et al. 2017),
  computed as pytorch-fid's ``calculate_frechet_distance``: ``scipy.linalg.sqrtm`` of ``S1 S2``, an
  ``eps`` added to the diagonals when the product is singular, and the imaginary part dropped when
  it is numerically zero (an error otherwise).
* :func:`kernel_inception_distance`: the unbiased MMD^2 estimate with the cubic polynomial kernel
  ``k(x, y) = (x.y / d + 1)^3`` averaged over random subsets (Binkowski et al. 2018; StyleGAN2-ADA
  ``metrics/kernel_inception_distance.py``: 100 subsets of at most 1000 samples).
* :func:`real_features`: the features of the first ``num_items`` items of a data set, cached as
  ``<cache_dir>/<key>.npz`` where ``key`` hashes the data set's path, its size, its image resolution,
  the extractor's weight digest and ``num_items`` (a JSON sidecar ``<key>.json`` lists them).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import scipy.linalg
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from gan3d.core.data.base import GanDataset

from .dataset_items import item_fields
from .distributed import BatchPlan, broadcast_array, is_main_process, on_main_process

__all__ = [
    "frechet_distance",
    "frechet_distance_of_features",
    "kernel_inception_distance",
    "feature_moments",
    "real_features",
    "dataset_identity",
    "default_cache_dir",
    "as_model_images",
]

logger = logging.getLogger(__name__)

CACHE_ENV = "GAN3D_CACHE_DIR"


def feature_moments(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``[D]`` and covariance ``[D, D]`` (unbiased, as ``np.cov``) of ``features [N, D]``."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"need at least 2 feature vectors [N, D], got shape {features.shape}")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """Fréchet distance between Gaussians ``N(mu1, sigma1)`` and ``N(mu2, sigma2)``."""
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    sigma1, sigma2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(f"mismatched statistics: means {mu1.shape} vs {mu2.shape}, "
                         f"covariances {sigma1.shape} vs {sigma2.shape}")
    diff = mu1 - mu2
    covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        # Singular product: pytorch-fid adds eps to both diagonals and tries again.
        logger.warning("Fréchet distance: singular covariance product; adding %g to the diagonals", eps)
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"Fréchet distance: imaginary component {np.max(np.abs(covmean.imag)):.3g} "
                             "in the matrix square root; the covariances are ill-conditioned (use more samples)")
        covmean = covmean.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def frechet_distance_of_features(real: np.ndarray, fake: np.ndarray) -> float:
    """Fréchet distance between the Gaussians fitted to ``real [N, D]`` and ``fake [M, D]``.

    With at least ``D + 1`` samples in both sets this is :func:`frechet_distance` of their moments
    (``sqrtm`` of a ``D x D`` product). With fewer, both covariances are singular and the same value
    is computed exactly on a small matrix: writing ``S1 = A^T A``, ``S2 = B^T B`` with the centred,
    ``1/sqrt(n - 1)``-scaled features ``A [N, D]``, ``B [M, D]``, the non-zero eigenvalues of ``S1 S2``
    are those of ``(A B^T)(A B^T)^T [N, N]``, so ``Tr (S1 S2)^(1/2) = Tr sqrtm((A B^T)(A B^T)^T)``.
    """
    real = np.asarray(real, dtype=np.float64)
    fake = np.asarray(fake, dtype=np.float64)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1] or min(len(real), len(fake)) < 2:
        raise ValueError(f"need at least 2 feature vectors [N, D] of one width per set, got {real.shape}, {fake.shape}")
    d = real.shape[1]
    if min(len(real), len(fake)) > d:
        return frechet_distance(*feature_moments(real), *feature_moments(fake))
    mu1, mu2 = real.mean(0), fake.mean(0)
    a = (real - mu1) / np.sqrt(len(real) - 1)
    b = (fake - mu2) / np.sqrt(len(fake) - 1)
    m = a @ b.T
    root = scipy.linalg.sqrtm(m @ m.T)
    trace_root = float(np.real(np.trace(root)))
    diff = mu1 - mu2
    return float(diff @ diff + (a * a).sum() + (b * b).sum() - 2 * trace_root)


def kernel_inception_distance(real: np.ndarray, fake: np.ndarray, *, num_subsets: int = 100,
                              max_subset_size: int = 1000, seed: int = 0) -> float:
    """Unbiased MMD^2 between ``real [N, D]`` and ``fake [M, D]`` with ``k(x, y) = (x.y / D + 1)^3``.

    Each of ``num_subsets`` draws ``m = min(N, M, max_subset_size)`` rows of each set without
    replacement; the estimate per subset is
    ``(sum_{i!=j} k(x_i, x_j) + k(y_i, y_j)) / (m (m - 1)) - 2 sum_{i,j} k(x_i, y_j) / m^2``.
    """
    real = np.asarray(real, dtype=np.float64)
    fake = np.asarray(fake, dtype=np.float64)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"need feature arrays [N, D] of one width, got {real.shape} and {fake.shape}")
    d = real.shape[1]
    m = min(real.shape[0], fake.shape[0], max_subset_size)
    if m < 2:
        raise ValueError(f"KID needs at least 2 samples per set, got {real.shape[0]} and {fake.shape[0]}")
    rng = np.random.default_rng(seed)
    total = 0.0
    for _ in range(num_subsets):
        x = fake[rng.choice(fake.shape[0], m, replace=False)]
        y = real[rng.choice(real.shape[0], m, replace=False)]
        a = (x @ x.T / d + 1) ** 3 + (y @ y.T / d + 1) ** 3
        b = (x @ y.T / d + 1) ** 3
        total += (a.sum() - np.diag(a).sum()) / (m - 1) - b.sum() * 2 / m
    return float(total / num_subsets / m)


def default_cache_dir() -> Path:
    """``$GAN3D_CACHE_DIR/metrics`` or ``~/.cache/gan3d/metrics``."""
    root = os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "gan3d")
    return Path(root) / "metrics"


def as_model_images(images: Tensor) -> Tensor:
    """Data set images -> float ``[B, 3, H, W]`` in ``[-1, 1]`` (uint8 images are rescaled; one grey
    channel is repeated)."""
    if images.dtype == torch.uint8:
        images = images.float() / 127.5 - 1
    images = images.float()
    if images.ndim != 4:
        raise ValueError(f"expected images [B, C, H, W], got {tuple(images.shape)}")
    if images.shape[1] == 1:
        images = images.repeat(1, 3, 1, 1)
    return images


def dataset_identity(dataset: Dataset) -> str | None:
    """The data set's location on disk (:attr:`gan3d.core.data.GanDataset.source`), or ``None``."""
    if isinstance(dataset, GanDataset) and dataset.source is not None:
        return str(Path(dataset.source).expanduser().resolve())
    return None


def _first_image(dataset: Dataset) -> Tensor:
    return item_fields(dataset[0])[0]


def _collate_images(items: list) -> Tensor:
    return torch.stack([item_fields(it)[0] for it in items])


def real_features(
    dataset: Dataset,
    extractor: Callable[[Tensor], Tensor],
    *,
    extractor_digest: str,
    num_items: int,
    batch_size: int = 32,
    device: torch.device | str = "cpu",
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
) -> np.ndarray:
    """Features ``[N, D]`` (float32) of the first ``N = min(num_items, len(dataset))`` data set images.

    Cached in ``cache_dir`` (default :func:`default_cache_dir`) under a key made of the data set's
    path, ``len(dataset)``, its image resolution, ``extractor_digest`` and ``N``. A data set with no
    ``path``/``root`` attribute is not cached (its identity cannot be known).

    Under ``torch.distributed`` each rank extracts its share of the batches and every rank returns
    all ``N`` rows; rank 0 alone reads and writes the cache (what it read is sent to the others).
    """
    n = min(int(num_items), len(dataset))
    if n < 2:
        raise ValueError(f"the data set has {len(dataset)} item(s); FID/KID need at least 2")
    where = dataset_identity(dataset)
    cache_file = None
    if use_cache and where is not None:
        shape = tuple(_first_image(dataset).shape[-2:])
        key_fields = {"dataset": where, "size": len(dataset), "resolution": list(shape),
                      "extractor": extractor_digest, "num_items": n}
        key = hashlib.sha256(json.dumps(key_fields, sort_keys=True).encode()).hexdigest()[:20]
        cache_root = Path(cache_dir) if cache_dir else default_cache_dir()
        cache_file = cache_root / f"{key}.npz"
        # Rank 0 alone looks at the cache and sends what it found: every rank then takes the same
        # branch (a rank that saw another file system could otherwise wait in a collective alone).
        cached = None
        if is_main_process() and cache_file.is_file():
            logger.info("real features from cache %s", cache_file)
            with np.load(cache_file) as data:
                cached = data["features"]
        if on_main_process(lambda: cached is not None):
            return broadcast_array(cached)
    elif use_cache and is_main_process():
        logger.info("data set %s has no path attribute; its features are not cached", type(dataset).__name__)
    # Under torch.distributed each rank extracts its share of the batches (BatchPlan); all get all rows.
    plan = BatchPlan(n, batch_size)
    loader = DataLoader(torch.utils.data.Subset(dataset, plan.indices()), batch_size=batch_size, shuffle=False,
                        num_workers=0, collate_fn=_collate_images)
    feats = []
    with torch.no_grad():
        for images in loader:
            feats.append(extractor(as_model_images(images).to(device)).float().cpu())
    features = plan.gather(feats).numpy().astype(np.float32)
    if cache_file is not None and is_main_process():
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_suffix(".tmp.npz")
        np.savez(tmp, features=features)
        os.replace(tmp, cache_file)
        cache_file.with_suffix(".json").write_text(json.dumps(key_fields, indent=2))
        logger.info("cached real features in %s", cache_file)
    return features
