"""The density volume renderer: hand-computed compositing in both quadratures, backgrounds, noise,
depth modes, gradients and errors."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from gan3d.core.types import Field, RaySamples
from gan3d.renderers.volume import DensityVolumeRenderer


def rays(depths: list[float] | torch.Tensor, batch: int = 1, num_rays: int = 1) -> RaySamples:
    """Rays along +z from the origin with the same sample ``depths`` each: ``[batch, num_rays, S, 1]``."""
    d = torch.as_tensor(depths, dtype=torch.float32).view(1, 1, -1, 1).repeat(batch, num_rays, 1, 1)
    origins = torch.zeros(batch, num_rays, 3)
    directions = torch.tensor([0.0, 0.0, 1.0]).expand(batch, num_rays, 3)
    return RaySamples.along_rays(origins, directions, d)


def density_field(raw: list[float] | torch.Tensor, features: torch.Tensor | None = None) -> Field:
    raw = torch.as_tensor(raw, dtype=torch.float32).view(1, 1, -1, 1)
    if features is None:
        features = torch.eye(raw.shape[2], 3).view(1, 1, -1, 3)  # sample i is colour e_i
    return Field(features=features, density=raw)


def test_last_delta_quadrature_matches_hand_computation():
    # depths 1, 1.5, 2.5 -> deltas 0.5, 1.0, 1e10; relu(sigma) = 0.4, 2.0, 1.0
    renderer = DensityVolumeRenderer(density_activation="relu").eval()
    render = renderer(density_field([0.4, 2.0, 1.0]), rays([1.0, 1.5, 2.5]))
    t0 = math.exp(-0.4 * 0.5)  # transmittance past sample 0
    t1 = math.exp(-2.0 * 1.0)
    expected = torch.tensor([1 - t0, t0 * (1 - t1), t0 * t1])  # alpha_2 = 1 - exp(-1e10) = 1
    assert render.weights.shape == (1, 1, 3, 1)
    torch.testing.assert_close(render.weights.flatten(), expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(render.features.flatten(), expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(render.alpha.flatten(), torch.tensor([1.0]), rtol=1e-5, atol=1e-6)
    depth = 1.0 * (1 - t0) + 1.5 * t0 * (1 - t1) + 2.5 * t0 * t1
    assert render.depth.shape == (1, 1, 1)
    assert render.depth.item() == pytest.approx(depth, rel=1e-5)


def test_softplus_activation_and_finite_last_delta():
    renderer = DensityVolumeRenderer(density_activation="softplus", last_delta=0.25).eval()
    render = renderer(density_field([0.0, 1.0]), rays([1.0, 2.0]))
    sp0, sp1 = math.log(2.0), math.log(1 + math.e)
    a0, a1 = 1 - math.exp(-sp0 * 1.0), 1 - math.exp(-sp1 * 0.25)
    torch.testing.assert_close(render.weights.flatten(), torch.tensor([a0, (1 - a0) * a1]), rtol=1e-5, atol=1e-6)
    assert render.alpha.item() == pytest.approx(a0 + (1 - a0) * a1, rel=1e-5)


def test_eg3d_midpoint_quadrature_matches_hand_computation():
    # EG3D ray_marcher: raw densities averaged at midpoints, softplus(x - 1), deltas between samples.
    renderer = DensityVolumeRenderer(density_activation="mipnerf", quadrature="midpoint",
                                     depth_mode="normalized_clamped").eval()
    features = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]).view(1, 1, 3, 2)
    render = renderer(density_field([1.0, 3.0, 1.0], features), rays([1.0, 1.5, 2.5]))
    sigma = math.log(1 + math.e)  # softplus(mean(1, 3) - 1) for both intervals
    a0, a1 = 1 - math.exp(-sigma * 0.5), 1 - math.exp(-sigma * 1.0)
    w0, w1 = a0, (1 - a0) * a1
    # S - 1 interval weights, then a zero for the last sample
    torch.testing.assert_close(render.weights.flatten(), torch.tensor([w0, w1, 0.0]), rtol=1e-5, atol=1e-6)
    # interval features are the midpoint means: (0.5, 0) and (0.5, 0.5)
    torch.testing.assert_close(render.features.flatten(), torch.tensor([0.5 * (w0 + w1), 0.5 * w1]),
                               rtol=1e-5, atol=1e-6)
    depth = (w0 * 1.25 + w1 * 2.0) / (w0 + w1)  # normalised by the weight total
    assert render.depth.item() == pytest.approx(depth, rel=1e-5)
    assert render.alpha.item() == pytest.approx(w0 + w1, rel=1e-5)


def test_sampler_deltas_override_the_depth_gaps():
    # GRAM: fixed interval 0.04 from the sampler, softplus activation
    samples = rays([1.0, 1.1, 1.2])
    samples.deltas = torch.full_like(samples.depths, 0.04)
    renderer = DensityVolumeRenderer(density_activation="softplus").eval()
    alpha = renderer.opacity(density_field([2.0, 2.0, 2.0]), samples)
    expected = 1 - math.exp(-0.04 * math.log(1 + math.exp(2.0)))
    torch.testing.assert_close(alpha.flatten(), torch.full((3,), expected), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("options", [
    {"density_activation": "relu"},
    {"density_activation": "softplus", "last_delta": 0.5},
    {"density_activation": "mipnerf", "quadrature": "midpoint"},
])
def test_weights_are_nonnegative_and_sum_to_at_most_one(options):
    torch.manual_seed(0)
    samples = rays(torch.linspace(1.0, 3.0, 16), batch=2, num_rays=8)
    field = Field(features=torch.rand(2, 8, 16, 4), density=torch.randn(2, 8, 16, 1) * 5)
    render = DensityVolumeRenderer(**options).eval()(field, samples)
    assert render.features.shape == (2, 8, 4)
    assert render.depth.shape == (2, 8, 1) and render.alpha.shape == (2, 8, 1)
    assert render.weights.shape == (2, 8, 16, 1)
    assert (render.weights >= 0).all()
    assert (render.alpha <= 1 + 1e-6).all()
    torch.testing.assert_close(render.alpha, render.weights.sum(dim=-2))


@pytest.mark.parametrize("quadrature,activation", [("last_delta", "relu"), ("midpoint", "mipnerf")])
def test_opaque_wall_gives_its_depth_and_full_opacity(quadrature, activation):
    depths = torch.linspace(1.0, 3.0, 41)  # spacing 0.05; the wall starts at sample 20, depth 2.0
    raw = torch.where(depths >= 2.0 - 1e-6, torch.tensor(1e3), torch.tensor(-10.0))
    renderer = DensityVolumeRenderer(density_activation=activation, quadrature=quadrature).eval()
    render = renderer(density_field(raw, torch.ones(1, 1, 41, 3)), rays(depths))
    assert render.alpha.item() == pytest.approx(1.0, abs=1e-5)
    # the midpoint rule puts the wall at the middle of the interval that enters it
    wall = 2.0 if quadrature == "last_delta" else 2.0 - 0.025
    assert render.depth.item() == pytest.approx(wall, abs=1e-4)
    torch.testing.assert_close(render.features, torch.ones(1, 1, 3), rtol=1e-5, atol=1e-5)


def test_white_background_adds_one_minus_alpha():
    field = density_field([0.3, 0.2, -1.0], torch.rand(1, 1, 3, 5))
    samples = rays([1.0, 2.0, 3.0])
    black = DensityVolumeRenderer(last_delta=1.0).eval()(field, samples)
    white = DensityVolumeRenderer(last_delta=1.0, white_back=True).eval()(field, samples)
    assert 0.1 < black.alpha.item() < 0.9
    torch.testing.assert_close(white.features, black.features + (1 - black.alpha))
    torch.testing.assert_close(white.weights, black.weights)
    # an empty ray is white, or black
    empty = density_field([-1.0, -1.0, -1.0], torch.rand(1, 1, 3, 5))
    torch.testing.assert_close(DensityVolumeRenderer(white_back=True).eval()(empty, samples).features,
                               torch.ones(1, 1, 5))
    torch.testing.assert_close(DensityVolumeRenderer().eval()(empty, samples).features, torch.zeros(1, 1, 5))


def test_unit_to_signed_maps_every_channel_after_the_background():
    empty = density_field([-1.0, -1.0], torch.rand(1, 1, 2, 4))
    render = DensityVolumeRenderer(white_back=True, unit_to_signed=True).eval()(empty, rays([1.0, 2.0]))
    torch.testing.assert_close(render.features, torch.ones(1, 1, 4))  # white 1 -> 2 * 1 - 1
    render = DensityVolumeRenderer(unit_to_signed=True).eval()(empty, rays([1.0, 2.0]))
    torch.testing.assert_close(render.features, -torch.ones(1, 1, 4))


def test_last_back_fills_the_last_weight_in_the_mode_it_is_set_for():
    field = density_field([0.5, 0.5, 0.5])
    samples = rays([1.0, 2.0, 3.0])
    renderer = DensityVolumeRenderer(last_delta=1.0, last_back=False, eval_last_back=True)
    train = renderer.train()(field, samples)
    evaluation = renderer.eval()(field, samples)
    coverage = train.alpha.item()
    assert coverage < 0.9
    assert evaluation.alpha.item() == pytest.approx(1.0, abs=1e-6)
    torch.testing.assert_close(evaluation.weights[..., :2, :], train.weights[..., :2, :])
    assert evaluation.weights[0, 0, 2, 0].item() == pytest.approx(train.weights[0, 0, 2, 0].item() + 1 - coverage)
    # the depth counts the background weight at the last sample
    assert evaluation.depth.item() == pytest.approx(train.depth.item() + 3.0 * (1 - coverage), rel=1e-5)


def test_density_noise_only_in_training_mode_and_annealed():
    torch.manual_seed(0)
    field = Field(features=torch.rand(1, 4, 8, 3), density=torch.rand(1, 4, 8, 1))
    samples = rays(torch.linspace(1.0, 2.0, 8), num_rays=4)
    clean = DensityVolumeRenderer(last_delta=0.1)(field, samples)
    noisy = DensityVolumeRenderer(last_delta=0.1, noise_std=1.0, noise_anneal_steps=5000)
    assert not torch.allclose(noisy.train()(field, samples).features, clean.features)
    torch.testing.assert_close(noisy.eval()(field, samples).features, clean.features)
    noisy.set_training_step(2500)
    assert noisy.current_noise_std == pytest.approx(0.5)
    noisy.set_training_step(5000)
    assert noisy.current_noise_std == 0.0
    torch.testing.assert_close(noisy.train()(field, samples).features, clean.features)


def test_noise_per_sample_is_drawn_once_where_the_field_is_evaluated():
    """StyleNeRF draws each sample's density noise once (get_density on each pass's samples): the noisy field
    composites the same way every time; the default draws it at each compositing instead."""
    torch.manual_seed(0)
    field = Field(features=torch.rand(1, 4, 8, 3), density=torch.rand(1, 4, 8, 1) - 0.5)
    samples = rays(torch.linspace(1.0, 2.0, 8), num_rays=4)
    per_sample = DensityVolumeRenderer(last_delta=0.0, noise_std=1.0, noise_per_sample=True).train()
    noisy = per_sample.sample_noise(field)
    moved = noisy.density - field.density
    assert moved.abs().min() > 0 and 0.5 < float(moved.std()) < 1.5  # N(0, 1), on every sample
    first, again = per_sample(noisy, samples), per_sample(noisy, samples)
    torch.testing.assert_close(first.weights, again.weights, rtol=0, atol=0)  # nothing drawn at compositing
    clean = DensityVolumeRenderer(last_delta=0.0)(noisy, samples)
    torch.testing.assert_close(first.weights, clean.weights)  # ... and it is the noisy field, composited
    assert per_sample.eval().sample_noise(field) is field  # no noise outside training
    per_compositing = DensityVolumeRenderer(last_delta=0.0, noise_std=1.0).train()
    assert per_compositing.sample_noise(field) is field
    assert not torch.allclose(per_compositing(field, samples).weights, per_compositing(field, samples).weights)


def test_density_noise_annealed_over_kimg_ignores_the_step_count():
    # EpiGRAF: std 1 falling linearly to 0 over 5000 kimg, whatever the step count.
    renderer = DensityVolumeRenderer(noise_std=1.0, noise_anneal_kimg=5000.0)
    renderer.set_training_step(10**6, 1250.0)
    assert renderer.current_noise_std == pytest.approx(0.75)
    renderer.set_training_step(0, 5000.0)
    assert renderer.current_noise_std == 0.0
    renderer.set_training_step(1, 9000.0)
    assert renderer.current_noise_std == 0.0


def test_density_noise_takes_one_schedule():
    with pytest.raises(ValueError, match="not both"):
        DensityVolumeRenderer(noise_std=1.0, noise_anneal_steps=5000, noise_anneal_kimg=5000.0)
    with pytest.raises(ValueError, match="noise_anneal_kimg must be >= 0"):
        DensityVolumeRenderer(noise_anneal_kimg=-1.0)


def test_noise_is_added_before_the_activation():
    # relu(raw + noise) with raw = -100: noise of std 1 cannot make any density positive
    field = density_field([-100.0, -100.0, -100.0])
    render = DensityVolumeRenderer(noise_std=1.0).train()(field, rays([1.0, 2.0, 3.0]))
    assert render.alpha.item() == 0.0


def test_density_helper_applies_the_activation_without_noise():
    raw = torch.tensor([-1.0, 0.0, 2.0])
    assert torch.equal(DensityVolumeRenderer(density_activation="relu", noise_std=1.0).train().density(raw),
                       F.relu(raw))
    torch.testing.assert_close(DensityVolumeRenderer(density_activation="mipnerf").density(raw), F.softplus(raw - 1))


@pytest.mark.parametrize("depth_mode,empty_depth", [("expected", 0.0), ("normalized", 0.0),
                                                    ("normalized_clamped", 3.0)])
def test_depth_modes_on_partial_and_empty_rays(depth_mode, empty_depth):
    raw = torch.tensor([[0.0, 0.7, 0.0], [-1.0, -1.0, -1.0]]).view(1, 2, 3, 1)  # a partial ray, an empty ray
    raw.requires_grad_(True)
    field = Field(features=torch.ones(1, 2, 3, 3), density=raw)
    render = DensityVolumeRenderer(last_delta=1.0, depth_mode=depth_mode).eval()(field, rays([1.0, 2.0, 3.0],
                                                                                             num_rays=2))
    a = 1 - math.exp(-0.7)
    partial = 2.0 * a if depth_mode == "expected" else 2.0
    assert render.depth[0, 0, 0].item() == pytest.approx(partial, rel=1e-5)
    assert render.depth[0, 1, 0].item() == empty_depth
    render.depth.sum().backward()
    assert torch.isfinite(raw.grad).all()


def test_gradients_reach_density_and_features():
    raw = torch.randn(1, 2, 5, 1, requires_grad=True)
    features = torch.rand(1, 2, 5, 3, requires_grad=True)
    for quadrature, activation in (("last_delta", "softplus"), ("midpoint", "mipnerf")):
        raw.grad = features.grad = None
        render = DensityVolumeRenderer(density_activation=activation, quadrature=quadrature)(
            Field(features=features, density=raw), rays(torch.linspace(1.0, 2.0, 5), num_rays=2))
        (render.features.sum() + render.depth.sum()).backward()
        assert raw.grad is not None and raw.grad.abs().sum() > 0
        assert features.grad is not None and features.grad.abs().sum() > 0


def test_a_field_of_another_kind_names_the_renderer_to_use():
    field = Field(features=torch.rand(1, 1, 3, 3), sdf=torch.rand(1, 1, 3, 1))
    with pytest.raises(ValueError, match="reads density fields.*use volume_renderer 'sdf'"):
        DensityVolumeRenderer()(field, rays([1.0, 2.0, 3.0]))
    field = Field(features=torch.rand(1, 1, 3, 3), occupancy=torch.rand(1, 1, 3, 1))
    with pytest.raises(ValueError, match="volume_renderer 'occupancy'"):
        DensityVolumeRenderer()(field, rays([1.0, 2.0, 3.0]))


def test_mismatched_shapes_are_refused_with_the_shapes():
    samples = rays([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"field.density has shape \(1, 1, 4, 1\).*\(1, 1, 3, 1\)"):
        DensityVolumeRenderer()(density_field([0.0, 0.0, 0.0, 0.0]), samples)
    with pytest.raises(ValueError, match="field.features must be"):
        DensityVolumeRenderer()(Field(features=torch.rand(1, 1, 2, 3), density=torch.rand(1, 1, 3, 1)), samples)
    samples.deltas = torch.ones(1, 1, 2, 1)
    with pytest.raises(ValueError, match="samples.deltas"):
        DensityVolumeRenderer()(density_field([0.0, 0.0, 0.0]), samples)


def test_midpoint_quadrature_refuses_sampler_deltas_and_single_samples():
    samples = rays([1.0, 2.0])
    samples.deltas = torch.ones_like(samples.depths)
    with pytest.raises(ValueError, match="quadrature='last_delta'"):
        DensityVolumeRenderer(quadrature="midpoint")(density_field([0.0, 0.0]), samples)
    with pytest.raises(ValueError, match="at least 2 samples"):
        DensityVolumeRenderer(quadrature="midpoint")(density_field([0.0]), rays([1.0]))


@pytest.mark.parametrize("options,message", [
    ({"density_activation": "exp"}, "density_activation must be one of relu, softplus, mipnerf"),
    ({"quadrature": "trapezoid"}, "quadrature must be one of last_delta, midpoint"),
    ({"depth_mode": "median"}, "depth_mode must be one of"),
    ({"noise_std": -1.0}, "noise_std must be >= 0"),
    ({"last_delta": -1.0}, "last_delta must be >= 0"),
])
def test_bad_options_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        DensityVolumeRenderer(**options)


def test_registered_names_build_through_the_registry():
    from gan3d.core.registry import Registry, RegistryError

    registry = Registry()
    renderer = registry.build("volume_renderer", "volume", density_activation="mipnerf", quadrature="midpoint",
                              white_back=True)
    assert isinstance(renderer, DensityVolumeRenderer) and renderer.quadrature == "midpoint"
    assert {"volume", "sdf", "occupancy"} <= set(registry.names("volume_renderer"))
    assert "identity" in registry.names("upsampler")
    # float options have float defaults, so a JSON integer is accepted for them; a string is not
    assert registry.build("volume_renderer", "volume", last_delta=1).last_delta == 1.0
    with pytest.raises(RegistryError, match="'noise_std' must be int or float"):
        registry.build("volume_renderer", "volume", noise_std="1")


def test_weighted_sum_is_the_elementwise_sum_with_its_gradients_and_ignores_autocast():
    from gan3d.renderers.compositing import weighted_sum

    torch.manual_seed(0)
    w = torch.rand(2, 5, 7, 1, dtype=torch.float64, requires_grad=True)
    v = torch.randn(2, 5, 7, 3, dtype=torch.float64, requires_grad=True)
    out = weighted_sum(w, v)
    expected = (w * v).sum(dim=-2)
    assert out.shape == (2, 5, 3)
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
    gw, gv = torch.autograd.grad(out.square().sum(), (w, v))
    ew, ev = torch.autograd.grad(expected.square().sum(), (w, v))
    torch.testing.assert_close(gw, ew, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gv, ev, rtol=1e-12, atol=1e-12)
    # Under bf16 autocast a plain matmul would round both operands to bfloat16; the product of
    # float32 inputs stays float32, as the elementwise form does.
    w32, v32 = w.detach().float(), v.detach().float()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under = weighted_sum(w32, v32)
    assert under.dtype == torch.float32
    torch.testing.assert_close(under, (w32 * v32).sum(dim=-2), rtol=1e-6, atol=1e-6)
    # A bfloat16 field with float32 weights is promoted, as w * v would be.
    assert weighted_sum(w32, v32.bfloat16()).dtype == torch.float32
