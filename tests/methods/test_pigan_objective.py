"""pi-GAN's objective: top-k, position and latent losses, R1 weight, at hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gan3d.core.cameras import fov_to_intrinsics, look_at, spherical_origin
from gan3d.core.objective import LossInputs
from gan3d.core.types import Cameras, DiscriminatorOutput, GeneratorOutput
from gan3d.methods.pigan.objective import PiGANObjective, topk_fraction
from gan3d.methods.pigan.pose_angles import pigan_angles, pigan_angles_from_cam2world


def cameras_at(yaw_h: torch.Tensor, polar_v: torch.Tensor, with_angles: bool = True) -> Cameras:
    """Cameras on the unit sphere (gan3d's h/v convention) looking at the origin."""
    c2w = look_at(spherical_origin(yaw_h, polar_v, 1.0))
    angles = torch.stack([yaw_h, polar_v], dim=-1) if with_angles else None  # as the spherical sampler fills them
    return Cameras(c2w, fov_to_intrinsics(12.0, len(yaw_h)), angles)


class FakeGenerator(nn.Module):
    """Renders a constant image scaled by one parameter, from the cameras it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(1.0))

    def forward(self, z, cameras, **kwargs) -> GeneratorOutput:
        image = self.scale * torch.ones(z.shape[0], 3, 4, 4)
        return GeneratorOutput(image=image, image_raw=image, depth=image[:, :1], alpha=image[:, :1],
                               features=image, cameras=cameras, ws=z[:, None])


class FakeDiscriminator(nn.Module):
    """Returns preset logits, pose and latent predictions, each plus mean(image) (so gradients flow)."""

    def __init__(self, logits, pose=None, latent=None) -> None:
        super().__init__()
        self.logits, self.pose, self.latent = logits, pose, latent

    def forward(self, x) -> DiscriminatorOutput:
        shift = x.image.mean(dim=(1, 2, 3))[:, None] - 1.0  # zero for the fake generator's images
        return DiscriminatorOutput(
            logits=self.logits + shift,
            pose=None if self.pose is None else self.pose + shift,
            latent=None if self.latent is None else self.latent + shift,
        )


def inputs_for(batch: int, step: int = 0, cameras: Cameras | None = None, z=None) -> LossInputs:
    return LossInputs(real_images=torch.zeros(batch, 3, 4, 4), real_labels=torch.zeros(batch, 25),
                      z=torch.zeros(batch, 2) if z is None else z, gen_cameras=cameras, step=step)


def test_topk_fraction_anneals_as_pigan_train_py():
    assert topk_fraction(0, 2000, 0.6) == 1.0
    assert topk_fraction(2000, 2000, 0.6) == pytest.approx(0.99)
    assert topk_fraction(10 * 2000, 2000, 0.6) == pytest.approx(0.99**10)
    assert topk_fraction(200_000, 2000, 0.6) == 0.6  # 0.99**100 = 0.366 < 0.6
    assert topk_fraction(10**6, 0, 0.6) == 1.0  # interval 0: off
    objective = PiGANObjective()
    assert objective.topk_count(56, 200_000) == 34  # ceil(0.6 * 56)
    assert objective.topk_count(56, 0) == 56
    assert objective.topk_count(10, 2000) == 10  # ceil(9.9)


def test_generator_loss_keeps_the_k_largest_logits_and_adds_the_position_loss():
    logits = torch.tensor([[-2.0], [3.0], [0.5], [1.0], [-1.0]])
    h = torch.tensor([1.4, 1.6, 1.5, 1.7, 1.2])
    v = torch.tensor([1.5, 1.6, 1.55, 1.4, 1.65])
    cams = cameras_at(h, v)
    pred_pose = torch.tensor([[1.0, 1.0]] * 5)
    D = FakeDiscriminator(logits, pose=pred_pose, latent=torch.zeros(5, 2))
    objective = PiGANObjective(pos_lambda=15.0, z_lambda=0.0, topk_interval=2000, topk_v=0.6)
    terms = objective.generator_loss(FakeGenerator(), D, inputs_for(5, step=10**6, cameras=cams))
    # k = ceil(0.6 * 5) = 3: logits 3, 1, 0.5.
    expected_adv = F.softplus(-torch.tensor([3.0, 1.0, 0.5])).mean()
    assert terms["g_adv"].item() == pytest.approx(expected_adv.item(), rel=1e-6)
    target = torch.stack([math.pi - h, v], dim=-1)  # pi-GAN (theta, phi)
    expected_pos = 15.0 * ((pred_pose - target) ** 2).mean()
    assert terms["g_pos"].item() == pytest.approx(expected_pos.item(), rel=1e-6)
    assert "g_latent" not in terms  # z_lambda = 0
    assert terms["loss"].item() == pytest.approx((expected_adv + expected_pos).item(), rel=1e-6)
    assert terms["g_topk_fraction"].item() == pytest.approx(0.6)


def test_generator_loss_uses_every_logit_early_and_when_topk_is_off():
    logits = torch.tensor([[-2.0], [3.0], [0.5], [1.0]])
    everything = F.softplus(-logits).mean().item()
    for objective, step in ((PiGANObjective(pos_lambda=0.0), 0), (PiGANObjective(pos_lambda=0.0, topk_v=1.0), 10**6),
                            (PiGANObjective(pos_lambda=0.0, topk_interval=0), 10**6)):
        terms = objective.generator_loss(FakeGenerator(), FakeDiscriminator(logits), inputs_for(4, step,
                                         cameras_at(torch.full((4,), 1.5), torch.full((4,), 1.5))))
        assert terms["g_adv"].item() == pytest.approx(everything, rel=1e-6)
        assert set(terms) == {"g_adv", "loss", "g_topk_fraction"}


def test_the_configured_weights_are_read():
    """Carver's defect: pos_lambda and the top-k options passed under names the loss never read."""
    logits = torch.tensor([[-2.0], [3.0], [0.5], [1.0]])
    cams = cameras_at(torch.full((4,), 1.5), torch.full((4,), 1.5))
    D = FakeDiscriminator(logits, pose=torch.zeros(4, 2))
    losses = {}
    for lam in (1.0, 2.0):
        losses[lam] = PiGANObjective(pos_lambda=lam).generator_loss(FakeGenerator(), D, inputs_for(4, 0, cams))
    assert losses[2.0]["g_pos"].item() == pytest.approx(2 * losses[1.0]["g_pos"].item())
    half = PiGANObjective(pos_lambda=0.0, topk_v=0.5)
    keep_half = half.generator_loss(FakeGenerator(), D, inputs_for(4, 10**7, cams))
    assert keep_half["g_adv"].item() == pytest.approx(F.softplus(-torch.tensor([3.0, 1.0])).mean().item())


def test_latent_loss_compares_the_predicted_latent_with_z():
    z = torch.tensor([[1.0, -1.0], [0.5, 0.0]])
    D = FakeDiscriminator(torch.zeros(2, 1), pose=torch.zeros(2, 2), latent=torch.tensor([[0.0, 0.0], [0.5, 1.0]]))
    cams = cameras_at(torch.full((2,), 1.5), torch.full((2,), 1.5))
    terms = PiGANObjective(pos_lambda=0.0, z_lambda=3.0).generator_loss(FakeGenerator(), D, inputs_for(2, 0, cams, z))
    assert terms["g_latent"].item() == pytest.approx(3.0 * (1 + 1 + 0 + 1) / 4)


def test_discriminator_loss_adds_position_loss_on_the_fakes():
    fake_logits = torch.tensor([[0.3], [-0.7]])
    h = torch.tensor([1.3, 1.9])
    v = torch.tensor([1.5, 1.7])
    cams = cameras_at(h, v)
    pred_pose = torch.tensor([[2.0, 1.0], [1.0, 2.0]])
    D = FakeDiscriminator(fake_logits, pose=pred_pose, latent=torch.zeros(2, 2))
    terms = PiGANObjective(pos_lambda=15.0).discriminator_loss(FakeGenerator(), D, inputs_for(2, 0, cams))
    target = torch.stack([math.pi - h, v], dim=-1)
    assert terms["d_pos"].item() == pytest.approx((15.0 * ((pred_pose - target) ** 2).mean()).item(), rel=1e-6)
    # The fake discriminator gives the real images (all zero) logits shifted by -1.
    assert terms["d_fake"].item() == pytest.approx(F.softplus(fake_logits).mean().item(), rel=1e-6)
    assert terms["d_real"].item() == pytest.approx(F.softplus(-(fake_logits - 1.0)).mean().item(), rel=1e-6)


def test_r1_is_half_r1_lambda_times_the_squared_gradient_norm_every_step():
    class LinearD(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.randn(1, 3, 4, 4))

        def forward(self, x):
            return DiscriminatorOutput(logits=(x.image * self.weight).flatten(1).sum(1, keepdim=True))

    D = LinearD()
    objective = PiGANObjective(r1_gamma=0.2)
    assert all(objective.regularize_discriminator_now(step) for step in range(5))
    reg = objective.discriminator_regularizer(D, inputs_for(3))
    norm2 = D.weight.square().sum().item()  # d logits / d image = weight for every sample
    assert reg["r1"].item() == pytest.approx(norm2, rel=1e-5)
    assert reg["loss"].item() == pytest.approx(0.5 * 0.2 * norm2, rel=1e-5)


def test_missing_pose_head_is_a_clear_error():
    D = FakeDiscriminator(torch.zeros(2, 1))
    cams = cameras_at(torch.full((2,), 1.5), torch.full((2,), 1.5))
    with pytest.raises(ValueError, match="pose_dim=2"):
        PiGANObjective(pos_lambda=15.0).generator_loss(FakeGenerator(), D, inputs_for(2, 0, cams))
    with pytest.raises(ValueError, match="topk_v"):
        PiGANObjective(topk_v=1.5)


def test_generator_gradient_flows_through_adv_and_position_terms():
    G = FakeGenerator()
    D = FakeDiscriminator(torch.tensor([[0.1], [0.2]]), pose=torch.zeros(2, 2))
    cams = cameras_at(torch.full((2,), 1.5), torch.full((2,), 1.5))
    PiGANObjective().generator_loss(G, D, inputs_for(2, 0, cams))["loss"].backward()
    assert G.scale.grad is not None and G.scale.grad.abs() > 0


def test_pose_angles_from_angles_equal_those_from_cam2world():
    h = torch.tensor([0.9, 1.3, math.pi / 2, 2.0, 2.5])
    v = torch.tensor([0.6, 1.2, math.pi / 2, 1.9, 2.4])
    expected = torch.stack([math.pi - h, v], dim=-1)  # pi-GAN theta = pi - h, phi = v
    assert torch.allclose(pigan_angles(cameras_at(h, v)), expected, atol=1e-5)
    assert torch.allclose(pigan_angles(cameras_at(h, v, with_angles=False)), expected, atol=1e-5)
    # The frontal camera (+z) is theta = phi = pi/2, pi-GAN's h_mean and v_mean.
    front = look_at(torch.tensor([[0.0, 0.0, 2.7]]))
    assert torch.allclose(pigan_angles_from_cam2world(front), torch.full((1, 2), math.pi / 2), atol=1e-6)
    # pi-GAN's own placement: origin = (sin phi cos theta, cos phi, sin phi sin theta).
    theta, phi = 1.2, 1.4
    origin = torch.tensor([[math.sin(phi) * math.cos(theta), math.cos(phi), math.sin(phi) * math.sin(theta)]])
    assert torch.allclose(pigan_angles_from_cam2world(look_at(origin)), torch.tensor([[theta, phi]]), atol=1e-5)


def test_pose_sampler_angles_agree_with_its_cameras():
    """The angles the registered ``spherical`` sampler records give the same pi-GAN target as its
    cameras' geometry (catches a change of the angle convention on either side)."""
    from gan3d.core.registry import RegistryError, get_registry
    from gan3d.methods.pigan.recipe import pigan_recipe

    try:
        spec = pigan_recipe().modules["pose_sampler"]
        sampler = get_registry().build("pose_sampler", spec.name, **spec.kwargs)
    except RegistryError as exc:
        pytest.skip(f"pose sampler not installed yet: {exc}")
    cams = sampler(64, generator=torch.Generator().manual_seed(0))
    from_angles = pigan_angles(cams)
    assert torch.allclose(from_angles, pigan_angles_from_cam2world(cams.cam2world), atol=1e-4)
    # pi-GAN CelebA: theta ~ N(pi/2, 0.3), phi ~ N(pi/2, 0.155).
    assert abs(from_angles[:, 0].mean().item() - math.pi / 2) < 0.15
    assert 0.15 < from_angles[:, 0].std().item() < 0.45
    assert 0.08 < from_angles[:, 1].std().item() < 0.25


def test_batch_split_takes_topk_within_each_sub_batch_and_sums_their_losses():
    # pi-GAN train.py: for each of batch_split sub-batches, topk, mean, backward (gradients summed).
    logits = torch.tensor([[3.0], [2.0], [-1.0], [-2.0]])
    pred_pose = torch.tensor([[1.0, 1.0], [2.0, 1.0], [1.0, 0.0], [0.0, 0.0]])
    h = torch.full((4,), math.pi / 2)
    cams = cameras_at(h, h)
    D = FakeDiscriminator(logits, pose=pred_pose)
    objective = PiGANObjective(pos_lambda=2.0, topk_v=0.5, batch_split=2)
    terms = objective.generator_loss(FakeGenerator(), D, inputs_for(4, 10**7, cams))
    # Each half keeps its own largest logit: 3 and -1 (a whole-batch top-2 would keep 3 and 2).
    expected_adv = F.softplus(torch.tensor(-3.0)) + F.softplus(torch.tensor(1.0))
    assert terms["g_adv"].item() == pytest.approx(expected_adv.item(), rel=1e-6)
    target = torch.full((4, 2), math.pi / 2)
    sq = (pred_pose - target) ** 2
    expected_pos = 2.0 * (sq[:2].mean() + sq[2:].mean())
    assert terms["g_pos"].item() == pytest.approx(expected_pos.item(), rel=1e-6)
    with pytest.raises(ValueError, match="divisible by loss.batch_split"):
        PiGANObjective(batch_split=3).generator_loss(FakeGenerator(), D, inputs_for(4, 0, cams))
