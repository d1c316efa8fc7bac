"""Every metric gives the one-process value when two gloo CPU ranks share its samples under torchrun.

The test launches this file under ``python -m torch.distributed.run --standalone --nproc_per_node 2``;
each rank evaluates FID, KID, ID, RE, DE and PE of the analytic reference scene (random Inception,
ArcFace and estimator weights saved to files) and writes what it got. The same evaluations in this
process must give the same numbers: the metrics draw batch ``i`` from its own seeded generator, rank
``r`` renders batches ``r, r + 2, ...`` and the per-sample values are gathered back in batch order.

Batches of 3 over 8 samples (3, 3, 2) give the ranks unequal shares (5 and 3 samples); RE with one
batch of 2 leaves rank 1 nothing to render. The tolerances cover the thread counts only (torchrun
runs each rank with one thread, and so does the one-process reference).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from gan3d.core.data.base import GanDataset

RES = 16
NUM_FAKE = 8
NUM_REAL = 8
BATCH = 3
SEED = 7


class PathedSet(GanDataset):
    """Posed views of the reference scene with a ``path`` (the real-feature cache's key)."""

    def __init__(self, path: str, n: int = NUM_REAL):
        from gan3d.evaluators.metrics.reference_scene import ReferenceSphereGenerator

        self.path = self.source = path
        g = ReferenceSphereGenerator(resolution=RES)
        gen = torch.Generator().manual_seed(11)
        out = g(torch.randn(n, g.z_dim, generator=gen), generator=gen)
        self.images, self.labels = out.image, out.cameras.label

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i], self.labels[i]


def _counting_generator():
    """The reference scene, counting the latents it maps (to see that the ranks shared the work)."""
    from gan3d.evaluators.metrics.reference_scene import ReferenceSphereGenerator

    class CountingGenerator(ReferenceSphereGenerator):
        mapped = 0

        def mapping(self, z, c=None, **kwargs):
            self.mapped += z.shape[0]
            return super().mapping(z, c, **kwargs)

    return CountingGenerator(resolution=RES)


def _weights(folder: Path) -> dict[str, str]:
    """Random Inception, ArcFace (r18, 32 px) and depth/pose estimator weights written to files."""
    from gan3d.evaluators.metrics.estimators import save_depth_pose_net
    from gan3d.evaluators.networks.depth_pose_net import DepthPoseNet
    from gan3d.evaluators.networks.inception import FIDInceptionV3
    from gan3d.evaluators.networks.iresnet import IResNet

    torch.manual_seed(0)
    files = {"inception": folder / "pt_inception-random.pth", "arcface": folder / "backbone.pth",
             "estimator": folder / "depth_pose_net.pth"}
    inception = FIDInceptionV3()
    for m in inception.modules():  # He init: torch's default shrinks the features to ~1e-8 through 90 layers
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    torch.save(inception.state_dict(), files["inception"])
    arcface = IResNet("r18", input_size=32)
    with torch.no_grad():  # non-trivial running statistics so the embedding depends on the image
        for m in arcface.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_var.uniform_(0.5, 2.0)
    torch.save(arcface.state_dict(), files["arcface"])
    save_depth_pose_net(DepthPoseNet(resolution=RES, channels=8), files["estimator"])
    return {k: str(v) for k, v in files.items()}


def _evaluate(weights: dict[str, str], data_dir: str, cache_dir: str) -> tuple[dict[str, float], int]:
    """Every metric of the reference scene, on whatever ranks this process belongs to, and how many
    latents this process mapped."""
    from gan3d.core.registry import get_registry

    registry = get_registry()
    g = _counting_generator()
    data = PathedSet(data_dir)
    inception = {"inception_weights": weights["inception"], "num_gen": NUM_FAKE, "num_real": NUM_REAL,
                 "batch_size": BATCH, "cache_dir": cache_dir}
    estimator = {"estimator": "trained", "estimator_options": {"weights": weights["estimator"]},
                 "num_samples": NUM_FAKE, "batch_size": BATCH}
    evaluators = [
        registry.build("evaluator", "fid", **inception),
        registry.build("evaluator", "kid", num_subsets=4, **inception),
        registry.build("evaluator", "identity", arcface_weights=weights["arcface"], arch="r18", face_size=32,
                       num_samples=NUM_FAKE, batch_size=BATCH),
        registry.build("evaluator", "reprojection", num_samples=NUM_FAKE, batch_size=BATCH),
        registry.build("evaluator", "depth", **estimator),
        registry.build("evaluator", "pose", **estimator),
    ]
    results: dict[str, float] = {}
    for evaluator in evaluators:
        results.update(evaluator.evaluate(g, dataset=data, seed=SEED))
    # One batch for two ranks: rank 1 renders nothing and still returns the value.
    one_batch = registry.build("evaluator", "reprojection", num_samples=2, batch_size=2).evaluate(g, seed=SEED)
    results["re_one_batch"] = one_batch["re"]
    return results, g.mapped


def _rank_main(work: Path) -> None:
    """One rank: join the gloo group torchrun set up, evaluate, write this rank's numbers."""
    import torch.distributed as dist

    from gan3d.evaluators.metrics.feature_statistics import real_features
    from gan3d.evaluators.metrics.inception_features import InceptionExtractor

    dist.init_process_group(backend="gloo")
    config = json.loads((work / "config.json").read_text())
    results, mapped = _evaluate(config["weights"], config["data"], config["cache"])
    results["mapped"] = mapped
    # The real features every rank holds are all of them, in data set order (no cache: computed again).
    extractor = InceptionExtractor(config["weights"]["inception"])
    real = real_features(PathedSet(config["data"]), extractor, extractor_digest=extractor.digest,
                         num_items=NUM_REAL, batch_size=BATCH, use_cache=False)
    np.save(work / f"real{dist.get_rank()}.npy", real)
    (work / f"rank{dist.get_rank()}.json").write_text(json.dumps(results))
    dist.barrier()
    dist.destroy_process_group()


def test_two_gloo_ranks_give_the_one_process_metrics(tmp_path):
    from gan3d.evaluators.metrics.feature_statistics import real_features
    from gan3d.evaluators.metrics.inception_features import InceptionExtractor

    weights = _weights(tmp_path)
    work = tmp_path / "ddp"
    work.mkdir()
    data_dir = str(tmp_path / "data")
    (work / "config.json").write_text(json.dumps({"weights": weights, "data": data_dir,
                                                  "cache": str(tmp_path / "cache-ddp")}))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         str(Path(__file__).resolve()), str(work)],
        env=env, capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ranks = [json.loads((work / f"rank{r}.json").read_text()) for r in (0, 1)]
    mapped = [rank.pop("mapped") for rank in ranks]
    assert ranks[0] == ranks[1], "the ranks returned different numbers"

    # One thread, as each torchrun rank: like for like, and quick on a machine whose cores are busy.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        single, single_mapped = _evaluate(weights, data_dir, str(tmp_path / "cache-single"))
        extractor = InceptionExtractor(weights["inception"])
        expected = real_features(PathedSet(data_dir), extractor, extractor_digest=extractor.digest,
                                 num_items=NUM_REAL, batch_size=BATCH, use_cache=False)
    finally:
        torch.set_num_threads(threads)
    assert set(single) == set(ranks[0]) == {"fid", "kid", "id", "re", "re_covisible", "de", "pe", "pe_yaw_deg",
                                            "pe_polar_deg", "pe_yaw_slope", "pe_polar_slope", "pe_yaw_consistency",
                                            "pe_yaw_offset_deg", "re_one_batch"}
    # The ranks shared the latents (rank 0 has batches 0 and 2, rank 1 batch 1): none rendered them all.
    assert sum(mapped) == single_mapped and 0 < mapped[1] < mapped[0] < single_mapped, (mapped, single_mapped)
    diffs = {k: abs(ranks[0][k] - v) for k, v in single.items()}
    print("|two ranks - one process|:", {k: f"{d:.2e}" for k, d in diffs.items()})
    assert diffs["fid"] <= 1e-4 * abs(single["fid"]), (ranks[0]["fid"], single["fid"])
    assert diffs["kid"] <= 1e-4 * abs(single["kid"]) + 1e-6, (ranks[0]["kid"], single["kid"])
    for key in ("id", "re", "re_covisible", "de", "pe", "pe_yaw_deg", "pe_polar_deg", "pe_yaw_slope", "pe_polar_slope",
                "pe_yaw_consistency", "pe_yaw_offset_deg", "re_one_batch"):
        assert diffs[key] <= 1e-5, (key, ranks[0][key], single[key])
    assert single["fid"] > 1e-3 and single["re"] > 0  # not a match between two zeros

    # Rank 0 alone wrote the cache of real features, and it holds the one-process features.
    cached = list((tmp_path / "cache-ddp").glob("*.npz"))
    assert len(cached) == 1 and not list((tmp_path / "cache-ddp").glob("*.tmp.npz"))
    with np.load(cached[0]) as stored:
        np.testing.assert_allclose(stored["features"], expected, rtol=1e-4, atol=1e-5)
    for r in (0, 1):
        np.testing.assert_allclose(np.load(work / f"real{r}.npy"), expected, rtol=1e-4, atol=1e-5)


if __name__ == "__main__":
    _rank_main(Path(sys.argv[1]))
