"""StyleSDF's 2D decoder: shapes, latent count and use, the unread RGB channels, errors."""

from __future__ import annotations

import pytest
import torch

from gan3d.renderers.stylesdf_upsampler import StyleSDFUpsampler, stylesdf_channels


def _up() -> StyleSDFUpsampler:
    torch.manual_seed(0)
    return StyleSDFUpsampler(in_channels=8, in_resolution=8, out_resolution=32, style_dim=4, noise_mode="none")


def test_shapes_latents_and_channels():
    up = _up()
    assert up.num_ws == 2 * 2 + 2 and up.out_resolution(8) == 32 and up.scale_factor == 4
    img = up(torch.randn(2, 11, 8, 8), torch.randn(2, up.num_ws, 4))
    assert img.shape == (2, 3, 32, 32)
    assert [stylesdf_channels(r, 2) for r in (32, 64, 128, 256, 512, 1024)] == [512, 512, 256, 128, 64, 32]


def test_reads_features_not_rgb_and_every_latent_row_up_to_num_ws():
    up = _up()
    feats, ws = torch.randn(1, 11, 8, 8), torch.randn(1, up.num_ws + 2, 4)
    base = up(feats, ws)
    changed_rgb = feats.clone()
    changed_rgb[:, :3] += 1.0
    torch.testing.assert_close(up(changed_rgb, ws), base)  # rgbd_in=None: the RGB is not read
    extra = ws.clone()
    extra[:, up.num_ws:] += 1.0
    torch.testing.assert_close(up(feats, extra), base)  # rows past num_ws are ignored
    for row in range(up.num_ws):
        moved = ws.clone()
        moved[:, row] += 1.0
        assert not torch.allclose(up(feats, moved), base), row


def test_gradients_reach_every_parameter_and_errors_are_clear():
    up = StyleSDFUpsampler(in_channels=8, in_resolution=8, out_resolution=16, style_dim=4)
    up(torch.randn(2, 11, 8, 8), torch.randn(2, up.num_ws, 4)).square().mean().backward()
    missing = [n for n, p in up.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []
    with pytest.raises(ValueError, match="output_features"):
        up(torch.randn(1, 3, 8, 8), torch.randn(1, up.num_ws, 4))
    with pytest.raises(ValueError, match="num_ws"):
        up(torch.randn(1, 11, 8, 8), torch.randn(1, 1, 4))
