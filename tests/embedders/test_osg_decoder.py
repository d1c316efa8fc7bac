"""EG3D OSG decoder: hand-computed outputs, the widened sigmoid, shapes, gradients."""

import pytest
import torch

from gan3d.embedders.feature_decoders.osg import OSGDecoder


def test_outputs_match_the_eg3d_formula():
    torch.manual_seed(0)
    dec = OSGDecoder(in_channels=5, hidden_dim=7, output_dim=4)
    feats = torch.randn(2, 3, 4, 5)
    field = dec(feats, torch.zeros(2, 3, 4, 3), torch.zeros(2, 1, 1))
    # Equalized linear layers: W / sqrt(fan_in), softplus in between (triplane.py OSGDecoder).
    h = torch.nn.functional.softplus(feats @ (dec.hidden.weight / 5 ** 0.5).t() + dec.hidden.bias)
    x = h @ (dec.output.weight / 7 ** 0.5).t() + dec.output.bias
    assert field.kind == "density"
    torch.testing.assert_close(field.density, x[..., :1])
    torch.testing.assert_close(field.features, torch.sigmoid(x[..., 1:]) * 1.002 - 0.001)
    assert field.features.shape == (2, 3, 4, 4) and dec.out_channels == 4
    with torch.no_grad():  # inference scales the sigmoid in place: the same values
        inferred = dec(feats, torch.zeros(2, 3, 4, 3), torch.zeros(2, 1, 1))
    torch.testing.assert_close(inferred.features, field.features.detach(), rtol=0, atol=0)
    torch.testing.assert_close(inferred.density, field.density.detach(), rtol=0, atol=0)


def test_widened_sigmoid_limits():
    dec = OSGDecoder(in_channels=2, hidden_dim=2, output_dim=3)
    with torch.no_grad():
        dec.output.weight.zero_()
        dec.output.bias.copy_(torch.tensor([0.5, 100.0, -100.0, 0.0]))
    field = dec(torch.randn(1, 1, 1, 2))
    torch.testing.assert_close(field.density.reshape(()), torch.tensor(0.5))
    torch.testing.assert_close(field.features.reshape(3), torch.tensor([1.001, -0.001, 0.5]))


def test_lr_multiplier_keeps_outputs_and_scales_parameters():
    torch.manual_seed(0)
    a = OSGDecoder(in_channels=3, hidden_dim=4, output_dim=3)
    torch.manual_seed(0)
    b = OSGDecoder(in_channels=3, hidden_dim=4, output_dim=3, lr_multiplier=0.1)
    feats = torch.randn(1, 2, 2, 3)
    torch.testing.assert_close(a(feats).features, b(feats).features)
    torch.testing.assert_close(b.hidden.weight, a.hidden.weight * 10)


def test_gradients_reach_every_parameter():
    dec = OSGDecoder(in_channels=6, hidden_dim=8, output_dim=5)
    field = dec(torch.randn(2, 3, 4, 6))
    (field.features.sum() + field.density.sum()).backward()
    for name, p in dec.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_bad_options_and_inputs():
    with pytest.raises(ValueError, match="output_dim must be >= 3"):
        OSGDecoder(output_dim=2)
    with pytest.raises(ValueError, match="lr_multiplier must be positive"):
        OSGDecoder(lr_multiplier=0.0)
    with pytest.raises(ValueError, match="expected in_channels=32"):
        OSGDecoder()(torch.zeros(1, 1, 1, 16))
