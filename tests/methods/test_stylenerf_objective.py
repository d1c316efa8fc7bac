"""StyleNeRF's objective on the synthetic recipe: one training step's gradients reach every parameter, style
mixing over all rows, the NeRF path regularization on the image's own scenes, path length through the mapping
network, the reals at the current output side."""

from __future__ import annotations

import pytest
import torch

from gan3d.core.generator import build_generator
from gan3d.core.objective import LossInputs
from gan3d.core.registry import get_registry
from gan3d.methods.stylenerf.nerf_path import gather_pixels, nerf_path_penalty, nerf_path_rgb, regularization_pixels
from gan3d.methods.stylenerf.objective import StyleNeRFObjective
from gan3d.methods.stylenerf.recipe import stylenerf_recipe


@pytest.fixture(scope="module")
def parts():
    torch.manual_seed(0)
    recipe = stylenerf_recipe("synthetic")
    registry = get_registry()
    G = build_generator(recipe, registry).train()
    D = registry.build("discriminator", "stylenerf", **recipe.modules["discriminator"].kwargs)
    loss = registry.build("loss", "stylenerf", **recipe.modules["loss"].kwargs)
    return G, D, loss


def inputs(G, batch: int = 4, seed: int = 0) -> LossInputs:
    g = torch.Generator().manual_seed(seed)
    reals = torch.rand(batch, 3, 64, 64, generator=g) * 2 - 1
    return LossInputs(reals, torch.zeros(batch, 25), torch.randn(batch, G.z_dim, generator=g),
                      gen_cameras=G.pose_sampler(batch, generator=g), resolution=G.render_resolution,
                      image_resolution=G.output_resolution(), generator=g)


def test_one_training_step_reaches_every_parameter(parts):
    G, D, loss = parts
    G.set_training_step(0, 0.8)  # fading in 64 px: alpha 0.75, both levels, the NeRF path regularization on
    assert G.upsampler.resolution_at() == 64 and loss.nerf_path_active(G)
    x = inputs(G)
    G.zero_grad(set_to_none=True)
    g_terms = loss.generator_loss(G, D, x)
    assert set(g_terms) == {"g_adv", "nerf_path", "loss", "fade"} and g_terms["nerf_path"] > 0
    assert float(g_terms["fade"]) == pytest.approx(0.75)
    g_terms["loss"].backward()
    reg = loss.generator_regularizer(G, x)
    reg["loss"].backward()
    missing = [n for n, p in G.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, missing
    D.zero_grad(set_to_none=True)
    d_terms = loss.discriminator_loss(G, D, x)
    (d_terms["loss"] + loss.discriminator_regularizer(D, x)["loss"]).backward()
    missing = [n for n, p in D.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, missing


def test_path_length_trains_the_mapping_network_too(parts):
    """StyleGAN2-ADA's Gpl differentiates with respect to the mapped ws, whose graph reaches the mapping network."""
    G, _, loss = parts
    G.set_training_step(0, 0.0)
    G.zero_grad(set_to_none=True)
    before = float(loss.path_length.mean_path_length)
    reg = loss.generator_regularizer(G, inputs(G, batch=4))
    reg["loss"].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in G.mapper.parameters())
    # The running mean moved by decay 0.01 towards the lengths; weight 2 times the interval 4.
    after = float(loss.path_length.mean_path_length)
    assert after == pytest.approx(before + 0.01 * (float(reg["pl_length"]) - before), rel=1e-5)
    assert float(reg["loss"].detach()) == pytest.approx(float(reg["pl_penalty"]) * 2 * 4, rel=1e-5)
    G.set_training_step(0, 10.0)


def test_style_mixing_replaces_every_row_from_the_cutoff(parts):
    G, _, _ = parts
    loss = StyleNeRFObjective(style_mixing_prob=1.0)
    z = torch.randn(3, G.z_dim)
    plain = G.mapping(z)
    for seed in range(6):
        ws = loss.mapping(G, z, torch.Generator().manual_seed(seed))
        same = (ws - plain).abs().amax(dim=(0, 2)) == 0
        cutoff = int(same.float().argmin())  # the first row that changed
        assert 1 <= cutoff <= G.num_ws - 1 and same[:cutoff].all() and not same[cutoff:].any()
    torch.testing.assert_close(StyleNeRFObjective(style_mixing_prob=0.0).mapping(G, z), plain)


def test_nerf_path_reuses_the_images_scenes_and_compares_at_its_pixels(parts):
    G, _, loss = parts
    G.set_training_step(0, 0.6)
    x = inputs(G, batch=2, seed=3)
    state = torch.get_rng_state()
    with torch.no_grad():
        out = G.synthesis(loss.mapping(G, x.z), x.gen_cameras, requests={"scene"})
        G.eval()  # no noise or jitter: the same rays render the same
        penalty = loss.nerf_path(G, out, torch.Generator().manual_seed(5))
        indices, pixels = regularization_pixels(2, 64, 16, generator=torch.Generator().manual_seed(5))
        render = G.render_pixels(out.ws, out.cameras, pixels, requests={"intervals"}, scenes=out.aux["scenes"])
        nerf = nerf_path_rgb(G.upsampler, render.interval_features, render.interval_weights,
                             G.rows(out.ws, "upsampler"))
        expected = nerf_path_penalty(gather_pixels(out.image, indices), nerf)
        fresh = G.render_pixels(out.ws, out.cameras, pixels, requests={"intervals"},
                                generator=torch.Generator().manual_seed(9))
        G.train()
    torch.set_rng_state(state)
    torch.testing.assert_close(penalty, expected)
    assert penalty.shape == (2,) and (penalty > 0).all()
    # Another background latent changes the rays: the scenes of the image are what make them comparable.
    assert not torch.allclose(fresh.features, render.features)
    G.set_training_step(0, 10.0)


def test_before_the_fade_in_the_images_and_reals_are_at_16_px_and_no_path_term(parts):
    G, D, loss = parts
    G.set_training_step(0, 0.0)
    x = inputs(G)
    assert x.image_resolution == 16 and not loss.nerf_path_active(G)
    real = loss.real_input(x)
    assert real.image.shape == (4, 3, 16, 16) and real.image_raw is None
    terms = loss.generator_loss(G, D, x)
    assert "nerf_path" not in terms and torch.isfinite(terms["loss"])
    G.set_training_step(0, 10.0)
    assert not loss.nerf_path_active(G.eval()) and loss.nerf_path_active(G.train())


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="style_mixing_prob"):
        StyleNeRFObjective(style_mixing_prob=1.5)
    with pytest.raises(ValueError, match="pl_interval"):
        StyleNeRFObjective(pl_interval=0)
    with pytest.raises(ValueError, match="nerf_path_grid"):
        StyleNeRFObjective(nerf_path_grid=-1)
