"""The uniform point sampler: rays, depth grid, jitter modes, eval determinism, errors."""

from __future__ import annotations

import math

import pytest
import torch

from gan3d.samplers.spherical_pose_sampler import SphericalPoseSampler
from gan3d.samplers.uniform_point_sampler import UniformPointSampler

START, END, S = 2.0, 3.0, 8
SPACING = (END - START) / (S - 1)
GRID = torch.linspace(START, END, S)


def cameras(batch: int = 2):
    sampler = SphericalPoseSampler(yaw_strategy="normal", yaw_stddev=0.4, polar_strategy="normal", polar_stddev=0.2)
    return sampler(batch, generator=torch.Generator().manual_seed(0))


def depths(perturbation: str, *, train: bool = True, seed: int = 0, **kwargs) -> torch.Tensor:
    sampler = UniformPointSampler(num_samples=S, ray_start=START, ray_end=END, perturbation=perturbation, **kwargs)
    sampler.train(train)
    return sampler(cameras(), (8, 8), generator=torch.Generator().manual_seed(seed)).depths.squeeze(-1)


def test_rays_are_unit_row_major_and_start_at_the_camera():
    cams = cameras()
    samples = UniformPointSampler(num_samples=S, ray_start=START, ray_end=END)(cams, (4, 6))
    assert samples.origins.shape == (2, 24, 3) and samples.depths.shape == (2, 24, S, 1)
    assert samples.points.shape == (2, 24, S, 3)
    torch.testing.assert_close(samples.directions.norm(dim=-1), torch.ones(2, 24))
    torch.testing.assert_close(samples.origins, cams.origins[:, None].expand(2, 24, 3))
    expected = samples.origins[:, :, None] + samples.depths * samples.directions[:, :, None]
    torch.testing.assert_close(samples.points, expected)
    # Row-major: along a row the ray turns towards camera +x (image right).
    cam_x = cams.cam2world[:, :3, 0]
    assert ((samples.directions[:, 1] - samples.directions[:, 0]) * cam_x).sum(-1).gt(0).all()


def test_centre_ray_passes_through_the_pivot():
    cams = cameras()
    samples = UniformPointSampler(num_samples=S, ray_start=START, ray_end=END)(cams, (5, 5))
    centre = samples.directions[:, 12]  # pixel (2, 2) of a 5x5 image sits on the optical axis
    to_pivot = torch.tensor([0.0, 0.0, 0.2]) - cams.origins
    torch.testing.assert_close(centre, to_pivot / to_pivot.norm(dim=-1, keepdim=True))


@pytest.mark.parametrize("perturbation", ["none", "stratified", "middle_uniform", "forward"])
def test_eval_mode_gives_the_evenly_spaced_grid(perturbation):
    d = depths(perturbation, train=False)
    torch.testing.assert_close(d, GRID.expand_as(d))


@pytest.mark.parametrize("perturbation", ["stratified", "middle_uniform", "forward"])
def test_training_jitter_stays_in_its_cell_and_keeps_order(perturbation):
    d = depths(perturbation)
    cells = {
        "stratified": (GRID - SPACING / 2, GRID + SPACING / 2),
        "forward": (GRID, GRID + SPACING),
        "middle_uniform": (torch.cat([GRID[:1], (GRID[1:] + GRID[:-1]) / 2]),
                           torch.cat([(GRID[1:] + GRID[:-1]) / 2, GRID[-1:]])),
    }
    lower, upper = cells[perturbation]
    assert (d >= lower - 1e-6).all() and (d <= upper + 1e-6).all()
    assert (d[..., 1:] >= d[..., :-1]).all()
    offset = (d - lower) / (upper - lower)  # uniform in [0, 1] within each cell
    assert abs(offset.mean().item() - 0.5) < 0.03 and offset.std().item() > 0.25


@pytest.mark.parametrize("perturbation", ["none", "middle_uniform"])
def test_depths_stay_within_the_ray_range(perturbation):
    d = depths(perturbation)
    assert d.min() >= START and d.max() <= END
    assert (d[..., 1:] > d[..., :-1]).all()


def test_perturb_in_eval_keeps_jitter_and_seed_reproduces():
    a = depths("stratified", train=False, perturb_in_eval=True, seed=5)
    b = depths("stratified", train=False, perturb_in_eval=True, seed=5)
    c = depths("stratified", train=False, perturb_in_eval=True, seed=6)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert not torch.allclose(a, GRID.expand_as(a))


def test_disparity_space_sampling_is_linear_in_inverse_depth():
    d = depths("forward", train=False, disparity_space_sampling=True)[0, 0]
    torch.testing.assert_close(1 / d, torch.linspace(1 / START, 1 / END, S))
    jittered = depths("forward", disparity_space_sampling=True)
    assert jittered.min() >= START - 1e-6 and jittered.max() <= END + 1e-6


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"ray_start": 3.0, "ray_end": 3.0}, "ray_start must be smaller than ray_end"),
        ({"ray_start": 3.5, "ray_end": 3.0}, "ray_start must be smaller than ray_end"),
        ({"ray_start": -1.0, "ray_end": 3.0}, "ray_start must be >= 0"),
        ({"perturbation": "jitter"}, "perturbation 'jitter' is unknown; allowed: none, stratified, middle_uniform"),
        ({"num_samples": 1}, "num_samples must be >= 2"),
        ({"ray_start": 0.0, "ray_end": 1.0, "disparity_space_sampling": True}, "needs ray_start > 0"),
    ],
)
def test_bad_options_are_explained(options, message):
    with pytest.raises(ValueError, match=message):
        UniformPointSampler(**options)


def test_samples_per_pixel_count_matches_resolution():
    samples = UniformPointSampler(num_samples=3, ray_start=0.5, ray_end=1.5).eval()(cameras(1), (3, 7))
    assert samples.num_samples == 3 and samples.origins.shape[1] == 21
    assert math.isclose(samples.depths[0, 0, 1, 0].item(), 1.0)


def test_align_corners_puts_the_outermost_rays_on_the_field_of_view():
    """pi-GAN's get_initial_rays_trig: x = linspace(-1, 1, W) * tan(fov / 2), y from +1 at the top row,
    z = -1 (OpenGL), normalised. With align_corners our rays are those, rotated into the world."""
    sampler = SphericalPoseSampler(fov=12.0, focal=0.0, radius=1.0, pivot=[0.0, 0.0, 0.0])
    cams = sampler(1)
    samples = UniformPointSampler(num_samples=S, ray_start=0.88, ray_end=1.12, align_corners=True)(cams, (5, 7))
    tan = math.tan(math.radians(6.0))
    x, y = torch.meshgrid(torch.linspace(-1, 1, 7), torch.linspace(1, -1, 5), indexing="xy")
    opengl = torch.stack([x.flatten() * tan, y.flatten() * tan, -torch.ones(35)], -1)
    opengl = opengl / opengl.norm(dim=-1, keepdim=True)
    # OpenCV camera axes (x right, y down, z forward) -> OpenGL's (x right, y up, -z forward).
    world = opengl @ (cams.cam2world[0, :3, :3] @ torch.diag(torch.tensor([1.0, -1.0, -1.0]))).T
    torch.testing.assert_close(samples.directions[0], world, atol=2e-7, rtol=0)
    # The default grid goes through pixel centres: the outermost rays stay inside the field of view.
    centred = UniformPointSampler(num_samples=S, ray_start=0.88, ray_end=1.12)(cams, (5, 7))
    assert (centred.directions[0, 0] - world[0]).abs().max() > 1e-3


def test_axis_depths_lie_on_planes_of_constant_camera_depth():
    """StyleSDF: pts = o + rays_d * z with rays_d of camera z-length 1, so every sample of depth
    index i has camera-space z = t_i, and the distance along the ray grows towards the corners."""
    cams = cameras(1)
    sampler = UniformPointSampler(num_samples=S, ray_start=START, ray_end=END, axis_depths=True).eval()
    samples = sampler(cams, (5, 5))
    camera_z = ((samples.points - cams.origins[:, None, None]) * cams.cam2world[:, None, None, :3, 2]).sum(-1)
    torch.testing.assert_close(camera_z, GRID.expand_as(camera_z))
    assert samples.depths[0, 0, 0, 0] > START and samples.depths[0, 12, 0, 0] == pytest.approx(START)


def test_static_view_directions_are_camera_frame_opengl_in_eval_only():
    cams = cameras(2)
    sampler = UniformPointSampler(num_samples=S, ray_start=START, ray_end=END, static_view_directions_in_eval=True)
    samples = sampler.eval()(cams, (5, 5))
    view = samples.sample_directions[:, :, 0]
    assert samples.sample_directions.shape == samples.points.shape
    # The centre ray looks down -z in OpenGL axes whatever the camera; a top-left ray goes left and up.
    torch.testing.assert_close(view[:, 12], torch.tensor([[0.0, 0.0, -1.0]] * 2))
    assert (view[:, 0, 0] < 0).all() and (view[:, 0, 1] > 0).all()
    torch.testing.assert_close(view.norm(dim=-1), torch.ones(2, 25))
    trained = sampler.train()(cams, (5, 5))
    torch.testing.assert_close(trained.sample_directions[:, :, 0], trained.directions)
    # Chunking keeps the view directions with their rays.
    torch.testing.assert_close(samples.rays(slice(3, 7)).sample_directions[:, :, 0], view[:, 3:7])
