"""The assembled generator on tiny modules: shapes, chunking, hierarchical pass, gradients."""

from __future__ import annotations

import pytest
import torch

from gan3d.core.generator import build_generator, feature_image, merge_samples
from gan3d.core.registry import RegistryError
from gan3d.core.types import Field, RaySamples


def test_forward_shapes_and_gradients(tiny_registry, tiny_recipe):
    G = build_generator(tiny_recipe(), tiny_registry)
    out = G(torch.randn(2, G.z_dim), requests={"samples", "weights", "scene"})
    assert out.image.shape == (2, 3, 8, 8)
    assert out.depth.shape == (2, 1, 8, 8)
    assert out.alpha.shape == (2, 1, 8, 8)
    assert out.ws.shape == (2, 2, 8)
    assert out.aux["coarse_field"].density.shape == (2, 64, 4, 1)
    out.image.square().mean().backward()
    for name, p in G.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_depth_lies_between_the_samples(tiny_registry, tiny_recipe):
    G = build_generator(tiny_recipe(), tiny_registry)
    out = G(torch.randn(3, G.z_dim))
    # depth is the weight-averaged sample depth: at most ray_end times the accumulated opacity
    assert torch.all(out.depth <= 3.0 * out.alpha + 1e-5)
    assert torch.all(out.alpha <= 1 + 1e-5)


def test_chunked_rendering_equals_unchunked(tiny_registry, tiny_recipe):
    G = build_generator(tiny_recipe(), tiny_registry)
    z = torch.randn(2, G.z_dim)
    cams = G.pose_sampler(2, generator=torch.Generator().manual_seed(0))
    full = G(z, cams)
    G.chunk = 7  # does not divide 64 rays
    chunked = G(z, cams)
    torch.testing.assert_close(full.image, chunked.image)
    torch.testing.assert_close(full.depth, chunked.depth)


def test_hierarchical_pass_merges_sorted_samples(tiny_registry, tiny_recipe):
    G = build_generator(tiny_recipe().override("generator.num_importance=2"), tiny_registry)
    out = G(torch.randn(2, G.z_dim), requests={"samples", "weights", "scene"})
    assert out.aux["weights"].shape == (2, 64, 6, 1)
    assert out.aux["fine_samples"].depths.shape == (2, 64, 2, 1)


def test_merge_samples_sorts_by_depth_and_keeps_pairs():
    origins = torch.zeros(1, 1, 3)
    dirs = torch.tensor([[[0.0, 0.0, 1.0]]])
    coarse = RaySamples.along_rays(origins, dirs, torch.tensor([1.0, 3.0]).view(1, 1, 2, 1))
    fine = RaySamples.along_rays(origins, dirs, torch.tensor([2.0, 0.5]).view(1, 1, 2, 1))
    cf = Field(features=torch.tensor([10.0, 30.0]).view(1, 1, 2, 1), density=torch.tensor([1.0, 3.0]).view(1, 1, 2, 1))
    ff = Field(features=torch.tensor([20.0, 5.0]).view(1, 1, 2, 1), density=torch.tensor([2.0, 0.5]).view(1, 1, 2, 1))
    samples, field = merge_samples(coarse, cf, fine, ff)
    assert samples.depths.flatten().tolist() == [0.5, 1.0, 2.0, 3.0]
    assert samples.points[..., 2].flatten().tolist() == [0.5, 1.0, 2.0, 3.0]
    assert field.features.flatten().tolist() == [5.0, 10.0, 20.0, 30.0]
    assert field.density.flatten().tolist() == [0.5, 1.0, 2.0, 3.0]


def test_assembly_errors_are_clear(tiny_registry, tiny_recipe):
    with pytest.raises(RegistryError, match="generator has no option 'render_res'"):
        build_generator(tiny_recipe().override("generator.render_res=4"), tiny_registry)
    with pytest.raises(ValueError, match="render_resolution must be a positive integer"):
        build_generator(tiny_recipe().override("generator.render_resolution=-4"), tiny_registry)
    with pytest.raises(RegistryError, match="point embedder 'hashgrid' is not installed"):
        build_generator(tiny_recipe().override("point_embedder=hashgrid"), tiny_registry)
    with pytest.raises(ValueError, match="the modules read 7 latent rows but the stochasticity mapper gives num_ws=2"):
        recipe = tiny_recipe()
        G = build_generator(recipe, tiny_registry)
        G.decoder.num_ws = 5
        type(G)(G.mapper, G.pose_sampler, G.point_sampler, G.embedder, G.decoder, G.renderer, G.upsampler)


def test_truncation_psi_zero_gives_the_average_latent(tiny_registry, tiny_recipe):
    G = build_generator(tiny_recipe(), tiny_registry)
    G.mapper.w_avg.normal_()
    ws = G.mapping(torch.randn(3, G.z_dim), truncation_psi=0.0)
    torch.testing.assert_close(ws, G.mapper.w_avg.expand_as(ws))


def test_surface_depth_is_one_definition_for_every_depth_mode():
    from gan3d.core.generator import surface_depth

    depth = torch.tensor([1.0, 2.0, 0.1]).view(1, 1, 1, 3)
    alpha = torch.tensor([0.5, 0.8, 0.2]).view(1, 1, 1, 3)
    expected = surface_depth(depth, alpha, "expected")
    assert torch.isnan(expected[..., 0]) and torch.isnan(expected[..., 2])  # alpha <= 0.5: background
    assert expected[..., 1].item() == pytest.approx(2.0 / 0.8)
    normalized = surface_depth(depth, alpha, "normalized_clamped")
    assert normalized[..., 1].item() == pytest.approx(2.0)


def test_generator_output_carries_the_surface_depth(tiny_registry, tiny_recipe):
    G = build_generator(tiny_recipe(), tiny_registry)
    out = G(torch.randn(2, G.z_dim))
    fg = out.alpha > 0.5
    torch.testing.assert_close(out.surface_depth[fg], (out.depth / out.alpha)[fg])
    assert torch.isnan(out.surface_depth[~fg]).all()


def test_feature_image_puts_rays_in_pixel_order_without_a_copy():
    """Ray ``r`` of a ``side x side`` image is pixel ``(r // side, r % side)``; the image is a channels_last
    view of the rays (no copy)."""
    side, batch, channels = 3, 2, 5
    per_ray = torch.randn(batch, side * side, channels)
    image = feature_image(per_ray, side)
    assert image.shape == (batch, channels, side, side)
    for r in range(side * side):
        assert torch.equal(image[:, :, r // side, r % side], per_ray[:, r])
    assert image.data_ptr() == per_ray.data_ptr()
    assert image.is_contiguous(memory_format=torch.channels_last) and not image.is_contiguous()
    with pytest.raises(RuntimeError):
        feature_image(per_ray, 4)  # 9 rays are no 4 x 4 image
