"""The point-embedder ablation: Carver's option names and defaults, the CLI option specs, and one tiny
G and D step for every ref_mode (and both MLP types) with gradients reaching every module."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from test_eg3d_helpers import missing_grads, tiny_loss_inputs  # noqa: E402

from gan3d.core.generator import build_generator, build_module  # noqa: E402
from gan3d.core.recipe import Recipe  # noqa: E402
from gan3d.methods.ablation3d.recipe import ablation3d_recipe  # noqa: E402


def test_defaults_are_carvers():
    r = ablation3d_recipe()
    assert r.method == "ablation3d" and r.variant == "ffhq256"
    emb = r.modules["point_embedder"]
    assert emb.name == "position_encoded" and emb.kwargs["base"] == "triplane"
    assert emb.kwargs["num_frequencies"] == 10 and emb.kwargs["multiply_by_pi"] is True
    assert r.modules["feature_decoder"].kwargs == {"hidden_dim": 64, "output_dim": 32, "lr_multiplier": 1.0}
    # The generator wires the decoder's input: 32 tri-plane channels after the 60 encoding channels.
    G = build_generator(ablation3d_recipe("synthetic"))
    assert G.decoder.in_channels == 8 + 60 and G.upsampler.in_channels == 32
    assert r.modules["upsampler"].kwargs["image_resolution"] == 256 and r.modules["loss"].kwargs["r1_gamma"] == 1.5
    assert Recipe.from_json(r.to_json()) == r
    names = [o["name"] for o in ablation3d_recipe.cli_options]
    assert names == ["--ref_mode", "--use_positional_encoding", "--mlp_type", "--mlp_depth", "--mlp_hidden_dim",
                     "--mlp_output_dim", "--fv_feat_res", "--r1_gamma"]
    import inspect
    sig = inspect.signature(ablation3d_recipe).parameters
    for spec in ablation3d_recipe.cli_options:
        assert sig[spec["name"][2:]].default == spec["default"]
        assert spec["type"] in ("str", "int", "float", "bool")


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="ref_mode"):
        ablation3d_recipe(ref_mode="hashgrid")
    with pytest.raises(ValueError, match="exactly 2 layers"):
        ablation3d_recipe(mlp_depth=4)


def tiny(ref_mode, mlp_type, pe=True):
    return ablation3d_recipe("synthetic", ref_mode=ref_mode, mlp_type=mlp_type, use_positional_encoding=pe,
                             mlp_depth=2, mlp_hidden_dim=8, mlp_output_dim=4, fv_feat_res=8).overrides([
        "point_sampler.num_samples=4", "generator.num_importance=4", "generator.render_resolution=8",
        "loss.density_reg_num_points=16", "discriminator.channel_base=128", "discriminator.channel_max=8",
        "upsampler.block0_channels=8", "upsampler.block1_channels=4",
    ])


@pytest.mark.parametrize("ref_mode,mlp_type,pe", [
    ("coordinate", "stylenerf", False), ("volume", "eg3d", True), ("triplane", "stylenerf", True),
])
def test_one_step_reaches_every_module(ref_mode, mlp_type, pe):
    torch.manual_seed(0)
    recipe = tiny(ref_mode, mlp_type, pe)
    if ref_mode == "triplane":
        recipe = recipe.overrides(["point_embedder.base_options.resolution=8"])
    G, D, loss = build_generator(recipe), build_module(recipe, "discriminator"), build_module(recipe, "loss")
    inputs = tiny_loss_inputs(G, 2, 128, kimg=0.5)
    loss.discriminator_loss(G, D, inputs)["loss"].backward()
    loss.discriminator_regularizer(D, inputs)["loss"].backward()
    assert missing_grads(D) == []
    terms = loss.generator_loss(G, D, inputs)
    terms["loss"].backward()
    loss.generator_regularizer(G, inputs)["loss"].backward()
    assert torch.isfinite(terms["loss"])
    for name in ("mapper", "embedder", "decoder", "upsampler"):
        missing = [n for n in missing_grads(getattr(G, name)) if not n.endswith("noise_strength")]
        assert missing == [], name
    if ref_mode != "coordinate":
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in G.embedder.parameters())
