"""The inverted-sphere embedder: NeRF++ coordinates by hand, the encoding layout, the per-batch latent."""

import math

import pytest
import torch

from gan3d.embedders.point_embedders.inverted_sphere import InvertedSphereEmbedder, inverted_sphere_coordinates
from gan3d.embedders.positional_encoding import PositionalEncoding


def test_coordinates_are_direction_and_inverse_radius():
    points = torch.tensor([[0.0, 4.0, 0.0], [3.0, 0.0, -4.0]])
    expected = torch.tensor([[0.0, 1.0, 0.0, 0.25], [0.6, 0.0, -0.8, 0.2]])
    torch.testing.assert_close(inverted_sphere_coordinates(points), expected)
    torch.testing.assert_close(inverted_sphere_coordinates(points, sphere_radius=2.0)[:, 3], torch.tensor([0.5, 0.4]))


def test_features_are_the_encoding_then_the_shared_latent():
    emb = InvertedSphereEmbedder()  # StyleNeRF FFHQ: 10 octaves of 4 values, then z_bg of 32
    assert emb.out_channels == 112 and emb.num_ws == 0 and not list(emb.parameters())
    points = torch.randn(2, 5, 4, 3) * 10
    z = emb.scene(torch.zeros(2, 0, 512), generator=torch.Generator().manual_seed(0))
    assert z.shape == (2, 32)
    features = emb(points, z)
    encoding = PositionalEncoding(in_channels=4, num_frequencies=10, include_input=False, multiply_by_pi=True)
    torch.testing.assert_close(features[..., :80], encoding(inverted_sphere_coordinates(points)))
    torch.testing.assert_close(features[..., 80:], z[:, None, None, :].expand(2, 5, 4, 32))
    # First octave of the inverse radius of the first point: sin(pi / |x|).
    radius = points[0, 0, 0].norm()
    torch.testing.assert_close(features[0, 0, 0, 3], torch.sin(math.pi / radius))


def test_the_latent_is_standard_normal_per_sample_and_reproducible():
    emb = InvertedSphereEmbedder(num_frequencies=1, latent_dim=64)
    z1 = emb.scene(torch.zeros(256, 0, 8), generator=torch.Generator().manual_seed(3))
    z2 = emb.scene(torch.zeros(256, 0, 8), generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(z1, z2)
    assert abs(float(z1.mean())) < 0.05 and abs(float(z1.std()) - 1.0) < 0.05
    assert not torch.equal(z1[0], z1[1])


def test_without_latent_and_bad_inputs():
    emb = InvertedSphereEmbedder(num_frequencies=2, latent_dim=0)
    assert emb.out_channels == 16 and emb.scene(torch.zeros(2, 0, 4)) is None
    assert emb(torch.ones(1, 2, 3, 3), None).shape == (1, 2, 3, 16)
    with_latent = InvertedSphereEmbedder(num_frequencies=2, latent_dim=3)
    with pytest.raises(ValueError, match=r"z_bg \[B, 3\]"):
        with_latent(torch.ones(1, 2, 3, 3), None)
    with pytest.raises(ValueError, match=r"points must be \[B, R, S, 3\]"):
        with_latent(torch.ones(2, 3, 3), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="sphere_radius must be positive"):
        InvertedSphereEmbedder(sphere_radius=0.0)
