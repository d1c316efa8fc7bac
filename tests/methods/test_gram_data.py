"""GRAM's data sets: the pose files of FFHQ (.mat), Cats (_pose.npy) and CARLA (_extrinsics.npy), the camera
each pose becomes, mirroring, and the label formats read through the generic image data set."""

from __future__ import annotations

import io
import math
import zipfile

import cv2
import numpy as np
import pytest
import torch

from gan3d.core.cameras import fov_to_intrinsics
from gan3d.core.data import ImageDataset
from gan3d.core.data.archives import DatasetError, open_archive
from gan3d.core.data.labels import LABEL_READERS
from gan3d.core.types import Cameras
from gan3d.methods.gram.data import (
    gram_camera_labels,
    gram_pose_name,
    parse_carla_pose,
    parse_cats_pose,
    parse_ffhq_pose,
)
from gan3d.methods.gram.recipe import gram_recipe


def npy_bytes(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array))
    return buffer.getvalue()


def mat_bytes(content: dict) -> bytes:
    from scipy.io import savemat

    buffer = io.BytesIO()
    savemat(buffer, content)
    return buffer.getvalue()


def write_set(folder, kind: str, poses: dict[str, bytes], size: int = 8) -> None:
    (folder / "poses").mkdir(parents=True)
    for i, (stem, pose) in enumerate(poses.items()):
        image = np.full((size, size, 3), 40 * i, dtype=np.uint8)
        image[0, 0] = (255, 0, 0)  # a red top-left pixel (RGB), to see the x-flip
        cv2.imwrite(str(folder / f"{stem}.png"), image[:, :, ::-1])
        (folder / gram_pose_name(f"{stem}.png", kind)).write_bytes(pose)


def test_pose_file_names_follow_grams_readers():
    assert gram_pose_name("00012.png", "cats") == "poses/00012_pose.npy"
    assert gram_pose_name("cats/00012.png", "cats") == "cats/poses/00012_pose.npy"
    assert gram_pose_name("00012.png", "ffhq") == "poses/00012.mat"
    assert gram_pose_name("0001.png", "carla") == "poses/0001_extrinsics.npy"


def test_cats_pose_adds_the_pitch_offset():
    phi, theta = parse_cats_pose(npy_bytes([1.5, 1.7]), "x")
    assert phi == pytest.approx(1.64) and theta == pytest.approx(1.7)
    for bad, message in ((npy_bytes([1.0, 2.0, 3.0]), "shape"), (b"not npy", "readable"),
                         (npy_bytes([np.nan, 1.0]), "non-finite")):
        with pytest.raises(DatasetError, match=message):
            parse_cats_pose(bad, "cats/poses/a_pose.npy")


def test_ffhq_pose_is_deep3dfacerecons_angle_turned_into_grams():
    # datasets.py read_pose: phi = -(angle[0] - 0.1) + pi/2, theta = angle[1] + pi/2 (roll unused).
    phi, theta = parse_ffhq_pose(mat_bytes({"angle": np.array([[0.2, -0.3, 0.05]])}), "x")
    assert phi == pytest.approx(-(0.2 - 0.1) + math.pi / 2) and theta == pytest.approx(-0.3 + math.pi / 2)
    with pytest.raises(DatasetError, match="no 'angle'"):
        parse_ffhq_pose(mat_bytes({"pose": np.zeros((1, 3))}), "ffhq/poses/a.mat")
    with pytest.raises(DatasetError, match="not a readable .mat"):
        parse_ffhq_pose(b"garbage", "ffhq/poses/a.mat")


def test_carla_pose_is_the_camera_position_in_grams_y_up_world():
    # A GRAF (z-up) camera at azimuth a, elevation e: t = r (cos e cos a, cos e sin a, sin e). GRAM reorders
    # the rows [1, 2, 0] (x' = y, y' = z, z' = x), so its camera position is r (cos e sin a, sin e, cos e cos a),
    # i.e. phi = pi/2 - e and (sin phi cos theta, sin phi sin theta) along (x', z').
    a, e, r = 0.4, 0.3, 10.0
    c2w = np.eye(4)
    c2w[:3, 3] = r * np.array([math.cos(e) * math.cos(a), math.cos(e) * math.sin(a), math.sin(e)])
    phi, theta = parse_carla_pose(npy_bytes(c2w), "x")
    assert phi == pytest.approx(math.pi / 2 - e)
    x, z = math.sin(phi) * math.cos(theta), math.sin(phi) * math.sin(theta)
    assert x == pytest.approx(math.cos(e) * math.sin(a)) and z == pytest.approx(math.cos(e) * math.cos(a))
    assert parse_carla_pose(npy_bytes(c2w[:3]), "x") == pytest.approx((phi, theta))  # [3, 4] as well
    with pytest.raises(DatasetError, match="camera-to-world"):
        parse_carla_pose(npy_bytes(np.eye(3)), "carla/poses/a_extrinsics.npy")


def test_camera_of_a_pose_is_grams_camera():
    phi, theta = torch.tensor([1.4, math.pi / 2]), torch.tensor([1.9, math.pi / 2])
    cams = Cameras.from_label(gram_camera_labels(phi, theta))
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
    # read_pose_npy / read_pose / transform_matrix_to_camera_pos with flip: theta -> pi - theta.
    torch.testing.assert_close(mirrored, gram_camera_labels(phi, math.pi - theta), atol=1e-6, rtol=0)


def test_recipes_name_the_formats_and_lanczos_resizing():
    for variant, fmt in (("ffhq256", "gram_ffhq"), ("cats256", "gram_cats"), ("carla128", "gram_carla")):
        data = gram_recipe(variant).data
        assert data["label_format"] == fmt and data["labels"] == "required"
        assert data["preprocessing"] == [{"op": "resize", "size": "training", "filter": "lanczos"}]
    assert gram_recipe("synthetic").data["label_format"] == "eg3d"


@pytest.mark.parametrize("as_zip", [False, True])
def test_cats_set_reads_images_and_poses(tmp_path, as_zip):
    folder = tmp_path / "cats"
    write_set(folder, "cats", {"b": npy_bytes([1.5, 1.6]), "a": npy_bytes([1.4, 1.7])})
    path = folder
    if as_zip:
        path = tmp_path / "cats.zip"
        with zipfile.ZipFile(path, "w") as archive:
            for file in sorted(folder.rglob("*")):
                if file.is_file():
                    archive.write(file, ("cats" / file.relative_to(folder)).as_posix())
    data = ImageDataset(path, xflip=True, labels="required", label_format="gram_cats")
    prefix = "cats/" if as_zip else ""
    assert len(data) == 4 and data.image_names == [f"{prefix}a.png", f"{prefix}b.png"]
    image, label = data[0]
    assert image.shape == (3, 8, 8) and label.shape == (25,)
    torch.testing.assert_close(label, gram_camera_labels(torch.tensor([1.54]), torch.tensor([1.7]))[0])
    # Mirrored copies: image flipped left-right, theta -> pi - theta.
    flipped_image, flipped_label = data[2]
    torch.testing.assert_close(flipped_image, image.flip(-1))
    expected = gram_camera_labels(torch.tensor([1.54]), torch.tensor([math.pi - 1.7]))[0]
    torch.testing.assert_close(flipped_label, expected, atol=1e-6, rtol=0)
    assert image[0, 0, 0] == 1.0 and image[1, 0, 0] == -1.0  # red stays red: RGB order


def test_ffhq_and_carla_sets_use_their_config_field_of_view(tmp_path):
    write_set(tmp_path / "ffhq", "ffhq", {"00000": mat_bytes({"angle": np.array([[0.1, 0.0, 0.0]])})})
    ffhq = ImageDataset(tmp_path / "ffhq", labels="required", label_format="gram_ffhq")
    torch.testing.assert_close(ffhq[0].label, gram_camera_labels(torch.tensor([math.pi / 2]),
                                                                 torch.tensor([math.pi / 2]))[0])
    c2w = np.eye(4)
    c2w[:3, 3] = [10.0, 0.0, 0.0]  # GRAF's world: on +x, level -> GRAM's front camera (on +z)
    write_set(tmp_path / "carla", "carla", {"0000": npy_bytes(c2w)})
    carla = ImageDataset(tmp_path / "carla", labels="required", label_format="gram_carla")
    cams = Cameras.from_label(carla[0].label[None])
    torch.testing.assert_close(cams.origins[0], torch.tensor([0.0, 0.0, 1.0]), atol=1e-6, rtol=0)
    torch.testing.assert_close(cams.intrinsics, fov_to_intrinsics(30.0, 1))


def test_errors_name_the_missing_file(tmp_path):
    folder = tmp_path / "cats"
    write_set(folder, "cats", {"a": npy_bytes([1.4, 1.7])})
    (folder / "poses" / "a_pose.npy").unlink()
    with pytest.raises(DatasetError, match=r"a_pose\.npy does not exist"):
        ImageDataset(folder, labels="required", label_format="gram_cats")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="no .png images"):
        ImageDataset(empty, labels="required", label_format="gram_cats")
    assert LABEL_READERS["gram_cats"] is LABEL_READERS["gram_cats"]  # registered once the plugins loaded
    with pytest.raises(DatasetError, match="no .png images"):
        LABEL_READERS["gram_cats"](open_archive(empty), None)
    write_set(tmp_path / "c2", "cats", {"a": npy_bytes([1.4, 1.7])})
    with pytest.raises(DatasetError, match="--labels"):
        ImageDataset(tmp_path / "c2", labels="required", label_format="gram_cats", labels_file=tmp_path / "x.json")
