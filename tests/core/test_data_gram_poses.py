"""GRAM's Cats pose files: parsing, the camera each pose becomes, mirroring, and the data set reader."""

from __future__ import annotations

import io
import math
import zipfile

import cv2
import numpy as np
import pytest
import torch

from gan3d.core.cameras import fov_to_intrinsics
from gan3d.core.data.eg3d_dataset import DatasetError
from gan3d.core.data.gram_poses import (
    GRAMCatsDataset,
    gram_camera_labels,
    gram_cats_pose_name,
    parse_gram_cats_pose,
)
from gan3d.core.types import Cameras


def npy_bytes(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array))
    return buffer.getvalue()


def write_cats(folder, poses: dict[str, list[float]], size: int = 8) -> None:
    (folder / "poses").mkdir(parents=True)
    for i, (stem, pose) in enumerate(poses.items()):
        image = np.full((size, size, 3), 40 * i, dtype=np.uint8)
        image[0, 0] = (255, 0, 0)  # a red top-left pixel (RGB), to see the x-flip
        cv2.imwrite(str(folder / f"{stem}.png"), image[:, :, ::-1])
        np.save(folder / "poses" / f"{stem}_pose.npy", np.array(pose))


def test_pose_file_name_follows_grams_cats_reader():
    assert gram_cats_pose_name("00012.png") == "poses/00012_pose.npy"
    assert gram_cats_pose_name("cats/00012.png") == "cats/poses/00012_pose.npy"


def test_pose_parsing_adds_the_pitch_offset():
    phi, theta = parse_gram_cats_pose(npy_bytes([1.5, 1.7]), "x")
    assert phi == pytest.approx(1.64) and theta == pytest.approx(1.7)
    for bad, message in ((npy_bytes([1.0, 2.0, 3.0]), "shape"), (b"not npy", "readable"),
                         (npy_bytes([np.nan, 1.0]), "non-finite")):
        with pytest.raises(DatasetError, match=message):
            parse_gram_cats_pose(bad, "cats/poses/a_pose.npy")


def test_camera_of_a_pose_is_grams_camera():
    phi, theta = torch.tensor([1.4, math.pi / 2]), torch.tensor([1.9, math.pi / 2])
    labels = gram_camera_labels(phi, theta)
    cams = Cameras.from_label(labels)
    # GRAM (generators.py get_camera_origins): origin (sin phi cos theta, cos phi, sin phi sin theta).
    expected = torch.stack([phi.sin() * theta.cos(), phi.cos(), phi.sin() * theta.sin()], -1)
    torch.testing.assert_close(cams.origins, expected)
    # Looking at the origin (OpenCV +z is the viewing axis), fov 12 degrees.
    torch.testing.assert_close(cams.cam2world[:, :3, 2], -expected)
    torch.testing.assert_close(cams.intrinsics, fov_to_intrinsics(12.0, 2))
    # The front pose is the camera on +z, image right = world +x, image down = world -y.
    torch.testing.assert_close(cams.cam2world[1, :3, :3], torch.diag(torch.tensor([1.0, -1.0, -1.0])))


def test_mirrored_label_is_grams_flipped_pose():
    phi, theta = torch.tensor([1.4, 1.6]), torch.tensor([1.9, 1.2])
    mirrored = Cameras.from_label(gram_camera_labels(phi, theta)).mirror_x().label
    # read_pose_npy(flip=True): theta -> pi - theta.
    torch.testing.assert_close(mirrored, gram_camera_labels(phi, math.pi - theta), atol=1e-6, rtol=0)


@pytest.mark.parametrize("as_zip", [False, True])
def test_dataset_reads_images_and_poses(tmp_path, as_zip):
    folder = tmp_path / "cats"
    write_cats(folder, {"b": [1.5, 1.6], "a": [1.4, 1.7]})
    path = folder
    if as_zip:
        path = tmp_path / "cats.zip"
        with zipfile.ZipFile(path, "w") as archive:
            for file in sorted(folder.rglob("*")):
                if file.is_file():
                    archive.write(file, file.relative_to(folder).as_posix())
    data = GRAMCatsDataset(path, xflip=True)
    assert len(data) == 4 and data.image_names == ["a.png", "b.png"]
    image, label = data[0]
    assert image.shape == (3, 8, 8) and label.shape == (25,)
    torch.testing.assert_close(label, gram_camera_labels(torch.tensor([1.54]), torch.tensor([1.7]))[0])
    # Mirrored copies: image flipped left-right, theta -> pi - theta.
    flipped_image, flipped_label = data[2]
    torch.testing.assert_close(flipped_image, image.flip(-1))
    expected = gram_camera_labels(torch.tensor([1.54]), torch.tensor([math.pi - 1.7]))[0]
    torch.testing.assert_close(flipped_label, expected, atol=1e-6, rtol=0)
    assert image[0, 0, 0] == 1.0 and image[1, 0, 0] == -1.0  # red stays red: RGB order


def test_dataset_errors_name_the_missing_file(tmp_path):
    folder = tmp_path / "cats"
    write_cats(folder, {"a": [1.4, 1.7]})
    (folder / "poses" / "a_pose.npy").unlink()
    with pytest.raises(DatasetError, match=r"a_pose\.npy does not exist"):
        GRAMCatsDataset(folder)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="no .png images"):
        GRAMCatsDataset(empty)
