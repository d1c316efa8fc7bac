"""The SDF renderer: StyleSDF's SDF-to-density map at hand-computed values, its learned sharpness,
compositing of a surface, and errors."""

from __future__ import annotations

import math

import pytest
import torch

from gan3d.core.types import Field, RaySamples
from gan3d.renderers.sdf import SdfVolumeRenderer, sdf_to_density


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def rays(depths: torch.Tensor | list[float], num_rays: int = 1) -> RaySamples:
    d = torch.as_tensor(depths, dtype=torch.float32).view(1, 1, -1, 1).repeat(1, num_rays, 1, 1)
    return RaySamples.along_rays(torch.zeros(1, num_rays, 3), torch.tensor([0.0, 0.0, 1.0]).expand(1, num_rays, 3), d)


def test_sdf_to_density_at_hand_computed_values():
    sdf = torch.tensor([0.0, -0.1, 0.2])
    expected = torch.tensor([0.5 / 0.1, sigmoid(1.0) / 0.1, sigmoid(-2.0) / 0.1])  # sigmoid(-d / b) / b
    torch.testing.assert_close(sdf_to_density(sdf, torch.tensor(0.1)), expected)
    renderer = SdfVolumeRenderer()
    assert renderer.sigmoid_beta.item() == pytest.approx(0.1)  # StyleSDF's initial value
    torch.testing.assert_close(renderer.density(sdf), expected)


def test_gradient_with_respect_to_the_learned_beta():
    renderer = SdfVolumeRenderer(beta_init=0.1)
    d, b = -0.1, 0.1
    renderer.density(torch.tensor([d])).sum().backward()
    s = sigmoid(-d / b)
    # d/db [sigmoid(-d/b) / b] = (-s + s (1 - s) d / b) / b^2
    expected = (-s + s * (1 - s) * d / b) / b**2
    assert renderer.sigmoid_beta.grad.item() == pytest.approx(expected, rel=1e-4)


def test_compositing_matches_hand_computation():
    renderer = SdfVolumeRenderer(beta_init=0.5).eval()
    sdf = torch.tensor([0.5, -0.5]).view(1, 1, 2, 1)
    features = torch.tensor([[1.0, 0.0], [0.0, 1.0]]).view(1, 1, 2, 2)
    render = renderer(Field(features=features, sdf=sdf), rays([1.0, 1.2]))
    sigma0 = sigmoid(-1.0) / 0.5
    a0 = 1 - math.exp(-sigma0 * 0.2)  # the last interval is 1e10 long: alpha 1
    torch.testing.assert_close(render.weights.flatten(), torch.tensor([a0, 1 - a0]), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(render.features.flatten(), torch.tensor([a0, 1 - a0]), rtol=1e-5, atol=1e-6)
    assert render.depth.item() == pytest.approx(1.0 * a0 + 1.2 * (1 - a0), rel=1e-5)


def test_sharp_surface_gives_its_depth_and_gradients_reach_beta_and_field():
    depths = torch.linspace(1.0, 3.0, 201)
    # outside (sdf > 0) until the plane at depth 2
    sdf = (2.0 - depths).view(1, 1, -1, 1).repeat(1, 2, 1, 1).requires_grad_(True)
    features = torch.rand(1, 2, 201, 3, requires_grad=True)
    renderer = SdfVolumeRenderer(beta_init=0.005, depth_mode="normalized")
    render = renderer(Field(features=features, sdf=sdf), rays(depths, num_rays=2))
    assert render.alpha.min().item() == pytest.approx(1.0, abs=1e-5)
    assert render.depth.flatten().tolist() == pytest.approx([2.0, 2.0], abs=0.02)
    (render.features.sum() + render.depth.sum()).backward()
    for tensor in (renderer.sigmoid_beta, sdf, features):
        assert tensor.grad is not None and tensor.grad.abs().sum() > 0


def test_learn_beta_false_freezes_it_and_the_state_dict_keeps_the_official_name():
    renderer = SdfVolumeRenderer(beta_init=0.2, learn_beta=False)
    assert not renderer.sigmoid_beta.requires_grad
    assert list(renderer.state_dict()) == ["sigmoid_beta"]


def test_midpoint_quadrature_averages_the_sdf():
    renderer = SdfVolumeRenderer(beta_init=0.1, quadrature="midpoint").eval()
    sdf = torch.tensor([0.1, -0.1]).view(1, 1, 2, 1)
    alpha = renderer.opacity(Field(features=torch.zeros(1, 1, 2, 3), sdf=sdf), rays([1.0, 1.5]))
    expected = 1 - math.exp(-(0.5 / 0.1) * 0.5)  # mean sdf 0 -> sigma = 5
    assert alpha.shape == (1, 1, 1, 1) and alpha.item() == pytest.approx(expected, rel=1e-5)


def test_a_density_field_names_the_density_renderer():
    field = Field(features=torch.rand(1, 1, 2, 3), density=torch.rand(1, 1, 2, 1))
    with pytest.raises(ValueError, match="reads sdf fields.*use volume_renderer 'volume'"):
        SdfVolumeRenderer()(field, rays([1.0, 2.0]))


def test_mismatched_shapes_and_bad_options_are_refused():
    with pytest.raises(ValueError, match="field.sdf has shape"):
        SdfVolumeRenderer()(Field(features=torch.rand(1, 1, 3, 3), sdf=torch.rand(1, 1, 3, 1)), rays([1.0, 2.0]))
    with pytest.raises(ValueError, match="beta_init must be positive"):
        SdfVolumeRenderer(beta_init=0.0)
    with pytest.raises(ValueError, match="quadrature must be one of"):
        SdfVolumeRenderer(quadrature="simpson")
