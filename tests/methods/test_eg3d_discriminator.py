"""EG3D's dual discriminator: shapes with camera conditioning, gradients to every parameter, the raw
image's resize, the label noise, and the official parameter count at the FFHQ 512 size."""

from __future__ import annotations

import pytest
import torch

from gan3d.core.registry import get_registry
from gan3d.core.types import DiscriminatorInput
from gan3d.methods.eg3d.dual_discriminator import EG3DDualDiscriminator
from gan3d.methods.eg3d.image_filters import blur_images, blur_sigma, filtered_resize

TINY = dict(img_resolution=16, channel_base=256, channel_max=32, mapping_num_layers=2)


def test_scores_six_channels_with_camera_labels_and_every_parameter_gets_a_gradient():
    torch.manual_seed(0)
    d = EG3DDualDiscriminator(**TINY)
    assert d.img_channels == 6 and d.b16.fromrgb.weight.shape[1] == 6
    image = torch.randn(4, 3, 16, 16)
    raw = torch.randn(4, 3, 8, 8)
    label = torch.randn(4, 25)
    out = d(DiscriminatorInput(image, image_raw=raw, camera_label=label))
    assert out.logits.shape == (4, 1) and out.pose is None
    out.logits.square().sum().backward()
    no_grad = [n for n, p in d.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert no_grad == []


def test_the_label_changes_the_score_and_is_required():
    torch.manual_seed(0)
    d = EG3DDualDiscriminator(**TINY)
    image, raw = torch.randn(4, 3, 16, 16), torch.randn(4, 3, 8, 8)
    a = d(DiscriminatorInput(image, image_raw=raw, camera_label=torch.zeros(4, 25))).logits
    b = d(DiscriminatorInput(image, image_raw=raw, camera_label=torch.ones(4, 25))).logits
    assert not torch.allclose(a, b)
    with pytest.raises(ValueError, match="camera_label"):
        d(DiscriminatorInput(image, image_raw=raw))
    with pytest.raises(ValueError, match="image_raw"):
        d(DiscriminatorInput(image, camera_label=torch.zeros(4, 25)))
    with pytest.raises(ValueError, match="img_resolution"):
        d(DiscriminatorInput(torch.randn(4, 3, 32, 32), image_raw=raw, camera_label=torch.zeros(4, 25)))


def test_raw_image_is_resized_to_the_image_resolution_before_stacking():
    d = EG3DDualDiscriminator(**TINY)
    raw = torch.full((2, 3, 8, 8), 0.25)
    stacked = d.stack_inputs(torch.zeros(2, 3, 16, 16), raw)
    assert stacked.shape == (2, 6, 16, 16)
    assert torch.allclose(stacked[:, 3:], torch.full((2, 3, 16, 16), 0.25))  # bilinear keeps a constant


def test_disc_c_noise_perturbs_the_label_but_not_the_callers_tensor():
    torch.manual_seed(0)
    d = EG3DDualDiscriminator(disc_c_noise=1.0, **TINY)
    image, raw = torch.randn(4, 3, 16, 16), torch.randn(4, 3, 8, 8)
    label = torch.randn(4, 25)
    kept = label.clone()
    a = d(DiscriminatorInput(image, image_raw=raw, camera_label=label)).logits
    b = d(DiscriminatorInput(image, image_raw=raw, camera_label=label)).logits
    assert torch.equal(label, kept) and not torch.allclose(a, b)


def test_blur_schedule_and_kernel():
    # max(1 - kimg / fade, 0) * sigma0, by hand.
    assert blur_sigma(0.0, 10.0, 200.0) == 10.0
    assert blur_sigma(50.0, 10.0, 200.0) == pytest.approx(7.5)
    assert blur_sigma(150.0, 10.0, 200.0) == pytest.approx(2.5)
    assert blur_sigma(200.0, 10.0, 200.0) == 0.0 and blur_sigma(1e4, 10.0, 200.0) == 0.0
    assert blur_sigma(10.0, 10.0, 0.0) == 0.0
    # sigma 0.3: floor(0.9) = 0 taps beyond the centre -> identity.
    x = torch.randn(1, 1, 5, 5)
    assert torch.equal(blur_images(x, 0.3), x)
    # sigma 1: taps 2^-(x^2) at -3..3, normalised; a centred impulse becomes their outer product.
    impulse = torch.zeros(1, 1, 9, 9)
    impulse[..., 4, 4] = 1
    taps = torch.tensor([2.0 ** -(k * k) for k in range(-3, 4)])
    taps = taps / taps.sum()
    assert torch.allclose(blur_images(impulse, 1.0)[0, 0, 1:8, 1:8], torch.outer(taps, taps), atol=1e-7)


def test_blur_is_the_2d_gaussian_done_in_two_passes():
    """The separable blur (a horizontal then a vertical pass, as the official filter2d does with a 1-D filter)
    equals the 2-D convolution with the outer product of the taps, zero padded, at a non-square size."""
    sigma = 2.5
    size = 7  # floor(3 sigma)
    taps = torch.tensor([2.0 ** -((k / sigma) ** 2) for k in range(-size, size + 1)])
    taps = taps / taps.sum()
    images = torch.randn(2, 3, 20, 13, generator=torch.Generator().manual_seed(0))
    kernel = torch.outer(taps, taps).expand(3, 1, -1, -1)
    expected = torch.nn.functional.conv2d(images, kernel, padding=size, groups=3)
    torch.testing.assert_close(blur_images(images, sigma), expected, atol=1e-6, rtol=0)


def test_filtered_resize_antialiases_downsampling():
    checker = (torch.arange(16).view(1, 1, 16, 1) + torch.arange(16).view(1, 1, 1, 16)) % 2 * 2.0 - 1
    small = filtered_resize(checker.expand(1, 3, 16, 16), 4)
    assert small.shape == (1, 3, 4, 4) and small.abs().max() < 0.1  # averaged, not aliased
    with pytest.raises(ValueError, match="filter_mode"):
        filtered_resize(checker, 4, "classic")


def _official_dual_discriminator_parameters(res: int = 512, c_dim: int = 25) -> int:
    """Parameter count of NVlabs/eg3d DualDiscriminator(c_dim=25, img_resolution=512, img_channels=3)
    from its construction (training/dual_discriminator.py, networks_stylegan2.py): blocks b512..b8 on
    6 channels (fromrgb 1x1 at the first, conv0 3x3, conv1 3x3, bias-free 1x1 skip), a label
    MappingNetwork (embed 25->512, 8 layers 512->512), the epilogue (3x3 conv on 512+1, fc 512*16->512,
    out 512->512)."""
    ch = {r: min(32768 // r, 512) for r in (4, 8, 16, 32, 64, 128, 256, 512)}
    total = 0
    r = res
    while r >= 8:
        tmp, out = ch[r], ch[r // 2]
        total += (6 * tmp + tmp if r == res else 0) + (tmp * tmp * 9 + tmp) + (out * tmp * 9 + out) + out * tmp
        r //= 2
    total += (c_dim * 512 + 512) + 8 * (512 * 512 + 512)
    total += (513 * 512 * 9 + 512) + (512 * 16 * 512 + 512) + (512 * 512 + 512)
    return total


def test_ffhq512_discriminator_has_the_official_parameter_count():
    from gan3d.methods.eg3d.recipe import eg3d_recipe

    spec = eg3d_recipe("ffhq512").modules["discriminator"]
    d = get_registry().build("discriminator", spec.name, **spec.kwargs)
    ours = sum(p.numel() for p in d.parameters())
    assert _official_dual_discriminator_parameters() == 31_359_744
    assert ours == 31_359_744
