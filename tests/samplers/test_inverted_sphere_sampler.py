"""The NeRF++ background sampler: radii, distances and intervals by hand, jitter, explicit pixels, errors."""

from __future__ import annotations

import math

import pytest
import torch

from gan3d.core.cameras import fov_to_intrinsics, look_at, pixel_rays, spherical_origin
from gan3d.core.types import Cameras
from gan3d.samplers.inverted_sphere_sampler import (
    INFINITY_INVERSE_RADIUS,
    InvertedSphereSampler,
    distance_to_sphere,
)


def cameras(radius: float = 1.0, batch: int = 2) -> Cameras:
    """StyleNeRF-like cameras on the sphere of ``radius`` looking at the origin, fov 12."""
    yaw = torch.tensor([math.pi / 2, math.pi / 2 + 0.3])[:batch]
    polar = torch.tensor([math.pi / 2, math.pi / 2 - 0.1])[:batch]
    return Cameras(look_at(spherical_origin(yaw, polar, radius)), fov_to_intrinsics(12.0, batch))


def test_eval_samples_sit_on_spheres_of_radius_2_3_6_and_far_away():
    sampler = InvertedSphereSampler(num_samples=4, inverse_radius_start=0.5).eval()
    samples = sampler(cameras(), (4, 4))
    assert samples.points.shape == (2, 16, 4, 3) and samples.deltas.shape == (2, 16, 4, 1)
    radii = samples.points.norm(dim=-1)
    expected = torch.tensor([2.0, 3.0, 6.0, 1.0 / INFINITY_INVERSE_RADIUS])
    torch.testing.assert_close(radii, expected.expand_as(radii), rtol=1e-5, atol=1e-4)
    # The points lie on the rays, at the returned distances, in front of the camera and ascending.
    along = samples.origins[:, :, None] + samples.depths * samples.directions[:, :, None]
    torch.testing.assert_close(samples.points, along)
    assert samples.depths.diff(dim=-2).gt(0).all() and samples.depths.gt(0).all()
    # Interval lengths in inverse radius (StyleNeRF calc_volume_weights(sigma, di)), 1e10 after the last.
    torch.testing.assert_close(samples.deltas[0, 0, :, 0], torch.tensor([1 / 6, 1 / 6, 1 / 6, 1e10]))


def test_distance_by_hand():
    # A camera at the centre sees every sphere at its radius; one at (0, 0, 1) looking along -z reaches
    # the sphere of radius 2 at t = 1 + 2 = 3 and, looking sideways, at sqrt(4 - 1) = sqrt(3).
    origins = torch.tensor([[[0.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0]]])
    directions = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]]])
    t = distance_to_sphere(origins, directions, torch.full((1, 3, 1), 2.0))
    torch.testing.assert_close(t.flatten(), torch.tensor([2.0, 3.0, math.sqrt(3.0)]))


def test_training_jitter_stays_in_the_midpoint_cells_and_is_reproducible():
    sampler = InvertedSphereSampler(num_samples=4, inverse_radius_start=0.5).train()
    first = sampler(cameras(), (4, 4), generator=torch.Generator().manual_seed(0))
    again = sampler(cameras(), (4, 4), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(first.points, again.points)
    inverse = 1.0 / first.points.norm(dim=-1)  # [B, R, 4]
    # Cells between midpoints of the grid 0.5, 1/3, 1/6, 0 (the first and last clipped to the grid).
    lower = torch.tensor([5 / 12, 1 / 4, 1 / 12, INFINITY_INVERSE_RADIUS]) - 1e-5
    upper = torch.tensor([0.5, 5 / 12, 1 / 4, 1 / 12]) + 1e-5
    assert (inverse >= lower).all() and (inverse <= upper).all()
    assert inverse.std(dim=(0, 1)).gt(0.01).all()  # really jittered
    gaps = inverse[..., :-1] - inverse[..., 1:]
    torch.testing.assert_close(first.deltas[..., :-1, 0], gaps, atol=1e-5, rtol=1e-4)


def test_explicit_pixels_give_the_rays_of_those_pixel_centres():
    cams = cameras()
    origins, directions = pixel_rays(cams.cam2world, cams.intrinsics, (4, 6))
    j, i = torch.tensor([0, 5, 2]), torch.tensor([0, 3, 1])
    pixels = torch.stack([(j + 0.5) / 6, (i + 0.5) / 4], dim=-1).expand(2, 3, 2)
    sampler = InvertedSphereSampler().eval()
    explicit = sampler(cams, None, pixels=pixels)
    torch.testing.assert_close(explicit.directions, directions[:, i * 6 + j])
    torch.testing.assert_close(explicit.origins, origins[:, :3])
    torch.testing.assert_close(sampler(cams, (4, 6), pixels=pixels).points, sampler(cams, (4, 6)).points[:, i * 6 + j])


def test_sphere_radius_scales_the_background_and_cameras_must_be_inside():
    with pytest.raises(ValueError, match="inside the sphere of sphere_radius=1.0"):
        InvertedSphereSampler()(cameras(radius=2.7), (2, 2))
    samples = InvertedSphereSampler(sphere_radius=2.7).eval()(cameras(radius=2.7), (2, 2))
    torch.testing.assert_close(samples.points.norm(dim=-1)[0, 0, :3], torch.tensor([5.4, 8.1, 16.2]))


@pytest.mark.parametrize("options,message", [
    ({"num_samples": 1}, "num_samples must be >= 2"),
    ({"inverse_radius_start": 1.5}, r"inverse_radius_start must lie in \(0, 1\]"),
    ({"perturbation": "forward"}, "perturbation 'forward' is unknown"),
    ({"sphere_radius": -1.0}, "sphere_radius must be positive"),
])
def test_bad_options(options, message):
    with pytest.raises(ValueError, match=message):
        InvertedSphereSampler(**options)
