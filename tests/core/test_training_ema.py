"""The generator's moving average: the decay of each schedule on hand-computed values, the update
itself, and the trainer applying it."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from gan3d.core.training import Trainer, TrainingConfig
from gan3d.core.training.ema import ema_beta, update_ema


def test_fixed_beta_is_the_same_at_every_step():
    cfg = TrainingConfig(ema_beta=0.999)
    for step, nimg in ((0, 0), (7, 224), (100_000, 3_200_000)):
        assert ema_beta(cfg, step=step, nimg=nimg, batch=32) == 0.999


@pytest.mark.parametrize(("step", "expected"), [
    (0, 2 / 11),          # first update, t = 1: (1 + 1) / (10 + 1)
    (9, 11 / 20),         # t = 10: (1 + 10) / (10 + 10) = 0.55
    (989, 0.991),         # t = 990: 991 / 1000, still below the cap
    (8990, 0.999),        # t = 8991: 8992 / 9001 = 0.99900... > 0.999, so the cap holds
])
def test_warmup_caps_a_fixed_beta_as_torch_ema_does(step, expected):
    cfg = TrainingConfig(ema_beta=0.999, ema_warmup=True)
    assert ema_beta(cfg, step=step, nimg=step * 32, batch=32) == pytest.approx(expected, abs=1e-12)


def test_half_life_in_images():
    """StyleGAN2: after ema_kimg thousand images a parameter's old value weighs one half."""
    cfg = TrainingConfig(ema_kimg=10.0)  # half-life 10,000 images
    beta = ema_beta(cfg, step=5, nimg=160, batch=32)
    assert beta == pytest.approx(0.5 ** (32 / 10_000))
    assert beta == pytest.approx(0.997784, abs=1e-6)   # exp(-ln 2 * 0.0032)
    assert beta ** (10_000 / 32) == pytest.approx(0.5)  # 312.5 updates of batch 32
    # The same half-life at another batch size: the decay per image is what is fixed.
    assert ema_beta(cfg, step=5, nimg=160, batch=8) ** (10_000 / 8) == pytest.approx(0.5)


@pytest.mark.parametrize(("nimg", "expected"), [
    (0, 0.0),                       # ema_nimg = min(10000, 0) -> the average copies the model
    (1000, 0.5 ** (32 / 50)),       # ema_nimg = min(10000, 1000 * 0.05 = 50): 0.6417
    (200_000, 0.5 ** (32 / 10_000)),  # min(10000, 10000): the ramp-up has ended
    (1_000_000, 0.5 ** (32 / 10_000)),
])
def test_rampup_shortens_the_half_life_early_on(nimg, expected):
    cfg = TrainingConfig(ema_kimg=10.0, ema_rampup=0.05)
    assert ema_beta(cfg, step=0, nimg=nimg, batch=32) == pytest.approx(expected, abs=1e-12)
    if nimg == 1000:
        assert ema_beta(cfg, step=0, nimg=nimg, batch=32) == pytest.approx(0.641713, abs=1e-6)


def test_update_blends_parameters_and_copies_buffers():
    model, ema = nn.BatchNorm1d(2), nn.BatchNorm1d(2)
    with torch.no_grad():
        model.weight.fill_(3.0)
        ema.weight.fill_(1.0)
        model.bias.fill_(-2.0)
        ema.bias.fill_(2.0)
        model.running_mean.fill_(7.0)
    update_ema(ema, model, 0.75)
    torch.testing.assert_close(ema.weight, torch.full((2,), 1.5))   # 0.75 * 1 + 0.25 * 3
    torch.testing.assert_close(ema.bias, torch.full((2,), 1.0))     # 0.75 * 2 + 0.25 * -2
    torch.testing.assert_close(ema.running_mean, torch.full((2,), 7.0))  # buffers are copied
    torch.testing.assert_close(model.weight, torch.full((2,), 3.0))  # the model is untouched
    update_ema(ema, model, 0.0)
    torch.testing.assert_close(ema.weight, model.weight)


def test_the_trainer_averages_its_generator(tiny_recipe, tiny_registry, tiny_dataset, tmp_path):
    """With a fixed decay of 1/2 and no warm-up, after one step G_ema = (G before + G after) / 2."""
    recipe = tiny_recipe().override("training.ema_beta=0.5")
    trainer = Trainer(recipe, tiny_dataset, tmp_path / "job", registry=tiny_registry, progress=False,
                      tensorboard=False)
    before = [p.detach().clone() for p in trainer.G.parameters()]
    trainer.train_step()
    for b, p, e in zip(before, trainer.G.parameters(), trainer.G_ema.parameters()):
        assert not torch.equal(b, p)
        torch.testing.assert_close(e, (b + p.detach()) / 2)
    assert math.isclose(ema_beta(trainer.cfg, step=0, nimg=0, batch=4), 0.5)
