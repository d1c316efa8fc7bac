"""Winograd F(4x4, 3x3) convolution (core/layers/winograd.py): exact in exact arithmetic, within a bound
of the direct convolution in float32, and taken only where it is meant to be."""

import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from gan3d.core.layers import conv2d_resample, modulated_conv2d, set_winograd_enabled, winograd_applies
from gan3d.core.layers import winograd as winograd_module
from gan3d.core.layers.winograd import conv3x3_winograd


def channels_last(x):
    return x.contiguous(memory_format=torch.channels_last)


@pytest.fixture
def enabled():
    previous = set_winograd_enabled(True)
    yield
    set_winograd_enabled(previous)


def test_hand_computed_box_and_identity_filters():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    identity = torch.zeros(1, 1, 3, 3)
    identity[0, 0, 1, 1] = 1
    torch.testing.assert_close(conv3x3_winograd(x, identity), x, atol=1e-5, rtol=0)
    box = conv3x3_winograd(x, torch.ones(1, 1, 3, 3))
    # rows of x: 0-3, 4-7, 8-11, 12-15; zero padding outside.
    assert box[0, 0, 0, 0].item() == pytest.approx(0 + 1 + 4 + 5, abs=1e-4)
    assert box[0, 0, 1, 1].item() == pytest.approx(sum([0, 1, 2, 4, 5, 6, 8, 9, 10]), abs=1e-4)
    assert box[0, 0, 3, 3].item() == pytest.approx(10 + 11 + 14 + 15, abs=1e-4)
    assert box[0, 0, 0, 3].item() == pytest.approx(2 + 3 + 6 + 7, abs=1e-4)
    # A correlation, not a convolution: a filter with one tap at the top left reads the pixel above-left.
    corner = torch.zeros(1, 1, 3, 3)
    corner[0, 0, 0, 0] = 1
    shifted = conv3x3_winograd(x, corner)
    assert shifted[0, 0, 0].abs().max().item() < 1e-5  # row above the image: padding
    assert shifted[0, 0, 2, 3].item() == pytest.approx(x[0, 0, 1, 2].item(), abs=1e-4)


@pytest.mark.parametrize("batch,channels,out_channels,height,width", [
    (1, 3, 5, 8, 12), (2, 4, 4, 16, 8), (3, 2, 6, 12, 20)])
@pytest.mark.parametrize("with_bias", [False, True])
def test_exact_in_float64(batch, channels, out_channels, height, width, with_bias, monkeypatch):
    # Bands of 2 tile rows, so several bands and (for 12 px) a short last one are exercised.
    monkeypatch.setattr(winograd_module, "_TILE_CHANNELS_PER_BAND", 2 * (width // 4) * channels)
    torch.manual_seed(0)
    x = torch.randn(batch, channels, height, width, dtype=torch.float64)
    w = torch.randn(out_channels, channels, 3, 3, dtype=torch.float64)
    b = torch.randn(out_channels, dtype=torch.float64) if with_bias else None
    got = conv3x3_winograd(x, w, b)
    assert got.shape == (batch, out_channels, height, width)
    assert got.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(got, F.conv2d(x, w, b, padding=1), atol=1e-11, rtol=0)


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_float32_error_within_bound(layout):
    torch.manual_seed(1)
    x = torch.randn(2, 64, 32, 24)
    x = channels_last(x) if layout == "channels_last" else x.contiguous()
    w = torch.randn(48, 64, 3, 3) / 24
    b = torch.randn(48)
    reference = F.conv2d(x.double(), w.double(), b.double(), padding=1)
    error = (conv3x3_winograd(x, w, b).double() - reference).abs().max().item()
    direct = (F.conv2d(x, w, b, padding=1).double() - reference).abs().max().item()
    scale = reference.abs().max().item()
    assert error < 2e-5 * scale, (error, scale)
    assert error < 50 * direct + 1e-6


def test_rejects_shapes_it_cannot_tile():
    with pytest.raises(ValueError, match="multiples of 4"):
        conv3x3_winograd(torch.zeros(1, 2, 6, 8), torch.zeros(3, 2, 3, 3))
    with pytest.raises(ValueError, match=r"expected \[O, 2, 3, 3\]"):
        conv3x3_winograd(torch.zeros(1, 2, 8, 8), torch.zeros(3, 4, 3, 3))


def test_applies_only_to_cpu_float32_inference_of_large_channels_last_3x3(enabled):
    x = channels_last(torch.zeros(1, 128, 128, 128))
    w = torch.zeros(128, 128, 3, 3)
    with torch.no_grad():
        assert winograd_applies(x, w, padding=1)
        assert not winograd_applies(x.contiguous(), w, padding=1)                     # NCHW
        assert not winograd_applies(x.double(), w.double(), padding=1)                # float64
        assert not winograd_applies(x, w, padding=0)                                  # other padding
        assert not winograd_applies(x, torch.zeros(128, 64, 3, 3), padding=1, groups=2)
        assert not winograd_applies(x, torch.zeros(128, 128, 5, 5), padding=1)
        assert not winograd_applies(channels_last(torch.zeros(1, 128, 130, 128)), w, padding=1)  # not /4
        assert not winograd_applies(channels_last(torch.zeros(1, 128, 64, 64)), w, padding=1)    # small
        assert not winograd_applies(channels_last(torch.zeros(1, 64, 128, 128)),
                                    torch.zeros(128, 64, 3, 3), padding=1)            # few channels
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert not winograd_applies(x, w, padding=1)
        set_winograd_enabled(False)
        assert not winograd_applies(x, w, padding=1)
        set_winograd_enabled(True)
    trainable = torch.zeros(128, 128, 3, 3, requires_grad=True)
    assert not winograd_applies(x, trainable, padding=1)                              # autograd
    with torch.no_grad():
        assert winograd_applies(x, trainable, padding=1)


def test_conv2d_resample_dispatches_and_the_switch_restores_the_direct_path(enabled, monkeypatch):
    torch.manual_seed(2)
    x = channels_last(torch.randn(1, 128, 128, 128))
    w = torch.randn(128, 128, 3, 3) / 34
    b = torch.randn(128)
    calls = []
    module = sys.modules[conv2d_resample.__module__]
    real = module.conv3x3_winograd

    def spy(*args):
        calls.append(args[0].shape)
        return real(*args)

    monkeypatch.setattr(module, "conv3x3_winograd", spy)
    with torch.no_grad():
        fast = conv2d_resample(x, w, padding=1, bias=b)
        set_winograd_enabled(False)
        direct = conv2d_resample(x, w, padding=1, bias=b)
    assert calls == [x.shape]
    torch.testing.assert_close(direct, F.conv2d(x, w, b, padding=1), atol=0, rtol=0)
    torch.testing.assert_close(fast, direct, atol=2e-5 * direct.abs().max().item(), rtol=0)
    assert fast.is_contiguous(memory_format=torch.channels_last)
    # With autograd the direct path runs and gradients reach the weight.
    set_winograd_enabled(True)
    trainable = w.clone().requires_grad_(True)
    conv2d_resample(x, trainable, padding=1).square().mean().backward()
    assert len(calls) == 1 and trainable.grad is not None and trainable.grad.abs().sum() > 0


def test_modulated_conv_at_inference_matches_the_direct_path(enabled):
    torch.manual_seed(3)
    x = channels_last(torch.randn(2, 128, 128, 128))
    weight = torch.randn(128, 128, 3, 3)
    styles = torch.randn(2, 128)
    bias = torch.randn(128)
    with torch.no_grad():
        fast = modulated_conv2d(x, weight, styles, bias=bias, padding=1, gain=2 ** 0.5)
        set_winograd_enabled(False)
        direct = modulated_conv2d(x, weight, styles, bias=bias, padding=1, gain=2 ** 0.5)
    assert fast.shape == direct.shape == (2, 128, 128, 128)
    assert 0 < (fast - direct).abs().max().item() < 2e-5 * direct.abs().max().item()


def test_environment_variable_turns_it_off():
    code = "from gan3d.core.layers import winograd_enabled; print(winograd_enabled())"
    for value, expected in (("0", "False"), ("off", "False"), ("1", "True")):
        env = dict(os.environ, GAN3D_WINOGRAD=value)
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
        assert result.stdout.strip() == expected, result.stderr
