"""GRAM: the discriminator, the objective at hand-computed values, the recipes (published values and
the official parameter totals), and one tiny training step reaching every parameter."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from gan3d.core.cameras import fov_to_intrinsics, look_at, spherical_origin
from gan3d.core.generator import build_generator, build_module
from gan3d.core.objective import LossInputs
from gan3d.core.recipe import SLOTS, Recipe
from gan3d.core.registry import check_kwargs, get_registry
from gan3d.core.types import Cameras, DiscriminatorInput, DiscriminatorOutput, GeneratorOutput
from gan3d.methods.gram.discriminator import GRAMDiscriminator, gram_channels
from gan3d.methods.gram.objective import GRAMObjective
from gan3d.methods.gram.recipe import VARIANTS, gram_recipe

#: Totals of the official networks at each released config (microsoft/GRAM 5a5ac8e, built on a CPU by
#: tools/official/gram_parameter_counts.py): generator (GramGenerator: sample_network + rf_network with
#: its mapping network) and discriminator (GramDiscriminator).
OFFICIAL_COUNTS = {
    "ffhq256": (1_950_621, 12_391_827),
    "cats256": (1_925_597, 12_391_827),
    "carla128": (2_049_821, 12_332_115),
}


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ---------------------------------------------------------------- discriminator
def test_gram_channels_follow_the_official_formula():
    assert gram_channels(256) == [32, 64, 128, 256, 400, 400, 400, 400]
    assert gram_channels(128) == [64, 128, 256, 400, 400, 400, 400]
    assert gram_channels(8) == [400, 400, 400]
    with pytest.raises(ValueError, match="power-of-two"):
        gram_channels(96)


def test_discriminator_has_one_adapter_and_pooled_coordinate_blocks():
    d = GRAMDiscriminator(channels=[8, 16, 16])
    assert d.resolution == 8 and len(d.blocks) == 2
    assert d.from_rgb[0].weight.shape == (8, 3, 1, 1)
    assert d.blocks[0].layout == "pooled"
    assert d.blocks[0].residual[0].conv.weight.shape == (16, 8 + 2, 3, 3)  # coordinates appended
    assert d.blocks[0].skip.weight.shape == (16, 8, 1, 1) and d.blocks[1].skip is None
    assert d.head.weight.shape == (3, 16, 2, 2)
    torch.manual_seed(0)
    out = d(DiscriminatorInput(torch.randn(4, 3, 8, 8)))
    assert out.logits.shape == (4, 1) and out.pose.shape == (4, 2) and out.latent is None
    out.logits.sum().backward(retain_graph=True)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for n, p in d.named_parameters() if "head" not in n)
    assert GRAMDiscriminator(channels=[8, 16, 16], pose_dim=0)(DiscriminatorInput(torch.randn(1, 3, 8, 8))).pose is None


def test_discriminator_honours_the_core_contract():
    from gan3d.core.testing import check_contract

    torch.manual_seed(0)
    check_contract("discriminator", GRAMDiscriminator(channels=[8, 8, 8]), resolution=8)


def test_discriminator_refuses_other_resolutions():
    d = GRAMDiscriminator(channels=[8, 16, 16])
    with pytest.raises(ValueError, match=r"\[B, 3, 8, 8\]"):
        d(DiscriminatorInput(torch.randn(1, 3, 16, 16)))
    with pytest.raises(ValueError, match="two positive widths"):
        GRAMDiscriminator(channels=[8])
    with pytest.raises(ValueError, match="img_resolution is 16"):
        GRAMDiscriminator(img_resolution=16, channels=[8, 8, 8])
    assert GRAMDiscriminator().resolution == 256  # FFHQ_default's img_size


@pytest.mark.parametrize("resolution,total", [(256, 12_391_827), (128, 12_332_115)])
def test_discriminator_totals_equal_the_official(resolution, total):
    d = GRAMDiscriminator(img_resolution=resolution)
    assert d.channels == gram_channels(resolution)
    assert count(d) == total
    # GramDiscriminator's parameter names by prefix: layers -> blocks, network -> residual, proj -> skip.
    names = {n for n, _ in d.named_parameters()}
    assert {"from_rgb.0.weight", "blocks.0.residual.0.conv.weight", "blocks.0.residual.2.conv.weight",
            "blocks.0.skip.weight", "head.weight"} <= names


# ---------------------------------------------------------------- objective
def cameras_at(yaw, polar) -> Cameras:
    yaw, polar = torch.tensor(yaw), torch.tensor(polar)
    return Cameras(look_at(spherical_origin(yaw, polar, 1.0)), fov_to_intrinsics(12.0, len(yaw)),
                   torch.stack([yaw, polar], -1))


class ConstantGenerator(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(1.0))

    def forward(self, z, cameras, **kwargs) -> GeneratorOutput:
        image = self.scale * torch.ones(z.shape[0], 3, 4, 4)
        return GeneratorOutput(image=image, image_raw=image, depth=image[:, :1], alpha=image[:, :1],
                               features=image, cameras=cameras, ws=z[:, None])


class PresetDiscriminator(nn.Module):
    """Preset logits and poses for fakes (images of ones) and reals (images of minus ones)."""

    def __init__(self, fake_logits, fake_pose, real_logits, real_pose) -> None:
        super().__init__()
        self.fake, self.real = (fake_logits, fake_pose), (real_logits, real_pose)

    def forward(self, x: DiscriminatorInput) -> DiscriminatorOutput:
        image = x.image
        logits, pose = self.fake if image.mean() > 0 else self.real
        shift = (image.abs().mean(dim=(1, 2, 3)) - 1.0)[:, None]  # zero, but keeps the graph
        return DiscriminatorOutput(logits=logits + shift, pose=pose + shift)


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def test_losses_at_hand_computed_values():
    fake_yaw, fake_polar = [math.pi / 2 + 0.1, math.pi / 2, math.pi / 2 - 0.2, math.pi / 2], [1.5, 1.6, 1.4, 1.5]
    real_yaw, real_polar = [math.pi / 2 + 0.2] * 4, [math.pi / 2 - 0.1] * 4
    # pi-GAN angles (theta, phi) = (pi - yaw, polar).
    fake_target = torch.tensor([[math.pi - y, p] for y, p in zip(fake_yaw, fake_polar)])
    real_target = torch.tensor([[math.pi - y, p] for y, p in zip(real_yaw, real_polar)])
    fake_logits = torch.tensor([[1.0], [-2.0], [0.5], [3.0]])
    real_logits = torch.tensor([[0.2], [0.4], [-0.1], [1.0]])
    d = PresetDiscriminator(fake_logits, fake_target + torch.tensor([0.2, 0.0]),
                            real_logits, real_target + torch.tensor([0.3, -0.1]))
    loss = GRAMObjective(r1_gamma=1.0, pos_lambda=15.0, real_pos_lambda=30.0, batch_split=2)
    inputs = LossInputs(real_images=-torch.ones(4, 3, 4, 4),
                        real_labels=cameras_at(real_yaw, real_polar).label,
                        z=torch.zeros(4, 2), gen_cameras=cameras_at(fake_yaw, fake_polar))
    g = loss.generator_loss(ConstantGenerator(), d, inputs)
    # No top-k: each half's mean softplus(-logit), summed over batch_split = 2 halves; position loss
    # 15 * MSE = 15 * 0.2^2 / 2 per half.
    adv = (softplus(-1.0) + softplus(2.0)) / 2 + (softplus(-0.5) + softplus(-3.0)) / 2
    assert g["g_adv"].item() == pytest.approx(adv, rel=1e-5)
    assert g["g_pos"].item() == pytest.approx(2 * 15 * 0.02, rel=1e-5)
    assert g["loss"].item() == pytest.approx(adv + 0.6, rel=1e-5)
    dl = loss.discriminator_loss(ConstantGenerator(), d, inputs)
    assert dl["d_fake"].item() == pytest.approx(sum(softplus(x) for x in (1.0, -2.0, 0.5, 3.0)) / 4, rel=1e-5)
    assert dl["d_real"].item() == pytest.approx(sum(softplus(-x) for x in (0.2, 0.4, -0.1, 1.0)) / 4, rel=1e-5)
    assert dl["d_pos"].item() == pytest.approx(15 * 0.02, rel=1e-5)
    # GRAM's extra term: the pose of REAL images, 30 * MSE = 30 * (0.3^2 + 0.1^2) / 2.
    assert dl["d_real_pos"].item() == pytest.approx(30 * 0.05, rel=1e-4)
    assert (loss.topk_interval, loss.z_lambda, loss.r1_interval) == (0, 0.0, 1)


def test_real_pose_loss_needs_a_pose_head():
    loss = GRAMObjective(real_pos_lambda=1.0, pos_lambda=0.0)
    fake = real = DiscriminatorOutput(logits=torch.zeros(2, 1))
    inputs = LossInputs(real_images=torch.zeros(2, 3, 4, 4), real_labels=cameras_at([1.5, 1.5], [1.5, 1.5]).label,
                        z=torch.zeros(2, 2))
    with pytest.raises(ValueError, match="real_pos_lambda"):
        loss.discriminator_terms(fake, real, None, inputs)
    with pytest.raises(ValueError, match="real_pos_lambda"):
        GRAMObjective(real_pos_lambda=-1.0)


# ---------------------------------------------------------------- recipes
@pytest.mark.parametrize("variant", [*VARIANTS, "synthetic"])
def test_recipe_round_trips_and_names_registered_modules(variant):
    recipe = gram_recipe(variant)
    assert recipe.method == "gram" and recipe.variant == variant and set(recipe.modules) == set(SLOTS)
    assert Recipe.from_json(recipe.to_json()) == recipe
    registry = get_registry()
    for slot, spec in recipe.modules.items():
        check_kwargs(registry.get(slot, spec.name), spec.kwargs, f"{slot} {spec.name!r}")


def test_default_variant_and_unknown_ones():
    assert gram_recipe() == gram_recipe("ffhq256")
    with pytest.raises(ValueError, match="ffhq256, cats256, carla128, synthetic"):
        gram_recipe("celeba")


def test_published_values():
    ffhq, cats, carla = (gram_recipe(v) for v in ("ffhq256", "cats256", "carla128"))
    sampler = ffhq.modules["point_sampler"].kwargs
    assert (sampler["num_samples"], sampler["ray_start"], sampler["ray_end"]) == (64, 0.88, 1.12)
    assert (sampler["num_manifolds"], sampler["levels_start"], sampler["levels_end"]) == (24, 23.0, 8.0)
    assert sampler["background"] and sampler["background_z"] == -0.12 and sampler["delta"] == 0.04
    assert (sampler["hidden_dim"], sampler["center"]) == (128, [0.0, 0.0, -1.5])
    assert cats.modules["point_sampler"].kwargs["hidden_dim"] == 64
    c = carla.modules["point_sampler"].kwargs
    assert (c["num_manifolds"], c["levels_start"], c["levels_end"], c["background"], c["delta"]) == (
        48, 35.0, 5.0, False, 0.02)
    assert (c["hidden_dim"], c["center"], c["ray_start"], c["ray_end"]) == (256, [0.0, 0.0, 0.0], 0.7, 1.3)
    assert ffhq.modules["point_embedder"].kwargs == {"box_warp": 0.24}
    assert carla.modules["point_embedder"].kwargs == {"box_warp": 2.0}
    pose = ffhq.modules["pose_sampler"].kwargs
    assert (pose["yaw_stddev"], pose["polar_stddev"], pose["fov"], pose["radius"]) == (0.3, 0.155, 12.0, 1.0)
    assert carla.modules["pose_sampler"].kwargs["polar_parametrization"] == "arccos"
    assert carla.modules["pose_sampler"].kwargs["fov"] == 30.0
    renderer = ffhq.modules["volume_renderer"].kwargs
    assert renderer["density_activation"] == "softplus" and renderer["depth_mode"] == "normalized"
    assert renderer["noise_std"] == 0.0 and not renderer["white_back"]
    assert carla.modules["volume_renderer"].kwargs["white_back"]
    assert ffhq.modules["loss"].kwargs == {"r1_gamma": 1.0, "r1_interval": 1, "pos_lambda": 15.0,
                                           "real_pos_lambda": 15.0, "batch_split": 4}
    assert cats.modules["loss"].kwargs["real_pos_lambda"] == 30.0 and cats.modules["loss"].kwargs["batch_split"] == 2
    t = ffhq.training
    assert (t["batch_size"], t["g_lr"], t["d_lr"], t["g_betas"], t["d_betas"]) == (32, 2e-5, 2e-4, [0, 0.9], [0, 0.9])
    assert (t["ema_beta"], t["ema_warmup"], t["g_grad_clip"], t["d_grad_clip"]) == (0.999, True, 1.0, 1.0)
    assert t["total_kimg"] == pytest.approx(150_000 * 32 / 1000) and t["xflip"]
    assert cats.training["total_kimg"] == pytest.approx(80_000 * 16 / 1000)
    assert carla.training["g_grad_clip"] == 0.3 and carla.training["total_kimg"] == pytest.approx(70_000 * 32 / 1000)
    assert ffhq.generator == {"render_resolution": 256, "num_importance": 0, "image_range": "unit"}
    assert carla.generator["render_resolution"] == 128
    assert ffhq.modules["discriminator"].kwargs == {"img_resolution": 256, "pose_dim": 2}
    assert carla.modules["discriminator"].kwargs["img_resolution"] == 128
    assert carla.training["lr_multipliers"] == {"point_sampler": 0.1} and "lr_multipliers" not in ffhq.training


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_generator_and_discriminator_totals_equal_the_official(variant):
    recipe = gram_recipe(variant).override("stochasticity_mapper.w_avg_samples=0")
    g_total, d_total = OFFICIAL_COUNTS[variant]
    G = build_generator(recipe)
    assert count(G) == g_total
    assert count(G.point_sampler) + count(G.decoder) + count(G.mapper) == g_total  # nothing elsewhere
    assert count(build_module(recipe, "discriminator")) == d_total


def tiny_recipe() -> Recipe:
    return gram_recipe("synthetic").overrides([
        "stochasticity_mapper.z_dim=8", "stochasticity_mapper.hidden_dim=16", "stochasticity_mapper.film_dim=8",
        "stochasticity_mapper.w_avg_samples=16", "feature_decoder.num_layers=3",
        "point_sampler.num_samples=12", "point_sampler.num_manifolds=5", "point_sampler.hidden_dim=8",
        "generator.render_resolution=8", "discriminator.img_resolution=8", "discriminator.channels=[8, 8, 8]",
    ])


def test_one_generator_and_one_discriminator_step_reach_every_parameter():
    recipe = tiny_recipe()
    torch.manual_seed(0)
    G = build_generator(recipe).train()
    D = build_module(recipe, "discriminator")
    loss = build_module(recipe, "loss")
    rng = torch.Generator().manual_seed(0)
    batch = 3
    real_cameras = G.pose_sampler(batch, generator=rng)

    def inputs() -> LossInputs:
        return LossInputs(real_images=torch.rand(batch, 3, 8, 8, generator=rng) * 2 - 1,
                          real_labels=real_cameras.label, z=torch.randn(batch, G.z_dim, generator=rng),
                          gen_cameras=G.pose_sampler(batch, generator=rng), resolution=8, step=0)

    g_terms = loss.generator_loss(G, D, inputs())
    assert {"g_adv", "g_pos", "loss"} <= set(g_terms)
    g_terms["loss"].backward()
    no_grad = [n for n, p in G.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not no_grad, f"generator parameters without gradient: {no_grad}"
    assert any(n.startswith("point_sampler.scalar_field.") for n, _ in G.named_parameters())

    G.zero_grad(set_to_none=True)
    D.zero_grad(set_to_none=True)
    d_terms = loss.discriminator_loss(G, D, inputs())
    assert {"d_fake", "d_real", "d_pos", "d_real_pos", "loss"} <= set(d_terms)
    d_terms["loss"].backward()
    reg = loss.discriminator_regularizer(D, inputs())
    reg["loss"].backward()
    assert reg["r1"].item() > 0
    assert all(p.grad is None for p in G.parameters())
    no_grad = [n for n, p in D.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not no_grad, f"discriminator parameters without gradient: {no_grad}"
    for terms in (g_terms, d_terms, reg):
        assert all(torch.isfinite(v).all() for v in terms.values())
