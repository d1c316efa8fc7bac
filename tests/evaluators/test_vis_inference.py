"""run_inference: what it writes, and that it never overwrites earlier outputs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from gan3d.evaluators.visualizers import ImageGridVisualizer, run_inference
from gan3d.evaluators.visualizers.output_paths import fresh_subdirectory, write_new_file

sys.path.insert(0, str(Path(__file__).parent))
import test_vis_sphere_generator as S  # noqa: E402  (the analytic sphere generator)


def test_inference_writes_everything_into_a_fresh_folder_each_time(tmp_path):
    gen = S.sphere_generator("density", render_resolution=16)
    first = run_inference(gen, tmp_path, save_image=True, save_video=False, save_shape=True, shape_res=20, num=1,
                          truncation_psi=1.0, seed=2, progress=False)
    folder = tmp_path / "infer-000"
    assert {p.name for p in first} == {"inference.json", "image_grid.png", "image_raw_grid.png",
                                       "image_depth_grid.png", "shape_seed0002.ply", "shape_seed0002.obj",
                                       "shape_seed0002_preview.png"}
    assert all(p.parent == folder and p.is_file() for p in first)
    assert json.loads((folder / "inference.json").read_text())["seeds"] == [2]
    before = {p: p.read_bytes() for p in first}
    second = run_inference(gen, tmp_path, save_image=True, num=1, seed=2, progress=False)
    assert all(p.parent == tmp_path / "infer-001" for p in second)
    assert {p: p.read_bytes() for p in first} == before  # the first run's files are untouched


def test_inference_with_video(tmp_path):
    gen = S.sphere_generator("sdf", render_resolution=16)
    paths = run_inference(gen, tmp_path, save_image=False, save_video=True, num=1, seed=0, progress=True)
    assert [p.name for p in paths] == ["inference.json", "orbit_seed0000.mp4"]


def test_inference_refuses_to_do_nothing(tmp_path):
    with pytest.raises(ValueError, match="nothing to do"):
        run_inference(S.sphere_generator(), tmp_path, save_image=False, progress=False)
    assert not any(tmp_path.iterdir())


def test_visualizers_refuse_to_overwrite_existing_outputs(tmp_path):
    (tmp_path / "image_grid.png").write_bytes(b"earlier result")
    with pytest.raises(FileExistsError, match="never overwrite"):
        ImageGridVisualizer(num=1).visualize(S.sphere_generator(), tmp_path)
    assert (tmp_path / "image_grid.png").read_bytes() == b"earlier result"
    with pytest.raises(FileExistsError):
        write_new_file(tmp_path / "image_grid.png", b"new")
    assert [p.name for p in tmp_path.iterdir()] == ["image_grid.png"]  # nothing half-written left


def test_fresh_subdirectory_skips_taken_numbers(tmp_path):
    (tmp_path / "infer-000").mkdir()
    (tmp_path / "infer-001").write_text("a file, not a folder")
    assert fresh_subdirectory(tmp_path, "infer") == tmp_path / "infer-002"


def test_bf16_renders_close_images_and_exact_shapes(tmp_path):
    import imageio.v3 as iio
    import numpy as np

    gen = S.sphere_generator("density", render_resolution=16)
    kwargs = dict(save_image=True, save_shape=True, shape_res=20, num=1, truncation_psi=1.0, seed=2, progress=False)
    full = {p.name: p for p in run_inference(gen, tmp_path / "fp32", **kwargs)}
    half = {p.name: p for p in run_inference(gen, tmp_path / "bf16", precision="bf16", **kwargs)}
    assert json.loads(half["inference.json"].read_text())["precision"] == "bf16"
    a = iio.imread(full["image_grid.png"]).astype(np.float64)
    b = iio.imread(half["image_grid.png"]).astype(np.float64)
    assert a.shape == b.shape and np.abs(a - b).mean() < 2.0  # bfloat16 keeps ~3 significant digits
    assert full["shape_seed0002.ply"].read_bytes() == half["shape_seed0002.ply"].read_bytes()  # shapes stay fp32
    with pytest.raises(ValueError, match="precision must be 'fp32' or 'bf16'"):
        run_inference(gen, tmp_path / "bad", precision="fp16", progress=False)
    assert not (tmp_path / "bad").exists()
