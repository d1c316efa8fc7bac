"""The identity upsampler: the first three channels, unchanged, with gradients."""

from __future__ import annotations

import pytest
import torch

from gan3d.core.registry import Registry
from gan3d.renderers.identity_upsampler import IdentityUpsampler


def test_returns_the_first_three_channels_with_gradients():
    features = torch.randn(2, 5, 16, 16, requires_grad=True)
    image = Registry().build("upsampler", "identity")(features, torch.zeros(2, 1, 8))
    assert image.shape == (2, 3, 16, 16)
    assert torch.equal(image, features[:, :3])
    image.sum().backward()
    assert torch.equal(features.grad[:, :3], torch.ones(2, 3, 16, 16))
    assert torch.equal(features.grad[:, 3:], torch.zeros(2, 2, 16, 16))


def test_refuses_fewer_than_three_channels():
    with pytest.raises(ValueError, match="F >= 3"):
        IdentityUpsampler()(torch.zeros(1, 2, 8, 8), None)
