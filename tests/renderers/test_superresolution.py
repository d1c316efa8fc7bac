"""EG3D's super-resolution upsampler (``upsampler`` ``eg3d_superres``)."""

import pytest
import torch

from gan3d.core.layers import setup_filter, upsample2d
from gan3d.core.registry import get_registry
from gan3d.core.testing import check_contract
from gan3d.core.types import UpsampledImages
from gan3d.renderers.superresolution import EG3DSuperResolution


def image_of(out):
    """The final image of an upsampler's output (the 128/256-px modules at their input resolution also
    return the official raw image: :class:`UpsampledImages`)."""
    return out.image if isinstance(out, UpsampledImages) else out


def tiny(resolution, **kwargs):
    torch.manual_seed(0)
    return EG3DSuperResolution(image_resolution=resolution, in_channels=6, w_dim=8, block0_channels=4,
                               block1_channels=4, **kwargs)


@pytest.mark.parametrize(("resolution", "rendered"), [(128, 32), (256, 64), (512, 32)])
def test_output_shapes_at_tiny_channels(resolution, rendered):
    up = tiny(resolution).eval()
    with torch.no_grad():
        image = up(torch.randn(1, 6, rendered, rendered), torch.randn(1, 3, 8))
    assert image.shape == (1, 3, resolution, resolution)


def test_gradients_reach_parameters_and_features():
    up = tiny(128, noise_mode="random")
    for name, p in up.named_parameters():
        if name.endswith("noise_strength"):
            torch.nn.init.constant_(p, 0.1)
    features = torch.randn(1, 6, 64, 64, requires_grad=True)
    ws = torch.randn(1, 5, 8, requires_grad=True)
    image_of(up(features, ws)).square().mean().backward()
    missing = [n for n, p in up.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not missing, missing
    assert features.grad.abs().sum() > 0


def test_only_the_last_latent_is_used():
    up = tiny(128).eval()
    features, ws = torch.randn(1, 6, 64, 64), torch.randn(1, 4, 8)
    with torch.no_grad():
        reference = image_of(up(features, ws))
        other = ws.clone()
        other[:, :-1] = torch.randn(1, 3, 8)
        torch.testing.assert_close(image_of(up(features, other)), reference)
        other[:, -1] = torch.randn(1, 8)
        assert not torch.allclose(image_of(up(features, other)), reference)


def test_raw_rgb_is_carried_by_the_skip_path():
    # With every toRGB silenced, the output is the raw RGB resized to 64 and upsampled by block1.
    up = tiny(128).eval()
    with torch.no_grad():
        for block in (up.block0, up.block1):
            block.torgb.weight.zero_()
            block.torgb.bias.zero_()
    features = torch.randn(1, 6, 64, 64)
    expected = upsample2d(features[:, :3], setup_filter([1, 3, 3, 1]))
    with torch.no_grad():
        torch.testing.assert_close(image_of(up(features, torch.randn(1, 1, 8))), expected)


@pytest.mark.parametrize(("resolution", "rendered", "adds"), [(128, 64, True), (256, 128, True), (128, 32, False),
                                                          (512, 128, False)])
def test_raw_image_as_the_official_module_leaves_it(resolution, rendered, adds):
    """The official 2X/4X first block adds its ToRGB output into the raw image in place when the render arrives
    at the blocks' input resolution: image_raw = raw + block0's RGB. A resized render (a copy) and the 8X
    module (block0 upsamples) keep the raw image; raw_in_place=False never changes it."""
    up = tiny(resolution).eval()
    features, ws = torch.randn(2, 6, rendered, rendered), torch.randn(2, 1, 8)
    with torch.no_grad():
        out = up(features, ws)
        if not adds:
            assert isinstance(out, torch.Tensor)
            return
        x0, rgb0 = up.block0(features, features[:, :3], ws.repeat(1, 3, 1), noise_mode="none")
        y0 = up.block0.torgb(x0, ws[:, 0])
        up.raw_in_place = False
        plain = up(features, ws)
    assert isinstance(out, UpsampledImages) and isinstance(plain, torch.Tensor)
    torch.testing.assert_close(out.image_raw, features[:, :3] + y0, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.image_raw, rgb0, atol=1e-5, rtol=1e-5)
    assert (out.image_raw - features[:, :3]).abs().max() > 1e-3
    assert torch.equal(out.image, plain)


def test_fused_and_unfused_modes_agree():
    up = tiny(128)
    features, ws = torch.randn(2, 6, 64, 64), torch.randn(2, 1, 8)
    with torch.no_grad():
        train_out = image_of(up.train()(features, ws))
        torch.testing.assert_close(image_of(up.eval()(features, ws)), train_out, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("per_sample", [True, False])
def test_channels_last_and_per_sample_inference_give_the_same_image(per_sample, monkeypatch):
    from gan3d.core.layers import synthesis

    monkeypatch.setattr(synthesis, "PER_SAMPLE_MIN_ACTIVATIONS", 0 if per_sample else 1 << 62)
    fast, plain = tiny(128, memory_format="channels_last").eval(), tiny(128, memory_format="contiguous").eval()
    features, ws = torch.randn(3, 6, 64, 64), torch.randn(3, 1, 8)
    with torch.no_grad():
        a, b = fast(features, ws), plain(features, ws)
    assert isinstance(a, UpsampledImages) and isinstance(b, UpsampledImages)
    torch.testing.assert_close(a.image, b.image, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(a.image_raw, b.image_raw, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("memory_format", ["contiguous", "channels_last"])
def test_blocks_get_their_memory_format_whatever_the_feature_image_layout(memory_format, monkeypatch):
    """The generator hands over a channels_last view (``feature_image``); with ``memory_format``
    'contiguous' (what 'auto' means on CUDA) both block inputs are made contiguous, not kept as they
    came (on CUDA that left the blocks unfused and cuDNN's low-pass filters several times slower)."""
    from gan3d.core.generator import feature_image
    from gan3d.core.layers import is_channels_last

    up = tiny(128, memory_format=memory_format).eval()
    seen = []
    monkeypatch.setattr(up.block0, "forward", lambda x, img, ws, **kw: seen.append((x, img)) or (x, img))
    monkeypatch.setattr(up.block1, "forward", lambda x, img, ws, **kw: (x, img))
    view = feature_image(torch.randn(2, 32 * 32, 6), 32)
    assert is_channels_last(view)
    with torch.no_grad():
        up(view, torch.randn(2, 1, 8))
    (x, rgb), = seen
    assert x.shape == (2, 6, 64, 64) and rgb.shape == (2, 3, 64, 64)
    for t in (x, rgb):
        assert is_channels_last(t) if memory_format == "channels_last" else t.is_contiguous()


def conv_layer_params(i, o, w_dim=512):
    """SynthesisLayer: affine (w_dim*i + i), weight o*i*3*3, noise_strength 1, bias o."""
    return (w_dim * i + i) + o * i * 9 + 1 + o


def torgb_params(i, w_dim=512):
    """ToRGBLayer: affine (w_dim*i + i), weight 3*i*1*1, bias 3."""
    return (w_dim * i + i) + 3 * i + 3


def block_params(i, o):
    """SynthesisBlock('skip'): conv0 (i -> o), conv1 (o -> o), torgb (o -> 3)."""
    return conv_layer_params(i, o) + conv_layer_params(o, o) + torgb_params(o)


@pytest.mark.parametrize(("resolution", "channels"), [(128, (128, 64)), (256, (128, 64)), (512, (256, 128))])
def test_parameter_count_at_official_config(resolution, channels):
    # EG3D: 32 rendered feature channels, w_dim 512; blocks 32 -> c0 and c0 -> c1 (training/superresolution.py).
    # 128/256: (53409 + 213249 + 66051) + (139457 + 69761 + 33027) = 574954
    # 512:     (90401 + 721409 + 132099) + (426369 + 213249 + 66051) = 1649578
    c0, c1 = channels
    expected = block_params(32, c0) + block_params(c0, c1)
    assert expected == {128: 574954, 256: 574954, 512: 1649578}[resolution]
    up = EG3DSuperResolution(image_resolution=resolution)
    assert sum(p.numel() for p in up.parameters()) == expected


def test_registered_and_errors_are_clear():
    up = get_registry().build("upsampler", "eg3d_superres", image_resolution=128, in_channels=6, w_dim=8,
                              block0_channels=4, block1_channels=4)
    assert isinstance(up, EG3DSuperResolution) and up.num_ws == 1
    with pytest.raises(ValueError, match="supports image_resolution 128, 256, 512; got 64"):
        EG3DSuperResolution(image_resolution=64)
    with pytest.raises(ValueError, match=r"features \[B, 6, h, w\]"):
        up(torch.randn(1, 32, 64, 64), torch.randn(1, 1, 8))


def test_upsampler_contract():
    # noise_mode 'none' leaves the noise strengths without gradient, as in EG3D's default
    out = check_contract("upsampler", tiny(128), resolution=8, exempt=("block0.conv0.noise_strength",
                         "block0.conv1.noise_strength", "block1.conv0.noise_strength", "block1.conv1.noise_strength"))
    assert out.shape == (2, 3, 128, 128)
