"""FID and KID end to end through the Inception path (random weights saved to a file)."""

from __future__ import annotations

import math

import pytest
import torch

from gan3d.core.data.base import GanDataset
from gan3d.core.registry import get_registry
from gan3d.evaluators.metrics.reference_scene import ReferenceSphereGenerator
from gan3d.evaluators.networks.inception import FIDInceptionV3
from gan3d.evaluators.networks.weights import WeightsError


class _FolderSet(GanDataset):
    """Tiny posed set with a ``path`` (the cache key) made from the reference scene."""

    def __init__(self, path, n=6):
        self.path = self.source = str(path)
        g = ReferenceSphereGenerator(resolution=16)
        gen = torch.Generator().manual_seed(123)
        out = g(torch.randn(n, g.z_dim, generator=gen), generator=gen)
        self.images, self.labels = out.image, out.cameras.label

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i], self.labels[i]


@pytest.fixture(scope="module")
def inception_file(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "pt_inception-random.pth"
    torch.save(FIDInceptionV3().state_dict(), path)
    return str(path)


def test_fid_and_kid_run_end_to_end_and_share_the_real_feature_cache(inception_file, tmp_path):
    registry = get_registry()
    data = _FolderSet(tmp_path / "data")
    cache = tmp_path / "cache"
    common = {"inception_weights": inception_file, "num_gen": 3, "num_real": 4, "batch_size": 4,
              "cache_dir": str(cache)}
    fid = registry.build("evaluator", "fid", **common)
    generator = ReferenceSphereGenerator(resolution=16)
    first = fid.evaluate(generator, dataset=data, seed=1)
    assert set(first) == {"fid"} and math.isfinite(first["fid"]) and first["fid"] >= -1e-6
    assert len(list(cache.glob("*.npz"))) == 1
    kid = registry.build("evaluator", "kid", num_subsets=5, **common).evaluate(generator, dataset=data, seed=1)
    assert set(kid) == {"kid"} and math.isfinite(kid["kid"])
    assert len(list(cache.glob("*.npz"))) == 1  # KID read the features FID cached
    # Seeded: the same seed gives the same value (Carver's FID drew its poses unseeded).
    assert fid.evaluate(generator, dataset=data, seed=1)["fid"] == pytest.approx(first["fid"], rel=1e-6)


def test_missing_inception_weights_say_which_file_and_which_option(tmp_path):
    fid = get_registry().build("evaluator", "fid", inception_weights=str(tmp_path / "nope.pth"), num_gen=2)
    with pytest.raises(WeightsError, match=r"pt_inception-2015-12-05-6726825d\.pth.*fid\.inception_weights"):
        fid.evaluate(ReferenceSphereGenerator(resolution=8), dataset=_FolderSet(tmp_path))
    with pytest.raises(WeightsError, match="no file was given"):
        get_registry().build("evaluator", "kid").evaluate(ReferenceSphereGenerator(resolution=8),
                                                          dataset=_FolderSet(tmp_path))


def test_fid_needs_a_dataset(inception_file):
    with pytest.raises(ValueError, match="dataset"):
        get_registry().build("evaluator", "fid", inception_weights=inception_file).evaluate(
            ReferenceSphereGenerator(resolution=8))
