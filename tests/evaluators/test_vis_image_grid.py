"""Image grids and coloured depth maps of the analytic sphere generator."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import cv2
import imageio.v3 as iio
import numpy as np
import pytest
import torch

from gan3d.core.registry import get_registry
from gan3d.evaluators.visualizers import DepthMapVisualizer, ImageGridVisualizer, colorize_depth, save_image_grid
from gan3d.evaluators.visualizers.camera_rig import camera_rig, rig_from_labels
from gan3d.evaluators.visualizers.image_files import tile_images
from gan3d.evaluators.visualizers.latents import seeded_latents

sys.path.insert(0, str(Path(__file__).parent))
import test_vis_sphere_generator as S  # noqa: E402  (the analytic sphere generator)


def test_save_image_grid_lays_images_out_row_major(tmp_path):
    images = torch.stack([torch.full((3, 4, 5), v) for v in (-1.0, 0.0, 1.0)])  # black, grey, white
    path = save_image_grid(images, tmp_path / "g.png", nrow=2)
    grid = iio.imread(path)
    assert grid.shape == (8, 10, 3)  # 2 rows of 4 px, 2 columns of 5 px
    assert (grid[:4, :5] == 0).all() and (grid[:4, 5:] == 128).all() and (grid[4:, :5] == 255).all()
    assert (grid[4:, 5:] == 255).all()  # the empty last cell is padding
    with pytest.raises(FileExistsError, match="never overwrite"):
        save_image_grid(images, path, nrow=2)


def test_tile_images_padding():
    tiles = np.arange(2 * 2 * 2 * 1, dtype=np.uint8).reshape(2, 2, 2, 1)
    grid = tile_images(tiles, nrow=2, padding=1, pad_value=9)
    assert grid.shape == (2, 5, 1) and (grid[:, 2] == 9).all()


def test_image_grid_files_have_the_grid_dimensions(tmp_path):
    gen = S.sphere_generator("sdf", render_resolution=16)
    vis = get_registry().build("visualizer", "image_grid", num=6, nrow=3, save_raw=True, save_depth=True)
    paths = vis.visualize(gen, tmp_path, seed=3)
    assert [p.name for p in paths] == ["image_grid.png", "image_raw_grid.png", "image_depth_grid.png"]
    for path in paths:
        assert iio.imread(path).shape == (32, 48, 3)
    grid = iio.imread(paths[0]).astype(int)
    # the sphere's colour comes from the latent: the six cells differ at their centres
    centres = {tuple(grid[r * 16 + 8, c * 16 + 8]) for r in range(2) for c in range(3)}
    assert len(centres) == 6
    depth = iio.imread(paths[2])
    assert (depth[0, 0] == 255).all() and not (depth[8, 8] == 255).all()  # background white, sphere coloured


def test_image_grid_with_several_views_gives_each_latent_a_row(tmp_path):
    gen = S.sphere_generator("sdf", render_resolution=16)
    vis = ImageGridVisualizer(num=2, yaw_offsets=[0.4, 0.0, -0.4], polar_offset=-0.2)
    (path,) = vis.visualize(gen, tmp_path, seed=0)
    grid = iio.imread(path).astype(int)
    assert grid.shape == (32, 48, 3)
    assert (grid[8, 8] == grid[8, 40]).all() and not (grid[8, 8] == grid[24, 8]).all()  # same latent along a row


def test_seeded_latents_follow_eg3d_seeds():
    z = seeded_latents(3, 5, seed=7)
    assert torch.allclose(z[1], torch.from_numpy(np.random.RandomState(8).randn(5)).float())
    assert torch.equal(seeded_latents(1, 5, seed=8)[0], z[1])


def test_colorize_depth_normalizes_by_alpha_and_masks_the_background():
    depth = torch.tensor([[[[1.0, 1.5, 3.0, 0.1]]]])
    alpha = torch.tensor([[[[1.0, 0.75, 1.0, 0.2]]]])
    out = colorize_depth(depth, alpha, colormap="inferno")
    lut = cv2.applyColorMap(np.arange(256, dtype=np.uint8)[None], cv2.COLORMAP_INFERNO)[0, :, ::-1]
    # surface depths 1, 2, 3 (1.5 / 0.75 = 2); near is bright, far is dark; alpha 0.2 is background
    assert (out[0, 0, 0] == lut[255]).all()
    assert (out[0, 0, 1] == lut[128]).all()
    assert (out[0, 0, 2] == lut[0]).all()
    assert (out[0, 0, 3] == 255).all()
    with pytest.raises(ValueError, match="unknown colormap"):
        colorize_depth(depth, alpha, colormap="jet-ish")


def test_depth_map_visualizer_writes_grid_each_and_array(tmp_path):
    gen = S.sphere_generator("sdf", render_resolution=16)
    vis = DepthMapVisualizer(num=2, nrow=2, save_each=True, save_array=True)
    paths = vis.visualize(gen, tmp_path, seed=0)
    assert [p.name for p in paths] == ["depth_maps.png", "depth_maps_000.png", "depth_maps_001.png", "depth_maps.npy"]
    assert iio.imread(paths[0]).shape == (16, 32, 3)
    array = np.load(paths[3])
    assert array.shape == (2, 16, 16) and np.isnan(array[0, 0, 0])
    # the nearest point of the sphere is camera distance minus radius
    assert abs(np.nanmin(array) - (S.CAMERA_RADIUS - S.RADIUS)) < 0.03


def test_camera_rig_reads_the_pose_sampler_and_labels():
    gen = S.sphere_generator("sdf")
    rig = camera_rig(gen)
    assert rig.radius == S.CAMERA_RADIUS and rig.focal == S.FOCAL and rig.pivot == (0.0, 0.0, 0.0)
    assert camera_rig(gen, radius=3.0, pivot=[0.0, 0.1, 0.0]).radius == 3.0
    # EG3D-like labels: cameras about the origin looking at (0, 0, 0.2) from two yaws
    from gan3d.core.cameras import focal_to_intrinsics, look_at, spherical_origin

    yaw = torch.tensor([math.pi / 2 - 0.3, math.pi / 2 + 0.4])
    origins = spherical_origin(yaw, torch.full((2,), math.pi / 2), 2.7)
    c2w = look_at(origins, torch.tensor([0.0, 0.0, 0.2]))
    labels = torch.cat([c2w.reshape(2, 16), focal_to_intrinsics(4.2647, 2).reshape(2, 9)], 1)
    rig = rig_from_labels(labels)
    assert rig.radius == pytest.approx(2.7, abs=1e-5) and rig.focal == pytest.approx(4.2647, abs=1e-5)
    assert np.allclose(rig.pivot, (0.0, 0.0, 0.2), atol=1e-5)
    # The mean view lies between the two yaws, level; the yaw band covers both.
    assert rig.yaw == pytest.approx(math.pi / 2 + 0.05, abs=1e-3) and rig.polar == pytest.approx(math.pi / 2, abs=1e-5)
    assert rig.yaw_range[0] <= math.pi / 2 - 0.28 and rig.yaw_range[1] >= math.pi / 2 + 0.38
