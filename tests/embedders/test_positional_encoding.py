"""Positional encoding and the coordinate embedder: hand-computed values, layout, errors."""

import math

import pytest
import torch

from gan3d.embedders.point_embedders.coordinate import CoordinateEmbedder
from gan3d.embedders.positional_encoding import PositionalEncoding


def test_encoding_values_at_hand_computed_point():
    enc = PositionalEncoding(in_channels=3, num_frequencies=2, include_input=True)
    p = torch.tensor([[0.5, -1.0, 0.25]])
    out = enc(p)[0]
    assert enc.out_channels == 3 * (1 + 2 * 2) == out.shape[0]
    x, y, z = 0.5, -1.0, 0.25
    expected = [x, y, z,
                math.sin(x), math.sin(y), math.sin(z), math.cos(x), math.cos(y), math.cos(z),
                math.sin(2 * x), math.sin(2 * y), math.sin(2 * z), math.cos(2 * x), math.cos(2 * y), math.cos(2 * z)]
    torch.testing.assert_close(out, torch.tensor(expected))


def test_encoding_with_pi_and_without_input():
    enc = PositionalEncoding(in_channels=1, num_frequencies=3, include_input=False, multiply_by_pi=True)
    out = enc(torch.tensor([[0.25]]))[0]
    expected = [math.sin(math.pi / 4), math.cos(math.pi / 4), math.sin(math.pi / 2), math.cos(math.pi / 2),
                math.sin(math.pi), math.cos(math.pi)]
    torch.testing.assert_close(out, torch.tensor(expected), atol=1e-6, rtol=0)


def test_encoding_rejects_bad_options_and_inputs():
    with pytest.raises(ValueError, match="encodes nothing"):
        PositionalEncoding(num_frequencies=0, include_input=False)
    with pytest.raises(ValueError, match="num_frequencies"):
        PositionalEncoding(num_frequencies=-1)
    with pytest.raises(ValueError, match=r"\[\.\.\., 3\]"):
        PositionalEncoding(num_frequencies=1)(torch.zeros(2, 2))


def test_coordinate_embedder_scales_by_box_warp_and_counts_channels():
    raw = CoordinateEmbedder()
    points = torch.randn(2, 4, 5, 3)
    assert raw.out_channels == 3
    torch.testing.assert_close(raw(points, raw.scene(torch.zeros(2, 1, 1))), points)

    pigan = CoordinateEmbedder(box_warp=0.24)  # pi-GAN's UniformBoxWarp(0.24): x * 2 / 0.24
    torch.testing.assert_close(pigan(points, None), points * (2 / 0.24))

    nerf = CoordinateEmbedder(num_frequencies=10)
    assert nerf.out_channels == 63
    out = nerf(points, None)
    assert out.shape == (2, 4, 5, 63)
    torch.testing.assert_close(out[..., 3:6], torch.sin(points))
    assert list(nerf.parameters()) == []


def test_coordinate_embedder_errors():
    with pytest.raises(ValueError, match="box_warp must be positive"):
        CoordinateEmbedder(box_warp=0.0)
    with pytest.raises(ValueError, match=r"\[B, R, S, 3\]"):
        CoordinateEmbedder()(torch.zeros(1, 2, 3, 2), None)
