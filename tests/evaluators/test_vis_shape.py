"""Shape extraction: marching cubes on an analytic sphere, PLY/OBJ round trips, the CPU mesh preview."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gan3d.core.cameras import focal_to_intrinsics, look_at, spherical_origin
from gan3d.evaluators.visualizers.field_volume import FieldVolume, generator_cube, sample_field_volume
from gan3d.evaluators.visualizers.mesh_extraction import NoSurfaceError, extract_mesh
from gan3d.evaluators.visualizers.mesh_files import read_obj, read_ply, write_obj, write_ply
from gan3d.evaluators.visualizers.mesh_preview import render_mesh_preview
from gan3d.evaluators.visualizers.mesh_rasterizer import camera_to_clip, project_to_pixels, rasterize_mesh
from gan3d.evaluators.visualizers.shape import ShapeVisualizer

sys.path.insert(0, str(Path(__file__).parent))
import test_vis_sphere_generator as S  # noqa: E402  (the analytic sphere generator)


def _sphere_mesh(kind: str, activation: str = "none", res: int = 40):
    gen = S.sphere_generator(kind)
    ws = gen.mapping(torch.randn(1, 4))
    with torch.no_grad():
        volume = sample_field_volume(gen, ws, resolution=res, cube_length=1.0, chunk=5000,
                                     density_activation=activation)
    level = {"sdf": 0.0, "density": 10.0}[kind]
    return volume, *extract_mesh(volume, level)


@pytest.mark.parametrize("kind, activation, radius", [
    ("sdf", "none", S.RADIUS),
    ("density", "none", S.RADIUS),                       # EG3D: level 10 on the raw density
    ("density", "renderer", S.RADIUS - 5.0 / S.SLOPE),   # the renderer's density(raw) = 2 relu(raw - 10)
])
def test_marching_cubes_finds_the_sphere_radius(kind, activation, radius):
    volume, vertices, faces = _sphere_mesh(kind, activation)
    assert volume.kind == kind
    norms = np.linalg.norm(vertices, axis=1)
    assert abs(norms.mean() - radius) / radius < 0.02
    assert norms.std() < 0.01
    # every face is wound so that its right-hand normal points out of the sphere
    a, b, c = vertices[faces[:, 0]], vertices[faces[:, 1]], vertices[faces[:, 2]]
    outward = (np.cross(b - a, c - a) * (a + b + c)).sum(1)
    assert (outward > 0).all()


def test_grid_points_span_the_cube_corner_to_corner():
    # A field whose value is the x coordinate: the grid's first and last x are the cube's faces.
    values = torch.linspace(-0.5, 0.5, 5)
    gen = S.sphere_generator("sdf")
    volume = sample_field_volume(gen, gen.mapping(torch.zeros(1, 4)), resolution=5, cube_length=1.0, chunk=7)
    expected = torch.stack(torch.meshgrid(values, values, values, indexing="ij"), -1).norm(dim=-1) - S.RADIUS
    assert torch.allclose(volume.values, expected, atol=1e-6)
    assert volume.origin == (-0.5, -0.5, -0.5) and volume.voxel_size == pytest.approx(0.25)
    assert generator_cube(gen) == (1.0, (0.0, 0.0, 0.0))  # the embedder's box_warp


def test_no_surface_is_a_clear_error():
    volume = FieldVolume(torch.zeros(4, 4, 4), "density", (0.0, 0.0, 0.0), 0.1)
    with pytest.raises(NoSurfaceError, match="never crosses level 10"):
        extract_mesh(volume, 10.0)


def test_border_trim_closes_a_surface_cut_by_the_cube():
    # density 20 everywhere: no surface, until the trimmed border makes the inside a closed box
    volume = FieldVolume(torch.full((20, 20, 20), 20.0), "density", (-1.0, -1.0, -1.0), 2.0 / 19)
    vertices, faces = extract_mesh(volume, 10.0, border_trim=0.1)
    # 2 of 20 grid points per face are trimmed: the walls lie between grid points 1 and 2 (and 17, 18)
    box_distance = np.abs(vertices).max(axis=1)
    assert (box_distance > 1.0 - 2 * 2.0 / 19).all() and (box_distance < 1.0 - 2.0 / 19).all()


def test_ply_and_obj_round_trip(tmp_path):
    _, vertices, faces = _sphere_mesh("sdf", res=16)
    ply = write_ply(tmp_path / "m.ply", vertices, faces)
    obj = write_obj(tmp_path / "m.obj", vertices, faces)
    for path, reader, atol in ((ply, read_ply, 0.0), (obj, read_obj, 1e-6)):
        v, f = reader(path)
        assert v.shape == vertices.shape and f.shape == faces.shape
        np.testing.assert_allclose(v, vertices, atol=atol)
        np.testing.assert_array_equal(f, faces)
    assert ply.read_bytes().startswith(b"ply\nformat binary_little_endian 1.0\n")
    with pytest.raises(FileExistsError, match="never overwrite"):
        write_ply(ply, vertices, faces)
    with pytest.raises(ValueError, match="face indices"):
        write_obj(tmp_path / "bad.obj", vertices, faces + len(vertices))


def _front_camera():
    yaw = torch.tensor([math.pi / 2])
    c2w = look_at(spherical_origin(yaw, torch.tensor([math.pi / 2]), S.CAMERA_RADIUS))[0]
    return c2w, focal_to_intrinsics(S.FOCAL)[0]


def test_cpu_preview_shows_the_sphere_silhouette_lit_from_the_upper_left():
    _, vertices, faces = _sphere_mesh("sdf", res=32)
    c2w, intrinsics = _front_camera()
    image = render_mesh_preview(torch.from_numpy(vertices), torch.from_numpy(faces), c2w, intrinsics, (48, 48),
                                backend="torch")
    assert image.shape == (48, 48, 3) and image.dtype == np.uint8
    covered = torch.from_numpy((image != 255).any(-1))
    expected = S.expected_silhouette(48)
    iou = (covered & expected).sum() / (covered | expected).sum()
    assert iou > 0.93
    grey = image[..., 0].astype(float)
    upper_left = grey[:24, :24][expected[:24, :24].numpy()].mean()
    lower_right = grey[24:, 24:][expected[24:, 24:].numpy()].mean()
    assert upper_left > lower_right + 40


def test_torch_rasterizer_keeps_the_nearest_of_two_overlapping_squares():
    # Two squares facing the camera at z = 2 (small) and z = 3 (large) in camera coordinates.
    def square(half, z):
        return [[-half, -half, z], [half, -half, z], [half, half, z], [-half, half, z]]

    vertices = torch.tensor(square(0.2, 2.0) + square(1.0, 3.0))
    faces = torch.tensor([[0, 1, 2], [0, 2, 3], [4, 5, 6], [4, 6, 7]])
    identity = torch.eye(4)
    intrinsics = focal_to_intrinsics(1.0)[0]
    fragments = rasterize_mesh(vertices, faces, identity, intrinsics, (20, 20), attributes=vertices[:, 2:3],
                               backend="torch")
    # The near square covers |x/z| < 0.1 -> columns whose centre u = (j + 0.5)/20 lies in (0.4, 0.6).
    assert torch.allclose(fragments.depth[8:12, 8:12], torch.full((4, 4), 2.0))
    assert set(fragments.face[8:12, 8:12].flatten().tolist()) <= {0, 1}
    assert torch.allclose(fragments.depth[4, 4], torch.tensor(3.0))  # |x/z| = 0.275 < 1/3: the far square
    assert torch.allclose(fragments.attributes[..., 0], torch.where(fragments.mask, fragments.depth, 0.0))
    assert not fragments.mask[0, 0] and torch.isinf(fragments.depth[0, 0])  # |x/z| = 0.475 > 1/3


def test_nvdiffrast_clip_space_maps_to_the_same_pixels():
    points = torch.tensor([[0.1, -0.2, 2.0], [-0.3, 0.25, 3.5]])
    intrinsics = torch.tensor([[1.3, 0.0, 0.45], [0.0, 1.2, 0.55], [0.0, 0.0, 1.0]])
    clip = camera_to_clip(points, intrinsics, near=0.5, far=10.0)
    ndc = clip[:, :3] / clip[:, 3:]
    h, w = 30, 40
    # nvdiffrast: pixel (row, col) centre at ndc ((2 col + 1) / w - 1, (2 row + 1) / h - 1), row 0 at ndc y = -1
    from_ndc = torch.stack([(ndc[:, 0] + 1) * w / 2 - 0.5, (ndc[:, 1] + 1) * h / 2 - 0.5], -1)
    assert torch.allclose(from_ndc, project_to_pixels(points, intrinsics, (h, w)), atol=1e-5)
    assert (ndc[:, 2].abs() < 1).all()


def test_shape_visualizer_writes_meshes_and_preview_and_refuses_to_overwrite(tmp_path):
    gen = S.sphere_generator("sdf")
    vis = ShapeVisualizer(num=2, shape_res=24, preview_res=32, chunk=4096)
    paths = vis.visualize(gen, tmp_path, seed=5)
    names = sorted(p.name for p in paths)
    assert names == sorted(f"shape_seed{s:04d}{suffix}" for s in (5, 6) for suffix in (".ply", ".obj", "_preview.png"))
    v, f = read_ply(tmp_path / "shape_seed0005.ply")
    assert abs(np.linalg.norm(v, axis=1).mean() - S.RADIUS) < 0.02 * S.RADIUS and len(f) > 100
    with pytest.raises(FileExistsError):
        vis.visualize(gen, tmp_path, seed=6)


def test_shape_options_are_checked():
    with pytest.raises(ValueError, match="formats"):
        ShapeVisualizer(formats=["stl"])
    with pytest.raises(ValueError, match="density_activation"):
        ShapeVisualizer(density_activation="exp")
