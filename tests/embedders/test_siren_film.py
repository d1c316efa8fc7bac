"""pi-GAN FiLM-SIREN decoder: init statistics, the FiLM formula, output kinds and shapes, gradients."""

import math

import pytest
import torch

from gan3d.embedders.feature_decoders.siren_film import SirenFiLMDecoder
from gan3d.embedders.stochasticity_mappers.pigan import PiGANMappingNetwork


def test_init_statistics_follow_pigan():
    torch.manual_seed(0)
    dec = SirenFiLMDecoder(in_channels=3, hidden_dim=256, num_layers=3)
    first = dec.film_layers[0].layer.weight
    assert first.abs().max() <= 1 / 3  # first_layer_film_sine_init: U(-1/n, 1/n), n = 3
    assert abs(first.var().item() / ((1 / 3) ** 2 / 3) - 1) < 0.15
    bound = math.sqrt(6 / 256) / 25  # frequency_init(25)
    for linear in [dec.film_layers[1].layer, dec.film_layers[2].layer, dec.density_head, dec.color_head]:
        assert linear.weight.abs().max() <= bound
        assert abs(linear.weight.var().item() / (bound ** 2 / 3) - 1) < 0.1
    color_bound = math.sqrt(6 / (256 + 3)) / 25
    assert dec.color_film.layer.weight.abs().max() <= color_bound


def test_one_layer_matches_the_film_formula():
    torch.manual_seed(0)
    dec = SirenFiLMDecoder(in_channels=2, hidden_dim=4, num_layers=1)
    feats = torch.randn(1, 2, 3, 2)
    dirs = torch.randn(1, 2, 3, 3)
    ws = torch.randn(1, 2, 8)
    field = dec(feats, dirs, ws)
    freq = ws[0, :, :4] * 15 + 30
    phase = ws[0, :, 4:]
    lin = dec.film_layers[0].layer
    x = torch.sin(freq[0] * lin(feats[0]) + phase[0])
    sigma = dec.density_head(x)
    c = torch.sin(freq[1] * dec.color_film.layer(torch.cat([dirs[0], x], -1)) + phase[1])
    rgb = torch.sigmoid(dec.color_head(c))
    torch.testing.assert_close(field.density[0], sigma)
    torch.testing.assert_close(field.features[0], rgb)


def test_field_kind_shape_range_and_gradients_through_the_mapper():
    torch.manual_seed(0)
    mapper = PiGANMappingNetwork(z_dim=8, hidden_dim=16, num_ws=4, film_dim=16, w_avg_samples=0)
    dec = SirenFiLMDecoder(in_channels=3, hidden_dim=16, num_layers=3)
    assert dec.num_ws == mapper.num_ws and dec.out_channels == 3
    ws = mapper(torch.randn(2, 8))
    field = dec(torch.randn(2, 5, 4, 3) * 0.3, torch.nn.functional.normalize(torch.randn(2, 5, 4, 3), dim=-1), ws)
    assert field.kind == "density"
    assert field.features.shape == (2, 5, 4, 3) and field.density.shape == (2, 5, 4, 1)
    assert field.features.min() >= 0 and field.features.max() <= 1  # sigmoid RGB: image_range 'unit'
    (field.features.sum() + field.density.sum()).backward()
    for module in (mapper, dec):
        for name, p in module.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_bad_options_and_inputs():
    with pytest.raises(ValueError, match="num_layers must be positive"):
        SirenFiLMDecoder(num_layers=0)
    dec = SirenFiLMDecoder(in_channels=3, hidden_dim=8, num_layers=2)
    with pytest.raises(ValueError, match=r"needs ws \[B, 3, 16\]"):
        dec(torch.zeros(1, 2, 2, 3), torch.zeros(1, 2, 2, 3), torch.zeros(1, 2, 16))
    with pytest.raises(ValueError, match="expected in_channels=3"):
        dec(torch.zeros(1, 2, 2, 4), torch.zeros(1, 2, 2, 3), torch.zeros(1, 3, 16))


@pytest.mark.parametrize("num_layers", [1, 2, 3])
def test_inference_buffers_give_the_values_of_the_autograd_path(num_layers):
    # Without autograd the layers write into two alternating buffers; the field must not change,
    # and the last FiLM output the density head read must not be overwritten by the colour layer.
    torch.manual_seed(0)
    dec = SirenFiLMDecoder(in_channels=3, hidden_dim=8, num_layers=num_layers).double()
    feats = torch.randn(2, 5, 4, 3, dtype=torch.float64)
    dirs = torch.nn.functional.normalize(torch.randn(2, 5, 4, 3, dtype=torch.float64), dim=-1)
    ws = torch.randn(2, num_layers + 1, 16, dtype=torch.float64)
    reference = dec(feats, dirs, ws)
    assert reference.features.requires_grad
    with torch.no_grad():
        field = dec(feats, dirs, ws)
        again = dec(feats, dirs, ws)
    torch.testing.assert_close(field.features, reference.features.detach(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(field.density, reference.density.detach(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(again.features, field.features, rtol=0, atol=0)


def test_traced_by_torch_compile_without_grad_gives_the_eager_values():
    # torch.compile traces the allocating path (no out= buffers); backend="eager" needs no C++ compiler.
    torch.manual_seed(0)
    dec = SirenFiLMDecoder(in_channels=3, hidden_dim=8, num_layers=2)
    feats, dirs, ws = torch.randn(1, 4, 3, 3), torch.randn(1, 4, 3, 3), torch.randn(1, 3, 16)
    compiled = torch.compile(dec, backend="eager")
    with torch.no_grad():
        eager, traced = dec(feats, dirs, ws), compiled(feats, dirs, ws)
    torch.testing.assert_close(traced.features, eager.features)
    torch.testing.assert_close(traced.density, eager.density)
