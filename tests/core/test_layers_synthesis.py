"""StyleGAN2 synthesis network ('skip'), layers and blocks, at tiny sizes."""

import pytest
import torch

from gan3d.core.layers import SynthesisBlock, SynthesisLayer, SynthesisNetwork


def tiny(**kwargs):
    torch.manual_seed(0)
    return SynthesisNetwork(16, 16, 3, channel_base=64, channel_max=8, **kwargs)


def test_output_shape_and_num_ws():
    net = tiny()
    # b4: conv1; b8, b16: conv0 + conv1; + the last toRGB = 1 + 2 + 2 + 1
    assert net.num_ws == 6
    assert net(torch.randn(2, 6, 16), noise_mode="const").shape == (2, 3, 16, 16)
    with pytest.raises(ValueError, match=r"ws \[B, 6, 16\]"):
        net(torch.randn(2, 5, 16))


def test_gradients_reach_every_parameter():
    net = tiny()
    for name, p in net.named_parameters():
        if name.endswith("noise_strength"):
            torch.nn.init.constant_(p, 0.1)
    ws = torch.randn(2, net.num_ws, 16, requires_grad=True)
    net(ws, noise_mode="random").square().mean().backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not missing, missing
    assert ws.grad.abs().sum() > 0


def test_noise_modes():
    net = tiny()
    ws = torch.randn(1, net.num_ws, 16)
    torch.testing.assert_close(net(ws, noise_mode="const"), net(ws, noise_mode="const"))
    # noise_strength starts at zero, so every mode agrees until it is trained
    torch.testing.assert_close(net(ws, noise_mode="random"), net(ws, noise_mode="none"))
    with torch.no_grad():
        net.b16.conv1.noise_strength.fill_(1.0)
    assert not torch.allclose(net(ws, noise_mode="random"), net(ws, noise_mode="none"))
    with pytest.raises(ValueError, match="noise_mode"):
        net(ws, noise_mode="fixed")


def test_fused_and_unfused_agree():
    net = tiny()
    ws = torch.randn(2, net.num_ws, 16)
    torch.testing.assert_close(net(ws, noise_mode="const", fused_modconv=True),
                               net(ws, noise_mode="const", fused_modconv=False), atol=1e-5, rtol=1e-5)


def test_block_without_upsampling_keeps_resolution():
    block = SynthesisBlock(5, 4, 8, 16, 3, True, up=1)
    x, img = block(torch.randn(2, 5, 16, 16), torch.zeros(2, 3, 16, 16), torch.randn(2, 3, 8))
    assert x.shape == (2, 4, 16, 16) and img.shape == (2, 3, 16, 16)


def test_layer_parameter_count_by_hand():
    layer = SynthesisLayer(5, 7, 8, 16)
    # affine (8*5 + 5) + weight 7*5*3*3 + noise_strength 1 + bias 7
    assert sum(p.numel() for p in layer.parameters()) == 45 + 315 + 1 + 7


def test_eg3d_triplane_backbone_parameter_count():
    # Counted from NVlabs/eg3d training/networks_stylegan2.SynthesisNetwork(w_dim=512, img_resolution=256,
    # img_channels=96, channel_base=32768, channel_max=512, num_fp16_res=0, conv_clamp=None).
    net = SynthesisNetwork(512, 256, 96, conv_clamp=None)
    assert net.num_ws == 14
    assert sum(p.numel() for p in net.parameters()) == 28207533


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("per_sample", [True, False])
def test_channels_last_gives_the_same_images_and_gradients(batch, per_sample, monkeypatch):
    """channels_last is a layout choice only: same images, same gradients, at inference (where a large
    network runs a batch sample by sample, a small one unfused) and in training (unfused)."""
    from gan3d.core.layers import synthesis

    monkeypatch.setattr(synthesis, "PER_SAMPLE_MIN_ACTIVATIONS", 0 if per_sample else 1 << 62)
    cl, plain = tiny(memory_format="channels_last"), tiny(memory_format="contiguous")
    plain.load_state_dict(cl.state_dict())
    ws = torch.randn(batch, cl.num_ws, 16)
    with torch.no_grad():
        torch.testing.assert_close(cl(ws, noise_mode="const"), plain(ws, noise_mode="const"), atol=1e-5, rtol=1e-5)
    for net in (cl, plain):
        net(ws, noise_mode="const", fused_modconv=False).square().mean().backward()
    for (name, a), (_, b) in zip(cl.named_parameters(), plain.named_parameters()):
        torch.testing.assert_close(a.grad, b.grad, atol=1e-5, rtol=1e-4, msg=name)


def test_layer_folds_its_gain_and_bias_exactly():
    """lrelu(g * (conv + b)) == g * lrelu(conv + b): the folded layer equals the textbook order."""
    torch.manual_seed(1)
    layer = SynthesisLayer(4, 5, 8, 8, use_noise=False)
    torch.nn.init.normal_(layer.bias)
    x, w = torch.randn(2, 4, 8, 8, dtype=torch.float64), torch.randn(2, 8, dtype=torch.float64)
    layer = layer.double()
    from gan3d.core.layers import modulated_conv2d
    raw = modulated_conv2d(x, layer.weight, layer.affine(w), padding=1)
    expected = torch.nn.functional.leaky_relu(raw + layer.bias.reshape(1, -1, 1, 1), 0.2) * (2 ** 0.5) * 0.5
    torch.testing.assert_close(layer(x, w, gain=0.5), expected)


def test_auto_memory_format_is_channels_last_on_cpu_only_and_bad_names_are_refused():
    from gan3d.core.layers.synthesis import use_channels_last

    assert use_channels_last("auto", torch.device("cpu")) and not use_channels_last("auto", torch.device("cuda"))
    assert use_channels_last("channels_last", torch.device("cuda"))
    assert not use_channels_last("contiguous", torch.device("cpu"))
    with pytest.raises(ValueError, match="memory_format must be one of auto, channels_last, contiguous"):
        tiny(memory_format="nhwc")
