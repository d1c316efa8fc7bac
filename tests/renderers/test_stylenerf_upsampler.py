"""StyleNeRF's upsampler: nn_cat by hand, the progressive blend at alpha 0 / 0.5 / 1, the per-pixel path,
the magnitude EMA, official parameter counts, errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gan3d.renderers.stylenerf_upsampler import (
    StyleNeRFUpsampler,
    fade_in_alpha,
    nn_cat_neighbours,
    progressive_levels,
)


def small(image_resolution: int = 32, **kwargs) -> StyleNeRFUpsampler:
    torch.manual_seed(0)
    return StyleNeRFUpsampler(in_channels=3 + 6, in_resolution=8, image_resolution=image_resolution, w_dim=4,
                              channel_base=256, channel_max=16, **kwargs)


def test_nn_cat_neighbours_by_hand():
    a, b, c, d = 1.0, 2.0, 4.0, 8.0
    x = torch.tensor([[a, b], [c, d]]).view(1, 1, 2, 2)
    # Pixel a: left 0, up 0, right b, down c -> TL 0, TR b/2, BL c/2, BR (b + c)/2; and so on.
    expected = torch.tensor([
        [0.0, b / 2, a / 2, 0.0],
        [c / 2, (b + c) / 2, (a + d) / 2, d / 2],
        [a / 2, (a + d) / 2, (b + c) / 2, b / 2],
        [0.0, d / 2, c / 2, 0.0],
    ]).view(1, 1, 4, 4)
    torch.testing.assert_close(nn_cat_neighbours(x), expected)


def test_progressive_levels():
    assert progressive_levels(0.0, 3) == (0, None) and progressive_levels(1.0, 3) == (3, None)
    assert progressive_levels(-1.0, 3) == (0, None) and progressive_levels(0.5, 0) == (0, None)
    end, blend = progressive_levels(0.1, 3)
    assert end == 1 and blend == pytest.approx(0.3)
    end, blend = progressive_levels(0.9, 3)
    assert end == 3 and blend == pytest.approx(0.7)


@torch.no_grad()
def test_blend_at_alpha_0_half_and_1():
    up = small(image_resolution=16).eval()  # one block: 8 -> 16
    assert up.num_ws == 3 and up.block_resolutions == [16]
    features, ws = torch.randn(2, 9, 8, 8), torch.randn(2, 3, 4)
    rgb = features[:, :3]
    # alpha 0: the rendered RGB itself, at the render resolution.
    torch.testing.assert_close(up(features, ws, alpha=0.0), rgb)
    full = up(features, ws, alpha=1.0)
    _, block_image = up.b16(features[:, 3:], rgb, ws)
    torch.testing.assert_close(full, block_image)
    # alpha 0.5: half the bilinearly upsampled RGB, half the block's image.
    half = up(features, ws, alpha=0.5)
    expected = 0.5 * F.interpolate(rgb, size=(16, 16), mode="bilinear", align_corners=False) + 0.5 * full
    torch.testing.assert_close(half, expected)
    assert [up.resolution_at(a) for a in (0.0, 0.5, 1.0)] == [8, 16, 16] and up.out_resolution() == 16


@torch.no_grad()
def test_two_levels_blend_the_last_two_images():
    up = small().eval()  # 8 -> 16 -> 32
    features, ws = torch.randn(2, 9, 8, 8), torch.randn(2, 5, 4)
    x16, img16 = up.b16(features[:, 3:], features[:, :3], ws[:, 0:3])
    _, img32 = up.b32(x16, img16, ws[:, 2:5])  # the toRGB row of b16 is the first row of b32
    out = up(features, ws, alpha=0.75)  # second level, half faded in
    expected = 0.5 * F.interpolate(img16, size=(32, 32), mode="bilinear", align_corners=False) + 0.5 * img32
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(up(features, ws, alpha=0.25).shape[-1], 16)
    assert [up.resolution_at(a) for a in (0.0, 0.25, 0.5, 0.75, 1.0)] == [8, 16, 32, 32, 32]


@torch.no_grad()
def test_pixelwise_treats_each_pixel_alone_and_is_not_blended():
    up = small().eval()
    points, ws = torch.randn(2, 9, 5, 7), torch.randn(2, 5, 4)
    out = up.pixelwise(points, ws)
    assert out.shape == (2, 3, 5, 7)
    order = torch.randperm(35)
    shuffled = points.flatten(2)[..., order].view(2, 9, 5, 7)
    torch.testing.assert_close(up.pixelwise(shuffled, ws), out.flatten(2)[..., order].view(2, 3, 5, 7))
    # Fading in the second level the per-pixel path is the sum over both blocks, no blend (official aliasing).
    torch.testing.assert_close(up.pixelwise(points, ws, alpha=0.75), out)
    x, img = up.b16(points[:, 3:], points[:, :3], ws[:, :3], skip_up=True)
    torch.testing.assert_close(up.pixelwise(points, ws, alpha=0.25), img)
    torch.testing.assert_close(up.pixelwise(points, ws, alpha=0.0), points[:, :3])


def test_fade_in_follows_the_images_shown_and_reaches_the_ema_copy():
    assert [fade_in_alpha(k, 500.0, 5000.0) for k in (0.0, 500.0, 2750.0, 5000.0, 25000.0)] == [0, 0, 0.5, 1, 1]
    with pytest.raises(ValueError, match="end_kimg > start_kimg"):
        fade_in_alpha(1.0, 2.0, 2.0)
    up = small(image_resolution=16, fade_start_kimg=500.0, fade_end_kimg=5000.0)
    assert float(up.alpha) == 1.0 and up.resolution_at() == 16  # built fully grown
    up.set_training_step(10, kimg=0.0)
    assert float(up.alpha) == 0.0 and up.resolution_at() == 8
    features, ws = torch.randn(1, 9, 8, 8), torch.randn(1, 3, 4)
    assert up(features, ws).shape[-1] == 8 and up(features, ws, alpha=1.0).shape[-1] == 16
    up.set_training_step(11, kimg=2750.0)
    assert float(up.alpha) == 0.5 and up.state_dict()["alpha"] == 0.5  # a buffer: EMA copies and checkpoints
    up.set_training_step(12)  # no kimg: unchanged
    assert float(up.alpha) == 0.5
    fixed = small(image_resolution=16)
    fixed.set_training_step(1, kimg=0.0)
    assert float(fixed.alpha) == 1.0 and not fixed.progressive
    with pytest.raises(ValueError, match="must not precede"):
        small(fade_start_kimg=2.0, fade_end_kimg=1.0)


def test_magnitude_ema_moves_in_training_only():
    up = small()
    features, ws = torch.randn(2, 9, 8, 8) * 3, torch.randn(2, 5, 4)
    up.eval()
    up(features, ws)
    assert float(up.b16.conv0.w_avg) == 1.0
    up.train()
    up(features, ws)
    expected = 0.999 + 0.001 * float(features[:, 3:].square().mean())  # lerp(mean(x^2), w_avg, 0.999)
    assert float(up.b16.conv0.w_avg) == pytest.approx(expected, rel=1e-5)
    assert small(magnitude_ema_beta=0.0).b16.conv0.magnitude_ema_beta == 0.0


@pytest.mark.parametrize("mode", ["nn_cat", "pixelshuffle"])
def test_gradients_reach_every_parameter(mode):
    up = small(upsample_mode=mode).train()
    out = up(torch.randn(2, 9, 8, 8), torch.randn(2, 5, 4))
    out.square().sum().backward()
    for name, p in up.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_official_parameter_counts_and_names():
    """facebookresearch/StyleNeRF FFHQ upsampler (channel_base 32768, max 1024, 259 inputs): b64 1,249,667,
    b128 772,675, b256 324,899, b512 147,091, b1024 69,707 (tools/reference/stylenerf_official.py)."""
    up = StyleNeRFUpsampler(in_channels=259, in_resolution=32, image_resolution=1024)
    counts = {res: sum(p.numel() for p in block.parameters()) for res, block in zip(up.block_resolutions, up.blocks)}
    assert counts == {64: 1_249_667, 128: 772_675, 256: 324_899, 512: 147_091, 1024: 69_707}
    assert up.num_ws == 11
    names = {name for name, _ in up.named_parameters()}
    assert {"b64.conv0.adapter.0.weight", "b64.conv0.adapter.1.bias", "b64.conv0.affine.weight",
            "b64.conv1.weight", "b64.torgb.weight"} <= names
    assert tuple(up.b64.conv0.weight.shape) == (512, 256, 1, 1)


@torch.no_grad()
def test_another_render_side_goes_through_the_same_convolutions():
    up = small().eval()  # built for 8-px renders, two blocks: 8 -> 32
    ws = torch.randn(1, up.num_ws, 4)
    features = torch.randn(1, 9, 8, 8)
    assert up(features, ws).shape[-1] == up.out_resolution() == up.out_resolution(8) == 32
    # A 4-px render (the viewer's preview) comes out 4 x 4 = 16 px; its pixels run through the same 1x1
    # layers: the per-pixel path of the 4-px render is that of the same pixels in the 8-px one.
    small_render = features[..., ::2, ::2]
    assert up(small_render, ws).shape[-2:] == (16, 16) and up.out_resolution(4) == 16
    torch.testing.assert_close(up.pixelwise(small_render, ws), up.pixelwise(features, ws)[..., ::2, ::2])
    up.alpha.fill_(0.25)  # halfway through the first level: 8 -> 16, a 4-px render -> 8
    assert up(small_render, ws).shape[-1] == up.out_resolution(4) == 8 and up.out_resolution(8) == 16


def test_bad_inputs_and_options():
    up = small()
    with pytest.raises(ValueError, match=r"ws rows \[B, 5, 4\]"):
        up(torch.randn(1, 9, 8, 8), torch.randn(1, 4, 4))
    with pytest.raises(ValueError, match=r"features \[B, 9, h, w\]"):
        up(torch.randn(1, 8, 8, 8), torch.randn(1, 5, 4))
    with pytest.raises(ValueError, match="power of two"):
        StyleNeRFUpsampler(in_resolution=24)
    with pytest.raises(ValueError, match="upsample_mode must be one of nn_cat, pixelshuffle"):
        StyleNeRFUpsampler(upsample_mode="bilinear")
