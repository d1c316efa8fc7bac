"""The occupancy renderer: compositing of given per-sample opacities, by hand."""

from __future__ import annotations

import pytest
import torch

from gan3d.core.types import Field, RaySamples
from gan3d.renderers.occupancy import OccupancyVolumeRenderer


def rays(depths: list[float]) -> RaySamples:
    d = torch.tensor(depths).view(1, 1, -1, 1)
    return RaySamples.along_rays(torch.zeros(1, 1, 3), torch.tensor([[[0.0, 0.0, 1.0]]]), d)


def test_occupancy_compositing_by_hand():
    occupancy = torch.tensor([0.5, 0.5, 1.0]).view(1, 1, 3, 1).requires_grad_(True)
    features = torch.eye(3).view(1, 1, 3, 3).requires_grad_(True)
    render = OccupancyVolumeRenderer().eval()(Field(features=features, occupancy=occupancy), rays([1.0, 2.0, 3.0]))
    # w = 0.5, 0.5 * 0.5, 1 * 0.5 * 0.5
    torch.testing.assert_close(render.weights.flatten(), torch.tensor([0.5, 0.25, 0.25]))
    torch.testing.assert_close(render.features.flatten(), torch.tensor([0.5, 0.25, 0.25]))
    assert render.alpha.item() == pytest.approx(1.0)
    assert render.depth.item() == pytest.approx(0.5 * 1 + 0.25 * 2 + 0.25 * 3)
    render.features.sum().backward()
    assert occupancy.grad.abs().sum() > 0 and features.grad.abs().sum() > 0


def test_partial_occupancy_normalised_depth_and_white_background():
    occupancy = torch.tensor([0.2, 0.5]).view(1, 1, 2, 1)
    field = Field(features=torch.zeros(1, 1, 2, 3), occupancy=occupancy)
    render = OccupancyVolumeRenderer(white_back=True).eval()(field, rays([1.0, 2.0]))
    w0, w1 = 0.2, 0.8 * 0.5
    assert render.alpha.item() == pytest.approx(w0 + w1)
    assert render.depth.item() == pytest.approx((w0 * 1 + w1 * 2) / (w0 + w1))  # GRAM divides by the total
    torch.testing.assert_close(render.features, torch.full((1, 1, 3), 1 - (w0 + w1)))


def test_a_density_field_names_the_density_renderer():
    field = Field(features=torch.rand(1, 1, 2, 3), density=torch.rand(1, 1, 2, 1))
    with pytest.raises(ValueError, match="reads occupancy fields.*use volume_renderer 'volume'"):
        OccupancyVolumeRenderer()(field, rays([1.0, 2.0]))
