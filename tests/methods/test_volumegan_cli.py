"""VolumeGAN through tools/run.py: a tiny run trains while its neural renderer grows (level of detail 1,
0.5, 0), and the generic infer (images, videos, shapes) and eval (pose and depth error with a freshly
trained estimator) work on the grown model without any VolumeGAN-specific evaluator code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
RUN = [sys.executable, str(ROOT / "tools" / "run.py")]
ENV = {**os.environ, "COLUMNS": "200", "OMP_NUM_THREADS": "1"}

#: The synthetic variant with one octave (16 -> 32 px) and a schedule that, at 2 images a step and one
#: level-of-detail update per step, trains step 0 and 1 at lod 1 (16 px), step 2 at lod 0.5 (fading the
#: 32-px octave in) and step 3 at lod 0; both lazy regularizers every 2 steps.
SCHEDULE = ["lod_training_kimg=0.002", "lod_transition_kimg=0.004", "minibatch_repeats=1"]
TINY_VOLUMEGAN = [
    "--method", "volumegan", "--variant", "synthetic",
    "--set", "upsampler.out_resolution=32", "--set", "discriminator.img_resolution=32",
    "--set", "discriminator.init_lod=1.0", "--set", "point_sampler.num_samples=6",
    "--set", "generator.num_importance=6", "--set", "loss.r1_interval=2", "--set", "loss.pl_interval=2",
    *[arg for option in SCHEDULE for module in ("upsampler", "discriminator")
      for arg in ("--set", f"{module}.{option}")],
    "--set", "training.snapshot_kimg=0.004", "--set", "training.image_snapshot_kimg=0.004",
    "--set", "training.log_every=1",
]


def run(*args: str) -> subprocess.CompletedProcess:
    out = subprocess.run([*RUN, *args], capture_output=True, text=True, env=ENV, cwd=ROOT)
    if out.returncode != 0:
        raise AssertionError(f"run.py {' '.join(args)} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    return out


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    from gan3d.core.data import make_synthetic_dataset

    return make_synthetic_dataset(tmp_path_factory.mktemp("data") / "head", preset="head", num_images=8,
                                  resolution=16, seed=0)


def test_train_grows_then_generic_infer_and_eval(tiny_dataset, tmp_path):
    where = ["--dataset", str(tiny_dataset), "--root_work_dir", str(tmp_path), "--job-name", "tiny"]
    run("train", *where, "--batch_size", "2", "--kimg", "0.008", *TINY_VOLUMEGAN)
    job = tmp_path / "tiny"
    log = [json.loads(line) for line in (job / "log.json").read_text().splitlines()]
    assert [e["step"] for e in log] == [1, 2, 3, 4]
    # The objective logs each step's level of detail; the lazy regularizers fire at steps 0 and 2.
    assert [e["lod"] for e in log] == [1.0, 1.0, 0.5, 0.0]
    assert ["pl" in e and "r1" in e for e in log] == [True, False, True, False]
    assert all(e["resolution"] == 16 for e in log)  # the volume is rendered at 16 px throughout
    checkpoints = sorted((job / "checkpoints").glob("checkpoint-*.pt"))
    assert [c.name for c in checkpoints] == ["checkpoint-000000002.pt", "checkpoint-000000004.pt"]
    # The level of detail went down the schedule in G, its EMA copy and D alike (the lod buffers).
    for path, lod in ((checkpoints[0], 1.0), (checkpoints[1], 0.0)):
        state = torch.load(path, map_location="cpu", weights_only=False)
        assert float(state["G"]["upsampler.lod"]) == lod, path.name
        assert float(state["G_ema"]["upsampler.lod"]) == lod, path.name
        assert float(state["D"]["lod"]) == lod, path.name
    model = str(checkpoints[-1])

    # An untrained density is relu(~N(0, small)): a low level finds a surface.
    run("infer", "--model", model, "--num", "2", "--save_image", "--save_video", "--save_shape", "--shape_res", "16",
        "--density_level", "0.05")
    out = job / "infer-000"
    assert cv2.imread(str(out / "image_grid.png")).shape == (32, 64, 3)  # the renderer's 32-px output
    assert cv2.imread(str(out / "image_raw_grid.png")).shape == (16, 32, 3)  # the 16-px feature image
    assert cv2.imread(str(out / "image_depth_grid.png")).shape == (16, 32, 3)
    assert len(list(out.glob("orbit_seed*.mp4"))) == 2
    assert (out / "shape_seed0000.ply").is_file() and (out / "shape_seed0000_preview.png").is_file()

    run("eval", "--model", model, "--dataset", str(tiny_dataset), "--test_pose", "--test_depth", "--fake_num", "2",
        "--batch_size", "2", "--train_estimator", "--estimator_steps", "2")
    report = json.loads(next(job.glob("eval-*.json")).read_text())
    assert report["step"] == 4
    assert report["results"]["de"] >= 0 and report["results"]["pe"] >= 0
