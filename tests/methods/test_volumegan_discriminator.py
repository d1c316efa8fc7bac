"""VolumeGAN's progressive residual discriminator (``discriminator`` ``volumegan``)."""

import pytest
import torch
import torch.nn.functional as F

from gan3d.core.registry import get_registry
from gan3d.core.testing import check_contract
from gan3d.core.types import DiscriminatorInput
from gan3d.methods.volumegan.discriminator import VolumeGANDiscriminator

#: genforce/volumegan VolumeGANDiscriminator(resolution=256, init_res=4, architecture='resnet', fmaps_base=32768,
#: mbstd_groups=4), counted by building the official network (tools/reference/volumegan_official.py).
OFFICIAL_FFHQ256_PARAMETERS = 28_875_393


def tiny(**kwargs):
    torch.manual_seed(0)
    options = dict(img_resolution=32, channel_base=128, channel_max=8, init_lod=2.0)
    options.update(kwargs)
    return VolumeGANDiscriminator(**options)


def test_parameter_count_equals_the_official_ffhq256_discriminator():
    d = VolumeGANDiscriminator(conv_clamp=256.0)
    assert sum(p.numel() for p in d.parameters()) == OFFICIAL_FFHQ256_PARAMETERS
    assert float(d.lod) == 3.0
    # One fromRGB per resolution 256 .. 4 (the official input0 .. input6).
    assert [r for r in (256, 128, 64, 32, 16, 8, 4) if hasattr(d, f"fromrgb{r}")] == [256, 128, 64, 32, 16, 8, 4]


@pytest.mark.parametrize("lod", [2.0, 1.0, 0.0])
def test_at_a_whole_level_only_the_box_downsampled_image_matters(lod):
    """At lod k the network reads the image box-averaged k times: detail inside those boxes is invisible."""
    d = tiny().eval()
    image = torch.randn(4, 3, 32, 32)
    factor = 2 ** int(lod)
    detail = torch.randn(4, 3, 32, 32)
    detail = detail - F.interpolate(F.avg_pool2d(detail, factor), scale_factor=float(factor), mode="nearest")
    with torch.no_grad():
        a = d(DiscriminatorInput(image)).logits
        d.lod.fill_(lod)
        a, b = d(DiscriminatorInput(image)).logits, d(DiscriminatorInput(image + detail)).logits
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    if lod > 0:  # the same detail is seen one level finer
        with torch.no_grad():
            d.lod.fill_(lod - 1)
            a, b = d(DiscriminatorInput(image)).logits, d(DiscriminatorInput(image + detail)).logits
            assert not torch.allclose(a, b, atol=1e-4)


def test_fade_between_levels_is_linear_in_the_two_entry_points():
    """Between levels the 16-px entry fades in: logits at lod 1.5 come from x = 0.5 fromrgb16(pool(img)) +
    0.5 block32(fromrgb32(img)) -- so the fromRGB of 16 px gets gradient only while lod > 1 - 1."""
    d = tiny().train()
    image = torch.randn(4, 3, 32, 32)
    d.lod.fill_(0.5)
    d(DiscriminatorInput(image)).logits.sum().backward()
    assert d.fromrgb16.weight.grad is not None and d.fromrgb32.weight.grad is not None
    d.zero_grad()
    d.lod.fill_(0.0)
    d(DiscriminatorInput(image)).logits.sum().backward()
    assert d.fromrgb16.weight.grad is None  # fully grown: only the 32-px entry
    d.zero_grad()
    d.lod.fill_(2.0)
    d(DiscriminatorInput(image)).logits.sum().backward()
    assert d.fromrgb32.weight.grad is None and d.b32.conv0.weight.grad is None  # training at 8 px


def test_every_parameter_gets_gradient_at_its_level_except_the_unread_4px_entry():
    d = tiny(progressive=False)
    # Fully grown, the lower-resolution entry points are not read (as in the official forward).
    check_contract("discriminator", d, resolution=32, exempt=("fromrgb16.", "fromrgb8.", "fromrgb4."))
    reached = set()
    for lod in (0.0, 0.5, 1.0, 1.5, 2.0):
        d.zero_grad()
        d.lod.fill_(lod)
        d(DiscriminatorInput(torch.randn(4, 3, 32, 32))).logits.sum().backward()
        reached |= {n for n, p in d.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert {n for n, _ in d.named_parameters()} - reached == {"fromrgb4.weight", "fromrgb4.bias"}


def test_set_training_step_moves_the_level_of_detail():
    d = tiny(lod_training_kimg=1.0, lod_transition_kimg=1.0)
    d.set_training_step(0, 0.0)
    assert float(d.lod) == 2.0
    d.set_training_step(8, 2.5)
    assert float(d.lod) == pytest.approx(1.0)


def test_registration_and_bad_inputs():
    d = get_registry().build("discriminator", "volumegan", img_resolution=16, channel_base=64, channel_max=4,
                             init_lod=1.0)
    assert d(DiscriminatorInput(torch.randn(2, 3, 16, 16))).logits.shape == (2, 1)
    with pytest.raises(ValueError, match="always the full resolution"):
        d(DiscriminatorInput(torch.randn(2, 3, 8, 8)))
    with pytest.raises(ValueError, match="remove fade_steps"):
        d(DiscriminatorInput(torch.randn(2, 3, 16, 16), alpha=0.5))
    with pytest.raises(TypeError, match="DiscriminatorInput"):
        d(torch.randn(2, 3, 16, 16))
    with pytest.raises(ValueError, match="below 8 px"):
        VolumeGANDiscriminator(img_resolution=16, init_lod=2.0)
    with pytest.raises(ValueError, match="lod must lie"):
        d.score(torch.randn(2, 3, 16, 16), lod=5.0)
