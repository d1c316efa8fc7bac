"""The spherical pose sampler: distributions, geometry, intrinsics, reproducibility, errors."""

from __future__ import annotations

import math
import re

import pytest
import torch

from gan3d.core.cameras import intrinsics_to_fov
from gan3d.samplers.spherical_pose_sampler import SphericalPoseSampler

N = 20000


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def frontal(**kwargs) -> dict:
    """Options of a sampler looking at the origin from radius 1 with a 12 degree field of view."""
    return {"pivot": [0.0, 0.0, 0.0], "radius": 1.0, "fov": 12.0, "focal": 0.0, **kwargs}


def test_fix_gives_exact_angles_and_hand_computed_origin():
    sampler = SphericalPoseSampler(**frontal(yaw_mean=1.2, polar_mean=1.0, radius=2.0))
    cams = sampler(3)
    assert torch.equal(cams.angles, torch.tensor([[1.2, 1.0]] * 3))
    # EG3D camera_utils: r * (sin v cos(pi - h), cos v, sin v sin(pi - h)).
    expected = [2.0 * math.sin(1.0) * math.cos(math.pi - 1.2), 2.0 * math.cos(1.0),
                2.0 * math.sin(1.0) * math.sin(math.pi - 1.2)]
    torch.testing.assert_close(cams.origins, torch.tensor([expected] * 3))


def test_pigan_celeba_distribution_is_normal_without_polar_reparametrization():
    # pi-GAN curriculums.py CelebA: h_stddev 0.3, v_stddev 0.155, means pi/2, 'gaussian'.
    sampler = SphericalPoseSampler(**frontal(yaw_strategy="normal", yaw_stddev=0.3,
                                             polar_strategy="normal", polar_stddev=0.155))
    angles = sampler(N, generator=seeded()).angles
    torch.testing.assert_close(angles.mean(0), torch.tensor([math.pi / 2] * 2), atol=0.01, rtol=0)
    torch.testing.assert_close(angles.std(0), torch.tensor([0.3, 0.155]), atol=0.006, rtol=0)


def test_eg3d_arccos_parametrization_narrows_the_polar_spread_by_2_over_pi():
    # EG3D camera_utils: polar = arccos(1 - 2 v / pi), so d(polar)/dv = 2 / pi at the equator.
    sampler = SphericalPoseSampler(polar_strategy="normal", polar_stddev=0.155, polar_parametrization="arccos")
    polar = sampler(N, generator=seeded()).angles[:, 1]
    assert abs(polar.mean().item() - math.pi / 2) < 0.005
    assert abs(polar.std().item() - 2 * 0.155 / math.pi) < 0.004


def test_arccos_of_uniform_v_is_area_uniform():
    sampler = SphericalPoseSampler(polar_strategy="uniform", polar_range=[0.0, math.pi],
                                   polar_parametrization="arccos")
    cos_polar = torch.cos(sampler(N, generator=seeded()).angles[:, 1])
    # Area-uniform on the sphere <=> cos(polar) uniform on [-1, 1]: mean 0, variance 1/3.
    assert abs(cos_polar.mean().item()) < 0.02
    assert abs(cos_polar.var().item() - 1 / 3) < 0.01


def test_spherical_uniform_zone_has_uniform_cosine_within_the_polar_range():
    low, high = math.radians(70), math.radians(85)  # GRAF CelebA's v range in degrees
    sampler = SphericalPoseSampler(polar_strategy="spherical_uniform", polar_range=[low, high])
    polar = sampler(N, generator=seeded()).angles[:, 1]
    assert polar.min() >= low - 1e-6 and polar.max() <= high + 1e-6
    cos_polar = torch.cos(polar)
    assert abs(cos_polar.mean().item() - (math.cos(low) + math.cos(high)) / 2) < 0.003


def test_uniform_respects_bounds_and_moments():
    sampler = SphericalPoseSampler(yaw_strategy="uniform", yaw_range=[0.5, 1.0])
    yaw = sampler(N, generator=seeded()).angles[:, 0]
    assert yaw.min() >= 0.5 and yaw.max() <= 1.0
    assert abs(yaw.mean().item() - 0.75) < 0.005
    assert abs(yaw.std().item() - 0.5 / math.sqrt(12)) < 0.005


def test_truncated_normal_stays_in_range_with_the_truncated_spread():
    # pi-GAN's 'truncated_gaussian' truncates at +-2 stddev; the std of N(0,1) cut at +-2 is 0.8796.
    sampler = SphericalPoseSampler(yaw_strategy="truncated_normal", yaw_stddev=0.3,
                                   yaw_range=[math.pi / 2 - 0.6, math.pi / 2 + 0.6])
    yaw = sampler(N, generator=seeded()).angles[:, 0]
    assert yaw.min() >= math.pi / 2 - 0.6 and yaw.max() <= math.pi / 2 + 0.6
    assert abs(yaw.mean().item() - math.pi / 2) < 0.01
    assert abs(yaw.std().item() - 0.3 * 0.8796) < 0.006


def test_hybrid_tosses_one_coin_per_batch_between_uniform_and_normal():
    sampler = SphericalPoseSampler(yaw_strategy="hybrid", yaw_stddev=1.0, yaw_range=[1.0, 2.0], yaw_mean=1.5)
    generator = seeded()
    uniform_batches = 0
    for _ in range(200):
        yaw = sampler(64, generator=generator).angles[:, 0]
        inside = ((yaw >= 1.0) & (yaw <= 2.0)).all().item()
        uniform_batches += inside  # a normal batch of 64 with stddev 1 leaves [1, 2] almost surely
    assert 70 <= uniform_batches <= 130


def test_radius_is_the_distance_from_the_orbit_center():
    cams = SphericalPoseSampler(yaw_strategy="normal", yaw_stddev=0.5)(64, generator=seeded())
    torch.testing.assert_close(cams.origins.norm(dim=-1), torch.full((64,), 2.7))
    # Orbiting the pivot itself: the distance to the pivot is the radius.
    pivot = [0.1, -0.2, 0.3]
    cams = SphericalPoseSampler(yaw_strategy="normal", yaw_stddev=0.5, pivot=pivot, orbit_center=pivot,
                                radius_strategy="uniform", radius_range=[9.5, 10.5])(64, generator=seeded())
    distance = (cams.origins - torch.tensor(pivot)).norm(dim=-1)
    assert distance.min() >= 9.5 - 1e-4 and distance.max() <= 10.5 + 1e-4 and distance.std() > 0.1


def test_cameras_look_at_the_pivot_with_no_roll():
    pivot = torch.tensor([0.0, 0.0, 0.2])
    sampler = SphericalPoseSampler(yaw_strategy="normal", yaw_stddev=0.5, polar_strategy="normal", polar_stddev=0.3)
    c2w = sampler(32, generator=seeded()).cam2world
    forward = (pivot - c2w[:, :3, 3]) / (pivot - c2w[:, :3, 3]).norm(dim=-1, keepdim=True)
    torch.testing.assert_close(c2w[:, :3, 2], forward)  # camera +z points at the pivot
    rot = c2w[:, :3, :3]
    torch.testing.assert_close(rot.transpose(1, 2) @ rot, torch.eye(3).expand(32, 3, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.linalg.det(rot), torch.ones(32))
    torch.testing.assert_close(c2w[:, 1, 0], torch.zeros(32), atol=1e-6, rtol=0)  # camera x stays level


def test_default_is_eg3d_front_camera_by_hand():
    # EG3D gen_samples.py front view: radius 2.7 from the origin, looking at (0, 0, 0.2), focal 4.2647.
    cams = SphericalPoseSampler()(1)
    expected = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, -1.0, 0.0, 0.0], [0.0, 0.0, -1.0, 2.7], [0.0, 0.0, 0.0, 1.0]])
    torch.testing.assert_close(cams.cam2world[0], expected)
    torch.testing.assert_close(cams.intrinsics[0], torch.tensor([[4.2647, 0, 0.5], [0, 4.2647, 0.5], [0, 0, 1.0]]))


def test_eg3d_lookat_pose_by_hand():
    yaw, v = math.pi / 2 + 0.4, math.pi / 2 - 0.2
    sampler = SphericalPoseSampler(yaw_mean=yaw, polar_mean=v, polar_parametrization="arccos")
    c2w = sampler(1).cam2world[0]
    phi = math.acos(1 - 2 * v / math.pi)
    origin = torch.tensor([2.7 * math.sin(phi) * math.cos(math.pi - yaw), 2.7 * math.cos(phi),
                           2.7 * math.sin(phi) * math.sin(math.pi - yaw)])
    forward = torch.tensor([0.0, 0.0, 0.2]) - origin
    forward = forward / forward.norm()
    right = -torch.linalg.cross(torch.tensor([0.0, 1.0, 0.0]), forward)
    right = right / right.norm()
    down = torch.linalg.cross(forward, right)
    torch.testing.assert_close(c2w[:3, :3], torch.stack([right, down / down.norm(), forward], dim=-1))
    torch.testing.assert_close(c2w[:3, 3], origin)


def test_pigan_and_graf_angles_map_to_ours_as_documented():
    theta, phi = 1.9, 1.2  # pi-GAN sample_camera_positions: (sin phi cos theta, cos phi, sin phi sin theta)
    pigan = torch.tensor([math.sin(phi) * math.cos(theta), math.cos(phi), math.sin(phi) * math.sin(theta)])
    ours = SphericalPoseSampler(**frontal(yaw_mean=math.pi - theta, polar_mean=phi))(1).origins[0]
    torch.testing.assert_close(ours, pigan)
    u, v = 0.2, 0.4  # GRAF utils.to_sphere, z-up; rotate (x, y, z) -> (x, z, -y) into our y-up world
    p = math.acos(1 - 2 * v)
    graf = torch.tensor([math.sin(p) * math.cos(2 * math.pi * u), math.sin(p) * math.sin(2 * math.pi * u), math.cos(p)])
    ours = SphericalPoseSampler(**frontal(yaw_mean=math.pi + 2 * math.pi * u, polar_mean=p))(1).origins[0]
    torch.testing.assert_close(ours, torch.stack([graf[0], graf[2], -graf[1]]))


def test_intrinsics_from_fov_and_from_focal():
    k = SphericalPoseSampler(**frontal())(2).intrinsics
    assert abs(k[0, 0, 0].item() - 1 / (2 * math.tan(math.radians(6)))) < 1e-5
    assert abs(intrinsics_to_fov(k[0, 0, 0].item()) - 12.0) < 1e-4
    torch.testing.assert_close(k[:, :2, 2], torch.full((2, 2), 0.5))
    assert SphericalPoseSampler(focal=1.7074)(1).intrinsics[0, 1, 1].item() == pytest.approx(1.7074)


def test_seeded_generator_reproduces_and_different_seeds_differ():
    sampler = SphericalPoseSampler(yaw_strategy="hybrid", yaw_stddev=0.3, yaw_range=[1.0, 2.0],
                                   polar_strategy="truncated_normal", polar_stddev=0.2, polar_range=[1.2, 1.9],
                                   radius_strategy="uniform", radius_range=[2.5, 2.9])
    a, b, c = sampler(16, generator=seeded(3)), sampler(16, generator=seeded(3)), sampler(16, generator=seeded(4))
    assert torch.equal(a.cam2world, b.cam2world) and torch.equal(a.angles, b.angles)
    assert not torch.equal(a.cam2world, c.cam2world)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cpu_generator_gives_the_same_cameras_on_cuda():
    sampler = SphericalPoseSampler(yaw_strategy="normal", yaw_stddev=0.3)
    cpu = sampler(8, generator=seeded(1))
    gpu = sampler(8, device="cuda", generator=seeded(1))
    assert gpu.cam2world.is_cuda
    torch.testing.assert_close(gpu.cam2world.cpu(), cpu.cam2world)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"yaw_strategy": "gaussian"}, "yaw_strategy 'gaussian' is unknown; allowed: fix, uniform, normal, hybrid"),
        ({"polar_strategy": "cauchy"}, "spherical_uniform"),
        ({"yaw_strategy": "spherical_uniform", "yaw_range": [0.0, 1.0]}, "use 'uniform' for yaw"),
        ({"yaw_strategy": "uniform"}, "needs yaw_range=[low, high]"),
        ({"yaw_strategy": "uniform", "yaw_range": [2.0, 1.0]}, "low <= high"),
        ({"yaw_strategy": "truncated_normal", "yaw_range": [1.0, 2.0]}, "yaw_stddev > 0"),
        ({"polar_strategy": "spherical_uniform", "polar_range": [0.0, 4.0]}, "polar angles in [0, pi]"),
        ({"polar_strategy": "spherical_uniform", "polar_range": [0.0, 1.0], "polar_parametrization": "arccos"},
         "already draws polar angles"),
        ({"polar_parametrization": "cosine"}, "allowed: angle, arccos"),
        ({"fov": 12.0}, "exactly one of fov"),
        ({"focal": 0.0}, "exactly one of fov"),
        ({"radius": -1.0}, "radius must be positive"),
        ({"yaw_stddev": -0.1}, "yaw_stddev must be >= 0"),
        ({"pivot": [0.0, 0.0]}, "3 floats"),
    ],
)
def test_bad_options_are_explained(options, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        SphericalPoseSampler(**options)
