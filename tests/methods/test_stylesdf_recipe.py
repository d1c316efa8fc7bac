"""StyleSDF recipes: variants, parameter counts of the published models against the official
architecture, and one tiny training step per stage (gradients reach every module; frozen modules stay)."""

from __future__ import annotations

import pytest
import torch

from gan3d.core.checkpoint import CheckpointError
from gan3d.core.data.base import GanDataset
from gan3d.core.generator import build_generator, build_module
from gan3d.core.objective import LossInputs
from gan3d.core.recipe import Recipe
from gan3d.core.trainer import Trainer
from gan3d.methods.stylesdf.recipe import VARIANTS, stylesdf_recipe

TINY_VOLUME = [
    "stochasticity_mapper.z_dim=8", "stochasticity_mapper.w_avg_samples=0", "feature_decoder.width=8",
    "feature_decoder.depth=2", "point_sampler.num_samples=4",
    "generator.render_resolution=8", "discriminator.channels=[8, 8, 8]", "loss.sphere_init_steps=0",
]


def test_variants_round_trip_and_unknown_variant():
    for variant in VARIANTS:
        recipe = stylesdf_recipe(variant)
        assert Recipe.from_json(recipe.to_json()) == recipe and recipe.variant == variant
    with pytest.raises(ValueError, match="ffhq_volume"):
        stylesdf_recipe("celeba")


def test_published_parameter_counts_match_the_official_architecture():
    recipe = stylesdf_recipe("ffhq_full").override("stochasticity_mapper.w_avg_samples=0")
    G = build_generator(recipe)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(G.mapper) == 3 * (256 * 256 + 256)  # Generator.style
    assert count(G.decoder) == 1_713_412  # SirenGenerator (D=8, W=256)
    assert count(G.renderer) == 1  # sigmoid_beta
    # Decoder minus the unused StyledConv.bias of its 9 styled convs (512 + 2 * (256 + 128 + 64 + 32)).
    assert count(G.upsampler) == 6_096_824 - 1_472
    assert count(build_module(recipe, "discriminator")) == 29_012_513
    volume = stylesdf_recipe("ffhq_volume").override("stochasticity_mapper.w_avg_samples=0")
    assert count(build_module(volume, "discriminator")) == 12_098_003  # VolumeRenderDiscriminator


def _inputs(G, batch=2, res=None):
    gen = torch.Generator().manual_seed(0)
    cams = G.pose_sampler(batch, generator=gen)
    out_res = res or G.render_resolution
    return LossInputs(torch.rand(batch, 3, out_res, out_res) * 2 - 1, cams.label, torch.randn(batch, G.z_dim),
                      gen_cameras=cams, resolution=G.render_resolution)


def test_volume_stage_step_reaches_every_module():
    recipe = stylesdf_recipe("ffhq_volume").overrides(TINY_VOLUME)
    torch.manual_seed(0)
    G, D, loss = (build_generator(recipe), build_module(recipe, "discriminator"), build_module(recipe, "loss"))
    terms = loss.generator_loss(G, D, _inputs(G))
    assert {"g_adv", "view", "eikonal", "min_surf"} <= set(terms)
    terms["loss"].backward()
    missing = [n for n, p in G.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []
    d_terms = loss.discriminator_loss(G, D, _inputs(G))
    assert "d_view" in d_terms
    d_terms["loss"].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in D.parameters())


class _Images(GanDataset):
    def __init__(self, n: int, res: int) -> None:
        g = torch.Generator().manual_seed(1)
        self.images = torch.rand(n, 3, res, res, generator=g) * 2 - 1
        self.labels = torch.zeros(n, 25)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i], self.labels[i]


def test_full_stage_trains_the_upsampler_from_stage_one_weights_with_the_renderer_frozen(tmp_path):
    volume = stylesdf_recipe("ffhq_volume").overrides(TINY_VOLUME + ["training.batch_size=2"])
    stage1 = Trainer(volume, _Images(4, 8), tmp_path / "stage1", progress=False, tensorboard=False)
    stage1.train_step()
    ckpt = stage1.save()
    tiny_full = [o for o in TINY_VOLUME if not o.startswith("discriminator.")]
    full = stylesdf_recipe("ffhq_full").overrides(tiny_full + [
        "upsampler.in_resolution=8", "upsampler.out_resolution=16", "discriminator.resolution=16",
        "discriminator.channel_base=128", "discriminator.channel_max=16", "training.batch_size=2",
        f"training.init_from.checkpoint={ckpt}"])
    trainer = Trainer(full, _Images(4, 16), tmp_path / "stage2", progress=False, tensorboard=False)
    assert trainer.G.upsampler.in_channels == 8 and trainer.G.upsampler.style_dim == 8  # wired
    for name in ("mapper", "decoder", "renderer"):  # stage-one EMA weights loaded
        for (k, v) in getattr(trainer.G, name).state_dict().items():
            torch.testing.assert_close(v, getattr(stage1.G_ema, name).state_dict()[k])
    frozen = {k: v.clone() for k, v in trainer.G.state_dict().items() if not k.startswith("upsampler.")}
    up_before = {k: v.clone() for k, v in trainer.G.upsampler.state_dict().items()}
    trainer.train_step()
    for k, v in trainer.G.state_dict().items():
        if k in frozen and v.is_floating_point() and not k.endswith("w_avg"):
            torch.testing.assert_close(v, frozen[k])
    assert any(not torch.equal(v, up_before[k]) for k, v in trainer.G.upsampler.state_dict().items())
    bad = stylesdf_recipe("ffhq_full").overrides(tiny_full + ["training.frozen_slots=[\"renderr\"]"])
    with pytest.raises(ValueError, match="renderr"):
        Trainer(bad, _Images(2, 16), tmp_path / "bad", progress=False, tensorboard=False)
    # A stage-one checkpoint of other sizes cannot fill the slots: a clear error naming the file.
    other = stylesdf_recipe("ffhq_full").overrides(tiny_full + ["feature_decoder.width=16",
                                                                f"training.init_from.checkpoint={ckpt}"])
    with pytest.raises(CheckpointError, match="same name and shape"):
        Trainer(other, _Images(2, 16), tmp_path / "other", progress=False, tensorboard=False)
