"""Fréchet distance, KID and the cache of real features."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.linalg
import torch

from gan3d.core.data.base import GanDataset
from gan3d.evaluators.metrics.feature_statistics import (
    feature_moments,
    frechet_distance,
    frechet_distance_of_features,
    kernel_inception_distance,
    real_features,
)


def _direct_frechet(mu1, s1, mu2, s2):
    root = scipy.linalg.sqrtm(s1 @ s2).real
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * root))


def test_frechet_distance_equals_direct_scipy_on_random_gaussians():
    rng = np.random.default_rng(0)
    d = 6
    a, b = rng.normal(size=(d, d)), rng.normal(size=(d, d))
    s1, s2 = a @ a.T + 0.1 * np.eye(d), b @ b.T + 0.1 * np.eye(d)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(_direct_frechet(mu1, s1, mu2, s2), rel=1e-9)
    # Closed form for commuting (diagonal) covariances: sum (sqrt(s1) - sqrt(s2))^2 per dimension.
    v1, v2 = np.array([1.0, 4.0]), np.array([9.0, 1.0])
    expected = 1.0 + (1 - 3) ** 2 + (2 - 1) ** 2
    assert frechet_distance(np.zeros(2), np.diag(v1), np.array([1.0, 0.0]), np.diag(v2)) == pytest.approx(expected)


def test_frechet_distance_of_a_set_with_itself_is_zero_and_grows_with_noise():
    rng = np.random.default_rng(1)
    feats = rng.normal(size=(2000, 16))
    mu, sigma = feature_moments(feats)
    assert abs(frechet_distance(mu, sigma, mu, sigma)) < 1e-6
    values = []
    for noise in (0.1, 0.3, 0.6, 1.0):
        mu_n, sigma_n = feature_moments(feats + noise * rng.normal(size=feats.shape))
        values.append(frechet_distance(mu, sigma, mu_n, sigma_n))
    assert values[0] > 0
    assert all(b > a for a, b in zip(values, values[1:])), values


def test_frechet_distance_of_few_features_equals_the_full_formula():
    rng = np.random.default_rng(4)
    real, fake = rng.normal(size=(9, 30)), rng.normal(size=(7, 30)) * 1.5 + 0.2
    full = _direct_frechet(*feature_moments(real), *feature_moments(fake))
    assert frechet_distance_of_features(real, fake) == pytest.approx(full, rel=1e-6)
    many_real, many_fake = rng.normal(size=(60, 5)), rng.normal(size=(50, 5)) + 0.3
    assert frechet_distance_of_features(many_real, many_fake) == pytest.approx(
        _direct_frechet(*feature_moments(many_real), *feature_moments(many_fake)), rel=1e-9)
    assert abs(frechet_distance_of_features(real, real)) < 1e-8


def test_frechet_distance_rejects_mismatched_statistics():
    with pytest.raises(ValueError, match="mismatched"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))


def test_kid_is_unbiased_for_one_distribution_and_positive_for_two():
    rng = np.random.default_rng(2)
    same = [kernel_inception_distance(rng.normal(size=(200, 8)), rng.normal(size=(200, 8)), num_subsets=20,
                                      max_subset_size=100, seed=s) for s in range(10)]
    shifted = kernel_inception_distance(rng.normal(size=(200, 8)), rng.normal(size=(200, 8)) + 0.5, num_subsets=20,
                                        max_subset_size=100)
    # Unbiased: values straddle zero, their mean is near zero compared with a real difference.
    assert min(same) < 0 < max(same)
    assert abs(np.mean(same)) < 0.05 * shifted
    assert shifted > 10 * np.std(same)


def test_kid_matches_hand_computation_for_one_full_subset():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))

    def k(a, b):
        return (a @ b.T / 3 + 1) ** 3

    kxx, kyy, kxy = k(y, y), k(x, x), k(y, x)  # argument order: (real, fake)
    m = 5
    expected = ((kxx.sum() - np.trace(kxx)) + (kyy.sum() - np.trace(kyy))) / (m * (m - 1)) - 2 * kxy.sum() / m**2
    assert kernel_inception_distance(x, y, num_subsets=1, max_subset_size=5) == pytest.approx(expected)


class _PathDataset(GanDataset):
    def __init__(self, path, n=6, res=8):
        self.path = self.source = str(path)
        self.images = torch.rand(n, 3, res, res) * 2 - 1

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i], torch.zeros(25)


def test_real_features_are_cached_by_path_size_resolution_and_extractor(tmp_path):
    calls = []

    def extractor(images):
        calls.append(len(images))
        return images.mean(dim=(2, 3))

    ds = _PathDataset(tmp_path / "set")
    cache = tmp_path / "cache"
    first = real_features(ds, extractor, extractor_digest="abc", num_items=5, batch_size=2, cache_dir=cache)
    assert first.shape == (5, 3) and sum(calls) == 5
    files = sorted(p.name for p in cache.iterdir())
    assert len(files) == 2 and any(f.endswith(".npz") for f in files)
    sidecar = json.loads(next(cache.glob("*.json")).read_text())
    assert sidecar["size"] == 6 and sidecar["resolution"] == [8, 8] and sidecar["extractor"] == "abc"
    again = real_features(ds, extractor, extractor_digest="abc", num_items=5, batch_size=2, cache_dir=cache)
    assert sum(calls) == 5  # read from the cache, the extractor was not called
    np.testing.assert_array_equal(first, again)
    real_features(ds, extractor, extractor_digest="other-weights", num_items=5, cache_dir=cache)
    assert sum(calls) == 10 and len(list(cache.glob("*.npz"))) == 2
