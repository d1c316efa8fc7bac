"""Modulated convolution (StyleGAN2 eq. 1-3) against an explicit per-sample computation."""

import pytest
import torch
import torch.nn.functional as F

from gan3d.core.layers import conv2d_resample, is_channels_last, modulated_conv2d, setup_filter


def reference_modulated_conv(x, weight, styles, demodulate=True, up=1):
    """Unfused: for each sample, scale the weights by its styles, demodulate, then convolve."""
    outputs = []
    f = setup_filter([1, 3, 3, 1])
    for n in range(x.shape[0]):
        w = weight * styles[n].reshape(1, -1, 1, 1)  # modulation, eq. 1
        if demodulate:
            w = w / torch.sqrt((w**2).sum(dim=[1, 2, 3], keepdim=True) + 1e-8)  # demodulation, eq. 3
        if up == 1:
            outputs.append(F.conv2d(x[n : n + 1], w, padding=weight.shape[-1] // 2))
        else:
            outputs.append(conv2d_resample(x[n : n + 1], w, f, up=up, padding=weight.shape[-1] // 2))
    return torch.cat(outputs)


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("demodulate", [True, False])
def test_matches_unfused_reference(fused, demodulate):
    torch.manual_seed(0)
    x = torch.randn(3, 5, 8, 8, dtype=torch.float64)
    weight = torch.randn(7, 5, 3, 3, dtype=torch.float64)
    styles = torch.randn(3, 5, dtype=torch.float64)
    out = modulated_conv2d(x, weight, styles, padding=1, demodulate=demodulate, fused=fused)
    expected = reference_modulated_conv(x, weight, styles, demodulate)
    assert out.shape == (3, 7, 8, 8)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("fused", [True, False])
def test_mixed_precision_inputs_compute_in_the_promoted_dtype(fused):
    """float32 styles (StyleGAN's synthesis casts ws to float32) with float64 weights: the demodulation is
    computed in float64, as the product of the two would be."""
    torch.manual_seed(3)
    x, weight = torch.randn(2, 5, 6, 6, dtype=torch.float64), torch.randn(4, 5, 3, 3, dtype=torch.float64)
    styles = torch.randn(2, 5)
    out = modulated_conv2d(x, weight, styles, padding=1, fused=fused)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, reference_modulated_conv(x, weight, styles.double()), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("fused", [True, False])
def test_upsampling_matches_reference_in_float32(fused):
    torch.manual_seed(1)
    x, weight, styles = torch.randn(2, 4, 6, 6), torch.randn(3, 4, 3, 3), torch.randn(2, 4)
    out = modulated_conv2d(x, weight, styles, up=2, padding=1, resample_filter=setup_filter([1, 3, 3, 1]), fused=fused)
    assert out.shape == (2, 3, 12, 12)
    torch.testing.assert_close(out, reference_modulated_conv(x, weight, styles, up=2), atol=1e-5, rtol=1e-5)


def test_demodulation_gives_unit_variance():
    torch.manual_seed(2)
    x = torch.randn(4, 64, 16, 16)
    weight = torch.randn(32, 64, 3, 3)
    styles = torch.rand(4, 64) * 3 + 0.5  # arbitrary positive styles of large magnitude
    out = modulated_conv2d(x, weight, styles, padding=1)[:, :, 1:-1, 1:-1]  # borders see zero padding
    assert abs(out.var().item() - 1.0) < 0.1
    raw = modulated_conv2d(x, weight, styles, padding=1, demodulate=False)[:, :, 1:-1, 1:-1]
    assert raw.var().item() > 10  # without demodulation the styles blow the variance up


def test_noise_is_added_after_demodulation():
    torch.manual_seed(3)
    x, weight, styles = torch.randn(2, 3, 5, 5), torch.randn(4, 3, 3, 3), torch.randn(2, 3)
    noise = torch.randn(2, 1, 5, 5)
    base = modulated_conv2d(x, weight, styles, padding=1)
    torch.testing.assert_close(modulated_conv2d(x, weight, styles, padding=1, noise=noise), base + noise)


def test_shape_mismatch_is_reported():
    with pytest.raises(ValueError, match="styles"):
        modulated_conv2d(torch.randn(2, 3, 4, 4), torch.randn(4, 3, 3, 3), torch.randn(2, 5))


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("up", [1, 2])
@pytest.mark.parametrize("batch", [1, 3])
def test_bias_and_gain_ride_along_with_the_convolution(fused, up, batch):
    """gain * (conv + noise + bias), whatever path carries the bias (conv, low-pass filter, addcmul)."""
    torch.manual_seed(4)
    x = torch.randn(batch, 4, 6, 6, dtype=torch.float64)
    weight, styles = torch.randn(5, 4, 3, 3, dtype=torch.float64), torch.randn(batch, 4, dtype=torch.float64)
    bias, noise = torch.randn(5, dtype=torch.float64), torch.randn(batch, 1, 6 * up, 6 * up, dtype=torch.float64)
    f = setup_filter([1, 3, 3, 1]).double()
    out = modulated_conv2d(x, weight, styles, noise=noise, bias=bias, gain=1.7, up=up, padding=1,
                           resample_filter=f, fused=fused)
    plain = modulated_conv2d(x, weight, styles, up=up, padding=1, resample_filter=f, fused=fused)
    torch.testing.assert_close(out, 1.7 * (plain + noise + bias.reshape(1, -1, 1, 1)))


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("up", [1, 2])
def test_channels_last_input_keeps_its_layout_and_values(fused, batch, up):
    torch.manual_seed(5)
    x, weight, styles = torch.randn(batch, 6, 8, 8), torch.randn(5, 6, 3, 3), torch.randn(batch, 6)
    f = setup_filter([1, 3, 3, 1])
    kwargs = dict(bias=torch.randn(5), gain=1.4, up=up, padding=1, resample_filter=f, fused=fused)
    expected = modulated_conv2d(x, weight, styles, **kwargs)
    out = modulated_conv2d(x.contiguous(memory_format=torch.channels_last), weight, styles, **kwargs)
    assert is_channels_last(out)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    assert not is_channels_last(expected)


def test_bad_bias_shape_is_reported():
    with pytest.raises(ValueError, match=r"bias must be \[4\]"):
        modulated_conv2d(torch.randn(2, 3, 4, 4), torch.randn(4, 3, 3, 3), torch.randn(2, 3), bias=torch.zeros(3))
