"""tools/run.py on real-data layouts: pi-GAN from a folder of JPEGs through its official CelebA
preprocessing, GIRAFFE from a zip without labels, EG3D from a dataset_tool zip made by `datasets
prepare`, and EG3D refusing a set without camera labels with one message."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

from gan3d.core import get_registry

ROOT = Path(__file__).resolve().parents[1]
RUN = [sys.executable, str(ROOT / "tools" / "run.py")]
ENV = {**os.environ, "COLUMNS": "400", "OMP_NUM_THREADS": "1"}

#: the CPU-sized pi-GAN of tests/test_cli.py
TINY_PIGAN = [
    "--method", "pigan", "--variant", "synthetic",
    "--set", "stochasticity_mapper.z_dim=8", "--set", "stochasticity_mapper.hidden_dim=8",
    "--set", "stochasticity_mapper.film_dim=8", "--set", "feature_decoder.hidden_dim=8",
    "--set", "stochasticity_mapper.num_ws=3", "--set", "feature_decoder.num_layers=2",
    "--set", "point_sampler.num_samples=4", "--set", "generator.num_importance=4",
    "--set", "discriminator.channels=[4, 4, 8, 8, 8, 8, 8, 8]", "--set", "discriminator.latent_dim=8",
]


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    out = subprocess.run([*RUN, *args], capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=300)
    if check and out.returncode != 0:
        raise AssertionError(f"run.py {' '.join(args)} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    return out


def _said(out: subprocess.CompletedProcess) -> str:
    return " ".join((out.stdout + out.stderr).split())


def _jpeg_folder(root: Path, count: int = 4, size=(218, 178)) -> Path:
    rng = np.random.default_rng(0)
    for i in range(count):
        (root / "img_align_celeba").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / "img_align_celeba" / f"{i:06d}.jpg"), rng.integers(0, 256, (*size, 3), dtype=np.uint8))
    return root / "img_align_celeba"


def test_pigan_trains_from_jpegs_with_its_celeba_preprocessing(tmp_path):
    folder = _jpeg_folder(tmp_path)
    celeba = get_registry().get("method", "pigan")("celeba").data["preprocessing"]
    out = run("train", *TINY_PIGAN, "--set", f"data.preprocessing={json.dumps(celeba)}", "--dataset", str(folder),
              "--kimg", "0.008", "--root_work_dir", str(tmp_path / "w"), "--job_name", "p")
    said = _said(out)
    assert "resize 320 (bilinear) -> center_crop 256 -> resize 32x32 (torch_nearest)" in said
    assert "folder, images=4, labels=no" in said
    saved = json.loads((tmp_path / "w" / "p" / "recipe.json").read_text())
    assert saved["data"]["preprocessing"] == celeba


def test_giraffe_trains_from_a_zip_without_labels_and_eg3d_refuses_it(tmp_path):
    folder = _jpeg_folder(tmp_path, size=(40, 60))
    zipped = tmp_path / "cars.zip"
    run("datasets", "prepare", str(folder), str(zipped), "--resolution", "64", "--transform", "scale",
        "--workers", "1")
    out = run("train", "--method", "giraffe", "--variant", "synthetic", "--dataset", str(zipped), "--kimg", "0.008",
              "--root_work_dir", str(tmp_path / "w"), "--job_name", "g")
    assert "zip, images=4, labels=no" in _said(out)
    refused = run("train", "--method", "eg3d", "--variant", "synthetic", "--dataset", str(zipped),
                  "--root_work_dir", str(tmp_path / "w"), "--job_name", "e", check=False)
    said = _said(refused)
    assert refused.returncode == 2 and "Traceback" not in said
    assert "carries no camera labels" in said and "method 'eg3d' needs one per image" in said
    assert not (tmp_path / "w" / "e").exists()


def test_eg3d_trains_from_a_prepared_dataset_tool_zip(tmp_path):
    from gan3d.core.data import default_dataset_path

    zipped = tmp_path / "heads.zip"
    run("datasets", "prepare", str(default_dataset_path()), str(zipped), "--resolution", "32", "--workers", "2")
    meta = json.loads(__import__("zipfile").ZipFile(zipped).read("dataset.json"))
    assert len(meta["labels"]) > 0 and meta["labels"][0][0] == "00000/img00000000.png"
    out = run("train", "--method", "eg3d", "--variant", "synthetic", "--dataset", str(zipped), "--kimg", "0.008",
              "--set", "training.batch_size=4", "--root_work_dir", str(tmp_path / "w"), "--job_name", "e")
    assert "labels=yes" in _said(out)
