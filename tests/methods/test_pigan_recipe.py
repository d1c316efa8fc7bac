"""pi-GAN's recipes: JSON round trip, the published values, registered modules, and one tiny training
step through the objective with gradients reaching every generator and discriminator parameter."""

from __future__ import annotations

import math

import pytest
import torch

from gan3d.core.generator import build_generator
from gan3d.core.objective import LossInputs
from gan3d.core.recipe import SLOTS, Recipe
from gan3d.core.registry import RegistryError, check_kwargs, get_registry
from gan3d.methods.pigan.recipe import VARIANTS, pigan_recipe

TINY_RESOLUTION = 8


def tiny_pigan_recipe(variant: str | None = None) -> Recipe:
    """The pi-GAN recipe shrunk for CPU tests: z 8, FiLM width 16, 2 FiLM layers, 8x8 render, 4 + 4
    samples, a 3-level discriminator."""
    return pigan_recipe(variant).overrides([
        "stochasticity_mapper.z_dim=8",
        "stochasticity_mapper.hidden_dim=16",
        "stochasticity_mapper.film_dim=16",
        "stochasticity_mapper.num_ws=3",
        "feature_decoder.hidden_dim=16",
        "feature_decoder.num_layers=2",
        "point_sampler.num_samples=4",
        "generator.num_importance=4",
        f"generator.render_resolution={TINY_RESOLUTION}",
        "discriminator.channels=[8, 8, 12]",
        "discriminator.latent_dim=8",
        "loss.batch_split=1",
    ])


def _missing(recipe: Recipe) -> list[str]:
    registry = get_registry()
    missing = []
    for slot, spec in recipe.modules.items():
        try:
            registry.entry(slot, spec.name)
        except RegistryError:
            missing.append(f"{slot} {spec.name!r}")
    return missing


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_recipe_round_trips_through_json(variant):
    recipe = pigan_recipe(variant)
    assert recipe.method == "pigan" and recipe.variant == variant
    assert set(recipe.modules) == set(SLOTS)
    again = Recipe.from_json(recipe.to_json())
    assert again == recipe
    assert again.to_json() == recipe.to_json()


def test_default_is_celeba_and_unknown_variants_are_refused():
    assert pigan_recipe() == pigan_recipe("celeba")
    with pytest.raises(ValueError, match="celeba, carla, cats"):
        pigan_recipe("ffhq")


def test_celeba_values_are_the_published_ones():
    r = pigan_recipe("celeba")
    m = {slot: spec.kwargs for slot, spec in r.modules.items()}
    assert m["stochasticity_mapper"] == {"z_dim": 256, "hidden_dim": 256, "film_dim": 256}
    assert m["feature_decoder"] == {"num_layers": 8}
    # Wired by the generator: 9 latent rows (8 FiLM layers + colour), the FiLM width, the point input.
    G = build_generator(r)
    assert (G.mapper.num_ws, G.decoder.hidden_dim, G.decoder.in_channels) == (9, 256, 3)
    assert m["point_embedder"] == {"box_warp": 0.24}
    assert m["pose_sampler"]["fov"] == 12.0 and m["pose_sampler"]["radius"] == 1.0
    assert m["pose_sampler"]["yaw_stddev"] == 0.3 and m["pose_sampler"]["polar_stddev"] == 0.155
    assert m["pose_sampler"]["yaw_mean"] == m["pose_sampler"]["polar_mean"] == math.pi / 2
    assert (m["point_sampler"]["ray_start"], m["point_sampler"]["ray_end"]) == (0.88, 1.12)
    assert m["point_sampler"]["num_samples"] == 12 and r.generator["num_importance"] == 12
    assert r.generator["render_resolution"] == 64 and r.generator["image_range"] == "unit"
    assert m["volume_renderer"]["density_activation"] == "relu" and m["volume_renderer"]["white_back"] is False
    assert m["volume_renderer"]["last_back"] is False and m["volume_renderer"]["eval_last_back"] is True
    assert m["volume_renderer"]["noise_std"] == 1.0 and m["volume_renderer"]["noise_anneal_steps"] == 5000
    assert m["loss"] == {"r1_gamma": 0.2, "r1_interval": 1, "pos_lambda": 15.0, "z_lambda": 0.0,
                         "topk_interval": 2000, "topk_v": 0.6, "batch_split": 2}
    t = r.training
    assert (t["batch_size"], t["g_lr"], t["d_lr"]) == (56, 6e-5, 2e-4)
    assert t["g_betas"] == t["d_betas"] == [0.0, 0.9]
    assert t["xflip"] is True and pigan_recipe("carla").training["xflip"] is False
    assert t["ema_beta"] == 0.999 and t["g_grad_clip"] == t["d_grad_clip"] == 10.0
    assert t["stages"] == [{"until_step": 200_000, "resolution": 64, "batch_size": 56, "g_lr": 6e-5,
                            "d_lr": 2e-4, "fade_steps": 10_000}]
    assert t["total_kimg"] == pytest.approx(200_000 * 56 / 1000)


def test_carla_curriculum_has_three_resolutions():
    t = pigan_recipe("carla").training
    assert [(s["until_step"], s["resolution"], s["batch_size"]) for s in t["stages"]] == [
        (10_000, 32, 30), (55_000, 64, 14), (200_000, 128, 10)]
    assert t["total_kimg"] == pytest.approx((10_000 * 30 + 45_000 * 14 + 145_000 * 10) / 1000)
    assert pigan_recipe("carla").generator["render_resolution"] == 32


def test_the_discriminator_takes_every_stage_resolution():
    for variant in VARIANTS:
        recipe = pigan_recipe(variant)
        spec = recipe.modules["discriminator"]
        d = get_registry().build("discriminator", spec.name, **spec.kwargs)
        for stage in recipe.training["stages"]:
            d.start_index(stage["resolution"])  # raises when a stage resolution is not accepted


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_recipe_names_only_registered_modules_with_their_options(variant):
    recipe = pigan_recipe(variant)
    missing = _missing(recipe)
    if missing:
        pytest.skip(f"not installed yet: {', '.join(missing)}")
    registry = get_registry()
    for slot, spec in recipe.modules.items():
        check_kwargs(registry.get(slot, spec.name), spec.kwargs, f"{slot} {spec.name!r}")


def test_loss_and_discriminator_built_from_the_recipe_read_its_options():
    recipe = pigan_recipe()
    registry = get_registry()
    loss = registry.build("loss", "pigan", **recipe.modules["loss"].kwargs)
    assert (loss.pos_lambda, loss.topk_interval, loss.topk_v) == (15.0, 2000, 0.6)
    assert (loss.r1_gamma, loss.r1_interval) == (0.2, 1)
    cats = pigan_recipe("cats")
    tiny_d = tiny_pigan_recipe("cats").modules["discriminator"]
    d = registry.build("discriminator", tiny_d.name, **tiny_d.kwargs)
    assert d.pose_dim == 0 and cats.modules["loss"].kwargs["pos_lambda"] == 0.0


def test_one_generator_and_one_discriminator_step_reach_every_parameter():
    recipe = tiny_pigan_recipe()
    missing = _missing(recipe)
    if missing:
        pytest.skip(f"not installed yet: {', '.join(missing)}")
    registry = get_registry()
    torch.manual_seed(0)
    G = build_generator(recipe).train()
    D = registry.build("discriminator", recipe.modules["discriminator"].name, **recipe.modules["discriminator"].kwargs)
    loss = registry.build("loss", recipe.modules["loss"].name, **recipe.modules["loss"].kwargs)
    rng = torch.Generator().manual_seed(0)
    batch = 3

    def inputs() -> LossInputs:
        return LossInputs(
            real_images=torch.rand(batch, 3, TINY_RESOLUTION, TINY_RESOLUTION, generator=rng) * 2 - 1,
            real_labels=torch.zeros(batch, 25),
            z=torch.randn(batch, G.z_dim, generator=rng),
            gen_cameras=G.pose_sampler(batch, generator=rng),
            resolution=TINY_RESOLUTION, alpha=0.5, step=0,
        )

    g_terms = loss.generator_loss(G, D, inputs())
    assert {"g_adv", "g_pos", "loss"} <= set(g_terms)
    D.zero_grad(set_to_none=True)
    g_terms["loss"].backward()
    no_grad = [n for n, p in G.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not no_grad, f"generator parameters without gradient: {no_grad}"
    assert sum(p.numel() for p in G.parameters()) > 0

    G.zero_grad(set_to_none=True)
    d_terms = loss.discriminator_loss(G, D, inputs())
    assert {"d_fake", "d_real", "d_pos", "loss"} <= set(d_terms)
    d_terms["loss"].backward()
    assert loss.regularize_discriminator_now(0)
    reg = loss.discriminator_regularizer(D, inputs())
    reg["loss"].backward()
    assert reg["r1"].item() > 0
    assert all(p.grad is None for p in G.parameters())  # the D step leaves G alone
    start = D.start_index(TINY_RESOLUTION)
    unused = {f"from_rgb.{i}." for i in range(len(D.from_rgb)) if i not in (start, start + 1)}
    no_grad = [n for n, p in D.named_parameters()
               if not any(n.startswith(u) for u in unused) and (p.grad is None or not p.grad.abs().sum() > 0)]
    assert not no_grad, f"discriminator parameters without gradient: {no_grad}"
    for terms in (g_terms, d_terms, reg):
        assert all(torch.isfinite(v).all() for v in terms.values())
