"""EG3D's objective: pose-conditioning swaps, blur schedule, R1 on both dual inputs, the density
regularizer, and one tiny G and D step with gradients reaching every module."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from test_eg3d_helpers import ffhq_like_labels, missing_grads, tiny_loss_inputs  # noqa: E402

from gan3d.core.generator import build_generator, build_module  # noqa: E402
from gan3d.methods.eg3d.objective import EG3DObjective, swapping_probability  # noqa: E402
from gan3d.methods.eg3d.recipe import eg3d_recipe  # noqa: E402


def tiny_eg3d_recipe():
    """The synthetic EG3D made smaller still: 16-px tri-plane, 8-px render, 4 + 4 samples."""
    return eg3d_recipe("synthetic").overrides([
        "point_embedder.resolution=16", "point_embedder.channel_max=16",
        "point_sampler.num_samples=4", "generator.num_importance=4", "generator.render_resolution=8",
        "loss.density_reg_num_points=16", "discriminator.channel_base=128", "discriminator.channel_max=16",
        "upsampler.block0_channels=8", "upsampler.block1_channels=4",
    ])


@pytest.fixture(scope="module")
def networks():
    torch.manual_seed(0)
    recipe = tiny_eg3d_recipe()
    return build_generator(recipe), build_module(recipe, "discriminator"), build_module(recipe, "loss")


def test_swapping_probability_fades_from_one():
    assert swapping_probability(0.0, 0.5, 1000.0) == 1.0
    assert swapping_probability(500.0, 0.5, 1000.0) == pytest.approx(0.75)
    assert swapping_probability(2000.0, 0.5, 1000.0) == pytest.approx(0.5)
    assert swapping_probability(0.0, 0.8, 0.0) == pytest.approx(0.8)


def test_swap_probability_zero_keeps_labels_one_rolls_them():
    labels = ffhq_like_labels(6)
    keep = EG3DObjective(gpc_reg_prob=0.0, gpc_reg_fade_kimg=0.0)
    swap = EG3DObjective(gpc_reg_prob=1.0, gpc_reg_fade_kimg=0.0)
    assert torch.equal(keep.generator_condition(labels, 5.0), labels)
    assert torch.equal(swap.generator_condition(labels, 5.0), torch.roll(labels, 1, 0))
    assert torch.equal(swap.generator_condition(labels, 5.0, per_sample=False), torch.roll(labels, 1, 0))
    # Start of training: the fade makes every label swapped whatever gpc_reg_prob is.
    assert torch.equal(EG3DObjective(gpc_reg_prob=0.0).generator_condition(labels, 0.0), torch.roll(labels, 1, 0))
    assert torch.equal(EG3DObjective(gen_pose_cond=False).generator_condition(labels, 5.0), torch.zeros_like(labels))
    # p = 0.5: about half the rows swapped.
    half = EG3DObjective(gpc_reg_prob=0.5, gpc_reg_fade_kimg=0.0)
    many = ffhq_like_labels(400)
    swapped = (half.generator_condition(many, 1.0, generator=torch.Generator().manual_seed(0)) != many).any(1)
    assert 0.4 < swapped.float().mean() < 0.6


def test_the_mapper_gets_the_swapped_label_and_d_the_rendering_one(networks, monkeypatch):
    G, D, _ = networks
    loss = EG3DObjective(gpc_reg_prob=1.0, gpc_reg_fade_kimg=0.0, blur_init_sigma=0.0)
    inputs = tiny_loss_inputs(G, 4, 128)
    seen = {}
    original = G.mapping

    def spy(z, c=None, **kw):
        seen["c"] = c
        return original(z, c, **kw)

    monkeypatch.setattr(G, "mapping", spy)
    with torch.no_grad():
        out = loss.run_generator(G, inputs)
    assert torch.equal(seen["c"], torch.roll(inputs.gen_cameras.label, 1, 0))
    assert torch.equal(out.cameras.label, inputs.gen_cameras.label)


def test_blur_sigma_follows_kimg():
    loss = EG3DObjective(blur_init_sigma=10.0, blur_fade_kimg=200.0)
    assert [loss.blur_sigma(k) for k in (0.0, 100.0, 180.0, 250.0)] == pytest.approx([10.0, 5.0, 1.0, 0.0])


def test_real_raw_image_is_the_filtered_downsample(networks):
    G, _, _ = networks
    loss = EG3DObjective(blur_init_sigma=0.0)
    inputs = tiny_loss_inputs(G, 2, 128)
    real = loss.real_input(inputs)
    assert real.image is inputs.real_images and real.image_raw.shape == (2, 3, 8, 8)
    expected = torch.nn.functional.interpolate(inputs.real_images, size=(8, 8), mode="bilinear",
                                               align_corners=False, antialias=True)
    assert torch.allclose(real.image_raw, expected)
    assert torch.equal(real.camera_label, inputs.real_labels)
    # Reals come at the data set's resolution: resized to the output resolution first.
    big = dataclasses.replace(inputs, real_images=torch.rand(2, 3, 256, 256) * 2 - 1, image_resolution=128)
    assert loss.real_input(big).image.shape == (2, 3, 128, 128)


def test_r1_reaches_both_inputs_of_the_dual_discriminator(networks):
    G, D, _ = networks
    loss = EG3DObjective(r1_gamma=2.0, r1_interval=16)
    inputs = tiny_loss_inputs(G, 2, 128, kimg=1.0)
    x = loss.real_input(inputs)
    real = {k: v.detach().requires_grad_(True) for k, v in x.penalized().items()}
    logits = loss.discriminate(D, x.with_images(**real), inputs).logits
    g_image, g_raw = torch.autograd.grad(logits.sum(), [real["image"], real["image_raw"]])
    assert g_image.abs().sum() > 0 and g_raw.abs().sum() > 0
    reg = loss.discriminator_regularizer(D, inputs)
    expected = (g_image.square().flatten(1).sum(1) + g_raw.square().flatten(1).sum(1)).mean()
    assert reg["r1"] == pytest.approx(float(expected), rel=1e-4)
    assert float(reg["loss"].detach()) == pytest.approx(float(expected) * 2.0 / 2 * 16, rel=1e-4)


def test_density_regularizer_is_finite_differentiable_and_scaled_by_its_interval(networks):
    G, _, _ = networks
    loss = EG3DObjective(density_reg=0.25, density_reg_every=4, density_reg_num_points=16)
    assert loss.g_reg_interval == 4 and EG3DObjective(density_reg=0.0).g_reg_interval == 0
    G.zero_grad(set_to_none=True)
    inputs = tiny_loss_inputs(G, 2, 128)
    inputs.generator = torch.Generator().manual_seed(3)
    terms = loss.generator_regularizer(G, inputs)
    assert torch.isfinite(terms["loss"]) and terms["density_reg"] > 0
    assert float(terms["loss"]) == pytest.approx(float(terms["density_reg"]) * 0.25 * 4, rel=1e-6)
    terms["loss"].backward()
    for name in ("mapper", "embedder", "decoder"):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in getattr(G, name).parameters()), name
    # Points in [-1, 1]^3 and perturbations of std p_dist (loss.py), by hand from the same draws.
    g = torch.Generator().manual_seed(3)
    ws = G.mapping(inputs.z, inputs.gen_cameras.label)
    a, b = loss.density_pairs(G, ws, g)
    assert set(G.ws_layout) >= {"point_embedder", "upsampler"}
    assert a.shape == b.shape == (2, 16, 1)


def test_one_generator_and_discriminator_step_reaches_every_module(networks):
    G, D, loss = networks
    inputs = tiny_loss_inputs(G, 2, 128, kimg=0.5)
    D.zero_grad(set_to_none=True)
    d_terms = loss.discriminator_loss(G, D, inputs)
    d_terms["loss"].backward()
    loss.discriminator_regularizer(D, inputs)["loss"].backward()
    assert missing_grads(D) == []
    G.zero_grad(set_to_none=True)
    g_terms = loss.generator_loss(G, D, inputs)
    g_terms["loss"].backward()
    loss.generator_regularizer(G, inputs)["loss"].backward()
    assert torch.isfinite(g_terms["loss"]) and torch.isfinite(d_terms["loss"])
    for name in ("mapper", "embedder", "decoder", "renderer", "upsampler"):
        missing = missing_grads(getattr(G, name))
        if name == "upsampler":  # EG3D's super-resolution runs with noise_mode 'none': no noise gradient
            missing = [n for n in missing if not n.endswith("noise_strength")]
        assert missing == [], name
