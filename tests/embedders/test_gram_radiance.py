"""GRAM's radiance decoder: the summed per-layer heads against a plain transcription of GramRF's
forward, init, parameter names and count, partial gradients, errors."""

from __future__ import annotations

import math

import pytest
import torch

from gan3d.embedders.feature_decoders.gram_radiance import GRAMRadianceDecoder


def reference(decoder: GRAMRadianceDecoder, points, directions, ws):
    """GramRF.forward_with_frequencies_phase_shifts, written out: concatenations and explicit FiLM."""
    h, n = decoder.hidden_dim, decoder.num_layers
    freq = ws[..., :h] * 15 + 30
    phase = ws[..., h:]
    b = points.shape[0]
    x = points.reshape(b, -1, points.shape[-1])
    d = directions.reshape(b, -1, 3)
    sigma, rgb = 0, 0
    for i, film in enumerate(decoder.film_layers):
        x = torch.sin(freq[:, i, None] * film.layer(x) + phase[:, i, None])
        if i > 0:
            sigma = sigma + decoder.density_heads[i - 1](x)
            if i == n - 1:
                feature = torch.sin(freq[:, n, None] * decoder.color_film.layer(torch.cat([d, x], -1))
                                    + phase[:, n, None])
            else:
                feature = x
            rgb = rgb + decoder.color_heads[i - 1](feature)
    rgb = torch.sigmoid(rgb) * (1 + 2e-3) - 1e-3
    return rgb.reshape(*points.shape[:-1], 3), sigma.reshape(*points.shape[:-1], 1)


def inputs(b=2, r=5, s=3, hidden=16, num_ws=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    points = torch.randn(b, r, s, 3, generator=g) * 0.3
    directions = torch.nn.functional.normalize(torch.randn(b, r, s, 3, generator=g), dim=-1)
    ws = torch.randn(b, num_ws, 2 * hidden, generator=g) * 0.3
    return points, directions, ws


def test_matches_gram_rf_forward():
    torch.manual_seed(0)
    decoder = GRAMRadianceDecoder(hidden_dim=16, num_layers=4)
    points, directions, ws = inputs()
    field = decoder(points, directions, ws)
    rgb, sigma = reference(decoder, points, directions, ws)
    assert field.features.shape == (2, 5, 3, 3) and field.density.shape == (2, 5, 3, 1)
    torch.testing.assert_close(field.features, rgb)
    torch.testing.assert_close(field.density, sigma)
    # The widened sigmoid reaches slightly past [0, 1] (eps 1e-3).
    assert decoder.num_ws == 5 and decoder.w_dim == 32


def test_plain_sigmoid_option():
    torch.manual_seed(0)
    decoder = GRAMRadianceDecoder(hidden_dim=8, num_layers=2, rgb_activation="sigmoid")
    points, directions, ws = inputs(hidden=8, num_ws=3)
    widened = GRAMRadianceDecoder(hidden_dim=8, num_layers=2)
    widened.load_state_dict(decoder.state_dict())
    a, b = decoder(points, directions, ws).features, widened(points, directions, ws).features
    torch.testing.assert_close(b, a * 1.002 - 0.001)


def test_every_layer_from_the_second_feeds_both_heads():
    torch.manual_seed(0)
    decoder = GRAMRadianceDecoder(hidden_dim=8, num_layers=3)
    points, directions, ws = inputs(hidden=8, num_ws=4)
    field = decoder(points, directions, ws)
    (field.features.sum() + field.density.sum()).backward()
    for name, p in decoder.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    # The colour depends on the direction (through the last layer's colour FiLM), the density does not.
    directions2 = torch.nn.functional.normalize(directions + 0.5, dim=-1)
    with torch.no_grad():
        other = decoder(points, directions2, ws)
    torch.testing.assert_close(other.density, field.density.detach())
    assert not torch.allclose(other.features, field.features.detach())


def test_gram_layout_names_shapes_init_and_count():
    torch.manual_seed(0)
    decoder = GRAMRadianceDecoder()
    shapes = {n: tuple(p.shape) for n, p in decoder.named_parameters()}
    assert shapes["film_layers.0.layer.weight"] == (256, 3)
    assert shapes["film_layers.7.layer.weight"] == (256, 256)
    assert shapes["color_film.layer.weight"] == (256, 259)
    assert shapes["density_heads.6.weight"] == (1, 256) and "density_heads.7.weight" not in shapes
    assert shapes["color_heads.6.weight"] == (3, 256)
    # GramRF without its mapping network: 1,916,956 - 1,381,632 (tools/official/gram_parameter_counts.py).
    assert sum(p.numel() for p in decoder.parameters()) == 535_324
    # first_layer_film_sine_init U(-1/3, 1/3); frequency_init(25) U(-sqrt(6/n)/25, +).
    assert decoder.film_layers[0].layer.weight.abs().max() <= 1 / 3
    assert decoder.film_layers[0].layer.weight.abs().max() > 0.3
    bound = math.sqrt(6 / 256) / 25
    for weight in (decoder.film_layers[3].layer.weight, decoder.density_heads[2].weight, decoder.color_heads[0].weight):
        assert weight.abs().max() <= bound and weight.abs().max() > 0.5 * bound
    assert decoder.color_film.layer.weight.abs().max() <= math.sqrt(6 / 259) / 25


def test_partial_gradient_through_a_fraction_of_the_rays():
    torch.manual_seed(0)
    decoder = GRAMRadianceDecoder(hidden_dim=8, num_layers=2, grad_ray_fraction=0.25)
    points, directions, ws = inputs(b=1, r=8, s=2, hidden=8, num_ws=3)
    points.requires_grad_(True)
    field = decoder(points, directions, ws)
    with torch.no_grad():
        full = decoder.eval()(points, directions, ws)
    torch.testing.assert_close(field.features, full.features)  # same values ...
    torch.testing.assert_close(field.density, full.density)
    field.density.sum().backward()
    rays_with_gradient = points.grad.abs().sum(dim=(0, 2, 3)).gt(0)
    assert int(rays_with_gradient.sum()) == 2  # ... gradient through 8 * 0.25 rays only
    # Evaluation (or no autograd) decodes every ray the same way.
    assert not decoder.training


def test_bad_inputs_are_refused():
    decoder = GRAMRadianceDecoder(hidden_dim=8, num_layers=2)
    points, directions, ws = inputs(hidden=8, num_ws=3)
    with pytest.raises(ValueError, match="ws"):
        decoder(points, directions, ws[:, :2])
    with pytest.raises(ValueError, match="channels"):
        decoder(points[..., :2], directions, ws)
    with pytest.raises(ValueError, match="directions"):
        decoder(points, directions[..., :2], ws)
    with pytest.raises(ValueError, match="num_layers"):
        GRAMRadianceDecoder(num_layers=1)
    with pytest.raises(ValueError, match="rgb_activation"):
        GRAMRadianceDecoder(rgb_activation="tanh")
    with pytest.raises(ValueError, match="grad_ray_fraction"):
        GRAMRadianceDecoder(grad_ray_fraction=0.0)
