"""StyleSDF's SIREN SDF decoder: shapes, init ranges, and the SDF gradients the generator adds."""

from __future__ import annotations

import math

import pytest
import torch

from gan3d.core.generator import Generator
from gan3d.embedders.feature_decoders.stylesdf_siren import StyleSDFSirenDecoder
from gan3d.embedders.point_embedders.coordinate import CoordinateEmbedder


def test_shapes_rgb_range_and_feature_switch():
    torch.manual_seed(0)
    dec = StyleSDFSirenDecoder(width=16, depth=2, style_dim=8)
    f = dec(torch.rand(2, 5, 4, 3), torch.rand(2, 5, 4, 3), torch.randn(2, 3, 8))
    assert f.features.shape == (2, 5, 4, 19) and f.sdf.shape == (2, 5, 4, 1) and f.kind == "sdf"
    assert f.features[..., :3].min() >= 0 and f.features[..., :3].max() <= 1
    assert torch.all(f.features[..., 3:].abs() <= 1)  # sine features
    rgb_only = StyleSDFSirenDecoder(width=16, depth=2, style_dim=8, output_features=False)
    assert rgb_only.out_channels == 3
    with pytest.raises(ValueError, match="in_channels=3"):
        dec(torch.rand(1, 2, 2, 5), torch.rand(1, 2, 2, 3), torch.randn(1, 1, 8))


def test_initialisation_ranges_follow_stylesdf():
    torch.manual_seed(0)
    dec = StyleSDFSirenDecoder(width=64, depth=3, style_dim=32)
    assert dec.layers[0].linear.weight.abs().max() <= 1 / 3
    assert dec.layers[1].linear.weight.abs().max() <= math.sqrt(6 / 64) / 25
    # gamma(0) = 15 * b + 30 with b ~ U(-sqrt(1/32), sqrt(1/32)); beta(0) = 0.25 * b.
    gamma0 = dec.layers[1].gamma(torch.zeros(1, 32))
    assert torch.all((gamma0 - 30).abs() <= 15 * math.sqrt(1 / 32))
    assert torch.all(dec.layers[1].beta(torch.zeros(1, 32)).abs() <= 0.25 * math.sqrt(1 / 32))
    # style weights: 0.25 * kaiming normal (std sqrt(2 / 1.04) / sqrt(32)).
    std = dec.layers[1].gamma.weight.std().item()
    assert std == pytest.approx(0.25 * math.sqrt(2 / 1.04) / math.sqrt(32), rel=0.15)


def _generator_field_parts(box_warp: float):
    torch.manual_seed(0)
    dec = StyleSDFSirenDecoder(width=16, depth=2, style_dim=8)
    emb = CoordinateEmbedder(box_warp=box_warp)
    gen = Generator.__new__(Generator)  # only .field is exercised: embedder then decoder
    torch.nn.Module.__init__(gen)
    gen.embedder, gen.decoder = emb, dec
    gen.ws_layout = {"point_embedder": slice(0, 0), "feature_decoder": slice(0, 1)}
    return gen


def test_sdf_gradients_are_world_point_gradients_through_the_embedder_scale():
    gen = _generator_field_parts(box_warp=0.5)
    points = torch.rand(1, 3, 2, 3) * 0.2
    dirs = torch.nn.functional.normalize(torch.rand(1, 3, 2, 3), dim=-1)
    ws = torch.randn(1, 1, 8)
    field = gen.field(points, dirs, ws, None, sdf_gradients=True)
    grads = field.extras["sdf_gradients"]
    assert grads.shape == (1, 3, 2, 3) and grads.requires_grad  # create_graph: the eikonal trains
    eps = 1e-3
    for axis in range(3):
        step = torch.zeros(3)
        step[axis] = eps
        with torch.no_grad():
            plus = gen.decoder(gen.embedder(points + step, None), dirs, ws).sdf
            minus = gen.decoder(gen.embedder(points - step, None), dirs, ws).sdf
        fd = (plus - minus) / (2 * eps)
        torch.testing.assert_close(grads[..., axis:axis + 1].detach(), fd, atol=2e-3, rtol=2e-2)
    with torch.no_grad():  # asked for, but no autograd: none
        assert "sdf_gradients" not in gen.field(points, dirs, ws, None, sdf_gradients=True).extras
    assert "sdf_gradients" not in gen.field(points, dirs, ws, None).extras  # not asked for
