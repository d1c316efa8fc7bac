"""EpiGRAF's recipes: the released configurations as data (R1 choice, schedules), the published totals when
built with Generator v2's wiring, and a training step of the synthetic variant."""

import math

import pytest
import torch

from gan3d.core.objective import LossInputs
from gan3d.core.recipe import Recipe
from gan3d.core.registry import get_registry
from gan3d.methods.epigraf.recipe import PENDING_OPTIONS, VARIANTS, epigraf_recipe
from gan3d.samplers.spherical_pose_sampler import SphericalPoseSampler

OFFICIAL_G, OFFICIAL_D = 28_983_507, {"ffhq512": 27_490_816, "cats256": 27_444_480}


@pytest.mark.parametrize("variant", [*VARIANTS, "synthetic"])
def test_recipes_round_trip_and_leave_wired_options_out(variant):
    recipe = epigraf_recipe(variant)
    assert Recipe.from_json(recipe.to_json()) == recipe and recipe.variant == variant
    assert "num_ws" not in recipe.modules["stochasticity_mapper"].kwargs
    assert "w_dim" not in recipe.modules["point_embedder"].kwargs
    assert "in_channels" not in recipe.modules["feature_decoder"].kwargs


def test_released_facts():
    ffhq, cats = epigraf_recipe(), epigraf_recipe("cats256")
    assert ffhq.modules["loss"].kwargs["r1_gamma"] == 0.1 and cats.modules["loss"].kwargs["r1_gamma"] == 0.05
    assert ffhq.modules["loss"].kwargs["min_scale"] == 0.125 and cats.modules["loss"].kwargs["min_scale"] == 0.25
    assert ffhq.training["ema_kimg"] == 20.0 and ffhq.training["batch_size"] == 64
    assert ffhq.modules["point_embedder"].kwargs["resolution"] == 512
    assert cats.modules["point_embedder"].kwargs["resolution"] == 512  # the tri-plane stays 512 (model config)
    assert ffhq.modules["point_embedder"].kwargs["box_warp"] == pytest.approx(0.4)
    assert ffhq.generator["num_importance"] == 48 and ffhq.generator["render_resolution"] == 512
    with pytest.raises(ValueError, match="variants"):
        epigraf_recipe("plants256")


def test_published_configuration_totals(build_wired):
    G, D, _ = build_wired(epigraf_recipe("ffhq512"), PENDING_OPTIONS)
    assert G.mapper.num_ws == 16
    assert sum(p.numel() for p in G.parameters()) == OFFICIAL_G
    assert sum(p.numel() for p in D.parameters()) == OFFICIAL_D["ffhq512"]
    # Cats 256: the same generator (tri-plane 512 for every data set), two size-keeping D blocks instead of 3.
    cats = epigraf_recipe("cats256")
    assert cats.modules["point_embedder"].kwargs == epigraf_recipe("ffhq512").modules["point_embedder"].kwargs
    D = get_registry().build("discriminator", "epigraf_patch", **cats.modules["discriminator"].kwargs)
    assert sum(p.numel() for p in D.parameters()) == OFFICIAL_D["cats256"]


def test_synthetic_variant_trains_one_step(build_wired):
    torch.manual_seed(0)
    G, D, loss = build_wired(epigraf_recipe("synthetic"), PENDING_OPTIONS)
    data_cams = SphericalPoseSampler(yaw_strategy="normal", yaw_stddev=0.3, polar_strategy="normal", polar_stddev=0.155,
                                     radius=2.7, pivot=[0.0, 0.0, 0.2], orbit_center=[0.0, 0.0, 0.2],
                                     focal=4.2647)(16, generator=torch.Generator().manual_seed(1))
    G.pose_sampler.bind_dataset_poses(data_cams.label)
    g = torch.Generator().manual_seed(0)
    inputs = LossInputs(real_images=torch.rand(4, 3, 64, 64) * 2 - 1, real_labels=data_cams.label[:4],
                        z=torch.randn(4, G.z_dim), kimg=0.5, generator=g)
    g_terms = loss.generator_loss(G, D, inputs)
    g_terms["loss"].backward()
    for name, p in G.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    d_terms = loss.discriminator_loss(G, D, inputs)
    d_terms["loss"].backward()
    reg = loss.discriminator_regularizer(D, inputs)
    reg["loss"].backward()
    assert math.isfinite(float(reg["r1"]))
    with torch.no_grad():
        full = G.eval()(torch.randn(1, G.z_dim), resolution=24)  # whole images at any size
    assert full.image.shape == (1, 3, 24, 24) and G.render_resolution == 64
