"""GRAM through tools/run.py: describe prints the official totals; a tiny run trains, and the generic
infer (images, video, shape) and eval (pose and depth error with a freshly trained estimator) work on it
without any GRAM-specific evaluator code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUN = [sys.executable, str(ROOT / "tools" / "run.py")]
ENV = {**os.environ, "COLUMNS": "200", "OMP_NUM_THREADS": "1"}

#: test_gram.tiny_recipe as command-line overrides.
TINY_GRAM = [
    "--method", "gram", "--variant", "synthetic",
    "--set", "stochasticity_mapper.z_dim=8", "--set", "stochasticity_mapper.hidden_dim=16",
    "--set", "stochasticity_mapper.film_dim=8", "--set", "stochasticity_mapper.w_avg_samples=16",
    "--set", "feature_decoder.num_layers=3", "--set", "point_sampler.num_samples=12",
    "--set", "point_sampler.num_manifolds=5", "--set", "point_sampler.hidden_dim=8",
    "--set", "discriminator.img_resolution=8", "--set", "discriminator.channels=[8, 8, 8]",
    "--set", "training.snapshot_kimg=0.004", "--set", "training.image_snapshot_kimg=0.004",
]


def run(*args: str) -> subprocess.CompletedProcess:
    out = subprocess.run([*RUN, *args], capture_output=True, text=True, env=ENV, cwd=ROOT)
    if out.returncode != 0:
        raise AssertionError(f"run.py {' '.join(args)} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    return out


def test_describe_prints_the_official_totals():
    info = json.loads(run("describe", "--method", "gram", "--json").stdout)
    # microsoft/GRAM FFHQ_default: GramGenerator 1,950,621 (sample_network 33,665 + rf_network 1,916,956),
    # GramDiscriminator(256) 12,391,827 (tools/official/gram_parameter_counts.py).
    assert info["variant"] == "ffhq256"
    assert info["generator_parameters"] == 1_950_621
    assert info["discriminator_parameters"] == 12_391_827
    slots = {row["slot"]: row for row in info["slots"]}
    assert slots["point_sampler"]["name"] == "manifold" and slots["point_sampler"]["parameters"] == 33_665
    assert slots["feature_decoder"]["name"] == "gram_radiance"


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    from gan3d.core.data import make_synthetic_dataset

    return make_synthetic_dataset(tmp_path_factory.mktemp("data") / "head", preset="head", num_images=8,
                                  resolution=16, seed=0)


def test_train_then_generic_infer_and_eval(tiny_dataset, tmp_path):
    where = ["--dataset", str(tiny_dataset), "--root_work_dir", str(tmp_path), "--job-name", "tiny"]
    run("train", *where, "--resolution", "8", "--batch_size", "2", "--kimg", "0.004", *TINY_GRAM)
    job = tmp_path / "tiny"
    log = [json.loads(line) for line in (job / "log.json").read_text().splitlines()]
    assert log[-1]["step"] == 2 and {"d_real_pos", "g_pos", "r1"} <= set(log[-1])
    model = str(sorted((job / "checkpoints").glob("checkpoint-*.pt"))[-1])

    # The untrained radiance field's density is softplus(~0) ~ 0.7: a level below it finds the shell of the
    # manifold predictor's support (where the generic shape path lets the density through).
    run("infer", "--model", model, "--num", "1", "--save_image", "--save_video", "--save_shape", "--shape_res", "16",
        "--density_level", "0.3")
    out = job / "infer-000"
    assert (out / "image_grid.png").is_file() and (out / "image_depth_grid.png").is_file()
    assert list(out.glob("*.mp4"))
    assert (out / "shape_seed0000.ply").is_file() and (out / "shape_seed0000_preview.png").is_file()

    run("eval", "--model", model, "--dataset", str(tiny_dataset), "--test_pose", "--test_depth", "--fake_num", "2",
        "--train_estimator", "--estimator_steps", "2")
    report = json.loads(next(job.glob("eval-*.json")).read_text())
    assert {"de", "pe"} <= set(report["results"])
    assert all(report["results"][k] >= 0 for k in ("de", "pe"))
