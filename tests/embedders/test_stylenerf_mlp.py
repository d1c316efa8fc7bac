"""StyleNeRF's NeRF MLPs: modulated-layer math by hand, ws indexing, shapes, gradients, the plain
background variant, and the official parameter layout and counts."""

import math

import pytest
import torch

from gan3d.embedders.feature_decoders.stylenerf_mlp import ModulatedLinear, StyleNeRFDecoder


def test_demodulated_layer_matches_hand_computation():
    torch.manual_seed(0)
    layer = ModulatedLinear(3, 2, 4, demodulate=True, activation="lrelu")
    x = torch.randn(2, 3, 5, 1)
    w = torch.randn(2, 4)
    styles = w @ (layer.affine.weight / 2).t() + layer.affine.bias  # equalized affine, bias init 1
    weight = layer.weight[:, :, 0, 0]
    expected = []
    for n in range(2):
        mod = weight * styles[n]  # [O, I]
        mod = mod / (mod.square().sum(1, keepdim=True) + 1e-8).sqrt()
        y = mod @ x[n, :, :, 0] + layer.bias.unsqueeze(1)
        expected.append(torch.nn.functional.leaky_relu(y, 0.2) * math.sqrt(2))
    torch.testing.assert_close(layer(x, w)[..., 0], torch.stack(expected), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(layer.affine.bias, torch.ones(3))


def test_to_rgb_layer_is_modulated_without_demodulation():
    torch.manual_seed(0)
    layer = ModulatedLinear(4, 3, 2, demodulate=False, activation="linear")
    x = torch.randn(1, 4, 6, 1)
    w = torch.randn(1, 2)
    styles = (w @ (layer.affine.weight / 2 ** 0.5).t() + layer.affine.bias) / 2  # ToRGB: styles / sqrt(in)
    y = (layer.weight[:, :, 0, 0] * styles[0]) @ x[0, :, :, 0] + layer.bias.unsqueeze(1)
    torch.testing.assert_close(layer(x, w)[0, :, :, 0], y, atol=1e-5, rtol=1e-5)


def test_shapes_num_ws_and_ws_indexing():
    torch.manual_seed(0)
    dec = StyleNeRFDecoder(in_channels=6, hidden_dim=8, depth=3, output_dim=5, w_dim=4)
    assert dec.num_ws == 5 and dec.out_channels == 8
    feats = torch.randn(2, 3, 4, 6)
    ws = torch.randn(2, 5, 4, requires_grad=True)
    field = dec(feats, None, ws)
    assert field.kind == "density"
    assert field.features.shape == (2, 3, 4, 8) and field.density.shape == (2, 3, 4, 1)
    field.density.sum().backward()  # density reads ws[:, :depth + 1], never the feature latent
    assert ws.grad[:, :4].abs().sum() > 0 and ws.grad[:, 4].abs().sum() == 0
    no_rgb = StyleNeRFDecoder(in_channels=6, hidden_dim=8, depth=1, output_dim=5, w_dim=4, predict_rgb=False)
    assert no_rgb.out_channels == 5 and no_rgb(feats, None, torch.randn(2, 3, 4)).features.shape[-1] == 5


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    dec = StyleNeRFDecoder(in_channels=6, hidden_dim=8, depth=2, output_dim=4, w_dim=4)
    field = dec(torch.randn(2, 3, 4, 6), None, torch.randn(2, dec.num_ws, 4))
    (field.features.square().sum() + field.density.square().sum()).backward()
    for name, p in dec.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_bad_options_and_inputs():
    with pytest.raises(ValueError, match="depth must be positive"):
        StyleNeRFDecoder(depth=0)
    dec = StyleNeRFDecoder(in_channels=6, hidden_dim=8, depth=2, output_dim=4, w_dim=4)
    with pytest.raises(ValueError, match=r"needs ws \[B, >=4, 4\]"):
        dec(torch.zeros(1, 2, 2, 6), None, torch.zeros(1, 3, 4))
    with pytest.raises(ValueError, match="expected in_channels=6"):
        dec(torch.zeros(1, 2, 2, 5), None, torch.zeros(1, 4, 4))


def test_official_parameter_layout_and_counts():
    """facebookresearch/StyleNeRF NeRFBlock at stylenerf_ffhq.yaml: fg 60 -> 128 x 8 -> (1, 256) + RGB,
    779,072 parameters over 10 ws rows; bg 112 -> 64 x 4 -> (1, 256) + RGB, 37,188, no rows (counted by
    building the official blocks: tools/reference/stylenerf_official.py)."""
    fg = StyleNeRFDecoder(in_channels=60, hidden_dim=128, depth=8, output_dim=256, w_dim=512)
    shapes = {name: tuple(p.shape) for name, p in fg.named_parameters()}
    assert shapes["fc_in.weight"] == (128, 60, 1, 1) and shapes["fc_in.affine.weight"] == (60, 512)
    assert shapes["blocks.6.weight"] == (128, 128, 1, 1) and "blocks.7.weight" not in shapes
    assert shapes["sigma_out.weight"] == (1, 128, 1, 1) and shapes["feat_out.weight"] == (256, 128, 1, 1)
    assert shapes["to_rgb.weight"] == (3, 256, 1, 1) and shapes["to_rgb.bias"] == (3,)
    assert sum(p.numel() for p in fg.parameters()) == 779_072 and fg.num_ws == 10
    bg = StyleNeRFDecoder(in_channels=80 + 32, hidden_dim=64, depth=4, output_dim=256, modulated=False)
    shapes = {name: tuple(p.shape) for name, p in bg.named_parameters()}
    assert shapes["fc_in.weight"] == (64, 112) and shapes["blocks.2.weight"] == (64, 64)
    assert shapes["sigma_out.weight"] == (1, 64) and shapes["feat_out.weight"] == (256, 64)
    assert sum(p.numel() for p in bg.parameters()) == 37_188 and bg.num_ws == 0


def test_plain_background_mlp_is_relu_linear_with_torch_default_init():
    torch.manual_seed(0)
    dec = StyleNeRFDecoder(in_channels=5, hidden_dim=7, depth=2, output_dim=4, modulated=False)
    assert dec.out_channels == 7 and isinstance(dec.fc_in, torch.nn.Linear)
    # nn.Linear's initialisation (kaiming-uniform a=sqrt(5)): |w|, |b| <= 1 / sqrt(fan_in).
    assert dec.fc_in.weight.abs().max() <= 1 / math.sqrt(5) and dec.fc_in.bias.abs().max() <= 1 / math.sqrt(5)
    feats = torch.randn(2, 3, 4, 5)
    field = dec(feats, None, None)
    hidden = torch.relu(dec.blocks[0](torch.relu(dec.fc_in(feats))))
    torch.testing.assert_close(field.density, dec.sigma_out(hidden))
    feat = dec.feat_out(hidden)
    rgb = feat @ (dec.to_rgb.weight[:, :, 0, 0] / 2).t() + dec.to_rgb.bias  # equalized: weight / sqrt(4)
    torch.testing.assert_close(field.features, torch.cat([rgb, feat], -1), atol=1e-6, rtol=1e-5)
    (field.features.sum() + field.density.sum()).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in dec.parameters())


def test_modulated_decoder_refuses_missing_ws():
    dec = StyleNeRFDecoder(in_channels=6, hidden_dim=8, depth=2, output_dim=4, w_dim=4)
    with pytest.raises(ValueError, match="needs ws"):
        dec(torch.zeros(1, 2, 2, 6), None, None)
