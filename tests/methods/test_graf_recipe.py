"""GRAF's recipes: the released configurations as data (poses, principal point, lr halvings, R1, data
preprocessing), the published totals when built by Generator v2, and a training step of the synthetic variant."""

import math

import pytest
import torch

from gan3d.core.generator import build_generator, build_module
from gan3d.core.objective import LossInputs
from gan3d.core.recipe import Recipe
from gan3d.core.registry import get_registry
from gan3d.methods.graf.recipe import VARIANTS, graf_recipe

#: tools/official/graf_parameter_counts.py on autonomousvision/graf c50d342 (every released config).
OFFICIAL_G, OFFICIAL_D = 677_764, 2_635_776


@pytest.mark.parametrize("variant", [*VARIANTS, "synthetic"])
def test_recipes_round_trip_and_leave_wired_options_out(variant):
    recipe = graf_recipe(variant)
    assert Recipe.from_json(recipe.to_json()) == recipe and recipe.variant == variant
    assert "num_ws" not in recipe.modules["stochasticity_mapper"].kwargs
    assert not {"in_channels", "w_dim"} & set(recipe.modules["feature_decoder"].kwargs)
    assert get_registry().get("method", "graf")(variant) == recipe


def test_carla_and_celeba_facts():
    carla, celeba = graf_recipe(), graf_recipe("celeba64")
    assert carla.variant == "carla" and carla.generator["render_resolution"] == 128
    pose = carla.modules["pose_sampler"].kwargs
    assert pose["yaw_range"] == pytest.approx([math.pi, 3 * math.pi])  # u in [0, 1]: every azimuth
    assert pose["polar_range"] == pytest.approx([0.0, math.radians(85)], abs=1e-6)
    assert pose["principal_point"] == [0.5 + 0.5 / 128] * 2  # rays through pixel indices
    assert carla.modules["volume_renderer"].kwargs["white_back"] is True
    c = celeba.modules["pose_sampler"].kwargs
    assert c["radius_range"] == [9.5, 10.5] and c["polar_range"] == pytest.approx([math.radians(70), math.radians(85)])
    assert c["principal_point"] == [0.5 + 0.5 / 64] * 2
    assert celeba.modules["point_sampler"].kwargs["range_reference_radius"] == 10.5
    assert graf_recipe("celebahq256").modules["loss"].kwargs["min_scale"] == 0.125
    assert graf_recipe("carla512").generator["render_resolution"] == 512
    # MultiStepLR: halvings after 50k, 100k and 200k iterations.
    stages = carla.training["stages"]
    assert [s.get("until_step") for s in stages] == [50_000, 100_000, 200_000, None]
    assert [s["g_lr"] for s in stages] == pytest.approx([5e-4, 2.5e-4, 1.25e-4, 6.25e-5])
    assert [s["d_lr"] for s in stages] == pytest.approx([1e-4, 5e-5, 2.5e-5, 1.25e-5])
    assert carla.training["optimizer"] == "rmsprop" and carla.training["ema_beta"] == 0.999
    # graf/config.py get_data: Resize(imsize); celebA CenterCrop(108) first, with flips.
    assert [s["op"] for s in celeba.data["preprocessing"]] == ["center_crop", "resize"]
    assert celeba.data["preprocessing"][0]["size"] == 108 and celeba.training["xflip"]
    assert carla.data["preprocessing"] == [{"op": "resize", "size": "training", "fit": "short_side",
                                            "filter": "bilinear"}] and not carla.training["xflip"]
    with pytest.raises(ValueError, match="variants"):
        graf_recipe("cub")


def test_published_configuration_totals():
    registry = get_registry()
    for variant in ("carla", "celeba64", "celebahq256"):
        recipe = graf_recipe(variant)
        G = build_generator(recipe, registry)
        D = build_module(recipe, "discriminator", registry)
        assert sum(p.numel() for p in G.parameters()) == OFFICIAL_G, variant
        assert sum(p.numel() for p in D.parameters()) == OFFICIAL_D, variant
        assert G.ws_layout["feature_decoder"] == slice(0, 1) and G.mapper.num_ws == 1
        assert G.decoder.in_channels == 63 and G.decoder.w_dim == 256  # wired from the embedder and mapper
    loss = build_module(graf_recipe("celeba64"), "loss", registry)
    assert loss.r1_gamma == pytest.approx(20 / 1024)


def test_synthetic_variant_trains_one_step():
    torch.manual_seed(0)
    recipe = graf_recipe("synthetic")
    registry = get_registry()
    G = build_generator(recipe, registry).train()
    D, loss = build_module(recipe, "discriminator", registry), build_module(recipe, "loss", registry)
    g = torch.Generator().manual_seed(0)
    inputs = LossInputs(real_images=torch.rand(2, 3, 64, 64) * 2 - 1, real_labels=torch.zeros(2, 25),
                        z=torch.randn(2, G.z_dim), step=5000, image_resolution=64, generator=g)
    d_terms = loss.discriminator_loss(G, D, inputs)
    d_terms["loss"].backward()
    assert all(p.grad is not None for p in D.parameters())
    g_terms = loss.generator_loss(G, D, inputs)
    g_terms["loss"].backward()
    for name, p in G.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    with torch.no_grad():
        full = G.eval()(torch.randn(1, G.z_dim), resolution=24)  # whole images at any size
    assert full.image.shape == (1, 3, 24, 24) and G.render_resolution == 64


def test_density_noise_anneals_with_the_training_step():
    """decrease_nerf_noise: std 1 - it / 5000 over the first 5000 iterations (then 2e-4 in GRAF, 0 here)."""
    G = build_generator(graf_recipe("synthetic"), get_registry())
    for step, std in ((0, 1.0), (1000, 0.8), (4999, 1 / 5000), (5000, 0.0), (10**6, 0.0)):
        G.set_training_step(step, step * 8 / 1000)
        assert G.renderer.current_noise_std == pytest.approx(std)


def test_data_preprocessing_is_grafs_get_data():
    """celebA: CenterCrop(108), then Resize(imsize) of the short side (torchvision semantics); carla: Resize alone."""
    import numpy as np

    from gan3d.core.data.preprocessing import Preprocessing

    image = np.zeros((218, 178, 3), dtype=np.uint8)  # a CelebA-sized image, the 108 x 108 centre white
    image[55:163, 35:143] = 255
    celeba = Preprocessing(graf_recipe("celeba64").data["preprocessing"]).resolved(64)
    out = celeba(image, np.random.default_rng(0))
    assert out.shape == (64, 64, 3) and int(out.min()) == 255  # exactly the centre crop, resized
    carla = Preprocessing(graf_recipe("carla64").data["preprocessing"]).resolved(64)
    assert carla(np.zeros((256, 256, 3), dtype=np.uint8), np.random.default_rng(0)).shape == (64, 64, 3)


def test_shape_cube_covers_the_sampled_scene():
    """Shape extraction samples the embedder's bounds: GRAF's points are unscaled and the scene reaches far - r_max
    beyond the origin (CARLA 2.5, celebA 2.0); the extent changes no encoding."""
    from gan3d.embedders.point_embedders.coordinate import CoordinateEmbedder
    from gan3d.evaluators.visualizers.field_volume import generator_cube

    registry = get_registry()
    carla = build_generator(graf_recipe("carla64"), registry)
    assert generator_cube(carla) == (5.0, (0.0, 0.0, 0.0))
    assert build_generator(graf_recipe("celeba64"), registry).embedder.bounds[1] == (2.0, 2.0, 2.0)
    assert build_generator(graf_recipe("synthetic"), registry).embedder.bounds[1] == (1.0, 1.0, 1.0)
    points = torch.randn(1, 2, 3, 3)
    torch.testing.assert_close(carla.embedder(points), CoordinateEmbedder(num_frequencies=10)(points))
    with pytest.raises(ValueError, match="scene_extent"):
        CoordinateEmbedder(scene_extent=-1.0)
