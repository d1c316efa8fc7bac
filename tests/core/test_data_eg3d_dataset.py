"""EG3DDataset and check_dataset: round trips on folders and zips, x-flip, resizing, depth, and one
clear error (naming the file and the entry) for every defect a data set can have."""

from __future__ import annotations

import io
import json
import math
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from gan3d.core.cameras import focal_to_intrinsics, look_at, spherical_origin
from gan3d.core.data import DatasetError, EG3DDataset, ImageDepthSample, ImageSample, check_dataset
from gan3d.core.types import Cameras

RES = 16


def _labels(count: int) -> np.ndarray:
    yaw = torch.linspace(1.2, 1.9, count)
    polar = torch.full((count,), 1.5)
    origin = spherical_origin(yaw, polar, 2.7, torch.tensor([0.0, 0.0, 0.2]))
    cams = Cameras(look_at(origin, torch.tensor([0.0, 0.0, 0.2])), focal_to_intrinsics(4.2647, count))
    return cams.label.numpy().astype(np.float64)


def _name(i: int) -> str:
    return f"00000/img{i:08d}.png"


def _png(image: np.ndarray) -> bytes:
    ok, buffer = cv2.imencode(".png", image[..., ::-1] if image.ndim == 3 and image.shape[2] == 3 else image)
    assert ok
    return buffer.tobytes()


def write_set(root: Path, count: int = 4, as_zip: bool = False, depth: bool = False, seed: int = 0,
              edit=None) -> tuple[Path, np.ndarray, np.ndarray]:
    """Write a tiny EG3D set; ``edit(files, meta)`` may alter it first. Returns path, images, labels."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (count, RES, RES, 3), dtype=np.uint8)
    labels = _labels(count)
    files = {_name(i): _png(images[i]) for i in range(count)}
    meta = {"labels": [[_name(i), labels[i].tolist()] for i in range(count)]}
    if depth:
        depths = rng.uniform(0.0, 3.0, (count, RES, RES)).astype(np.float32)
        meta["depth"] = {"files": [[_name(i), f"depth/{i}.npy"] for i in range(count)]}
        for i in range(count):
            buf = io.BytesIO()
            np.save(buf, depths[i])
            files[f"depth/{i}.npy"] = buf.getvalue()
    if edit is not None:
        edit(files, meta)
    files["dataset.json"] = json.dumps(meta).encode()
    if as_zip:
        path = root / "set.zip"
        with zipfile.ZipFile(path, "w") as z:
            for name, data in files.items():
                z.writestr(name, data)
    else:
        path = root / "set"
        for name, data in files.items():
            (path / name).parent.mkdir(parents=True, exist_ok=True)
            (path / name).write_bytes(data)
    return path, images, labels


@pytest.mark.parametrize("as_zip", [False, True])
def test_round_trip_images_and_labels(tmp_path, as_zip):
    path, images, labels = write_set(tmp_path, as_zip=as_zip)
    data = EG3DDataset(path)
    assert len(data) == 4 and data.resolution == RES
    for i in range(4):
        item = data[i]
        assert isinstance(item, ImageSample)
        assert item.image.shape == (3, RES, RES) and item.image.dtype == torch.float32
        expected = torch.from_numpy(images[i].transpose(2, 0, 1).astype(np.float32)) / 127.5 - 1.0
        torch.testing.assert_close(item.image, expected)
        assert item.label.dtype == torch.float32 and item.label.shape == (25,)
        torch.testing.assert_close(item.label, torch.from_numpy(labels[i]).float())
    torch.testing.assert_close(data.labels, torch.from_numpy(labels).float())
    report = check_dataset(path)
    assert (report.num_images, report.resolution, report.kind) == (4, RES, "zip" if as_zip else "folder")


def test_zip_read_by_worker_processes(tmp_path):
    path, images, _ = write_set(tmp_path, count=6, as_zip=True)
    data = EG3DDataset(path)
    data[0]  # the parent opens its own handle; workers must not reuse it
    batches = list(DataLoader(data, batch_size=3, num_workers=2, shuffle=False))
    stacked = torch.cat([b.image for b in batches])
    expected = torch.from_numpy(images.transpose(0, 3, 1, 2).astype(np.float32)) / 127.5 - 1.0
    torch.testing.assert_close(stacked, expected)
    assert isinstance(batches[0], ImageSample) and batches[0].label.shape == (3, 25)


def test_xflip_mirrors_image_and_label(tmp_path):
    path, _, labels = write_set(tmp_path)
    plain, flipped = EG3DDataset(path), EG3DDataset(path, xflip=True)
    assert len(flipped) == 8
    for i in range(4):
        torch.testing.assert_close(flipped[i].image, plain[i].image)
        torch.testing.assert_close(flipped[4 + i].image, torch.flip(plain[i].image, dims=[-1]))
        expected = Cameras.from_label(plain[i].label[None]).mirror_x().label[0]
        torch.testing.assert_close(flipped[4 + i].label, expected)
        # The same matrix change as EG3D's dataset_preprocessing/mirror_dataset.py flip_yaw.
        pose = labels[i][:16].reshape(4, 4).copy()
        for r, c in [(0, 1), (0, 2), (1, 0), (2, 0), (0, 3)]:
            pose[r, c] *= -1
        torch.testing.assert_close(flipped[4 + i].label[:16], torch.from_numpy(pose.reshape(-1)).float())
    assert not torch.allclose(flipped[5].label, plain[1].label)  # the label does change


def test_resize_averages_pixel_areas(tmp_path):
    path, images, _ = write_set(tmp_path)
    data = EG3DDataset(path, resolution=RES // 2)
    pooled = torch.nn.functional.avg_pool2d(torch.from_numpy(images.transpose(0, 3, 1, 2)).float(), 2)
    assert data[1].image.shape == (3, RES // 2, RES // 2)
    torch.testing.assert_close(data[1].image, pooled[1] / 127.5 - 1.0, atol=1.01 / 127.5, rtol=0)


def test_depth_round_trip_flip_and_resize(tmp_path):
    path, _, _ = write_set(tmp_path, depth=True)
    stored = np.load(path / "depth/2.npy")
    data = EG3DDataset(path, xflip=True, load_depth=True)
    item = data[2]
    assert isinstance(item, ImageDepthSample) and item.depth.shape == (1, RES, RES)
    torch.testing.assert_close(item.depth[0], torch.from_numpy(stored))
    torch.testing.assert_close(data[6].depth[0], torch.from_numpy(stored[:, ::-1].copy()))
    small = EG3DDataset(path, resolution=8, load_depth=True)[2].depth[0]
    assert set(small.flatten().tolist()) <= set(stored.flatten().tolist())  # nearest: no invented depths
    assert check_dataset(path).has_depth
    plain_path, _, _ = write_set(tmp_path / "nodepth")
    with pytest.raises(DatasetError, match="carries no depth maps"):
        EG3DDataset(plain_path, load_depth=True)


def _edit_label(index, value):
    def edit(files, meta):
        meta["labels"][index][1] = value
    return edit


def _replace_file(name, data):
    def edit(files, meta):
        files[name] = data
    return edit


def _image(shape, dtype=np.uint8):
    return np.full(shape, 100, dtype=dtype)


@pytest.mark.parametrize(
    "edit, pattern",
    [
        (_edit_label(2, [0.0] * 24), r"entry '00000/img00000002.png' has a label of length 24"),
        (_edit_label(1, [math.nan] + [0.0] * 24), r"entry '00000/img00000001.png' has non-finite label values"),
        (_edit_label(1, [1e39] + [0.0] * 24), r"entry '00000/img00000001.png' has non-finite label values"),
        (lambda files, meta: meta.update(labels=[]), r"dataset.json lists no images: the data set is empty"),
        (lambda files, meta: files.pop(_name(3)), r"img00000003.png'? is named in dataset.json but does not exist"),
        (_replace_file(_name(0), _png(_image((RES, RES + 4, 3)))), r"img00000000.png.* is 20x16; images must be squ"),
        (_replace_file(_name(0), _png(_image((RES, RES)))), r"img00000000.png.* has 1 channel\(s\)"),
        (_replace_file(_name(0), _png(_image((RES, RES, 4)))), r"img00000000.png.* has 4 channel\(s\)"),
        (_replace_file(_name(0), _png(_image((RES, RES, 3), np.uint16))), r"img00000000.png.* has uint16 pixels"),
        (_replace_file(_name(0), b"not an image at all"), r"img00000000.png.* cannot be decoded"),
    ],
)
@pytest.mark.parametrize("as_zip", [False, True])
def test_defects_found_at_construction(tmp_path, edit, pattern, as_zip):
    path, _, _ = write_set(tmp_path, as_zip=as_zip, edit=edit)
    with pytest.raises(DatasetError, match=pattern) as info:
        EG3DDataset(path)
    assert str(path) in str(info.value)
    with pytest.raises(DatasetError, match=pattern):
        check_dataset(path)


@pytest.mark.parametrize(
    "edit, pattern",
    [
        (_replace_file(_name(2), b"\x89PNG\r\n\x1a\n garbage"), r"img00000002.png.* cannot be decoded"),
        (_replace_file(_name(2), _png(np.zeros((RES, RES, 3), np.uint8))[:60]), r"img00000002.png.* cannot be decoded"),
        (_replace_file(_name(2), _png(np.zeros((2 * RES, 2 * RES, 3), np.uint8))),
         r"img00000002.png.* is 32x32 but the data set's first image is 16x16"),
    ],
)
@pytest.mark.parametrize("as_zip", [False, True])
def test_decode_errors_name_the_file_when_read(tmp_path, edit, pattern, as_zip):
    path, _, _ = write_set(tmp_path, as_zip=as_zip, edit=edit)
    data = EG3DDataset(path)  # only the first image is decoded eagerly
    data[1]
    with pytest.raises(DatasetError, match=pattern):
        data[2]
    with pytest.raises(DatasetError, match=pattern):
        check_dataset(path)


def test_missing_dataset_json_and_missing_path(tmp_path):
    path, _, _ = write_set(tmp_path)
    (path / "dataset.json").unlink()
    with pytest.raises(DatasetError, match=rf"{path} has no dataset.json"):
        EG3DDataset(path)
    with pytest.raises(DatasetError, match=r"nowhere.zip does not exist"):
        EG3DDataset(tmp_path / "nowhere.zip")
    zpath = tmp_path / "badjson.zip"
    with zipfile.ZipFile(zpath, "w") as z:
        z.writestr(_name(0), _png(_image((RES, RES, 3))))
        z.writestr("dataset.json", b"{not json")
    with pytest.raises(DatasetError, match=rf"{zpath}: dataset.json is not valid JSON"):
        EG3DDataset(zpath)


def test_truncated_and_corrupt_zip(tmp_path):
    path, _, _ = write_set(tmp_path, as_zip=True)
    raw = path.read_bytes()
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DatasetError, match=rf"{truncated} is neither a folder nor a readable zip"):
        EG3DDataset(truncated)
    # Flip bytes inside the stored data of one image: the zip's CRC check names the entry.
    with zipfile.ZipFile(path) as z:
        info = z.getinfo(_name(3))
    corrupt = bytearray(raw)
    start = info.header_offset + 30 + len(info.filename) + len(info.extra) + 40
    corrupt[start:start + 8] = bytes(8)
    bad = tmp_path / "corrupt.zip"
    bad.write_bytes(bytes(corrupt))
    data = EG3DDataset(bad)
    with pytest.raises(DatasetError, match=rf"{bad}: entry '00000/img00000003.png' cannot be read .*corrupt"):
        data[3]
    with pytest.raises(DatasetError, match="img00000003.png"):
        check_dataset(bad)


def test_depth_defects(tmp_path):
    def drop_depth(files, meta):
        meta["depth"]["files"].pop(1)
    path, _, _ = write_set(tmp_path / "a", depth=True, edit=drop_depth)
    with pytest.raises(DatasetError, match=r"entry '00000/img00000001.png' has no depth map"):
        EG3DDataset(path)

    def wrong_shape(files, meta):
        buf = io.BytesIO()
        np.save(buf, np.zeros((RES, RES + 1), np.float32))
        files["depth/2.npy"] = buf.getvalue()
    path, _, _ = write_set(tmp_path / "b", depth=True, edit=wrong_shape)
    with pytest.raises(DatasetError, match=r"depth/2.npy has shape \(16, 17\)"):
        check_dataset(path)


def test_check_dataset_counts_unlisted_images(tmp_path):
    path, _, _ = write_set(tmp_path, edit=lambda files, meta: meta["labels"].pop())
    report = check_dataset(path)
    assert report.num_images == 3 and report.unlisted_images == 1 and report.channels == 3
