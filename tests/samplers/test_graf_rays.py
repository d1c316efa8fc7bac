"""The samplers' GRAF options: depths along the optical axis (NeRF's z_vals), a range that follows the
camera's distance from the origin (GRAF's variable radius), and GRAF's principal point half a pixel off the
image centre (rays through pixel indices)."""

import math

import pytest
import torch

from gan3d.core.cameras import fov_to_intrinsics, look_at, spherical_origin, world_to_camera
from gan3d.core.types import Cameras
from gan3d.samplers.spherical_pose_sampler import SphericalPoseSampler
from gan3d.samplers.uniform_point_sampler import UniformPointSampler


def _cameras(radius) -> Cameras:
    radius = torch.as_tensor(radius, dtype=torch.float32)
    yaw = torch.full_like(radius, 1.3)
    polar = torch.full_like(radius, 1.4)
    return Cameras(look_at(spherical_origin(yaw, polar, radius)), fov_to_intrinsics(30.0, radius.shape[0]))


def test_axis_depths_puts_samples_on_camera_z_planes():
    sampler = UniformPointSampler(num_samples=5, ray_start=7.5, ray_end=12.5, perturbation="none", axis_depths=True)
    cams = _cameras([10.0, 10.0])
    samples = sampler(cams, (4, 4))
    z = world_to_camera(samples.points.reshape(2, -1, 3), cams.cam2world)[..., 2].reshape(2, 16, 5)
    torch.testing.assert_close(z, torch.linspace(7.5, 12.5, 5).expand(2, 16, 5), atol=1e-4, rtol=0)
    # Off-axis rays reach farther than the planar depth: distance = z / cos.
    assert bool((samples.depths[..., 0, 0] > 7.5).all())
    plain = UniformPointSampler(num_samples=5, ray_start=7.5, ray_end=12.5, perturbation="none")(cams, (4, 4))
    torch.testing.assert_close(plain.depths[..., 0, 0], torch.full((2, 16), 7.5))


def test_range_follows_the_camera_radius():
    """GRAF celebA: radius in [9.5, 10.5], near 7.5, far 12.5 relative to r_max = 10.5."""
    sampler = UniformPointSampler(num_samples=3, ray_start=7.5, ray_end=12.5, perturbation="none", axis_depths=True,
                                  range_reference_radius=10.5)
    cams = _cameras([9.5, 10.5])
    z = world_to_camera(sampler(cams, (2, 2)).points.reshape(2, -1, 3), cams.cam2world)[..., 2].reshape(2, 4, 3)
    torch.testing.assert_close(z[0, 0], torch.tensor([6.5, 9.0, 11.5]), atol=1e-4, rtol=0)
    torch.testing.assert_close(z[1, 0], torch.tensor([7.5, 10.0, 12.5]), atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="behind"):
        sampler(_cameras([2.0]), (2, 2))
    with pytest.raises(ValueError, match="range_reference_radius"):
        UniformPointSampler(range_reference_radius=-1.0)


def test_principal_point_puts_rays_through_graf_pixel_indices():
    """nerf-pytorch get_rays: pixel (row j, column i) of a W-pixel image has the camera direction
    ((i - W/2) / f, -(j - H/2) / f, -1) (OpenGL) with f = W / (2 tan(fov / 2)); ours is OpenCV (y down,
    z forward), so the same ray is ((i - W/2) / f, (j - H/2) / f, 1)."""
    w, fov = 6, 30.0
    sampler = SphericalPoseSampler(radius=10.0, pivot=[0.0, 0.0, 0.0], fov=fov, focal=0.0,
                                   principal_point=[0.5 + 0.5 / w, 0.5 + 0.5 / w])
    cams = sampler(1)
    assert cams.intrinsics[0, 0, 2].item() == cams.intrinsics[0, 1, 2].item() == pytest.approx(0.5 + 0.5 / w)
    directions = UniformPointSampler(num_samples=2, ray_start=7.5, ray_end=12.5)(cams, (w, w)).directions
    f = w / (2 * math.tan(math.radians(fov) / 2))
    j, i = torch.meshgrid(torch.arange(w, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    graf = torch.stack([(i - w / 2) / f, (j - w / 2) / f, torch.ones_like(i)], -1).reshape(-1, 3)
    graf = graf / graf.norm(dim=-1, keepdim=True)
    camera = directions[0] @ cams.cam2world[0, :3, :3]  # world -> camera frame
    torch.testing.assert_close(camera, graf, atol=1e-6, rtol=0)
    centred = SphericalPoseSampler(radius=10.0, pivot=[0.0, 0.0, 0.0], fov=fov, focal=0.0)(1)
    assert centred.intrinsics[0, 0, 2].item() == 0.5
    with pytest.raises(ValueError, match="principal_point"):
        SphericalPoseSampler(fov=fov, focal=0.0, principal_point=[0.5])

