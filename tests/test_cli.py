"""tools/run.py end to end: help without plugins, describe, train -> infer -> eval, no overwrites."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUN = [sys.executable, str(ROOT / "tools" / "run.py")]
ENV = {**os.environ, "COLUMNS": "200", "OMP_NUM_THREADS": "1"}

TINY_PIGAN = [
    "--method", "pigan", "--variant", "synthetic",
    "--set", "stochasticity_mapper.z_dim=8", "--set", "stochasticity_mapper.hidden_dim=8",
    "--set", "stochasticity_mapper.film_dim=8", "--set", "feature_decoder.hidden_dim=8",
    "--set", "stochasticity_mapper.num_ws=3", "--set", "feature_decoder.num_layers=2",
    "--set", "point_sampler.num_samples=4", "--set", "generator.num_importance=4",
    "--set", "discriminator.channels=[4, 4, 8, 8, 8, 8, 8, 8]", "--set", "discriminator.latent_dim=8",
    "--set", "training.snapshot_kimg=0.004", "--set", "training.image_snapshot_kimg=0.004",
]


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    out = subprocess.run([*RUN, *args], capture_output=True, text=True, env=ENV, cwd=ROOT)
    if check and out.returncode != 0:
        raise AssertionError(f"run.py {' '.join(args)} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    return out


def test_help_loads_no_plugin():
    script = str(ROOT / "tools" / "run.py")
    code = (
        "import sys, runpy\n"
        f"sys.argv = [{script!r}, '--help']\n"
        "try:\n"
        f"    runpy.run_path({script!r}, run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('PLUGINS_LOADED' if any(m.startswith('gan3d.embedders') for m in sys.modules) else 'CLEAN')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, cwd=ROOT)
    assert "train" in out.stdout and "describe" in out.stdout
    assert out.stdout.strip().endswith("CLEAN")


def test_describe_eg3d_counts_match_the_official_networks():
    info = json.loads(run("describe", "--method", "eg3d", "--json").stdout)
    assert info["variant"] == "ffhq512"
    # NVlabs/eg3d at its FFHQ 512 configuration: mapping 800,768 + tri-plane synthesis 28,207,533 +
    # super-resolution 1,649,578 + decoder 4,257; dual discriminator 31,359,744.
    assert info["generator_parameters"] == 30_662_136
    assert info["discriminator_parameters"] == 31_359_744
    slots = {row["slot"]: row for row in info["slots"]}
    assert slots["point_embedder"]["name"] == "triplane"
    assert slots["point_embedder"]["distribution"] == "gan3d-embedders"


def test_describe_errors_are_messages_not_tracebacks():
    out = run("describe", "--method", "pigan", "--set", "point_embedder=hashgrid", check=False)
    assert out.returncode == 2
    assert "point embedder 'hashgrid' is not installed" in out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    out = run("describe", "--method", "nosuchmethod", check=False)
    assert out.returncode == 2 and "method 'nosuchmethod' is not installed" in out.stdout + out.stderr


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    from gan3d.core.data import make_synthetic_dataset

    return make_synthetic_dataset(tmp_path_factory.mktemp("data") / "head", preset="head", num_images=8,
                                  resolution=16, seed=0)


def test_train_infer_eval_and_refusals(tiny_dataset, tmp_path):
    where = ["--dataset", str(tiny_dataset), "--root_work_dir", str(tmp_path), "--job-name", "tiny"]
    common = [*where, "--resolution", "8", "--batch_size", "2", *TINY_PIGAN]
    run("train", *common, "--kimg", "0.004")
    job = tmp_path / "tiny"
    log = [json.loads(line) for line in (job / "log.json").read_text().splitlines()]
    assert log[-1]["step"] == 2 and log[-1]["resolution"] == 8
    ckpts = sorted((job / "checkpoints").glob("checkpoint-*.pt"))
    assert ckpts[-1].name == "checkpoint-000000002.pt"

    again = run("train", *common, "--kimg", "0.004", check=False)
    assert again.returncode == 2 and "already exists; pass --resume" in again.stdout + again.stderr
    refused = run("train", *common, "--kimg", "0.008", "--resume", check=False)
    assert refused.returncode == 2 and "a resumed run keeps its modules" in refused.stdout + refused.stderr
    run("train", *where, "--kimg", "0.008", "--resume")
    log = [json.loads(line) for line in (job / "log.json").read_text().splitlines()]
    assert [e["step"] for e in log] == [2, 4]  # log_every 10: a line at the end of each run

    out = run("infer", "--model", str(sorted((job / "checkpoints").glob("*.pt"))[-1]), "--save_image", "--num", "2")
    infer_dir = job / "infer-000"
    assert (infer_dir / "image_grid.png").is_file() and (infer_dir / "inference.json").is_file()
    run("infer", "--model", str(sorted((job / "checkpoints").glob("*.pt"))[-1]), "--num", "1")
    assert (job / "infer-001").is_dir() and (infer_dir / "image_grid.png").is_file()
    run("infer", "--model", str(sorted((job / "checkpoints").glob("*.pt"))[-1]), "--edit", "camera_yaw",
        "--num", "1", "--edit_steps", "2")
    assert list((job / "edit-000").glob("*camera_yaw*.png"))

    out = run("eval", "--model", str(sorted((job / "checkpoints").glob("*.pt"))[-1]), "--dataset", str(tiny_dataset),
              "--test_reprojection_error", "--fake_num", "2")
    report = json.loads((job / "eval-000000004.json").read_text())
    assert report["step"] == 4 and 0 <= report["results"]["re"] < 1
    out = run("eval", "--model", str(sorted((job / "checkpoints").glob("*.pt"))[-1]), "--dataset", str(tiny_dataset),
              "--test_fid", "--fake_num", "2", check=False)
    assert out.returncode == 2 and "inception" in (out.stdout + out.stderr).lower()


def test_describe_graf_counts_match_the_official_networks():
    info = json.loads(run("describe", "--method", "graf", "--variant", "celeba64", "--json").stdout)
    # autonomousvision/graf (tools/official/graf_parameter_counts.py): the NeRF MLP and the patch discriminator.
    assert (info["generator_parameters"], info["discriminator_parameters"]) == (677_764, 2_635_776)
    slots = {row["slot"]: row for row in info["slots"]}
    assert slots["feature_decoder"]["name"] == "graf_nerf" and slots["stochasticity_mapper"]["parameters"] == 0
