"""Seeded sampling and the camera helpers every metric shares."""

from __future__ import annotations

import math

import torch

from gan3d.core.cameras import look_at, spherical_origin
from gan3d.core.types import Cameras
from gan3d.evaluators.metrics.reference_scene import ReferenceSphereGenerator
from gan3d.evaluators.metrics.sampling import look_at_pivot, orbit_cameras, quantize, view_angles, wrap_angle


def test_view_angles_recover_yaw_and_polar_whatever_the_pivot():
    yaw = torch.tensor([math.pi / 2, 1.2, 2.0])
    polar = torch.tensor([math.pi / 2, 1.4, 1.8])
    pivot = torch.tensor([0.0, 0.0, 0.2])
    c2w = look_at(spherical_origin(yaw, polar, 2.7, pivot), pivot)
    torch.testing.assert_close(view_angles(c2w), torch.stack([yaw, polar], -1), atol=1e-5, rtol=0)
    at_origin = look_at(spherical_origin(yaw, polar, 2.7))
    found, radius = look_at_pivot(at_origin)
    torch.testing.assert_close(found, torch.zeros(3, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(radius, torch.full((3,), 2.7), atol=1e-5, rtol=0)


def test_orbit_cameras_turn_about_the_pivot_and_keep_intrinsics():
    yaw, polar = torch.tensor([1.3]), torch.tensor([1.4])
    intrinsics = torch.tensor([[[2.0, 0, 0.5], [0, 2.0, 0.5], [0, 0, 1]]])
    base = Cameras(look_at(spherical_origin(yaw, polar, 3.0)), intrinsics)
    turned = orbit_cameras(base, 0.2, around="sampled")
    torch.testing.assert_close(view_angles(turned.cam2world), torch.tensor([[1.5, 1.4]]), atol=1e-5, rtol=0)
    assert torch.allclose(turned.origins.norm(dim=-1), torch.tensor([3.0]))
    assert torch.equal(turned.intrinsics, base.intrinsics)
    front = orbit_cameras(base, -0.4, around="front")
    torch.testing.assert_close(view_angles(front.cam2world), torch.tensor([[math.pi / 2 - 0.4, math.pi / 2]]),
                               atol=1e-5, rtol=0)
    pivot = torch.tensor([0.0, 0.0, 0.2])
    given = orbit_cameras(base, 0.0, around="front", pivot=pivot)
    expected = pivot + torch.tensor([0.0, 0.0, 1.0]) * (base.origins - pivot).norm()
    torch.testing.assert_close(given.origins[0], expected, atol=1e-5, rtol=0)


def test_seeded_pose_draws_differ_per_sample_and_repeat_per_seed():
    g = ReferenceSphereGenerator(resolution=8)
    a = g.pose_sampler(4, generator=torch.Generator().manual_seed(0)).cam2world
    b = g.pose_sampler(4, generator=torch.Generator().manual_seed(0)).cam2world
    assert torch.equal(a, b)
    assert not torch.allclose(a[0], a[1])  # not one pose repeated (Carver's PE/DE defect)


def test_quantize_and_wrap_angle():
    x = torch.tensor([-1.0, 0.0, 0.3, 1.0])
    q = quantize(x)
    assert torch.allclose(q * 127.5 + 127.5, (q * 127.5 + 127.5).round())
    assert (q - x).abs().max() <= 1 / 127.5
    torch.testing.assert_close(wrap_angle(torch.tensor([3 * math.pi / 2, -0.1])), torch.tensor([-math.pi / 2, -0.1]))
