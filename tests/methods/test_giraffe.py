"""GIRAFFE's recipes, discriminator and objective: official parameter counts, camera and box conversion,
R1 at GIRAFFE's scale, and one training step of a tiny GIRAFFE with gradients reaching every module."""

from __future__ import annotations

import math

import pytest
import torch

from gan3d.core.generator import build_generator, build_module
from gan3d.core.objective import LossInputs
from gan3d.core.registry import get_registry
from gan3d.core.testing import check_contract
from gan3d.core.types import DiscriminatorInput
from gan3d.methods.giraffe import GiraffeDCDiscriminator, GiraffeObjective, giraffe_recipe
from gan3d.methods.giraffe.recipe import VARIANTS


def _linear(i: int, o: int) -> int:
    return i * o + o


def _official_decoder(hidden: int, n_blocks: int, n_skips: int, z: int, rgb: int, emb: int = 60, view: int = 24) -> int:
    """Parameters of im2scene/giraffe/models/decoder.py ``Decoder`` from its layer list."""
    return (_linear(emb, hidden) + _linear(z, hidden) + (n_blocks - 1) * _linear(hidden, hidden)
            + n_skips * (_linear(z, hidden) + _linear(emb, hidden)) + _linear(hidden, 1)
            + _linear(z, hidden) + _linear(hidden, hidden) + _linear(view, hidden) + _linear(hidden, rgb))


def _official_dc(img_size: int, n_feat: int = 512) -> int:
    n = int(math.log2(img_size)) - 2
    widths = [n_feat // 2 ** (n - 1 - k) for k in range(n)]
    return sum(ci * co * 16 for ci, co in zip([3] + widths[:-1], widths)) + n_feat * 16


@pytest.mark.parametrize("variant, rgb, img", [("cars64", 128, 64), ("celebahq256", 256, 256)])
def test_parameter_counts_equal_the_official_architecture(variant, rgb, img):
    recipe = giraffe_recipe(variant)
    registry = get_registry()
    G = build_generator(recipe, registry)
    # One object MLP shared by every object (the main field group's instances), one background MLP.
    assert sum(p.numel() for p in G.decoder.parameters()) == _official_decoder(128, 8, 1, 256, rgb)
    background = sum(p.numel() for p in G.groups["background"].decoder.parameters())
    assert background == _official_decoder(64, 4, 0, 128, rgb)
    assert sum(p.numel() for p in G.mapper.parameters()) == 0  # GIRAFFE has no mapping network
    D = build_module(recipe, "discriminator", registry)
    assert sum(p.numel() for p in D.parameters()) == _official_dc(img)
    assert G.output_resolution() == img and G.render_resolution == 16
    assert recipe.training["optimizer"] == "rmsprop"  # train.py: optim.RMSprop for G and D


@pytest.mark.parametrize("variant", [*VARIANTS, "synthetic"])
def test_every_variant_builds_and_round_trips(variant):
    from gan3d.core.recipe import Recipe

    recipe = giraffe_recipe(variant)
    assert Recipe.from_json(recipe.to_json()) == recipe
    build_generator(recipe, get_registry())


def test_cameras_and_boxes_follow_giraffes_configs():
    recipe = giraffe_recipe("cars64")
    pose = recipe.modules["pose_sampler"].kwargs
    # range_v = [0.41667, 0.5]: polar angles arccos(1 - 2 v); range_u = (0, 0): camera on our +x axis.
    assert pose["polar_range"] == pytest.approx([math.acos(1 - 2 * 0.41667), math.pi / 2])
    cams = build_module(recipe, "pose_sampler", get_registry())(64, generator=torch.Generator().manual_seed(0))
    origin = cams.origins
    assert torch.allclose(origin.norm(dim=-1), torch.full((64,), 2.732), atol=1e-4)
    assert (origin[:, 2].abs() < 1e-4).all() and (origin[:, 0] > 0).all() and (origin[:, 1] >= -1e-4).all()
    mapper = recipe.modules["stochasticity_mapper"].kwargs
    # cars_64.yaml translation x in +-0.22, y in +-0.12 (-> our z), z = 0 (-> our y).
    assert mapper["translation_min"] == [-0.22, 0.0, -0.12] and mapper["translation_max"] == [0.22, 0.0, 0.12]
    clevr = giraffe_recipe("clevr2").modules["stochasticity_mapper"].kwargs
    assert clevr["n_objects"] == 2 and clevr["translation_min"][1] == clevr["translation_max"][1] == 0.1665


def test_discriminator_contract_and_input_range():
    d = GiraffeDCDiscriminator(img_size=16, n_feat=16)
    check_contract("discriminator", d, resolution=16)
    signed = GiraffeDCDiscriminator(img_size=16, n_feat=16, input_range="signed")
    signed.load_state_dict(d.state_dict())
    x = torch.rand(2, 3, 16, 16)
    assert torch.allclose(d(DiscriminatorInput(x * 2 - 1)).logits, signed(DiscriminatorInput(x)).logits, atol=1e-6)
    with pytest.raises(ValueError, match="img_size"):
        d(DiscriminatorInput(torch.randn(1, 3, 32, 32)))


def test_r1_equals_giraffes_penalty_on_unit_range_images():
    torch.manual_seed(0)
    d = GiraffeDCDiscriminator(img_size=16, n_feat=16)
    unit = torch.rand(3, 3, 16, 16, requires_grad=True)
    logits = d(DiscriminatorInput(unit * 2 - 1)).logits  # GIRAFFE's D sees `unit`
    grad = torch.autograd.grad(logits.sum(), unit)[0]
    official = 10.0 * grad.square().flatten(1).sum(1).mean()  # training.py: 10 * compute_grad2(...).mean()
    objective = GiraffeObjective()
    inputs = LossInputs(real_images=(unit.detach() * 2 - 1), real_labels=torch.zeros(3, 25), z=torch.zeros(3, 1))
    reg = objective.discriminator_regularizer(d, inputs)
    assert reg["loss"].item() == pytest.approx(official.item(), rel=1e-4)
    assert objective.regularize_discriminator_now(7)  # every step


def test_one_training_step_reaches_every_module():
    recipe = giraffe_recipe("synthetic")
    recipe = recipe.override("stochasticity_mapper.n_objects=2").override("point_sampler.num_samples=4")
    registry = get_registry()
    torch.manual_seed(0)
    G = build_generator(recipe, registry).train()
    D = build_module(recipe, "discriminator", registry)
    loss = build_module(recipe, "loss", registry)
    inputs = LossInputs(real_images=torch.rand(2, 3, 64, 64) * 2 - 1, real_labels=torch.zeros(2, 25),
                        z=torch.randn(2, G.z_dim), gen_cameras=G.pose_sampler(2), resolution=8)
    g_terms = loss.generator_loss(G, D, inputs)
    assert torch.isfinite(g_terms["loss"])
    g_terms["loss"].backward()
    missing = [n for n, p in G.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, missing
    assert {n.split(".")[0] for n, _ in G.named_parameters()} == {"decoder", "groups", "upsampler"}
    D.zero_grad()
    d_terms = loss.discriminator_loss(G, D, inputs)
    (d_terms["loss"] + loss.discriminator_regularizer(D, inputs)["loss"]).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in D.parameters())


def test_objects_are_instances_of_one_field_group_composited_by_the_renderer():
    """Two objects and a background: the image is the composition of the three fields, each object's alpha
    and depth come from rendering it alone, and moving an object's frame moves only its layer."""
    recipe = giraffe_recipe("synthetic").override("stochasticity_mapper.n_objects=2")
    recipe = recipe.override("stochasticity_mapper.translation_min=[-0.4, 0.0, 0.0]")
    recipe = recipe.override("stochasticity_mapper.translation_max=[0.4, 0.0, 0.0]")
    torch.manual_seed(0)
    G = build_generator(recipe, get_registry()).eval()
    z = torch.randn(1, G.z_dim)
    cams = G.pose_sampler.camera_rig().mean_cameras(1)
    with torch.no_grad():
        latent = G.mapping(z)
        out = G.synthesis(latent, cams, requests={"layers"})
    assert set(out.layers) == {"main/0", "main/1", "background/0"}
    for name, layer in out.layers.items():
        assert layer.alpha.shape == out.alpha.shape == (1, 1, 8, 8), name
        assert float(layer.alpha.max()) <= 1.0 + 1e-6
    # The composed opacity is at least each layer's (more density along every ray can only add opacity).
    for layer in out.layers.values():
        assert bool((out.alpha >= layer.alpha - 1e-5).all())
    # Object 1 moved far away (outside every ray): its layer goes empty, object 0's stays as it was.
    moved = latent.with_frame("main", 1, translation=[50.0, 0.0, 0.0])
    with torch.no_grad():
        out2 = G.synthesis(moved, cams, requests={"layers"})
    assert float(out2.layers["main/1"].alpha.max()) < 1e-6
    assert torch.allclose(out2.layers["main/0"].alpha, out.layers["main/0"].alpha)
