"""The volume renderer composites several fields: fields at shared samples composed by GIRAFFE's operator,
sample sets merged by depth (a background behind a foreground), invalid samples masked out."""

from __future__ import annotations

import math

import pytest
import torch

from gan3d.core.types import Field, FieldSamples, RaySamples
from gan3d.renderers.volume import DensityVolumeRenderer


def _samples(depths: list[float], mask: list[bool] | None = None) -> RaySamples:
    d = torch.tensor(depths).view(1, 1, -1, 1)
    s = RaySamples.along_rays(torch.zeros(1, 1, 3), torch.tensor([[[0.0, 0.0, 1.0]]]), d)
    if mask is not None:
        s.mask = torch.tensor(mask).view(1, 1, -1, 1)
    return s


def _field(sigma: list[float], features: list[list[float]]) -> Field:
    return Field(features=torch.tensor(features).view(1, 1, len(sigma), -1),
                 density=torch.tensor(sigma).view(1, 1, -1, 1))


def _composite(alpha: list[float], features: list[list[float]],
               depths: list[float]) -> tuple[list[float], float, float]:
    """Hand compositing: w_i = a_i prod_{j<i}(1 - a_j); returns (features, depth, transmittance)."""
    t, out, depth = 1.0, [0.0] * len(features[0]), 0.0
    for a, f, d in zip(alpha, features, depths):
        w = a * t
        out = [o + w * x for o, x in zip(out, f)]
        depth += w * d
        t *= 1 - a
    return out, depth, t


def test_fields_on_shared_samples_compose_by_summed_density_and_weighted_features():
    renderer = DensityVolumeRenderer(density_activation="relu", quadrature="last_delta", last_delta=1e10).eval()
    samples = _samples([1.0, 1.5, 2.0])
    # The object is masked out at the first sample (outside its box): its density 4 there must not count.
    obj_samples = _samples([1.0, 1.5, 2.0], mask=[False, True, True])
    obj = _field([4.0, 1.0, -3.0], [[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])  # relu: 0 at the last sample
    bg = _field([0.5, 3.0, 2.0], [[0.0, 1.0], [0.0, 1.0], [0.0, 1.0]])
    render = renderer.render([FieldSamples(obj_samples, obj, "main", "main/0"),
                              FieldSamples(samples, bg, "main", "background/0")])
    sigma = [0.5, 4.0, 2.0]
    feats = [[0.0, 1.0], [1.0 / 4.0, 3.0 / 4.0], [0.0, 1.0]]
    alpha = [1 - math.exp(-s * d) for s, d in zip(sigma, [0.5, 0.5, 1e10])]
    want, depth, transmittance = _composite(alpha, feats, [1.0, 1.5, 2.0])
    assert torch.allclose(render.features.view(-1), torch.tensor(want), atol=1e-6)
    assert torch.allclose(render.depth.view(-1), torch.tensor([depth]), atol=1e-6)
    assert torch.allclose(render.transmittance.view(-1), torch.tensor([transmittance]), atol=1e-6)


def test_a_background_sample_set_is_seen_through_the_foregrounds_transmittance():
    renderer = DensityVolumeRenderer(density_activation="relu", quadrature="last_delta", last_delta=0.25).eval()
    fg_s, bg_s = _samples([1.0, 1.25]), _samples([3.0, 3.5])
    fg, bg = _field([1.0, 2.0], [[1.0], [2.0]]), _field([0.5, 4.0], [[5.0], [7.0]])
    # Given out of order: the renderer sorts the intervals by depth.
    render = renderer.render([FieldSamples(bg_s, bg, "background", "background/0"),
                              FieldSamples(fg_s, fg, "main", "main/0")])
    fg_alpha = [1 - math.exp(-1.0 * 0.25), 1 - math.exp(-2.0 * 0.25)]
    bg_alpha = [1 - math.exp(-0.5 * 0.5), 1 - math.exp(-4.0 * 0.25)]
    fg_out, fg_depth, t_fg = _composite(fg_alpha, [[1.0], [2.0]], [1.0, 1.25])
    bg_out, bg_depth, t_bg = _composite(bg_alpha, [[5.0], [7.0]], [3.0, 3.5])
    assert math.isclose(render.features.item(), fg_out[0] + t_fg * bg_out[0], rel_tol=1e-5)  # NeRF++: fg + T bg
    assert math.isclose(render.depth.item(), fg_depth + t_fg * bg_depth, rel_tol=1e-5)
    assert math.isclose(render.transmittance.item(), t_fg * t_bg, rel_tol=1e-5)
    assert math.isclose(render.alpha.item(), 1 - t_fg * t_bg, rel_tol=1e-5)
    # The weights are the first part's samples' (the background's here), in its own order: T_fg * w_bg.
    w_bg = [bg_alpha[0], bg_alpha[1] * (1 - bg_alpha[0])]
    assert torch.allclose(render.weights.view(-1), torch.tensor([t_fg * w for w in w_bg]), atol=1e-6)


def test_masked_samples_of_one_field_get_no_opacity():
    renderer = DensityVolumeRenderer(density_activation="relu", quadrature="last_delta", last_delta=1e10).eval()
    field = _field([2.0, 2.0, 2.0], [[1.0], [2.0], [3.0]])
    render = renderer(field, _samples([1.0, 2.0, 3.0], mask=[True, False, True]))
    alpha = [1 - math.exp(-2.0), 0.0, 1.0]
    want, depth, _ = _composite(alpha, [[1.0], [2.0], [3.0]], [1.0, 2.0, 3.0])
    assert torch.allclose(render.features.view(-1), torch.tensor(want), atol=1e-6)
    assert render.weights.view(-1)[1].item() == 0.0
    # Unmasked, the middle sample takes weight.
    assert renderer(field, _samples([1.0, 2.0, 3.0])).weights.view(-1)[1].item() > 0.1


def test_depth_from_first_counts_only_the_first_sets_geometry_and_keeps_the_intervals():
    """StyleNeRF: the background behind the foreground adds to the colour but not to depth and opacity (its last
    sample is at infinity); the merged ray's intervals are kept in depth order."""
    renderer = DensityVolumeRenderer(density_activation="relu", quadrature="last_delta", last_delta=0.25,
                                     depth_from="first").eval()
    fg_s, bg_s = _samples([1.0, 1.25]), _samples([3.0, 1e6])
    fg, bg = _field([1.0, 2.0], [[1.0], [2.0]]), _field([0.0, 4.0], [[5.0], [7.0]])
    render = renderer.render([FieldSamples(fg_s, fg, "main", "main/0"),
                              FieldSamples(bg_s, bg, "background", "background/0")])
    fg_alpha = [1 - math.exp(-1.0 * 0.25), 1 - math.exp(-2.0 * 0.25)]
    bg_alpha = [0.0, 1 - math.exp(-4.0 * 0.25)]
    fg_out, fg_depth, t_fg = _composite(fg_alpha, [[1.0], [2.0]], [1.0, 1.25])
    bg_out, _, _ = _composite(bg_alpha, [[5.0], [7.0]], [3.0, 1e6])
    assert math.isclose(render.features.item(), fg_out[0] + t_fg * bg_out[0], rel_tol=1e-5)
    assert math.isclose(render.depth.item(), fg_depth, rel_tol=1e-5)  # not pulled towards 1e6
    assert math.isclose(render.alpha.item(), 1 - t_fg, rel_tol=1e-5)
    assert render.interval_depths.view(-1).tolist() == [1.0, 1.25, 3.0, 1e6]
    torch.testing.assert_close((render.interval_weights * render.interval_features).sum(-2), render.features)
    plain = DensityVolumeRenderer(density_activation="relu", quadrature="last_delta", last_delta=0.25).eval()
    assert plain.render([FieldSamples(fg_s, fg, "main", "main/0"),
                         FieldSamples(bg_s, bg, "background", "background/0")]).depth.item() > 1e5
    with pytest.raises(ValueError, match="depth_from must be one of all, first"):
        DensityVolumeRenderer(depth_from="background")
