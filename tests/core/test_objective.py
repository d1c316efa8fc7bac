"""The base objective: non-saturating logistic losses on hand-set logits, and lazy R1 on a linear
discriminator whose input gradient is known."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from gan3d.core.objective import LossInputs, Objective, r1_penalty
from gan3d.core.types import Cameras, DiscriminatorOutput, GeneratorOutput

B, H = 2, 2  # batch, image side: images are [2, 3, 2, 2], 12 values each


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def _cameras(n: int) -> Cameras:
    return Cameras(torch.eye(4).repeat(n, 1, 1), torch.eye(3).repeat(n, 1, 1))


class ConstantGenerator(nn.Module):
    """Renders the same image for every latent; ``image`` is a parameter so gradients can be read."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.image = nn.Parameter(torch.full((B, 3, H, H), value))

    def forward(self, z, cameras, **kwargs) -> GeneratorOutput:
        n = z.shape[0]
        img = self.image[:n]
        return GeneratorOutput(image=img, image_raw=img, depth=img[:, :1], alpha=img[:, :1], features=img,
                               cameras=cameras, ws=z[:, None])


class LinearDiscriminator(nn.Module):
    """``logit = sum(weight * image) + bias``: its gradient with respect to the image is ``weight``."""

    def __init__(self, weight: float, bias: float = 0.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.full((3, H, H), weight))
        self.bias = nn.Parameter(torch.tensor(bias))

    def forward(self, x, **kwargs) -> DiscriminatorOutput:
        image = x.image if hasattr(x, "image") else x  # a bare image or a DiscriminatorInput container
        return DiscriminatorOutput((image * self.weight).flatten(1).sum(1, keepdim=True) + self.bias)


def _inputs(real: torch.Tensor) -> LossInputs:
    return LossInputs(real_images=real, real_labels=torch.zeros(B, 25), z=torch.zeros(B, 4),
                      gen_cameras=_cameras(B), resolution=H)


def _reals(*per_sample: float) -> torch.Tensor:
    return torch.stack([torch.full((3, H, H), v) for v in per_sample])


def test_discriminator_loss_on_hand_set_logits():
    # weight 1/12: a constant image of value v has logit v. Fakes: 0 -> logit 0; reals: +1 and -1.
    G, D = ConstantGenerator(0.0), LinearDiscriminator(1 / 12)
    terms = Objective().discriminator_loss(G, D, _inputs(_reals(1.0, -1.0)))
    assert terms["d_fake"].item() == pytest.approx(math.log(2))  # softplus(0)
    assert terms["d_real"].item() == pytest.approx((softplus(-1) + softplus(1)) / 2)  # 0.8132617
    assert terms["d_real"].item() == pytest.approx(0.8132617, abs=1e-6)
    assert terms["loss"].item() == pytest.approx(math.log(2) + 0.8132617, abs=1e-6)
    assert terms["d_real_logit"].item() == pytest.approx(0.0) and terms["d_fake_logit"].item() == pytest.approx(0.0)
    # The generator is run without gradients in the discriminator's phase.
    terms["loss"].backward()
    assert G.image.grad is None and D.weight.grad is not None


def test_generator_loss_is_non_saturating():
    G, D = ConstantGenerator(2.0), LinearDiscriminator(1 / 12)  # fake logit 2
    terms = Objective().generator_loss(G, D, _inputs(_reals(0.0, 0.0)))
    assert terms["g_adv"].item() == pytest.approx(softplus(-2.0))  # -log sigmoid(2) = 0.126928
    assert terms["loss"].item() == pytest.approx(0.126928, abs=1e-6)
    terms["loss"].backward()
    # d softplus(-l) / d l = -sigmoid(-l); averaged over 2 samples, times d l / d pixel = 1/12.
    expected = -1 / (1 + math.exp(2.0)) / B / 12
    torch.testing.assert_close(G.image.grad, torch.full_like(G.image, expected))


@pytest.mark.parametrize(("gamma", "interval", "expected_loss"), [
    (10.0, 1, 15.0),   # penalty 3 * gamma / 2
    (10.0, 4, 60.0),   # lazy: scaled by the interval
    (1.0, 16, 24.0),   # 3 * 0.5 * 16
])
def test_lazy_r1_is_scaled_by_its_interval(gamma, interval, expected_loss):
    # weight 0.5 on 12 values: ||grad_x D||^2 = 12 * 0.25 = 3 for every sample.
    D = LinearDiscriminator(0.5, bias=0.3)
    objective = Objective(r1_gamma=gamma, r1_interval=interval)
    reg = objective.discriminator_regularizer(D, _inputs(_reals(1.0, -2.0)))
    assert reg["r1"].item() == pytest.approx(3.0)
    assert reg["loss"].item() == pytest.approx(expected_loss)
    reg["loss"].backward()
    # Every parameter of D is in the graph (the bias with a zero gradient), as StyleGAN2 keeps it for DDP.
    assert D.bias.grad is not None and D.bias.grad.item() == 0.0
    # d/dw of sum over 12 values of w^2 is 2w per value: 1.0, times gamma / 2 * interval.
    torch.testing.assert_close(D.weight.grad, torch.full_like(D.weight, 1.0 * gamma / 2 * interval))


def test_r1_on_several_inputs_sums_their_penalties():
    x1 = torch.ones(B, 3, requires_grad=True)
    x2 = torch.ones(B, 5, requires_grad=True)
    logits = (2 * x1).sum(1) + (3 * x2).sum(1)
    assert r1_penalty(logits, [x1, x2]).item() == pytest.approx(3 * 4 + 5 * 9)


@pytest.mark.parametrize(("gamma", "interval"), [(0.0, 16), (10.0, 0), (0.0, 0)])
def test_no_r1_term_when_it_is_off(gamma, interval):
    objective = Objective(r1_gamma=gamma, r1_interval=interval)
    assert objective.discriminator_regularizer(LinearDiscriminator(0.5), _inputs(_reals(1.0, 1.0))) == {}
    assert not any(objective.regularize_discriminator_now(step) for step in range(40))


def test_r1_runs_every_interval_steps():
    objective = Objective(r1_gamma=1.0, r1_interval=4)
    assert [s for s in range(13) if objective.regularize_discriminator_now(s)] == [0, 4, 8, 12]
    assert all(Objective(r1_gamma=1.0, r1_interval=1).regularize_discriminator_now(s) for s in range(5))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"r1_gamma": -1.0}, "r1_gamma must be >= 0"),
    ({"r1_interval": -2}, "r1_interval must be >= 0"),
])
def test_negative_r1_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Objective(**kwargs)
