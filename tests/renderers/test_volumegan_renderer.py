"""VolumeGAN's progressive 1x1 neural renderer (``upsampler`` ``volumegan_neural_renderer``)."""

import pytest
import torch
import torch.nn.functional as F

from gan3d.core.layers import setup_filter, upsample2d
from gan3d.core.registry import get_registry
from gan3d.core.testing import check_contract
from gan3d.renderers.volumegan_renderer import VolumeGANNeuralRenderer

#: genforce/volumegan SynthesisNetwork(resolution=256, init_res=32, fmaps_base=32768, rgb_init_res_out=False),
#: counted by building the official network (tools/reference/volumegan_official.py).
OFFICIAL_FFHQ256_PARAMETERS = 2_350_479


def tiny(**kwargs):
    torch.manual_seed(0)
    options = dict(in_channels=6, in_resolution=8, out_resolution=32, w_dim=8, channel_base=128, channel_max=8)
    options.update(kwargs)
    up = VolumeGANNeuralRenderer(**options)
    for name, p in up.named_parameters():
        if name.endswith("noise_strength"):
            torch.nn.init.constant_(p, 0.1)
    return up


def test_parameter_count_equals_the_official_ffhq256_renderer():
    up = VolumeGANNeuralRenderer(conv_clamp=256.0)
    assert sum(p.numel() for p in up.parameters()) == OFFICIAL_FFHQ256_PARAMETERS
    assert up.num_ws == 8  # official num_cnn_layers = log2(256 // 32 * 2) * 2
    assert float(up.lod) == 3.0
    # nf(64) = 512, nf(128) = 256, nf(256) = 128; every kernel 1x1.
    assert up.b64.conv0.weight.shape == (512, 512, 1, 1)
    assert up.b128.conv1.weight.shape == (256, 256, 1, 1)
    assert up.b256.torgb.weight.shape == (3, 128, 1, 1)


def test_output_always_has_the_final_resolution():
    up = tiny().eval()
    features, ws = torch.randn(2, 6, 8, 8), torch.randn(2, 6, 8)
    with torch.no_grad():
        for lod in (2.0, 1.5, 1.0, 0.3, 0.0):
            assert up(features, ws, lod=lod).shape == (2, 3, 32, 32)


def octave_images(up, features, ws):
    """The skip-architecture image of each octave, computed block by block."""
    f = setup_filter([1, 3, 3, 1])
    x, image = features, features[:, :3]
    images = [image]
    for b, block in enumerate((up.b16, up.b32), start=1):
        kw = dict(noise_mode="const", fused_modconv=True)
        x = block.conv0(x, ws[:, 2 * b - 1], **kw)
        x = block.conv1(x, ws[:, 2 * b], **kw)
        image = block.torgb(x, ws[:, 2 * b + 1]) + upsample2d(image, f)
        images.append(image)
    return images


def nearest(x, factor):
    return F.interpolate(x, scale_factor=float(factor), mode="nearest")


@pytest.mark.parametrize(("lod", "alpha"), [(2.0, 0.0), (1.5, 0.5), (1.0, 1.0)])
def test_progressive_blend_of_the_second_octave(lod, alpha):
    """lod 2 -> 1 fades the 16-px octave in: alpha 0 (only the 8-px image), 0.5, 1."""
    up = tiny().eval()
    features, ws = torch.randn(2, 6, 8, 8), torch.randn(2, 6, 8)
    with torch.no_grad():
        out = up(features, ws, lod=lod)
        im8, im16, _ = octave_images(up, features, ws)
    blended = alpha * im16 + (1 - alpha) * nearest(im8, 2)
    torch.testing.assert_close(out, nearest(blended, 2), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("lod", "alpha"), [(1.0, 0.0), (0.5, 0.5), (0.0, 1.0)])
def test_progressive_blend_of_the_last_octave(lod, alpha):
    up = tiny().eval()
    features, ws = torch.randn(2, 6, 8, 8), torch.randn(2, 6, 8)
    with torch.no_grad():
        out = up(features, ws, lod=lod)
        _, im16, im32 = octave_images(up, features, ws)
    torch.testing.assert_close(out, alpha * im32 + (1 - alpha) * nearest(im16, 2), atol=1e-5, rtol=1e-5)


def test_octaves_not_yet_grown_get_no_gradient_and_latent_row_0_is_never_read():
    up = tiny().train()
    features = torch.randn(2, 6, 8, 8)
    ws = torch.randn(2, 6, 8, requires_grad=True)
    up(features, ws, lod=1.5).square().mean().backward()
    assert all(p.grad is None for p in up.b32.parameters())  # the 32-px octave is not computed at lod 1.5
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in up.b16.parameters())
    assert ws.grad[:, 0].abs().sum() == 0 and ws.grad[:, 4:].abs().sum() == 0  # rows 1-3: the 16-px octave
    up.zero_grad()
    ws.grad = None
    up(features, ws, lod=0.0).square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in up.parameters())
    assert ws.grad[:, 0].abs().sum() == 0 and (ws.grad[:, 1:].flatten(1).abs().sum(1) > 0).all()


def test_set_training_step_moves_the_level_of_detail():
    up = tiny(lod_training_kimg=1.0, lod_transition_kimg=1.0)
    assert float(up.lod) == 2.0
    up.set_training_step(0, 0.0)
    assert float(up.lod) == 2.0
    up.set_training_step(4, 1.5)  # halfway through the first transition
    assert float(up.lod) == pytest.approx(1.5)
    up.set_training_step(5, 1.9)  # not a multiple of minibatch_repeats: kept
    assert float(up.lod) == pytest.approx(1.5)
    assert float(tiny(progressive=False).lod) == 0.0


def test_noise_is_random_in_training_and_constant_in_eval():
    up = tiny()
    features, ws = torch.randn(1, 6, 8, 8), torch.randn(1, 6, 8)
    with torch.no_grad():
        up.train()
        assert not torch.equal(up(features, ws, lod=0.0), up(features, ws, lod=0.0))
        up.eval()
        torch.testing.assert_close(up(features, ws, lod=0.0), up(features, ws, lod=0.0))


def test_rgb_init_res_out_predicts_the_first_image_with_a_convolution():
    up = tiny(rgb_init_res_out=True).eval()
    features, ws = torch.randn(1, 6, 8, 8), torch.randn(1, 6, 8)
    with torch.no_grad():
        out = up(features, ws, lod=2.0)
        torch.testing.assert_close(out, nearest(up.torgb_init(features), 4))


def test_contract_and_registration():
    up = get_registry().build("upsampler", "volumegan_neural_renderer", in_channels=6, in_resolution=8,
                              out_resolution=16, w_dim=8, channel_base=64, channel_max=8, progressive=False)
    check_contract("upsampler", up, resolution=8)
    assert up.out_resolution(8) == 16


def test_bad_inputs_are_refused_with_the_fix():
    up = tiny()
    with pytest.raises(ValueError, match="exactly its 6 latent rows"):
        up(torch.randn(1, 6, 8, 8), torch.randn(1, 12, 8))
    with pytest.raises(ValueError, match=r"square features \[B, 6, h, h\]"):
        up(torch.randn(1, 5, 8, 8), torch.randn(1, 6, 8))
    with pytest.raises(ValueError, match=r"square features"):
        up(torch.randn(1, 6, 8, 4), torch.randn(1, 6, 8))
    with pytest.raises(ValueError, match="remove fade_steps"):
        up(torch.randn(1, 6, 8, 8), torch.randn(1, 6, 8), alpha=0.5)
    with pytest.raises(ValueError, match="power of two"):
        tiny(out_resolution=24)
    with pytest.raises(ValueError, match="noise_mode"):
        tiny(eval_noise_mode="fixed")


def test_another_render_resolution_is_resized_to_the_networks():
    """The viewer previews at half the render resolution and infer may render larger: the feature image is
    resized to in_resolution (bilinear), so the output keeps its side and equals rendering the resized image."""
    up = tiny().eval()
    ws = torch.randn(2, 6, 8)
    with torch.no_grad():
        for side in (4, 16):
            features = torch.randn(2, 6, side, side)
            resized = torch.nn.functional.interpolate(features, size=(8, 8), mode="bilinear", align_corners=False,
                                                      antialias=side > 8)
            assert up.out_resolution(side) == 32
            torch.testing.assert_close(up(features, ws, lod=0.0), up(resized, ws, lod=0.0))
    # Training takes only in_resolution (the official nerf_res): a resized render would train another model.
    with pytest.raises(ValueError, match="trains on 8 px feature images.*generator.render_resolution=8"):
        up.train()(torch.randn(2, 6, 16, 16), ws)
