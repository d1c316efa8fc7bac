"""Orbit videos: the trajectory, and MP4 files with the right frame count and size."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import imageio
import numpy as np
import pytest
import torch

from gan3d.evaluators.visualizers import OrbitVideoVisualizer, write_mp4
from gan3d.evaluators.visualizers.camera_rig import CameraRig, orbit_angles, rig_cameras

sys.path.insert(0, str(Path(__file__).parent))
import test_vis_sphere_generator as S  # noqa: E402  (the analytic sphere generator)


def _read_frames(path: Path) -> list[np.ndarray]:
    reader = imageio.get_reader(path, format="FFMPEG")
    try:
        return [frame for frame in reader.iter_data()]  # list(reader) asks len(), which ffmpeg reports as inf
    finally:
        reader.close()


def test_orbit_follows_eg3d_trajectory():
    yaw, polar = orbit_angles(8, yaw_range=0.35, pitch_range=0.25, polar_offset=-0.05)
    assert yaw[0] == pytest.approx(math.pi / 2) and polar[0] == pytest.approx(math.pi / 2 - 0.05 + 0.25)
    assert yaw[2] == pytest.approx(math.pi / 2 + 0.35)  # a quarter orbit: the widest yaw
    assert polar[4] == pytest.approx(math.pi / 2 - 0.05 - 0.25)
    turn, _ = orbit_angles(4, yaw_range=0.0, pitch_range=0.0, polar_offset=0.0, full_turn=True)
    assert torch.allclose(turn, math.pi / 2 + torch.tensor([0.0, 0.5, 1.0, 1.5]) * math.pi)


def test_orbit_cameras_circle_the_orbit_centre_and_look_at_the_pivot():
    rig = CameraRig(pivot=(0.0, 0.0, 0.2), radius=2.7, focal=4.2647)
    yaw, polar = orbit_angles(6, yaw_range=0.35, pitch_range=0.25, polar_offset=-0.05)
    cams = rig_cameras(rig, yaw, polar)
    assert torch.allclose(cams.origins.norm(dim=-1), torch.full((6,), 2.7))
    to_pivot = torch.tensor([0.0, 0.0, 0.2]) - cams.origins
    forward = cams.cam2world[:, :3, 2]
    assert torch.allclose(forward, to_pivot / to_pivot.norm(dim=-1, keepdim=True), atol=1e-6)
    assert torch.allclose(cams.intrinsics[:, 0, 0], torch.full((6,), 4.2647))


@pytest.mark.parametrize("image_mode", ["image", "depth"])
def test_orbit_video_has_the_expected_frames(tmp_path, image_mode):
    gen = S.sphere_generator("sdf", render_resolution=16)
    vis = OrbitVideoVisualizer(num=2, num_frames=6, fps=10, image_mode=image_mode, batch_size=4)
    paths = vis.visualize(gen, tmp_path, seed=11)
    assert [p.name for p in paths] == ["orbit_seed0011.mp4", "orbit_seed0012.mp4"]
    frames = _read_frames(paths[0])
    assert len(frames) == 6
    assert all(f.shape == (16, 16, 3) for f in frames)
    # the decoded first frame matches the rendered one
    expected = vis.render_frames(gen, 11)
    assert np.abs(frames[0].astype(int) - expected[0].astype(int)).mean() < 12  # H.264 is lossy
    with pytest.raises(FileExistsError):
        vis.visualize(gen, tmp_path, seed=12)


def test_write_mp4_pads_odd_sizes_and_checks_frames(tmp_path):
    frames = np.zeros((3, 15, 17, 3), dtype=np.uint8)
    path = write_mp4(frames, tmp_path / "odd.mp4", fps=5)
    read = _read_frames(path)
    assert len(read) == 3 and read[0].shape == (16, 18, 3)
    with pytest.raises(ValueError, match="uint8"):
        write_mp4(frames.astype(np.float32), tmp_path / "bad.mp4")
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary file left behind


def test_orbit_video_options_are_checked():
    with pytest.raises(ValueError, match="image_mode"):
        OrbitVideoVisualizer(image_mode="normals")
