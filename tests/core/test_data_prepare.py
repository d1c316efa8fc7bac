"""datasets prepare: dataset_tool's output (names, labels, crops), resumption after an interruption,
the same bytes with one or two worker processes, a method's steps recorded and not applied twice."""

from __future__ import annotations

import json
import zipfile

import cv2
import numpy as np
import pytest

from gan3d.core.data import DatasetError, ImageDataset, Preprocessing
from gan3d.core.data.prepare import archive_name, prepare_dataset

LABEL = [1.0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2.0, 0, 0, 0, 1, 1.5, 0, 0.5, 0, 1.5, 0.5, 0, 0, 1]


def _raw_folder(root, count=5, labels=True, size=(20, 14)):
    rng = np.random.default_rng(0)
    images = {}
    for i in range(count):
        name = f"cls{i % 2}/{i:03d}.png"
        image = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / name), image[:, :, ::-1])
        images[name] = image
    if labels:
        meta = {"labels": [[n, [v + i for v in LABEL]] for i, n in enumerate(sorted(images))]}
        (root / "dataset.json").write_text(json.dumps(meta))
    return root, images


def _contents(path):
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}


def test_dataset_tool_names_crops_and_renamed_labels(tmp_path):
    src, images = _raw_folder(tmp_path / "raw")
    report = prepare_dataset(src, tmp_path / "out.zip", 8, workers=1)
    assert report.num_images == 5 and report.labelled and report.sizes == [(8, 8)]
    meta = json.loads(_contents(report.path)["dataset.json"])
    assert [e[0] for e in meta["labels"]] == [archive_name(i) for i in range(5)] == [
        f"00000/img{i:08d}.png" for i in range(5)]
    assert meta["labels"][3][1][0] == pytest.approx(LABEL[0] + 3)  # sorted source order: the 4th image
    data = ImageDataset(report.path, labels="required")
    expected = Preprocessing([{"op": "square_center_crop"},
                              {"op": "resize", "size": [8, 8], "filter": "lanczos"}])(images[sorted(images)[3]], None)
    got = ((data[3].image.permute(1, 2, 0) + 1) * 127.5).round().numpy().astype(np.uint8)
    np.testing.assert_array_equal(got, expected)
    assert data.applied.steps == []  # no recipe pipeline, nothing more to apply


def test_interrupted_conversion_resumes_and_gives_the_same_zip(tmp_path):
    src, _ = _raw_folder(tmp_path / "raw", count=6, labels=False)
    fresh = prepare_dataset(src, tmp_path / "fresh.zip", 8, shard_size=2, workers=1)

    calls = []

    def stop_after_first_shard(done, total):
        calls.append(done)
        if done >= 2:
            raise KeyboardInterrupt

    out = tmp_path / "out.zip"
    with pytest.raises(KeyboardInterrupt):
        prepare_dataset(src, out, 8, shard_size=2, workers=1, progress=stop_after_first_shard)
    assert not out.exists() and (tmp_path / "out.zip.parts" / "shard-000000.zip").is_file()
    with pytest.raises(DatasetError, match="interrupted conversion with other settings"):
        prepare_dataset(src, out, 16, shard_size=2, workers=1)
    report = prepare_dataset(src, out, 8, shard_size=2, workers=1)
    assert report.resumed_shards == 1 and not (tmp_path / "out.zip.parts").exists()
    assert _contents(out) == _contents(fresh.path)
    assert json.loads(_contents(out)["dataset.json"])["labels"] is None


def test_two_workers_write_the_same_bytes(tmp_path):
    src, _ = _raw_folder(tmp_path / "raw", count=7, labels=False)
    one = prepare_dataset(src, tmp_path / "one.zip", 8, shard_size=2, workers=1)
    two = prepare_dataset(src, tmp_path / "two.zip", 8, shard_size=2, workers=2)
    assert _contents(one.path) == _contents(two.path)


def test_a_methods_steps_are_recorded_and_not_applied_twice(tmp_path):
    src, images = _raw_folder(tmp_path / "raw", labels=False, size=(40, 30))
    steps = [{"op": "resize", "size": 24, "filter": "bilinear"}, {"op": "center_crop", "size": 20},
             {"op": "resize", "size": "training", "filter": "torch_nearest"}]
    report = prepare_dataset(src, tmp_path / "m.zip", 10, preprocessing=steps, workers=1)
    assert report.steps == Preprocessing(steps).resolved(10).steps
    data = ImageDataset(report.path, preprocessing=steps, resolution=10)
    assert data.applied.steps == []
    direct = ImageDataset(src, preprocessing=steps, resolution=10, labels="unused")
    np.testing.assert_array_equal(data[2].image.numpy(), direct[2].image.numpy())
    # a random step is left for the loader: GIRAFFE's cars store the short-side resize only
    cars = [{"op": "resize", "size": "training", "fit": "short_side", "filter": "bilinear"},
            {"op": "random_crop", "size": "training"}]
    report = prepare_dataset(src, tmp_path / "cars.zip", 10, preprocessing=cars, workers=1)
    assert report.sizes == [(13, 10)]  # int(10 * 40 / 30)
    assert ImageDataset(report.path, preprocessing=cars, resolution=10)[0].image.shape == (3, 10, 10)


def test_prepare_errors(tmp_path):
    src, _ = _raw_folder(tmp_path / "raw", labels=False)
    (tmp_path / "taken.zip").write_bytes(b"x")
    with pytest.raises(DatasetError, match="taken.zip exists; remove it or choose another name"):
        prepare_dataset(src, tmp_path / "taken.zip", 8)
    (src / "cls1" / "001.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(DatasetError, match=r"cls1/001.png cannot be decoded as an image"):
        prepare_dataset(src, tmp_path / "bad.zip", 8, workers=2, shard_size=1)
    assert not (tmp_path / "bad.zip").exists()
    (tmp_path / "none").mkdir()
    with pytest.raises(DatasetError, match="none holds no images"):
        prepare_dataset(tmp_path / "none", tmp_path / "none.zip", 8)


def test_partly_labelled_source_gets_null_labels(tmp_path, caplog):
    src, images = _raw_folder(tmp_path / "raw", labels=False)
    first = sorted(images)[0]
    (src / "dataset.json").write_text(json.dumps({"labels": [[first, LABEL]]}))
    with caplog.at_level("WARNING"):
        report = prepare_dataset(src, tmp_path / "out.zip", 8, workers=1)
    assert not report.labelled and "4 of 5 images have no label" in caplog.text
