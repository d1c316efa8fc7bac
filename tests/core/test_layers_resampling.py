"""Filtered resampling (upfirdn2d reference math) with the [1, 3, 3, 1] binomial filter."""

import math

import pytest
import torch
import torch.nn.functional as F

from gan3d.core.layers import conv2d_resample, downsample2d, filter2d, setup_filter, upfirdn2d, upsample2d


def test_setup_filter_is_normalised_outer_product():
    f = setup_filter([1, 3, 3, 1])
    assert f.shape == (4, 4)
    assert f[0, 0].item() == 1 / 64 and f[1, 2].item() == 9 / 64
    assert math.isclose(f.sum().item(), 1.0)


def test_constant_image_stays_constant_away_from_borders():
    f = setup_filter([1, 3, 3, 1])
    x = torch.full((1, 2, 12, 12), 3.0)
    up = upsample2d(x, f)
    down = downsample2d(x, f)
    same = filter2d(x, f)
    assert up.shape == (1, 2, 24, 24) and down.shape == (1, 2, 6, 6) and same.shape == x.shape
    torch.testing.assert_close(up[..., 2:-2, 2:-2], torch.full_like(up[..., 2:-2, 2:-2], 3.0))
    torch.testing.assert_close(down[..., 1:-1, 1:-1], torch.full_like(down[..., 1:-1, 1:-1], 3.0))
    torch.testing.assert_close(same[..., 2:-2, 2:-2], torch.full_like(same[..., 2:-2, 2:-2], 3.0))
    assert down[0, 0, 0, 0].item() < 3.0  # zero padding darkens the border: the border check is meaningful


def test_down_of_up_recovers_smooth_image():
    f = setup_filter([1, 3, 3, 1])
    coords = torch.arange(32.0)
    x = (torch.sin(2 * math.pi * coords / 32)[:, None] * torch.cos(2 * math.pi * coords / 32)[None, :])[None, None]
    round_trip = downsample2d(upsample2d(x, f), f)
    assert round_trip.shape == x.shape
    error = (round_trip - x)[..., 3:-3, 3:-3].abs().max().item()
    assert error < 0.05


def test_upsampling_an_impulse_spreads_the_filter_with_gain_four():
    f = setup_filter([1, 3, 3, 1])
    x = torch.zeros(1, 1, 4, 4)
    x[0, 0, 1, 1] = 1.0
    up = upfirdn2d(x, f, up=2, padding=[2, 1, 2, 1], gain=4)
    # the zero-inserted impulse at (2, 2) convolved with 4 * f: total mass 4 = up**2
    assert math.isclose(up.sum().item(), 4.0, rel_tol=1e-6)
    assert math.isclose(up.max().item(), 4 * 9 / 64, rel_tol=1e-6)


def zero_insertion_upfirdn2d(x, f, up, padding, *, flip_filter=False, gain=1.0, bias=None):
    """upfirdn2d.py's reference order written out: zeros inserted after each pixel, zero padding (negative:
    cropping), a valid true convolution with ``gain * f`` (a correlation with ``flip_filter``), bias."""
    b, c, h, w = x.shape
    z = x.new_zeros(b, c, h * up, w * up)
    z[:, :, ::up, ::up] = x
    z = F.pad(z, list(padding))
    k = f * gain if flip_filter else (f * gain).flip([0, 1])
    return F.conv2d(z, k[None, None].repeat(c, 1, 1, 1), bias, groups=c)


@pytest.mark.parametrize("up", [2, 3])
@pytest.mark.parametrize("taps", [(1, 3, 3, 1), (1, 2, 5), (2, 1), (4,)])
@pytest.mark.parametrize("padding", [(2, 1, 2, 1), (1, 1, 0, 3), (0, 0, 0, 0), (3, -1, 1, 2), (6, 0, 0, 6)])
def test_upsampling_matches_zero_insertion_reference(up, taps, padding):
    """upfirdn2d with up > 1 (a transposed convolution where the padding allows, else zero insertion) against
    the reference order, for asymmetric filters and paddings, both filter orientations, gain and bias."""
    torch.manual_seed(1)
    x = torch.randn(2, 3, 5, 7, dtype=torch.float64)
    f = torch.outer(torch.tensor(taps, dtype=torch.float64), torch.tensor(taps[::-1], dtype=torch.float64) + 1)
    bias = torch.randn(3, dtype=torch.float64)
    for flip in (False, True):
        expected = zero_insertion_upfirdn2d(x, f, up, padding, flip_filter=flip, gain=1.5, bias=bias)
        out = upfirdn2d(x, f, up=up, padding=list(padding), flip_filter=flip, gain=1.5, bias=bias)
        assert out.shape == expected.shape
        torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
        cl = upfirdn2d(x.contiguous(memory_format=torch.channels_last), f, up=up, padding=list(padding),
                       flip_filter=flip, gain=1.5, bias=bias)
        torch.testing.assert_close(cl, expected, rtol=1e-12, atol=1e-12)


def test_upsample2d_matches_zero_insertion_in_float32():
    f = setup_filter([1, 3, 3, 1])
    x = torch.randn(1, 8, 16, 16)
    expected = zero_insertion_upfirdn2d(x, f, 2, [2, 1, 2, 1], gain=4)
    torch.testing.assert_close(upsample2d(x, f), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("flip_weight", [True, False])
@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("resample", ["up", "down", "none"])
def test_conv2d_resample_matches_filter_then_convolve(flip_weight, groups, resample):
    """The official generic order (pad once, then zero insertion and low-pass filter, then a valid
    convolution; or filter, then a strided convolution) against conv2d_resample's transposed and strided
    convolutions, with correlation (flip_weight=True) and true convolution (False, StyleGAN2's
    upsampling layers)."""
    torch.manual_seed(5)
    x = torch.randn(2, 4, 6, 6, dtype=torch.float64)
    w = torch.randn(6, 4 // groups, 3, 3, dtype=torch.float64)
    f = setup_filter([1, 3, 3, 1]).double()
    kernel = w if flip_weight else w.flip([2, 3])
    if resample == "up":
        expected = F.conv2d(zero_insertion_upfirdn2d(x, f, 2, [3, 2, 3, 2], gain=4), kernel, groups=groups)
        out = conv2d_resample(x, w, f, up=2, padding=1, groups=groups, flip_weight=flip_weight)
    elif resample == "down":
        expected = F.conv2d(upfirdn2d(x, f, padding=2), kernel, stride=2, groups=groups)
        out = conv2d_resample(x, w, f, down=2, padding=1, groups=groups, flip_weight=flip_weight)
    else:
        expected = F.conv2d(x, kernel, padding=1, groups=groups)
        out = conv2d_resample(x, w, padding=1, groups=groups, flip_weight=flip_weight)
    assert out.shape == expected.shape
    torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-10)
