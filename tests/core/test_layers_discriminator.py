"""StyleGAN2 'resnet' discriminator with label projection, at tiny sizes."""

import pytest
import torch

from gan3d.core.layers import MinibatchStdLayer, StyleGAN2Discriminator


def tiny(c_dim=25, **kwargs):
    torch.manual_seed(0)
    return StyleGAN2Discriminator(c_dim, 16, 6, channel_base=64, channel_max=8, mbstd_group_size=2, **kwargs)


def test_conditional_shape_and_gradients():
    disc = tiny()
    img = torch.randn(4, 6, 16, 16, requires_grad=True)
    c = torch.randn(4, 25)
    logits = disc(img, c)
    assert logits.shape == (4, 1)
    logits.sum().backward()
    missing = [n for n, p in disc.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not missing, missing
    assert img.grad.abs().sum() > 0
    assert not torch.allclose(disc(img, torch.randn(4, 25)), logits)  # the label is used


def test_unconditional_has_no_mapping():
    disc = tiny(c_dim=0)
    assert not hasattr(disc, "mapping") and disc.cmap_dim == 0
    assert disc(torch.randn(2, 6, 16, 16)).shape == (2, 1)


def test_minibatch_std_by_hand():
    x = torch.zeros(4, 2, 3, 3)
    x[0], x[1], x[2], x[3] = 1.0, 2.0, 5.0, 2.0
    out = MinibatchStdLayer(group_size=2)(x)
    assert out.shape == (4, 3, 3, 3)
    # groups are samples {0, 2} and {1, 3}: std |1-5|/2 = 2 and |2-2|/2 = 0 (plus the 1e-8 epsilon)
    torch.testing.assert_close(out[:, 2, 0, 0], torch.tensor([2.0, 1e-4, 2.0, 1e-4]))
    with pytest.raises(ValueError, match="not divisible"):
        MinibatchStdLayer(group_size=4)(torch.zeros(6, 2, 3, 3))


def test_frozen_layers_are_buffers():
    disc = tiny(freeze_layers=2)
    names = {n for n, _ in disc.named_parameters()}
    assert "b16.fromrgb.weight" not in names and "b16.conv0.weight" not in names
    assert "b16.conv1.weight" in names


def test_wrong_input_is_reported():
    with pytest.raises(ValueError, match=r"img \[B, 6, 16, 16\]"):
        tiny()(torch.randn(2, 3, 16, 16), torch.randn(2, 25))


def test_eg3d_dual_discriminator_parameter_count():
    # Counted from NVlabs/eg3d training/dual_discriminator.DualDiscriminator(c_dim=25, img_resolution=512,
    # img_channels=3) (it doubles img_channels to 6), default channel_base 32768, channel_max 512, 8 mapping layers.
    disc = StyleGAN2Discriminator(25, 512, 6)
    assert sum(p.numel() for p in disc.parameters()) == 31359744
