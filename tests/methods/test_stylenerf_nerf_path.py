"""NeRF path regularization pieces on hand-made tensors: the pixel grid, gathering, compositing, the penalty."""

from __future__ import annotations

import pytest
import torch

from gan3d.methods.stylenerf.nerf_path import (
    composite_points,
    gather_pixels,
    nerf_path_penalty,
    nerf_path_rgb,
    regularization_pixels,
)
from gan3d.renderers.stylenerf_upsampler import StyleNeRFUpsampler


def test_grid_is_strided_with_one_random_offset_per_axis():
    generator = torch.Generator().manual_seed(7)
    indices, pixels = regularization_pixels(3, 64, 16, generator=generator)
    offsets = (torch.rand(3, 2, generator=torch.Generator().manual_seed(7)) * 4).floor().long()
    steps = torch.arange(0, 64, 4)
    for b in range(3):
        x, y = steps + offsets[b, 0], steps + offsets[b, 1]
        expected = (x[None, :] + 64 * y[:, None]).flatten()  # grid rows outer, as the official reshape
        assert torch.equal(indices[b], expected)
    assert indices.shape == (3, 256) and int(indices.max()) < 64 * 64
    # Pixel centres of those pixels in normalized image coordinates (x right, y down).
    torch.testing.assert_close(pixels[..., 0], (indices % 64 + 0.5) / 64)
    torch.testing.assert_close(pixels[..., 1], (indices // 64 + 0.5) / 64)


def test_the_grid_covers_every_offset_and_needs_a_multiple():
    seen = set()
    for seed in range(40):
        indices, _ = regularization_pixels(1, 32, 16, generator=torch.Generator().manual_seed(seed))
        seen.add(int(indices[0, 0]))
    assert seen == {0, 1, 32, 33}  # pace 2: offsets 0 or 1 in x and in y
    with pytest.raises(ValueError, match="multiple of the grid 16"):
        regularization_pixels(1, 40, 16)


def test_gather_pixels_by_hand():
    image = torch.arange(2 * 2 * 3 * 4, dtype=torch.float32).view(2, 2, 3, 4)  # x + 4 y + 12 c + 24 b
    indices = torch.tensor([[0, 5, 11], [3, 4, 8]])
    expected = torch.tensor([[[0.0, 5.0, 11.0], [12.0, 17.0, 23.0]], [[27.0, 28.0, 32.0], [39.0, 40.0, 44.0]]])
    torch.testing.assert_close(gather_pixels(image, indices), expected)
    with pytest.raises(ValueError, match="same B"):
        gather_pixels(image, indices[:1])


def test_composite_and_penalty_by_hand():
    values = torch.tensor([1.0, 2.0, 3.0]).view(1, 1, 1, 3).expand(1, 2, 1, 3).clone()
    values[:, 1] *= 10
    weights = torch.tensor([0.5, 0.25, 0.25]).view(1, 1, 3, 1)
    torch.testing.assert_close(composite_points(values, weights), torch.tensor([[[1.75], [17.5]]]))
    upsampled = torch.tensor([[[1.0, 0.0], [2.0, 1.0], [0.0, 0.0]]])  # [B=1, C=3, N=2]
    nerf = torch.tensor([[[0.0, 0.0], [0.0, 1.0], [1.0, 0.0]]])
    # pixel 0: 1 + 4 + 1 = 6, pixel 1: 0 -> mean 3, times 2.
    torch.testing.assert_close(nerf_path_penalty(upsampled, nerf), torch.tensor([6.0]))
    with pytest.raises(ValueError, match="weights must be"):
        composite_points(values, weights[:, :, :2])


@torch.no_grad()
def test_nerf_rgb_runs_every_sample_through_the_per_pixel_path():
    torch.manual_seed(0)
    up = StyleNeRFUpsampler(in_channels=7, in_resolution=8, image_resolution=16, w_dim=4, channel_base=128,
                            channel_max=8).eval()
    features, ws = torch.randn(2, 5, 6, 7), torch.randn(2, up.num_ws, 4)  # 5 rays x 6 samples
    weights = torch.rand(2, 5, 6, 1)
    rgb = nerf_path_rgb(up, features, weights, ws, alpha=1.0)
    for b, r in ((0, 0), (1, 4)):
        points = features[b:b + 1, r].permute(0, 2, 1).unsqueeze(-1)  # [1, 7, 6, 1]
        per_sample = up.pixelwise(points, ws[b:b + 1])[0, :, :, 0]  # [3, 6]
        torch.testing.assert_close(rgb[b, :, r], (per_sample * weights[b, r, :, 0]).sum(-1), atol=1e-5, rtol=1e-5)
