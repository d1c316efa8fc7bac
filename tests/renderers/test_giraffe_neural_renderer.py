"""GIRAFFE's neural renderer: sizes, parameter counts of the official layers, the blur, gradients."""

from __future__ import annotations

import pytest
import torch

from gan3d.core.testing import check_contract
from gan3d.renderers.neural_renderer import BinomialBlur, GiraffeNeuralRenderer


def _conv(cin: int, cout: int, k: int) -> int:
    return cin * cout * k * k + cout


def test_parameter_counts_match_the_official_layer_list():
    # neural_renderer.py, 64 px (n_feat = input_dim = 128, 2 blocks): convs 128->64, 64->32; RGB 128, 64, 32 -> 3.
    up64 = GiraffeNeuralRenderer(in_channels=128, n_feat=128, out_resolution=64)
    expected64 = _conv(128, 64, 3) + _conv(64, 32, 3) + _conv(128, 3, 3) + _conv(64, 3, 3) + _conv(32, 3, 3)
    assert sum(p.numel() for p in up64.parameters()) == expected64 == 98_313
    # 256 px (256 wide, 4 blocks, min_feat 32): 256->128->64->32->32.
    up256 = GiraffeNeuralRenderer(in_channels=256, n_feat=256, out_resolution=256)
    expected256 = (_conv(256, 128, 3) + _conv(128, 64, 3) + _conv(64, 32, 3) + _conv(32, 32, 3)
                   + sum(_conv(c, 3, 3) for c in (256, 128, 64, 32, 32)))
    assert sum(p.numel() for p in up256.parameters()) == expected256 == 410_383
    assert up256.out_resolution(16) == 256 and up256.scale_factor == 16


def test_output_size_range_and_gradients():
    up = GiraffeNeuralRenderer(in_channels=6, n_feat=16, min_feat=4, out_resolution=32, in_resolution=8)
    out = check_contract("upsampler", up, resolution=8)
    assert out.shape == (2, 3, 32, 32)
    assert out.min() >= -1 and out.max() <= 1
    raw = GiraffeNeuralRenderer(in_channels=6, n_feat=16, min_feat=4, out_resolution=32, in_resolution=8,
                                use_rgb_skip=False, final_sigmoid=False, use_norm=True)
    assert raw(torch.randn(1, 6, 8, 8)).shape == (1, 3, 32, 32)


def test_blur_is_the_normalized_binomial_with_reflected_borders():
    blur = BinomialBlur()
    x = torch.zeros(1, 1, 5, 5)
    x[0, 0, 2, 2] = 16.0
    y = blur(x)[0, 0]
    assert torch.allclose(y[1:4, 1:4], torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]))
    assert torch.allclose(blur(torch.full((1, 2, 4, 4), 3.0)), torch.full((1, 2, 4, 4), 3.0))
    # 'reflect' mirrors about the edge pixel (row -1 reads row 1), so a corner impulse keeps only the
    # centre tap, 4/16 (zero padding would give the same; 'replicate' would give 9/16).
    c = torch.zeros(1, 1, 4, 4)
    c[0, 0, 0, 0] = 1.0
    assert blur(c)[0, 0, 0, 0].item() == pytest.approx(4 / 16)


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="power of two"):
        GiraffeNeuralRenderer(out_resolution=48)
    with pytest.raises(ValueError, match="min_feat"):
        GiraffeNeuralRenderer(n_feat=32, min_feat=32)
    with pytest.raises(ValueError, match="in_channels"):
        GiraffeNeuralRenderer(in_channels=8, n_feat=16, min_feat=4)(torch.randn(1, 4, 16, 16))
