"""StyleNeRF's discriminator: official parameter counts, starting at the input's resolution with the
official doubled fromRGB, gradients, errors."""

from __future__ import annotations

import pytest
import torch

from gan3d.core.types import DiscriminatorInput
from gan3d.methods.stylenerf.discriminator import StyleNeRFDiscriminator


@pytest.mark.parametrize("resolution,channel_base,total", [
    (256, 16384, 23_052_353),  # paper256: fmaps 0.5
    (512, 32768, 27_774_017),  # paper512
    (1024, 32768, 27_801_889),  # paper1024
])
def test_official_parameter_counts(resolution, channel_base, total):
    """Counts of the official D built at stylenerf_ffhq.yaml x paper* (tools/reference/stylenerf_official.py)."""
    D = StyleNeRFDiscriminator(img_resolution=resolution, channel_base=channel_base)
    assert sum(p.numel() for p in D.parameters()) == total
    if resolution == 256:
        counts = {name: sum(p.numel() for p in child.parameters()) for name, child in D.named_children()}
        assert counts == {"b256": 111_040, "b128": 443_264, "b64": 1_771_264, "b32": 4_721_664, "b16": 4_721_664,
                          "b8": 4_721_664, "b4": 6_561_793}
        names = set(D.state_dict())
        assert {"b256.fromrgb.weight", "b256.conv1.bias", "b32.fromrgb.weight", "b4.fromrgb.weight",
                "b4.conv.weight", "b4.fc.weight", "b4.out.weight"} <= names


def small() -> StyleNeRFDiscriminator:
    torch.manual_seed(0)
    return StyleNeRFDiscriminator(img_resolution=32, lowres_head=8, channel_base=256, channel_max=16,
                                  mbstd_group_size=2)


@torch.no_grad()
def test_below_full_resolution_the_first_block_reads_fromrgb_twice():
    D = small()
    image = torch.randn(4, 3, 16, 16)
    x = D.b16.fromrgb(image)  # the official forward sets x first, then the skip block adds fromrgb again
    x, img = D.b16(x, image)
    x, img = D.b8(x, img)
    torch.testing.assert_close(D.score(image), D.b4(x, img, None))
    full = torch.randn(4, 3, 32, 32)
    x, img = D.b32(None, full)
    x, img = D.b16(x, img)
    x, img = D.b8(x, img)
    torch.testing.assert_close(D.score(full), D.b4(x, img, None))


def test_gradients_reach_every_parameter_at_full_resolution():
    D = small()
    D(DiscriminatorInput(torch.randn(4, 3, 32, 32))).logits.sum().backward()
    for name, p in D.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    D.zero_grad()
    D.score(torch.randn(4, 3, 8, 8)).sum().backward()
    assert D.b32.conv0.weight.grad is None or D.b32.conv0.weight.grad.abs().sum() == 0
    assert D.b8.fromrgb.weight.grad.abs().sum() > 0


def test_bad_inputs_and_options():
    D = small()
    for shape in [(4, 3, 4, 4), (4, 3, 64, 64), (4, 3, 12, 12), (4, 1, 16, 16), (4, 3, 16, 8)]:
        with pytest.raises(ValueError, match="power of two from 8 to 32"):
            D.score(torch.randn(*shape))
    with pytest.raises(ValueError, match="lowres_head"):
        StyleNeRFDiscriminator(img_resolution=32, lowres_head=64)
    with pytest.raises(ValueError, match="power of two"):
        StyleNeRFDiscriminator(img_resolution=48)
