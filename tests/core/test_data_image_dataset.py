"""ImageDataset, the archives and the preprocessing: every storage format gives the same images, the
official pipelines keep what they should keep (a centred square survives, a border mark is cropped
away), labels are optional or required as the recipe says, and each defect has one clear message."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from gan3d.core.data import (
    DatasetError,
    ImageDataset,
    Preprocessing,
    PreprocessingError,
    check_dataset,
    open_archive,
)
from gan3d.core.data.image_dataset import decode_image, open_training_dataset
from gan3d.core.data.labels import register_label_reader
from gan3d.core.types import Cameras

PIGAN_CELEBA = [{"op": "resize", "size": 320, "filter": "bilinear"}, {"op": "center_crop", "size": 256},
                {"op": "resize", "size": "training", "filter": "torch_nearest"}]


def _encode(image: np.ndarray, ext: str = ".png") -> bytes:
    bgr = image[..., ::-1] if image.ndim == 3 and image.shape[2] == 3 else image
    ok, buffer = cv2.imencode(ext, np.ascontiguousarray(bgr))
    assert ok
    return buffer.tobytes()


def _square_image(height: int, width: int, side: int, value: int = 255) -> np.ndarray:
    """Black ``[height, width, 3]`` with a centred ``side`` x ``side`` square of ``value``."""
    image = np.zeros((height, width, 3), np.uint8)
    top, left = (height - side) // 2, (width - side) // 2
    image[top:top + side, left:left + side] = value
    return image


def _random_images(count: int, size: int = 16, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(count)]


def _files(images: list[np.ndarray]) -> dict[str, bytes]:
    # nested folders, as raw downloads have them; PNG so that every format holds identical pixels
    return {f"part{i % 2}/sub/img{i:03d}.png": _encode(im) for i, im in enumerate(images)}


def write_folder(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def write_zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return path


def write_tar(path: Path, files: dict[str, bytes], mode: str = "w") -> Path:
    with tarfile.open(path, mode) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def write_lmdb(path: Path, files: dict[str, bytes]) -> Path:
    import lmdb

    with lmdb.open(str(path), map_size=1 << 26) as env, env.begin(write=True) as txn:
        for name, data in files.items():
            txn.put(name.encode(), data)
    return path


WRITERS = {
    "folder": lambda tmp, files: write_folder(tmp / "set", files),
    "zip": lambda tmp, files: write_zip(tmp / "set.zip", files),
    "tar": lambda tmp, files: write_tar(tmp / "set.tar", files),
    "tar.gz": lambda tmp, files: write_tar(tmp / "set.tar.gz", files, "w:gz"),
    "lmdb": lambda tmp, files: write_lmdb(tmp / "set_lmdb", files),
}


# ---------------------------------------------------------------- archives


@pytest.mark.parametrize("kind", list(WRITERS))
def test_every_format_holds_the_same_images(tmp_path, kind, monkeypatch):
    monkeypatch.setenv("GAN3D_CACHE", str(tmp_path / "cache"))
    images = _random_images(5)
    files = _files(images)
    extra = {} if kind == "lmdb" else {"__MACOSX/part0/._img000.png": b"junk", "part0/.DS_Store": b"junk",
                                       "notes.txt": b"not an image"}
    path = WRITERS[kind](tmp_path, {**files, **extra})
    archive = open_archive(path)
    assert archive.kind == kind.split(".")[0]
    report = check_dataset(path)  # `datasets check` reads every format
    assert (report.kind, report.num_images, report.resolution, report.labelled) == (archive.kind, 5, 16, False)
    data = ImageDataset(path)
    assert data.image_names == sorted(files)
    assert len(data) == 5 and not data.has_labels
    for i, name in enumerate(sorted(files)):
        expected = images[list(files).index(name)]
        item = data[i]
        assert item.label.shape == (0,)
        got = ((item.image.permute(1, 2, 0) + 1) * 127.5).round().to(torch.uint8).numpy()
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("kind", ["zip", "tar", "lmdb"])
def test_worker_processes_open_their_own_handles(tmp_path, kind):
    path = WRITERS[kind](tmp_path, _files(_random_images(6)))
    data = ImageDataset(path)
    direct = torch.stack([data[i].image for i in range(6)])
    loader = DataLoader(data, batch_size=3, num_workers=2)
    np.testing.assert_array_equal(torch.cat([b[0] for b in loader]).numpy(), direct.numpy())


def test_truncated_archives_name_the_file(tmp_path):
    path = write_zip(tmp_path / "set.zip", _files(_random_images(3)))
    cut = tmp_path / "cut.zip"
    cut.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DatasetError, match=r"cut.zip is neither a folder nor a readable zip, tar or LMDB"):
        ImageDataset(cut)
    tar = write_tar(tmp_path / "set.tar", _files(_random_images(3)))
    short = tmp_path / "short.tar"
    short.write_bytes(tar.read_bytes()[:1200])
    with pytest.raises(DatasetError, match="short.tar"):
        ImageDataset(short)
    with pytest.raises(DatasetError, match="nowhere does not exist"):
        ImageDataset(tmp_path / "nowhere")


# ---------------------------------------------------------------- decoding


def test_decode_grey_alpha_and_16_bit_become_rgb():
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    np.testing.assert_array_equal(decode_image(_encode(grey), "g"), np.repeat(grey[:, :, None], 3, 2))
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 7  # BGRA on disk: blue 200 -> RGB (0, 0, 200), alpha dropped
    np.testing.assert_array_equal(decode_image(_encode(rgba), "a")[0, 0], [0, 0, 200])
    deep = np.full((2, 2, 3), 65535, np.uint16)
    assert decode_image(_encode(deep), "d").max() == 255
    with pytest.raises(DatasetError, match="bad.png cannot be decoded"):
        decode_image(b"not an image at all", "bad.png")


# ---------------------------------------------------------------- preprocessing


def test_pigan_celeba_keeps_a_centred_square_at_the_expected_size():
    """178x218 (CelebA's aligned size) with a centred 100-px square: Resize(320) scales by 320/178,
    CenterCrop(256) keeps the middle, the nearest resize to 64 scales by 1/4: side 100*320/178/4 = 44.9."""
    image = _square_image(218, 178, 100)
    out = Preprocessing(PIGAN_CELEBA).resolved(64)(image, np.random.default_rng(0))
    assert out.shape == (64, 64, 3)
    rows = np.flatnonzero(out[:, 32, 0] > 127)
    cols = np.flatnonzero(out[32, :, 0] > 127)
    assert abs(len(rows) - 44.9) <= 1.5 and abs(len(cols) - 44.9) <= 1.5
    # centred: as many dark rows above as below, within a pixel
    assert abs(rows[0] - (63 - rows[-1])) <= 1 and abs(cols[0] - (63 - cols[-1])) <= 1
    assert out[0, 0].max() == 0 and out[-1, -1].max() == 0


def test_center_crop_removes_a_border_mark_that_resize_only_keeps():
    image = np.zeros((218, 178, 3), np.uint8)
    image[:20] = 255  # a band at the top: outside pi-GAN CelebA's crop (it keeps rows 67..323 of 391)
    celeba = Preprocessing(PIGAN_CELEBA).resolved(32)(image, np.random.default_rng(0))
    cats = Preprocessing([{"op": "resize", "size": "training", "filter": "nearest"}]).resolved(32)(
        image, np.random.default_rng(0))
    assert celeba.max() == 0
    assert cats[0].min() == 255 and cats[-1].max() == 0


def test_resize_short_side_truncates_the_long_side_as_torchvision():
    out = Preprocessing([{"op": "resize", "size": 320, "filter": "bilinear"}])(np.zeros((218, 178, 3), np.uint8),
                                                                                np.random.default_rng(0))
    assert out.shape == (391, 320, 3)  # int(320 * 218 / 178) = int(391.9)


def test_torch_nearest_is_interpolate_nearest():
    image = np.random.default_rng(1).integers(0, 256, (20, 20, 3), dtype=np.uint8)
    out = Preprocessing([{"op": "resize", "size": [7, 7], "filter": "torch_nearest"}])(image, None)
    torch_out = torch.nn.functional.interpolate(torch.from_numpy(image).permute(2, 0, 1)[None].float(), size=(7, 7),
                                                mode="nearest")[0].permute(1, 2, 0).to(torch.uint8).numpy()
    np.testing.assert_array_equal(out, torch_out)


def test_center_crop_rounds_and_pads_as_torchvision():
    image = np.arange(5 * 5 * 3, dtype=np.uint8).reshape(5, 5, 3)
    out = Preprocessing([{"op": "center_crop", "size": 2}])(image, None)
    # top = int(round((5 - 2) / 2)) = round(1.5) = 2 (round half to even)
    np.testing.assert_array_equal(out, image[2:4, 2:4])
    padded = Preprocessing([{"op": "center_crop", "size": 8}])(image, None)
    assert padded.shape == (8, 8, 3)
    # padding (8 - 5) = 3: 1 before, 2 after; then the crop offset round(0 / 2) = 0
    np.testing.assert_array_equal(padded[1:6, 1:6], image)
    assert padded[0].max() == 0 and padded[6:].max() == 0


def test_random_crop_is_reproducible_and_in_bounds():
    image = np.arange(40 * 30, dtype=np.int64).reshape(40, 30, 1).repeat(3, 2).astype(np.uint16)
    pipe = Preprocessing([{"op": "random_crop", "size": 8}])
    a = [pipe(image, rng)[0, 0, 0] for rng in [np.random.default_rng(5)] * 1 for _ in range(6)]
    b = [pipe(image, rng)[0, 0, 0] for rng in [np.random.default_rng(5)] * 1 for _ in range(6)]
    assert a == b and len(set(a)) > 1
    for corner in a:
        row, col = divmod(int(corner), 30)
        assert 0 <= row <= 32 and 0 <= col <= 22
    with pytest.raises(DatasetError, match="does not fit"):
        Preprocessing([{"op": "random_crop", "size": 50}])(image, np.random.default_rng(0), "x.png")


def test_giraffe_cars_random_crop_of_the_short_side():
    """GIRAFFE's cars: Resize(64) on the short side, then RandomCrop(64) along the long side only."""
    image = _square_image(60, 120, 40)
    steps = [{"op": "resize", "size": "training", "fit": "short_side", "filter": "bilinear"},
             {"op": "random_crop", "size": "training"}]
    out = Preprocessing(steps).resolved(30)(image, np.random.default_rng(0))
    assert out.shape == (30, 30, 3)
    rows = np.flatnonzero(out.max(axis=(1, 2)) > 127)
    assert abs(len(rows) - 20) <= 1  # the vertical extent is never cropped: 40 * 30 / 60


@pytest.mark.parametrize("spec, pattern", [
    ([{"op": "crop", "size": 3}], "unknown op 'crop'"),
    ([{"op": "resize", "size": 0, "filter": "bilinear"}], "size must be a positive int"),
    ([{"op": "resize", "size": 8, "filter": "fancy"}], "filter 'fancy' is unknown"),
    ([{"op": "resize", "size": 8}], r"needs \['filter'\]"),
    ([{"op": "center_crop", "size": 8, "filter": "box"}], "takes"),
    ([{"op": "resize", "size": 8, "filter": "box", "fit": "short_side"}], "applies to size \"training\" only"),
    ({"op": "resize"}, "must be a list of steps"),
])
def test_malformed_specs_name_the_step(spec, pattern):
    with pytest.raises(PreprocessingError, match=pattern):
        Preprocessing(spec, "recipe data.preprocessing")


def test_training_size_needs_a_resolution():
    with pytest.raises(PreprocessingError, match="give the resolution"):
        Preprocessing(PIGAN_CELEBA).resolved(None)


def test_after_skips_an_applied_prefix_only():
    pipe = Preprocessing(PIGAN_CELEBA).resolved(64)
    assert pipe.after(pipe.steps[:2]).steps == pipe.steps[2:]
    assert pipe.after([{"op": "center_crop", "size": 256}]) is None
    assert pipe.deterministic_prefix() == pipe


# ---------------------------------------------------------------- ImageDataset


def test_raw_jpeg_folder_through_the_pigan_pipeline_with_xflip(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "img_align_celeba"
    for i in range(3):
        image = _square_image(218, 178, 100)
        image[100:118, 20:40] = rng.integers(0, 255, 3)  # an off-centre patch makes the flip visible
        write_folder(root, {f"{i:06d}.jpg": _encode(image, ".jpg")})
    data = ImageDataset(root, preprocessing=PIGAN_CELEBA, resolution=32, xflip=True)
    assert len(data) == 6 and data.image_size == 32
    plain, mirrored = data[1], data[4]
    assert plain.image.shape == (3, 32, 32) and plain.label.shape == (0,)
    torch.testing.assert_close(mirrored.image, plain.image.flip(-1))


def test_eg3d_labels_read_and_mirrored(tmp_path):
    images = _random_images(3)
    names = [f"00000/img{i:08d}.png" for i in range(3)]
    cam2world = torch.eye(4).repeat(3, 1, 1)
    cam2world[:, 0, 3] = torch.tensor([0.1, 0.2, 0.3])  # off the mirror plane, so mirroring changes them
    intrinsics = torch.tensor([[4.26, 0, 0.5, 0, 4.26, 0.5, 0, 0, 1.0]]).repeat(3, 1)
    labels = torch.cat([cam2world.reshape(3, 16), intrinsics], 1)
    files = {n: _encode(im) for n, im in zip(names, images)}
    files["dataset.json"] = json.dumps({"labels": [[n, labels[i].tolist()] for i, n in enumerate(names)]}).encode()
    path = write_zip(tmp_path / "eg3d.zip", files)
    data = ImageDataset(path, labels="required", xflip=True)
    assert data.labels.shape == (6, 25)
    torch.testing.assert_close(data[2].label, labels[2])
    torch.testing.assert_close(data[5].label, Cameras.from_label(labels[2:3]).mirror_x().label[0])


def _eg3d_zip(tmp_path: Path, labels) -> Path:
    files = _files(_random_images(2))
    files["dataset.json"] = json.dumps({"labels": labels}).encode()
    return write_zip(tmp_path / "tool.zip", files)


def test_dataset_tool_zip_with_null_labels_is_unlabelled(tmp_path):
    path = _eg3d_zip(tmp_path, None)
    assert not ImageDataset(path).has_labels
    with pytest.raises(DatasetError, match=r"carries no camera labels .*\"labels\": null.*method 'eg3d' needs one "
                                           r"per image"):
        open_training_dataset(path, {"labels": "required"}, method="eg3d")


def test_external_labels_file(tmp_path):
    path = write_zip(tmp_path / "raw.zip", _files(_random_images(2)))
    names = sorted(_files(_random_images(2)))
    label = [0.0] * 25
    meta = tmp_path / "dataset.json"
    meta.write_text(json.dumps({"labels": [[names[0], label], [names[1], label]]}))
    data = ImageDataset(path, labels="required", labels_file=meta)
    assert data.labels.shape == (2, 25)
    with pytest.raises(DatasetError, match="labels file .*missing.json does not exist"):
        ImageDataset(path, labels_file=tmp_path / "missing.json")


def test_a_labelled_image_that_is_absent_is_named(tmp_path):
    path = _eg3d_zip(tmp_path, [["part0/sub/img000.png", [0.0] * 25], ["gone.png", [0.0] * 25]])
    with pytest.raises(DatasetError, match="entry 'gone.png' is named in .*dataset.json but does not exist"):
        ImageDataset(path)


def test_unused_labels_are_not_read(tmp_path):
    path = _eg3d_zip(tmp_path, "not even a list")
    with pytest.raises(DatasetError, match="'labels' must be a list"):
        ImageDataset(path)
    assert not ImageDataset(path, labels="unused").has_labels


def test_empty_undecodable_non_square_and_mixed_sets(tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(DatasetError, match=r"empty holds no images \(.png, .jpg, .jpeg, .webp\)"):
        ImageDataset(tmp_path / "empty")
    files = _files(_random_images(3))
    files["part1/sub/img001.png"] = b"\x89PNG broken"
    bad = write_folder(tmp_path / "bad", files)
    data = ImageDataset(bad)  # the first image decodes; the broken one fails when read, naming itself
    with pytest.raises(DatasetError, match=r"bad/part1/sub/img001.png cannot be decoded"):
        data[data.image_names.index("part1/sub/img001.png")]
    wide = write_folder(tmp_path / "wide", {"a.png": _encode(np.zeros((8, 12, 3), np.uint8))})
    with pytest.raises(DatasetError, match="a.png is 12x8 after preprocessing .* must be square"):
        ImageDataset(wide)
    mixed = write_folder(tmp_path / "mixed", {"a.png": _encode(np.zeros((8, 8, 3), np.uint8)),
                                              "b.png": _encode(np.zeros((9, 9, 3), np.uint8))})
    data = ImageDataset(mixed)
    with pytest.raises(DatasetError, match="b.png is 9x9 .* but the first image is 8x8"):
        data[1]
    assert ImageDataset(mixed, preprocessing=[{"op": "resize", "size": "training", "filter": "area"}],
                        resolution=4)[1].image.shape == (3, 4, 4)


def test_stylesdf_lmdb_reads_its_stored_size_and_skips_the_stored_steps(tmp_path):
    big = [_square_image(32, 32, 16, 200 + i) for i in range(2)]
    files = {f"32-{i:05d}": _encode(im) for i, im in enumerate(big)}
    files.update({f"8-{i:05d}": _encode(np.zeros((8, 8, 3), np.uint8)) for i in range(2)})
    files["length"] = b"2"
    path = write_lmdb(tmp_path / "ffhq_lmdb", files)
    steps = [{"op": "resize", "size": 32, "filter": "lanczos"}, {"op": "center_crop", "size": 32},
             {"op": "resize", "size": "training", "filter": "hamming"}]
    data = ImageDataset(path, preprocessing=steps, resolution=16)
    assert data.image_names == ["32-00000", "32-00001"]
    assert data.applied.steps == [{"op": "resize", "size": [16, 16], "filter": "hamming"}]
    image = ((data[1].image + 1) * 127.5).round()
    assert image[0, 8, 8] == 201 and image[0, 0, 0] == 0  # the square's centre and the dark corner


def test_a_prepared_record_skips_the_applied_steps(tmp_path, caplog):
    steps = [{"op": "resize", "size": [8, 8], "filter": "bilinear"}]
    files = {"a.png": _encode(np.full((8, 8, 3), 9, np.uint8))}
    files["dataset.json"] = json.dumps({"labels": None, "gan3d": {"preprocessing": steps}}).encode()
    path = write_zip(tmp_path / "prepared.zip", files)
    assert ImageDataset(path, preprocessing=steps).applied.steps == []
    other = [{"op": "center_crop", "size": 4}]
    with caplog.at_level("WARNING"):
        data = ImageDataset(path, preprocessing=other)
    assert data.applied.steps == other and "was prepared with" in caplog.text


def test_a_new_label_format_is_one_function(tmp_path):
    path = write_zip(tmp_path / "raw.zip", _files(_random_images(2)))

    def yaw_only(archive, labels_file):
        from gan3d.core.data import LabelTable

        names = [n for n in archive.names() if n.endswith(".png")]
        return LabelTable(names, np.arange(len(names), dtype=np.float32)[:, None], "yaw", "test")

    register_label_reader("test_yaw_only", yaw_only)
    data = open_training_dataset(path, {"labels": "required", "label_format": "test_yaw_only"}, xflip=True)
    assert data.labels.flatten().tolist() == [0.0, 1.0, 0.0, 1.0]
    with pytest.raises(DatasetError, match="label format 'nope' is unknown"):
        open_training_dataset(path, {"label_format": "nope"})
    with pytest.raises(DatasetError, match=r"recipe data: unknown key\(s\) \['flip'\]"):
        open_training_dataset(path, {"flip": True})


def test_label_options_reach_the_reader_and_unknown_ones_are_named(tmp_path):
    path = write_zip(tmp_path / "raw.zip", _files(_random_images(2)))

    def scaled(archive, labels_file, *, scale=1.0):
        from gan3d.core.data import LabelTable

        names = [n for n in archive.names() if n.endswith(".png")]
        return LabelTable(names, np.full((len(names), 1), scale, dtype=np.float32), "scaled", "test")

    register_label_reader("test_scaled", scaled)
    data = open_training_dataset(path, {"label_format": "test_scaled", "label_options": {"scale": 3.0}})
    assert data.labels.flatten().tolist() == [3.0, 3.0]
    with pytest.raises(DatasetError, match=r"label_options \['fov'\] are not options of the label format "
                                           r"'test_scaled'; its options: scale"):
        open_training_dataset(path, {"label_format": "test_scaled", "label_options": {"fov": 12}})


def _epigraf_zip(tmp_path: Path, angles: dict, root: str = "cats_16_aligned") -> Path:
    files = {f"{root}/{name}": data for name, data in _files(_random_images(2)).items()}
    files[f"{root}/dataset.json"] = json.dumps({"camera_angles": angles}).encode()
    return write_zip(tmp_path / f"{root}.zip", files)


def test_epigraf_camera_angles_are_read_as_cameras(tmp_path):
    """EpiGRAF's format: dataset.json anywhere in the archive, keys without the archive's own folder and with any
    extension; rows are EpiGRAF's cameras (radius, fov from the options; the focal of the training resolution)."""
    import math

    from gan3d.core.data.epigraf_labels import epigraf_cameras, epigraf_focal

    names = sorted(_files(_random_images(2)))
    angles = {names[0].replace(".png", ".jpg"): [0.0, math.pi / 2, 0.0], names[1]: [0.4, 1.2, 0.0]}
    path = _epigraf_zip(tmp_path, angles)
    data = open_training_dataset(path, {"labels": "required", "label_format": "epigraf",
                                        "label_options": {"fov": 12.0, "radius": 2.0, "resolution": 16}})
    cams = Cameras.from_label(data.labels)
    torch.testing.assert_close(cams.origins[0], torch.tensor([0.0, 0.0, 2.0]), atol=1e-6, rtol=0)  # front on +z
    assert float(cams.intrinsics[0, 0, 0]) == pytest.approx(epigraf_focal(12.0, 16))
    expected = epigraf_cameras(torch.tensor([angles[k] for k in sorted(angles, key=lambda k: k[:-4])]), radius=2.0,
                               fov=12.0, image_resolution=16)
    torch.testing.assert_close(data.labels, expected.label)


@pytest.mark.parametrize("entries, message", [
    ([None, [0.0, 1.5, 0.0]], "no entry for image"),
    ([[0.0, 90.0, 0.0], [0.0, 1.5, 0.0]], "are they in degrees"),
    ([[0.0, 1.5], [0.0, 1.5, 0.0]], r"three finite numbers \[yaw, pitch, roll\]"),
    (["twice", [0.0, 1.5, 0.0]], "another extension"),
])
def test_epigraf_camera_angles_errors_name_the_file_and_entry(tmp_path, entries, message):
    names = sorted(_files(_random_images(2)))
    angles = {}
    for name, entry in zip(names, entries):
        if entry == "twice":
            angles[name] = angles[name.replace(".png", ".jpg")] = [0.0, 1.5, 0.0]
        elif entry is not None:
            angles[name] = entry
    path = _epigraf_zip(tmp_path, angles)
    with pytest.raises(DatasetError, match=message) as info:
        open_training_dataset(path, {"labels": "required", "label_format": "epigraf"})
    assert "dataset.json" in str(info.value)
