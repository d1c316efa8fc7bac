"""The synthetic multi-view set: determinism, caching, depth on the SDF zero set and consistent
across views, and x-flip correctness on the mirror-symmetric head."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from gan3d.core.cameras import focal_to_intrinsics, look_at, pixel_rays, spherical_origin, world_to_camera
from gan3d.core.data import EG3DDataset, check_dataset, make_synthetic_dataset, read_synthetic_metadata, render_scene
from gan3d.core.data import synthetic_dataset as synthetic_module
from gan3d.core.data.synthetic_scenes import yaw_pitch, yaw_polar
from gan3d.core.types import Cameras

RES = 24
SMALL = {"num_images": 8, "resolution": RES, "views_per_scene": 4, "supersample": 1}


@pytest.fixture(scope="module")
def head_set(tmp_path_factory) -> Path:
    return make_synthetic_dataset(tmp_path_factory.mktemp("cache"), preset="head", seed=0, **SMALL)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_layout_and_reader(head_set):
    meta = json.loads((head_set / "dataset.json").read_text())
    assert [name for name, _ in meta["labels"]][:2] == ["00000/img00000000.png", "00000/img00000001.png"]
    assert meta["depth"]["files"][0] == ["00000/img00000000.png", "depth/00000/img00000000.npy"]
    assert "unit ray direction" in meta["depth"]["definition"]
    report = check_dataset(head_set)
    assert (report.num_images, report.resolution, report.has_depth) == (8, RES, True)
    item = EG3DDataset(head_set, load_depth=True)[0]
    assert item.image.shape == (3, RES, RES) and item.depth.shape == (1, RES, RES)
    hit = item.depth[0] > 0
    assert 0.1 < hit.float().mean() < 0.9
    # Background is black exactly where no surface is hit.
    assert torch.all(item.image[:, ~hit] == -1.0)
    info = read_synthetic_metadata(head_set)
    assert info.image_scenes == [0, 0, 0, 0, 1, 1, 1, 1] and len(info.scenes) == 2
    torch.testing.assert_close(info.cameras.label, EG3DDataset(head_set).labels)
    torch.testing.assert_close(info.cameras.origins.norm(dim=-1) * 0 + 2.7,
                               (info.cameras.origins - torch.tensor([0.0, 0.0, 0.2])).norm(dim=-1))


def test_same_seed_same_bytes_other_seed_differs(head_set, tmp_path):
    again = make_synthetic_dataset(tmp_path / "again", preset="head", seed=0, **SMALL)
    assert again != head_set
    assert _files(again) == _files(head_set)
    other = make_synthetic_dataset(tmp_path / "other", preset="head", seed=1, **SMALL)
    other_files, files = _files(other), _files(head_set)
    assert other_files.keys() == files.keys()
    assert all(other_files[n] != files[n] for n in files if n.endswith((".png", ".npy")))


def test_cache_reuses_the_folder(tmp_path, monkeypatch):
    first = make_synthetic_dataset(tmp_path, preset="car", num_images=2, resolution=16, supersample=1)
    stamp = (first / "dataset.json").stat().st_mtime_ns

    def refuse(*args, **kwargs):
        raise AssertionError("the cached set should have been reused")

    monkeypatch.setattr(synthetic_module, "_write_set", refuse)
    assert make_synthetic_dataset(tmp_path, preset="car", num_images=2, resolution=16, supersample=1) == first
    assert (first / "dataset.json").stat().st_mtime_ns == stamp
    with pytest.raises(AssertionError, match="reused"):  # another parameter is another set
        make_synthetic_dataset(tmp_path, preset="car", num_images=2, resolution=16, supersample=1, seed=5)
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # the failed attempt left nothing behind
    monkeypatch.setenv("GAN3D_CACHE", str(tmp_path / "env"))
    assert synthetic_module.default_cache_dir() == tmp_path / "env"


def _depths(folder: Path) -> torch.Tensor:
    data = EG3DDataset(folder, load_depth=True)
    return torch.stack([data[i].depth[0] for i in range(len(data))])


def test_depth_lands_on_the_sdf_zero_set(head_set):
    info = read_synthetic_metadata(head_set)
    depths = _depths(head_set)
    origins, directions = pixel_rays(info.cameras.cam2world, info.cameras.intrinsics, (RES, RES))
    for i in range(len(depths)):
        depth = depths[i].reshape(-1)
        hit = depth > 0
        points = origins[i, hit] + depth[hit, None] * directions[i, hit]
        sdf = info.scenes[info.image_scenes[i]].sdf(points)
        assert sdf.abs().max() < 2e-3
        # Depth is the distance along the unit ray, not camera z: z = depth * cos(angle to the axis).
        z = world_to_camera(points[None], info.cameras.cam2world[i : i + 1])[0, :, 2]
        torch.testing.assert_close(z, depth[hit] * (directions[i, hit] @ info.cameras.cam2world[i, :3, 2]))
        assert (points - origins[i, hit]).norm(dim=-1).sub(depth[hit]).abs().max() < 1e-4


def test_depth_reprojects_consistently_into_another_view(head_set):
    info = read_synthetic_metadata(head_set)
    depths = _depths(head_set)
    cams = info.cameras
    origins, directions = pixel_rays(cams.cam2world, cams.intrinsics, (RES, RES))
    for a, b in [(0, 1), (2, 3), (5, 4)]:  # pairs of views of one scene
        assert info.image_scenes[a] == info.image_scenes[b]
        depth_a = depths[a].reshape(-1)
        hit = depth_a > 0
        points = origins[a, hit] + depth_a[hit, None] * directions[a, hit]
        in_b = world_to_camera(points[None], cams.cam2world[b : b + 1])[0]
        k = cams.intrinsics[b]
        col = ((k[0, 0] * in_b[:, 0] / in_b[:, 2] + k[0, 2]) * RES - 0.5).round().long()
        row = ((k[1, 1] * in_b[:, 1] / in_b[:, 2] + k[1, 2]) * RES - 0.5).round().long()
        inside = (col >= 0) & (col < RES) & (row >= 0) & (row < RES)
        distance_b = (points - cams.origins[b]).norm(dim=-1)[inside]
        # B's depth in the 3x3 pixels around the projection (nearest-pixel sampling is off by up to
        # half a pixel, which at a silhouette can fall on the background).
        padded = torch.nn.functional.pad(depths[b], (1, 1, 1, 1))
        window = torch.stack([padded[row[inside] + 1 + dr, col[inside] + 1 + dc]
                              for dr in (-1, 0, 1) for dc in (-1, 0, 1)], dim=-1)
        tolerance = 0.02  # about a pixel's footprint on the surface at 24 px
        consistent = ((window - distance_b[:, None]).abs() < tolerance).any(dim=-1)
        # B looking past the point (its surface farther, or no surface) all around it is impossible.
        sees_through = ((window == 0) | (window > distance_b[:, None] + tolerance)).all(dim=-1)
        centre = window[:, 4]
        assert consistent.float().mean() > 0.8
        assert ((centre - distance_b).abs() < tolerance).float().mean() > 0.6
        assert not sees_through.any()


def _yawed_camera(yaw_offset: float) -> Cameras:
    yaw = torch.tensor([math.pi / 2 + yaw_offset])
    pivot = torch.tensor([0.0, 0.0, 0.2])
    origin = spherical_origin(yaw, torch.tensor([math.pi / 2 - 0.1]), 2.7, pivot)
    return Cameras(look_at(origin, pivot), focal_to_intrinsics(4.2647))


def test_mirrored_label_renders_the_mirrored_image(head_set):
    info = read_synthetic_metadata(head_set)
    scene, preset = info.scenes[0], info.preset
    camera = _yawed_camera(0.45)

    def render(cams: Cameras) -> torch.Tensor:
        return render_scene(scene, cams, RES, preset.light_direction, preset.ambient)[0][0]

    image = render(camera)
    mirrored = render(camera.mirror_x())
    assert (mirrored - image.flip(-1)).abs().mean() < 2e-3
    assert ((mirrored - image.flip(-1)).abs() > 0.05).float().mean() < 0.01
    # Not a test that cannot fail: the unmirrored camera does not give the mirrored image.
    assert (image - image.flip(-1)).abs().mean() > 0.02


def test_xflip_item_matches_a_render_from_its_label(head_set):
    info = read_synthetic_metadata(head_set)
    data = EG3DDataset(head_set, xflip=True)
    yaw_off_front = info.cameras.angles[:4, 0] - math.pi / 2
    index = int(yaw_off_front.abs().argmax())  # the most yawed view of scene 0
    assert yaw_off_front[index].abs() > 0.1
    image, label = data[len(data) // 2 + index]
    rendered, _ = render_scene(info.scenes[0], Cameras.from_label(label[None]), RES, info.preset.light_direction,
                               info.preset.ambient)
    difference = (rendered[0] * 2 - 1 - image).abs()
    assert difference.mean() < 0.01
    assert (difference > 0.1).float().mean() < 0.01


def test_metadata_angles_follow_the_cameras_convention(head_set):
    """``SyntheticMetadata.cameras.angles`` are gan3d's (yaw, polar), as a pose sampler returns them (methods
    such as pi-GAN and StyleSDF read them): the camera centres lie on the preset's sphere at those angles,
    while ``dataset.json`` keeps its (yaw, pitch) about the front view."""
    info = read_synthetic_metadata(head_set)
    cams = info.cameras
    pivot = torch.tensor(info.preset.pivot, dtype=torch.float32)
    expected = spherical_origin(cams.angles[:, 0], cams.angles[:, 1], info.preset.radius, pivot)
    torch.testing.assert_close(cams.origins, expected, atol=1e-5, rtol=0)
    stored = torch.tensor(json.loads((head_set / "dataset.json").read_text())["gan3d_synthetic"]["angles"])
    torch.testing.assert_close(yaw_pitch(cams.angles), stored, atol=1e-6, rtol=0)
    front = yaw_polar(torch.zeros(1, 2))
    torch.testing.assert_close(front, torch.tensor([[math.pi / 2, math.pi / 2]]))


def test_car_preset(tmp_path):
    path = make_synthetic_dataset(tmp_path, preset="car", num_images=4, resolution=16, supersample=2,
                                  background="white")
    info = read_synthetic_metadata(path)
    torch.testing.assert_close(info.cameras.origins.norm(dim=-1), torch.full((4,), 1.7))
    torch.testing.assert_close(info.cameras.intrinsics[:, 0, 0], torch.full((4,), 1.7074))
    item = EG3DDataset(path, load_depth=True)[0]
    hit = item.depth[0] > 0
    assert hit.any() and (~hit).any()
    # White background; with 2x2 supersampling a pixel whose centre misses may still be partly covered.
    white = (item.image[:, ~hit] == 1.0).all(dim=0)
    assert white.float().mean() > 0.9 and item.image[:, hit].mean() < 0.9
    with pytest.raises(ValueError, match="unknown synthetic preset 'plane'"):
        make_synthetic_dataset(tmp_path, preset="plane")
    with pytest.raises(ValueError, match="background must be one of"):
        make_synthetic_dataset(tmp_path, background="grey")


def test_head_right_preset_is_head_folded_onto_one_side(head_set, tmp_path):
    """``head_right`` draws the same scenes and cameras as ``head``, each yaw folded to the front's right:
    |yaw| and pitch equal to ``head``'s, yaw never left of the front, and the images the mirror of ``head``'s
    where ``head``'s camera was on the left (the heads are mirror-symmetric)."""
    path = make_synthetic_dataset(tmp_path, preset="head_right", seed=0, **SMALL)
    head, right = read_synthetic_metadata(head_set), read_synthetic_metadata(path)
    assert right.preset.name == "head_right" and right.scenes == head.scenes
    head_yp, right_yp = yaw_pitch(head.cameras.angles), yaw_pitch(right.cameras.angles)
    assert (right_yp[:, 0] >= 0).all() and (head_yp[:, 0] < 0).any()
    torch.testing.assert_close(right_yp[:, 0], head_yp[:, 0].abs())
    torch.testing.assert_close(right_yp[:, 1], head_yp[:, 1])
    head_images, right_images = EG3DDataset(head_set), EG3DDataset(path)
    for i in range(len(head_images)):
        image, expected = right_images[i].image, head_images[i].image
        if head_yp[i, 0] < 0:
            assert (image - expected).abs().mean() > 0.02, f"image {i} is head's unflipped"
            expected = expected.flip(-1)
        assert (image - expected).abs().max() <= 0.5 / 255, f"image {i}"
