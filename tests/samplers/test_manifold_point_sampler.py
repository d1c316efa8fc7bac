"""GRAM's manifold point sampler: level-set crossings on analytic fields (spheres), the background
point, sorting, fixed intervals, the validity mask, gradients into the scalar field, the field's init."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from gan3d.core.cameras import fov_to_intrinsics, look_at
from gan3d.core.types import Cameras
from gan3d.samplers.manifold_point_sampler import (
    ManifoldPointSampler,
    ManifoldScalarField,
    level_set_crossings,
)


class SphereField(nn.Module):
    """``s(x) = gain * |x - centre|``: its level sets are spheres of radius ``l / gain``."""

    def __init__(self, gain: float = 1.0, centre=(0.0, 0.0, 0.0)) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.tensor(float(gain)))
        self.register_buffer("centre", torch.tensor(centre))

    def forward(self, points):
        return self.gain * (points - self.centre).norm(dim=-1, keepdim=True)


def ray_samples(origin, direction, depths):
    """``[1, 1, N, 3]`` points at ``depths`` along one ray."""
    o, d = torch.tensor(origin), torch.tensor(direction)
    return (o + torch.tensor(depths)[:, None] * d).view(1, 1, -1, 3)


def front_camera(z: float = 1.0, fov: float = 12.0) -> Cameras:
    """One camera on +z looking at the origin."""
    return Cameras(look_at(torch.tensor([[0.0, 0.0, z]])), fov_to_intrinsics(fov, 1))


# ---------------------------------------------------------------- level_set_crossings on spheres
def test_central_ray_enters_each_sphere_where_its_radius_says():
    # Ray from (0, 0, 1) along -z, samples at z = 0.5, 0.4, ..., -0.5. s = |x| is linear along this
    # ray until the centre, so the interpolated entry points are exact: z = r.
    points = ray_samples([0.0, 0.0, 1.0], [0.0, 0.0, -1.0], [0.5 + 0.1 * i for i in range(11)])
    values = SphereField()(points)
    out = level_set_crossings(points, values, torch.tensor([0.45, 0.25, 0.7]))
    assert out.points.shape == (1, 1, 3, 3) and out.valid.shape == (1, 1, 3, 1)
    assert out.valid.flatten().tolist() == [True, True, False]
    torch.testing.assert_close(out.points[0, 0, 0], torch.tensor([0.0, 0.0, 0.45]))
    torch.testing.assert_close(out.points[0, 0, 1], torch.tensor([0.0, 0.0, 0.25]))
    # r = 0.7 is never reached: the far end of the last interval, z = -0.5.
    torch.testing.assert_close(out.points[0, 0, 2], torch.tensor([0.0, 0.0, -0.5]))


def test_exit_crossings_are_ignored():
    # Past the centre s grows again: it passes 0.25 a second time at z = -0.25 (leaving the sphere),
    # which is not an entry. A ray starting inside the sphere has no entry at all.
    inside = ray_samples([0.0, 0.0, 0.1], [0.0, 0.0, -1.0], [0.1 * i for i in range(8)])
    out = level_set_crossings(inside, SphereField()(inside), torch.tensor([0.25]))
    assert out.valid.flatten().tolist() == [False]


def test_off_axis_ray_uses_the_linear_interpolant_of_the_two_samples():
    # Ray x = 0.3 along -z; s = sqrt(0.09 + z^2). Between z = 0.5 (s = sqrt(0.34)) and z = 0.4 (s = 0.5)
    # s passes 0.55: the interpolant puts the crossing at z = 0.5 - 0.1 * (s0 - 0.55) / (s0 - 0.5).
    points = ray_samples([0.3, 0.0, 1.0], [0.0, 0.0, -1.0], [0.5, 0.6, 0.7])
    out = level_set_crossings(points, SphereField()(points), torch.tensor([0.55]))
    s0 = math.sqrt(0.34)
    z = 0.5 - 0.1 * (s0 - 0.55) / (s0 - 0.5)
    torch.testing.assert_close(out.points[0, 0, 0], torch.tensor([0.3, 0.0, z]))
    # ... within a millimetre of the true sphere entry z = sqrt(0.55^2 - 0.09).
    assert abs(z - math.sqrt(0.55**2 - 0.09)) < 1e-3


def test_the_first_entry_wins_and_flat_steps_take_the_far_sample():
    # s = 3, 1, 3, 1 along a ray: level 2 is entered twice; the first entry (between samples 0 and 1) wins.
    points = ray_samples([0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 2.0, 3.0])
    values = torch.tensor([3.0, 1.0, 3.0, 1.0]).view(1, 1, 4, 1)
    out = level_set_crossings(points, values, torch.tensor([2.0]))
    torch.testing.assert_close(out.points[0, 0, 0], torch.tensor([0.5, 0.0, 0.0]))
    # A step of s no larger than min_step is not interpolated: the crossing is the far sample (GRAM's 0.05).
    flat = torch.tensor([2.03, 1.99, 1.0, 0.0]).view(1, 1, 4, 1)
    out = level_set_crossings(points, flat, torch.tensor([2.0]), min_step=0.05)
    assert out.valid.item()
    torch.testing.assert_close(out.points[0, 0, 0], torch.tensor([1.0, 0.0, 0.0]))


def test_crossings_carry_gradients_to_the_field_values():
    points = ray_samples([0.0, 0.0, 1.0], [0.0, 0.0, -1.0], [0.5, 0.6])
    field = SphereField(gain=1.0)
    out = level_set_crossings(points, field(points), torch.tensor([0.45]))
    # z = l / gain along the central ray, so dz/dgain = -l / gain^2 = -0.45.
    out.points[0, 0, 0, 2].backward()
    torch.testing.assert_close(field.gain.grad, torch.tensor(-0.45))


def test_bad_inputs_are_refused():
    points = torch.zeros(1, 1, 4, 3)
    with pytest.raises(ValueError, match="values must be"):
        level_set_crossings(points, torch.zeros(1, 1, 3, 1), torch.tensor([0.0]))
    with pytest.raises(ValueError, match="at least 2 samples"):
        level_set_crossings(points[:, :, :1], torch.zeros(1, 1, 1, 1), torch.tensor([0.0]))
    with pytest.raises(ValueError, match="1-D"):
        level_set_crossings(points, torch.zeros(1, 1, 4, 1), torch.zeros(2, 2))


# ---------------------------------------------------------------- the sampler
def sphere_sampler(**kwargs) -> ManifoldPointSampler:
    options = dict(num_samples=23, ray_start=0.88, ray_end=1.10, num_manifolds=6, levels_start=13.0,
                   levels_end=5.0, background=True, background_z=-0.05, hidden_dim=8)
    sampler = ManifoldPointSampler(**{**options, **kwargs})
    sampler.scalar_field = SphereField(gain=100.0)  # level l is the sphere of radius l / 100
    return sampler


def test_sampler_sorts_crossings_and_background_with_fixed_intervals_and_mask():
    # One ray from (0, 0, 1) through the origin. Levels 13, 11, 9, 7, 5 -> spheres of radius 0.13 (not
    # reached: the samples start at z = 0.12), 0.11, 0.09, 0.07, 0.05, entered at depths 1 - r; the
    # background plane z = -0.05 is at depth 1.05; the missed level sits at the last sample, depth 1.10.
    samples = sphere_sampler()(front_camera(), (1, 1))
    assert samples.points.shape == (1, 1, 6, 3)
    depths = samples.depths.flatten()
    torch.testing.assert_close(depths, torch.tensor([0.89, 0.91, 0.93, 0.95, 1.05, 1.10]), atol=1e-5, rtol=0)
    torch.testing.assert_close(samples.points[0, 0, :, 2], 1.0 - depths, atol=1e-5, rtol=0)
    assert samples.mask.flatten().tolist() == [True, True, True, True, True, False]
    assert samples.mask.dtype == torch.bool
    # Every interval 0.04, the background point's and the last sample's 1e10 (fancy_integration).
    torch.testing.assert_close(samples.deltas.flatten(), torch.tensor([0.04] * 4 + [1e10, 1e10]))
    torch.testing.assert_close(samples.origins[0, 0], torch.tensor([0.0, 0.0, 1.0]))


def test_background_behind_everything_is_the_last_sample():
    samples = sphere_sampler(background_z=-0.5, delta=0.02)(front_camera(), (1, 1))
    torch.testing.assert_close(samples.depths.flatten()[-1], torch.tensor(1.5))
    assert samples.mask.flatten().tolist() == [True, True, True, True, False, True]
    torch.testing.assert_close(samples.deltas.flatten(), torch.tensor([0.02] * 5 + [1e10]))


def test_without_background_every_interval_is_delta():
    samples = sphere_sampler(background=False, num_manifolds=5)(front_camera(), (1, 1))
    assert samples.points.shape == (1, 1, 5, 3)
    assert samples.mask.flatten().tolist() == [True, True, True, True, False]
    torch.testing.assert_close(samples.deltas.flatten(), torch.full((5,), 0.04))


def test_levels_count_down_from_levels_start():
    sampler = ManifoldPointSampler(num_manifolds=24, levels_start=23.0, levels_end=8.0, hidden_dim=4)
    levels = sampler.levels()
    assert levels.shape == (23,) and levels[0] == 23.0 and levels[-1] == 8.0
    assert ManifoldPointSampler(num_manifolds=48, levels_start=35.0, levels_end=5.0, background=False,
                                hidden_dim=4).levels().shape == (48,)


def test_off_axis_rays_meet_the_background_plane_and_carry_field_gradients():
    cams = front_camera()
    sampler = sphere_sampler()
    samples = sampler(cams, (4, 4))
    assert samples.points.shape == (1, 16, 6, 3)
    # Sorted depths; each point is at its depth from the camera.
    assert (samples.depths[..., 1:, :] >= samples.depths[..., :-1, :]).all()
    torch.testing.assert_close((samples.points - samples.origins[:, :, None]).norm(dim=-1, keepdim=True),
                               samples.depths)
    # Exactly one background point per ray, on the plane z = -0.05.
    on_plane = (samples.points[..., 2] + 0.05).abs() < 1e-6
    assert on_plane.sum(-1).eq(1).all()
    assert not samples.depths.requires_grad
    samples.points.sum().backward()
    assert sampler.scalar_field.gain.grad is not None and sampler.scalar_field.gain.grad != 0


def test_detach_intersections_keeps_the_field_out_of_the_graph():
    sampler = sphere_sampler(detach_intersections=True)
    samples = sampler(front_camera(), (2, 2))
    assert not samples.points.requires_grad


def test_explicit_pixels_give_the_rays_of_those_pixels():
    sampler = sphere_sampler()
    cams = front_camera()
    full = sampler(cams, (4, 4))
    # Pixel centres of row 1, columns 0 and 3 of a 4 x 4 image: (u, v) = ((j + 0.5) / 4, (i + 0.5) / 4).
    pixels = torch.tensor([[[0.125, 0.375], [0.875, 0.375]]])
    some = sampler(cams, None, pixels=pixels)
    assert some.points.shape == (1, 2, 6, 3)
    for k, ray in enumerate((4, 7)):
        torch.testing.assert_close(some.points[0, k], full.points[0, ray])
        torch.testing.assert_close(some.depths[0, k], full.depths[0, ray])
        assert torch.equal(some.mask[0, k], full.mask[0, ray])


@pytest.mark.parametrize("where", ["sampler", "cameras"])
def test_corner_aligned_rays_span_the_field_of_view(where):
    # GRAM's get_initial_rays_trig: linspace(-1, 1, W) at z = -1 / tan(fov / 2): the outermost rays make
    # exactly fov / 2 with the axis; through pixel centres they would make atan((W - 1) / W tan(fov / 2)).
    fov = 12.0
    cams = front_camera(fov=fov)
    if where == "cameras":
        cams = Cameras(cams.cam2world, cams.intrinsics, align_corners=True)
        sampler = sphere_sampler()
    else:
        sampler = sphere_sampler(align_corners=True)
    samples = sampler(cams, (5, 5))
    corner = samples.directions[0, 0]
    axis = torch.tensor([0.0, 0.0, -1.0])
    half = math.radians(fov / 2)
    torch.testing.assert_close(corner @ axis, torch.tensor(1.0 / math.sqrt(1.0 + 2.0 * math.tan(half) ** 2)))
    # Top-left: image right is world +x, image down world -y, so the ray goes to -x, +y.
    assert corner[0] < 0 and corner[1] > 0 and corner[0] == pytest.approx(-corner[1].item(), abs=1e-6)
    torch.testing.assert_close(samples.directions[0, 12], axis)  # the centre ray, 2 of 0..4


def test_the_renderer_composites_only_valid_crossings():
    # GRAM fancy_integration: alpha = (1 - exp(-delta sigma)) * is_valid, T = cumprod(1 - alpha + 1e-10),
    # rgb = sum T alpha c, depth = sum w z / sum w. Through the real renderer, with the sampler's samples:
    # 4 valid crossings (delta 0.04), the background plane (delta 1e10), one missed level (invalid).
    from gan3d.core.registry import get_registry
    from gan3d.core.types import Field

    samples = sphere_sampler()(front_camera(), (1, 1))
    renderer = get_registry().build("volume_renderer", "volume", density_activation="softplus",
                                    quadrature="last_delta", last_delta=1e10, noise_std=0.0,
                                    depth_mode="normalized")
    raw = torch.tensor([2.0, 1.0, 3.0, 0.5, -1.0, 50.0]).view(1, 1, 6, 1)  # huge on the invalid sample
    colour = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.9, 1.0]).view(1, 1, 6, 1).expand(1, 1, 6, 3)
    render = renderer(Field(features=colour, density=raw), samples)
    sigma = torch.nn.functional.softplus(raw.flatten()).double()
    alpha = 1 - torch.exp(-sigma * torch.tensor([0.04] * 4 + [1e10, 1e10], dtype=torch.float64))
    alpha[5] = 0.0  # the missed level
    transmittance = torch.cumprod(torch.cat([torch.ones(1, dtype=torch.float64), 1 - alpha[:-1] + 1e-10]), 0)
    weights = alpha * transmittance
    z = samples.depths.flatten().double()
    torch.testing.assert_close(render.weights.flatten().double(), weights, atol=1e-6, rtol=0)
    assert render.weights[0, 0, 5, 0] == 0  # the invalid crossing adds nothing
    torch.testing.assert_close(render.features[0, 0, 0].double(), (weights * colour[0, 0, :, 0]).sum(), atol=1e-6,
                               rtol=0)
    torch.testing.assert_close(render.depth.flatten().double(), ((weights * z).sum() / weights.sum()).view(1),
                               atol=1e-6, rtol=0)
    # The background plane is opaque: nothing is left behind it.
    assert render.alpha.item() == pytest.approx(1.0, abs=1e-6)


def test_support_is_the_shell_between_the_outermost_and_innermost_levels():
    # Levels 13 .. 5 of s = 100 |x|: crossings lie on spheres of radius 0.05 .. 0.13, the support between.
    sampler = sphere_sampler()
    radii = torch.tensor([0.02, 0.05, 0.09, 0.13, 0.2])
    points = (radii[:, None] * torch.tensor([0.6, 0.0, 0.8])).view(1, 5, 1, 3)
    assert sampler.support(points).flatten().tolist() == [False, True, True, True, False]
    samples = sampler(front_camera(), (3, 3))
    assert sampler.support(samples.points)[samples.mask & (samples.deltas < 1)].all()  # every valid crossing


def test_inference_in_chunks_of_rays_gives_the_same_samples():
    torch.manual_seed(0)
    whole = ManifoldPointSampler(num_samples=16, ray_start=0.88, ray_end=1.12, num_manifolds=6, hidden_dim=16,
                                 chunk=0)
    chunked = ManifoldPointSampler(num_samples=16, ray_start=0.88, ray_end=1.12, num_manifolds=6, hidden_dim=16,
                                   chunk=7)
    chunked.load_state_dict(whole.state_dict())
    with torch.no_grad():
        a, b = whole(front_camera(), (5, 5)), chunked(front_camera(), (5, 5))
    torch.testing.assert_close(a.points, b.points)
    assert torch.equal(a.mask, b.mask) and torch.equal(a.deltas, b.deltas)
    with pytest.raises(ValueError, match="chunk"):
        ManifoldPointSampler(chunk=-1)


def test_real_field_matches_grams_manifold_predictor_shapes_and_count():
    sampler = ManifoldPointSampler(hidden_dim=128, num_layers=3)
    names = {n: tuple(p.shape) for n, p in sampler.named_parameters()}
    # GramSample: network.{0,2,4} Linear(3|128, 128), output_layer Linear(128, 1); 33,665 parameters
    # (FFHQ_default's representation.sample_network, counted by tools/official/gram_parameter_counts.py).
    assert names == {
        "scalar_field.network.0.weight": (128, 3), "scalar_field.network.0.bias": (128,),
        "scalar_field.network.2.weight": (128, 128), "scalar_field.network.2.bias": (128,),
        "scalar_field.network.4.weight": (128, 128), "scalar_field.network.4.bias": (128,),
        "scalar_field.output_layer.weight": (1, 128), "scalar_field.output_layer.bias": (1,),
    }
    assert sum(p.numel() for p in sampler.parameters()) == 33_665
    assert "scalar_field.center" not in sampler.state_dict()  # a constant, as GramSample's


def test_field_init_is_positively_homogeneous_about_its_centre():
    # geometry_init zeroes the hidden biases, so s(c + a v) + r = a (s(c + v) + r) for a > 0 (in warped
    # units): the initial level sets are scaled copies of one star-shaped surface around the centre.
    torch.manual_seed(0)
    field = ManifoldScalarField(hidden_dim=64, center=(0.0, 0.0, -1.5), init_radius=0.3, box_warp=0.24)
    torch.testing.assert_close(field.output_layer.weight, torch.full((1, 64), 10 * math.sqrt(math.pi / 64)))
    assert field.output_layer.bias.item() == pytest.approx(-0.3)
    assert all(layer.bias.abs().max() == 0 for layer in field.network if isinstance(layer, nn.Linear))
    centre_world = torch.tensor([0.0, 0.0, -1.5]) * 0.12  # x_warped = x * 2 / 0.24 - c
    v = torch.randn(32, 3) * 0.1
    s1 = field(centre_world + v) + 0.3
    s3 = field(centre_world + 3 * v) + 0.3
    torch.testing.assert_close(s3, 3 * s1)
    assert (s1 >= 0).all()


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="num_samples"):
        ManifoldPointSampler(num_samples=1)
    with pytest.raises(ValueError, match="ray_start < ray_end"):
        ManifoldPointSampler(ray_start=1.2, ray_end=1.0)
    with pytest.raises(ValueError, match="num_manifolds"):
        ManifoldPointSampler(num_manifolds=1, background=True)
    with pytest.raises(ValueError, match="center"):
        ManifoldScalarField(center=(0.0, 0.0))
