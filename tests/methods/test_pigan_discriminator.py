"""pi-GAN's progressive discriminator: shapes per resolution, fade-in, coordinate channels, gradients."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from gan3d.core.types import DiscriminatorInput
from gan3d.methods.pigan.coord_conv import add_coordinates
from gan3d.methods.pigan.discriminator import PiGANProgressiveDiscriminator
from gan3d.methods.pigan.residual_blocks import DownsamplingResidualBlock

# A narrow copy of the CelebA layout: 5 entry points -> images from 2 to 32 pixels.
SMALL = [8, 8, 12, 12, 16]


def small_d(**kwargs) -> PiGANProgressiveDiscriminator:
    torch.manual_seed(0)
    return PiGANProgressiveDiscriminator(channels=kwargs.pop("channels", SMALL), latent_dim=6, **kwargs)


@pytest.mark.parametrize("layout", ["strided", "pooled"])
def test_output_shapes(layout):
    d = small_d(block_layout=layout)
    for resolution in (2, 4, 8, 32):
        for alpha in (0.0, 0.3, 1.0):
            out = d(DiscriminatorInput(torch.randn(3, 3, resolution, resolution), alpha=alpha))
            assert out.logits.shape == (3, 1)
            assert out.latent.shape == (3, 6)
            assert out.pose.shape == (3, 2)
            assert torch.isfinite(out.logits).all()


def test_entry_point_follows_pigan_img_size_to_layer():
    # CCSEncoderDiscriminator: img_size_to_layer = {2: 7, 4: 6, ..., 64: 2, 128: 1, 256: 0}.
    d = PiGANProgressiveDiscriminator()
    assert {r: d.start_index(r) for r in (2, 4, 8, 16, 32, 64, 128, 256)} == {
        2: 7, 4: 6, 8: 5, 16: 4, 32: 3, 64: 2, 128: 1, 256: 0}
    # ProgressiveEncoderDiscriminator (CARLA): {..., 128: 2, 256: 1, 512: 0}.
    carla = PiGANProgressiveDiscriminator(channels=[16, 32, 64, 128, 256, 400, 400, 400, 400], block_layout="pooled")
    assert carla.start_index(512) == 0 and carla.start_index(128) == 2 and carla.start_index(2) == 8


def test_celeba_layout_parameter_shapes():
    d = PiGANProgressiveDiscriminator()
    assert len(d.blocks) == 7 and len(d.from_rgb) == 8
    assert d.head.weight.shape == (1 + 256 + 2, 400, 2, 2)
    # ResidualCCBlock(32, 64): CoordConv 3x3 sees 32 + 2 channels; the second one is strided.
    first = d.blocks[0]
    assert first.residual[0].conv.weight.shape == (64, 34, 3, 3)
    assert first.residual[2].conv.stride == (2, 2)
    assert first.skip.weight.shape == (64, 32, 1, 1) and first.skip.stride == (2, 2)


def test_bad_resolutions_are_refused_with_the_accepted_range():
    d = small_d()
    for bad in (1, 12, 64):
        with pytest.raises(ValueError, match="power-of-two side from 2 to 32"):
            d(DiscriminatorInput(torch.randn(1, 3, bad, bad)))
    with pytest.raises(ValueError, match="square RGB"):
        d(DiscriminatorInput(torch.randn(1, 3, 8, 16)))


def test_alpha_one_ignores_the_downsampled_path():
    d = small_d()
    image = torch.randn(2, 3, 16, 16)
    start = d.start_index(16)
    reference = d(DiscriminatorInput(image, alpha=1.0)).logits
    with torch.no_grad():  # changing the next-resolution adapter must not change the output
        for p in d.from_rgb[start + 1].parameters():
            p.add_(torch.randn_like(p))
    assert torch.allclose(d(DiscriminatorInput(image, alpha=1.0)).logits, reference)


def test_alpha_zero_uses_only_the_downsampled_path():
    d = small_d()
    image = torch.randn(2, 3, 16, 16)
    start = d.start_index(16)
    reference = d(DiscriminatorInput(image, alpha=0.0))
    with torch.no_grad():  # the full-resolution adapter and first block no longer count
        for module in (d.from_rgb[start], d.blocks[start]):
            for p in module.parameters():
                p.add_(torch.randn_like(p))
    again = d(DiscriminatorInput(image, alpha=0.0))
    assert torch.allclose(again.logits, reference.logits)
    # ... and the output equals the next resolution's path fed the nearest-downsampled image.
    down = F.interpolate(image, scale_factor=0.5, mode="nearest")
    assert torch.allclose(down, image[:, :, ::2, ::2])
    assert torch.allclose(d(DiscriminatorInput(down, alpha=1.0)).logits, reference.logits, atol=1e-6)


def test_intermediate_alpha_blends_linearly():
    d = small_d()
    image = torch.randn(2, 3, 8, 8)
    start = d.start_index(8)
    with torch.no_grad():
        full = d.blocks[start](d.from_rgb[start](image))
        low = d.from_rgb[start + 1](image[:, :, ::2, ::2])

        def tail(x):
            for block in d.blocks[start + 1:]:
                x = block(x)
            return d.head(x).flatten(1)[:, :1]

        expected = tail(0.25 * full + 0.75 * low)
    assert torch.allclose(d(DiscriminatorInput(image, alpha=0.25)).logits, expected, atol=1e-6)


def test_gradients_reach_every_parameter_used_at_a_resolution():
    d = small_d()
    image = torch.randn(2, 3, 16, 16, requires_grad=True)
    out = d(DiscriminatorInput(image, alpha=0.5))
    (out.logits.sum() + out.latent.sum() + out.pose.sum()).backward()
    start = d.start_index(16)
    used = [d.from_rgb[start], d.from_rgb[start + 1], *d.blocks[start:], d.head]
    for module in used:
        for name, p in module.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert image.grad.abs().sum() > 0
    # At the full resolution every parameter is used.
    d.zero_grad(set_to_none=True)
    out = d(DiscriminatorInput(torch.randn(2, 3, 32, 32), alpha=0.5))
    out.logits.sum().backward()
    missing = [n for n, p in d.named_parameters() if n.startswith(("blocks", "from_rgb.0", "from_rgb.1"))
               and (p.grad is None or p.grad.abs().sum() == 0)]
    assert not missing


def test_coordinate_channels_are_rows_then_columns_in_minus_one_one():
    x = torch.zeros(1, 1, 3, 5)
    out = add_coordinates(x)
    assert out.shape == (1, 3, 3, 5)
    assert torch.allclose(out[0, 1, :, 0], torch.tensor([-1.0, 0.0, 1.0]))  # varies along rows
    assert torch.allclose(out[0, 1, 0, :], torch.full((5,), -1.0))
    assert torch.allclose(out[0, 2, 0, :], torch.tensor([-1.0, -0.5, 0.0, 0.5, 1.0]))  # along columns


def test_residual_block_layouts_halve_and_scale_by_sqrt2():
    torch.manual_seed(0)
    x = torch.randn(2, 4, 8, 8)
    pooled = DownsamplingResidualBlock(4, 4, layout="pooled")
    assert pooled.skip is None  # pi-GAN projects only when the channel count changes
    expected = (F.avg_pool2d(pooled.residual(x), 2) + F.avg_pool2d(x, 2)) / math.sqrt(2)
    assert torch.allclose(pooled(x), expected)
    strided = DownsamplingResidualBlock(4, 6, layout="strided", coord_conv=False)
    assert strided(x).shape == (2, 6, 4, 4)
    assert isinstance(strided.residual[0], torch.nn.Conv2d)  # StridedDiscriminator: plain convs


def test_kaiming_init_matches_leaky_relu_fan_in_std():
    torch.manual_seed(0)
    block = DownsamplingResidualBlock(64, 64, layout="strided")
    w = block.residual[2].conv.weight  # fan_in = 66 * 9
    expected = math.sqrt(2.0 / (1 + 0.2**2)) / math.sqrt(66 * 9)
    assert abs(w.std().item() - expected) / expected < 0.05
    plain = DownsamplingResidualBlock(64, 64, layout="pooled", kaiming_init=False)
    bound = 1 / math.sqrt(66 * 9)  # PyTorch's default conv init is U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    assert plain.residual[2].conv.weight.abs().max() <= bound


def test_no_heads_when_their_sizes_are_zero():
    d = PiGANProgressiveDiscriminator(channels=SMALL, latent_dim=0, pose_dim=0, coord_conv=False)
    out = d(DiscriminatorInput(torch.randn(2, 3, 8, 8)))
    assert out.logits.shape == (2, 1) and out.pose is None and out.latent is None
    assert d.head.out_channels == 1
