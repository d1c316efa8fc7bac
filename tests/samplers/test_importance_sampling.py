"""Importance (hierarchical) sampling: concentration where the weights are, smoothing, determinism."""

from __future__ import annotations

import pytest
import torch

from gan3d.core.generator import merge_samples
from gan3d.core.types import Field, RaySamples
from gan3d.samplers.importance_sampling import sample_piecewise_constant, smooth_weights
from gan3d.samplers.uniform_point_sampler import UniformPointSampler

S = 10


def coarse_samples(rays: int = 64) -> RaySamples:
    """Evenly spaced depths 1..10 along +z rays from the origin."""
    origins = torch.zeros(1, rays, 3)
    directions = torch.tensor([0.0, 0.0, 1.0]).expand(1, rays, 3)
    depths = torch.linspace(1.0, 10.0, S).expand(1, rays, S).unsqueeze(-1)
    return RaySamples.along_rays(origins, directions, depths)


def weights_at(values: dict[int, float], rays: int = 64) -> torch.Tensor:
    w = torch.zeros(1, rays, S, 1)
    for index, value in values.items():
        w[:, :, index] = value
    return w


def sampler(**kwargs) -> UniformPointSampler:
    return UniformPointSampler(num_samples=S, ray_start=1.0, ray_end=10.0, **kwargs)


def test_one_hot_weight_puts_nearly_all_fine_samples_in_its_bin():
    fine = sampler(smooth_importance_weights=False).importance(
        coarse_samples(), weights_at({4: 1.0}), 32, generator=torch.Generator().manual_seed(0)
    )
    d = fine.depths
    assert d.shape == (1, 64, 32, 1)
    inside = ((d >= 4.5) & (d <= 5.5)).float().mean().item()  # bin of sample 4: between midpoints 4.5, 5.5
    assert inside > 0.99


def test_two_peaks_get_samples_in_proportion():
    fine = sampler(smooth_importance_weights=False).importance(
        coarse_samples(), weights_at({2: 0.25, 7: 0.75}), 64, generator=torch.Generator().manual_seed(1)
    )
    d = fine.depths
    first = ((d >= 2.5) & (d <= 3.5)).float().mean().item()
    second = ((d >= 7.5) & (d <= 8.5)).float().mean().item()
    assert abs(first - 0.25) < 0.02 and abs(second - 0.75) < 0.02


def test_eg3d_smoothing_widens_a_peak_by_one_sample_each_side():
    torch.testing.assert_close(smooth_weights(torch.tensor([0.0, 0.0, 1.0, 0.0, 0.0])),
                               torch.tensor([0.01, 0.51, 1.01, 0.51, 0.01]))
    torch.testing.assert_close(smooth_weights(torch.tensor([1.0, 0.0, 0.0])), torch.tensor([1.01, 0.51, 0.01]))
    fine = sampler().importance(coarse_samples(), weights_at({4: 1.0}), 64, generator=torch.Generator().manual_seed(2))
    d = fine.depths
    # Bins 3, 4, 5 carry 0.51, 1.01, 0.51 of a total 2.03 + 5 * 0.01.
    near = ((d >= 3.5) & (d <= 6.5)).float().mean().item()
    assert abs(near - 2.03 / 2.08) < 0.02
    assert 0.1 < ((d >= 3.5) & (d <= 4.5)).float().mean().item() < 0.4


def test_inverse_cdf_by_hand():
    edges = torch.tensor([0.0, 1.0, 2.0, 4.0])
    weights = torch.tensor([1.0, 0.0, 1.0])
    samples = sample_piecewise_constant(edges, weights, torch.tensor([0.25, 0.5, 0.75]))
    torch.testing.assert_close(samples, torch.tensor([0.5, 1.0, 3.0]), atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="3 bins need 4 edges"):
        sample_piecewise_constant(edges[:3], weights, torch.tensor([0.5]))


def test_fine_depths_are_sorted_in_range_and_carry_no_gradient():
    coarse = coarse_samples()
    w = torch.rand(1, 64, S, 1, generator=torch.Generator().manual_seed(3)).requires_grad_()
    fine = sampler().importance(coarse, w, 16, generator=torch.Generator().manual_seed(4))
    d = fine.depths.squeeze(-1)
    assert (d[..., 1:] >= d[..., :-1]).all()
    assert d.min() >= 1.5 and d.max() <= 9.5  # between the first and last coarse midpoints
    assert not fine.depths.requires_grad
    torch.testing.assert_close(fine.points[..., 2:], fine.depths)  # points on the +z rays


def test_eval_mode_is_deterministic_and_training_is_seeded():
    s = sampler()
    w = weights_at({3: 0.3, 6: 0.7})
    s.eval()
    a, b = s.importance(coarse_samples(), w, 8), s.importance(coarse_samples(), w, 8)
    assert torch.equal(a.depths, b.depths)
    s.train()
    g = torch.Generator
    c = s.importance(coarse_samples(), w, 8, generator=g().manual_seed(5))
    d = s.importance(coarse_samples(), w, 8, generator=g().manual_seed(5))
    e = s.importance(coarse_samples(), w, 8, generator=g().manual_seed(6))
    assert torch.equal(c.depths, d.depths) and not torch.equal(c.depths, e.depths)


def test_merged_with_core_coarse_and_fine_are_sorted():
    coarse = coarse_samples(4)
    fine = sampler().importance(coarse, weights_at({5: 1.0}, 4), 6)
    field = Field(torch.zeros(1, 4, S, 3), density=torch.zeros(1, 4, S, 1))
    fine_field = Field(torch.ones(1, 4, 6, 3), density=torch.ones(1, 4, 6, 1))
    merged, _ = merge_samples(coarse, field, fine, fine_field)
    d = merged.depths.squeeze(-1)
    assert d.shape == (1, 4, S + 6) and (d[..., 1:] >= d[..., :-1]).all()


def test_supports_importance_and_refuses_bad_inputs():
    assert UniformPointSampler.supports_importance
    with pytest.raises(ValueError, match="at least 3 coarse samples"):
        UniformPointSampler(num_samples=2, ray_start=1.0, ray_end=2.0).importance(
            RaySamples.along_rays(torch.zeros(1, 1, 3), torch.ones(1, 1, 3), torch.ones(1, 1, 2, 1)),
            torch.ones(1, 1, 2, 1), 4)
    with pytest.raises(ValueError, match="weights must be"):
        sampler().importance(coarse_samples(), torch.ones(1, 64, S - 1, 1), 4)


def test_eg3d_pdf_takes_interval_weights_as_if_per_sample_and_never_draws_the_last_bin():
    """EG3D's sample_importance gets its ray marcher's S - 1 interval weights (our renderer pads a
    zero): interval (t_i, t_{i+1}) weighs the bin around sample i, and the last bin is unreachable."""
    eg3d = sampler(smooth_importance_weights=False, importance_pdf="eg3d").eval()
    nerf = sampler(smooth_importance_weights=False).eval()
    # Interval 4 is (5, 6): EG3D draws from the bin around sample t=5, [4.5, 5.5].
    d = eg3d.importance(coarse_samples(1), weights_at({4: 1.0}, 1), 16).depths.flatten()
    assert ((d > 4.5 - 1e-4) & (d < 5.5 + 1e-4)).float().mean() > 0.8
    # Only the last interval (9, 10) has weight: EG3D cannot reach it and spreads the samples over
    # its 7 reachable bins [1.5, 8.5] (the 1e-5 floor alone); NeRF's PDF puts them in [8.5, 9.5].
    last = weights_at({8: 1.0}, 1)
    d = eg3d.importance(coarse_samples(1), last, 15).depths.flatten()
    torch.testing.assert_close(d, torch.linspace(1.5, 8.5, 15), atol=1e-4, rtol=0)
    d = nerf.importance(coarse_samples(1), last, 15).depths.flatten()
    assert d.min() >= 1.5 and (d[1:-1] > 8.5 - 1e-3).all()
    with pytest.raises(ValueError, match="importance_pdf"):
        sampler(importance_pdf="mipnerf")


def test_pigan_pdf_adds_its_second_epsilon():
    """pi-GAN adds 1e-5 to the weights before sample_pdf adds its own: on a nearly empty ray the
    floor is twice NeRF's, by hand."""
    pigan = sampler(smooth_importance_weights=False, importance_pdf="pigan").eval()
    w = weights_at({4: 1e-4}, 1)
    d = pigan.importance(coarse_samples(1), w, 5).depths.flatten()
    edges = torch.arange(1.5, 10.0, 1.0)  # midpoints of 1..10: 8 bins around samples 2..9
    bins = w.flatten()[1:-1] + 2e-5
    expected = sample_piecewise_constant(edges, bins - 1e-5, torch.linspace(0, 1, 5))  # it adds 1e-5 itself
    torch.testing.assert_close(d, expected, atol=1e-5, rtol=0)
    nerf = sampler(smooth_importance_weights=False).eval().importance(coarse_samples(1), w, 5).depths.flatten()
    assert (d - nerf).abs().max() > 0.05
