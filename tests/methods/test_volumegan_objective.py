"""VolumeGAN's objective: style mixing on the neural renderer's rows only, the path-length penalty on all
rows, the phase order, and the level-of-detail agreement of G and D."""

import math
import types

import pytest
import torch
from torch import nn

from gan3d.core import regularizers
from gan3d.core.objective import LossInputs
from gan3d.core.testing import front_cameras
from gan3d.core.types import GeneratorOutput
from gan3d.methods.volumegan import objective as objective_module
from gan3d.methods.volumegan.objective import VolumeGANObjective, draw_mixing_cutoff, mix_latents, mixing_rows

NUM_WS, W_DIM, Z_DIM, SIDE = 6, 4, 3, 2


class LinearGenerator(nn.Module):
    """A stand-in with the generator's interface: ``w = A z`` broadcast to 6 rows; the image is a fixed
    linear map ``M`` of all rows, so the path length is known in closed form. Rows 2..5 are the upsampler's."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.A = nn.Parameter(torch.randn(Z_DIM, W_DIM))
        self.M = nn.Parameter(torch.randn(NUM_WS * W_DIM, 3 * SIDE * SIDE))
        self.ws_layout = {"point_embedder": slice(0, 1), "feature_decoder": slice(0, 2), "upsampler": slice(2, 6)}
        self.w_avg_updates = 0
        self.pose_sampler = lambda n, device="cpu", generator=None: front_cameras(n)

    def mapping(self, z, c=None, *, update_w_avg=False, **_):
        self.w_avg_updates += int(update_w_avg)
        return (z @ self.A).unsqueeze(1).repeat(1, NUM_WS, 1)

    def synthesis(self, ws, cameras, *, resolution=None, generator=None, requests=(), alpha=1.0):
        image = (ws.flatten(1) @ self.M).reshape(-1, 3, SIDE, SIDE)
        zeros = torch.zeros(ws.shape[0], 1, SIDE, SIDE)
        return GeneratorOutput(image=image, image_raw=image, depth=zeros, alpha=zeros, features=image,
                               cameras=cameras, ws=ws)


def inputs(batch=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return LossInputs(real_images=torch.zeros(batch, 3, SIDE, SIDE), real_labels=torch.zeros(batch, 25),
                      z=torch.randn(batch, Z_DIM, generator=g), generator=g)


def test_mix_latents_takes_rows_from_the_cutoff_on():
    ws, other = torch.zeros(2, 6, 3), torch.ones(2, 6, 3)
    mixed = mix_latents(ws, other, 4)
    assert mixed[:, :4].eq(0).all() and mixed[:, 4:].eq(1).all()
    assert mix_latents(ws, other, 6).eq(0).all() and mix_latents(ws, other, 0).eq(1).all()
    with pytest.raises(ValueError, match="cutoff 7 outside"):
        mix_latents(ws, other, 7)


def test_cutoff_is_uniform_over_the_upsampler_rows():
    # Official randint(num_nerf_layers, num_layers) = randint(4, 12): every value 4..11, never 12.
    g = torch.Generator().manual_seed(0)
    draws = [draw_mixing_cutoff(slice(4, 12), generator=g) for _ in range(800)]
    assert set(draws) == set(range(4, 12))
    counts = torch.bincount(torch.tensor(draws))[4:]
    assert counts.min() > 60  # about 100 each


def test_mixing_never_touches_the_feature_volume_and_mlp_rows():
    G = LinearGenerator()
    loss = VolumeGANObjective(style_mixing_prob=1.0)
    z = torch.randn(3, Z_DIM)
    base = G.mapping(z)
    g = torch.Generator().manual_seed(1)
    cutoffs = set()
    for _ in range(60):
        ws = loss.mapped_latents(G, z, g)
        assert torch.equal(ws[:, :2], base[:, :2])
        differs = (ws != base).flatten(2).any(-1).any(0)  # [rows]
        cutoffs.add(int(differs.float().argmax()))
        assert differs[int(differs.float().argmax()):].all()
    assert cutoffs == {2, 3, 4, 5}
    # Only the first latent of each call updates w_avg (the official second mapping does not).
    assert G.w_avg_updates == 60


def test_no_mixing_at_probability_zero_and_a_clear_error_without_a_layout():
    G = LinearGenerator()
    z = torch.randn(2, Z_DIM)
    assert torch.equal(VolumeGANObjective(style_mixing_prob=0.0).mapped_latents(G, z), G.mapping(z))
    del G.ws_layout
    with pytest.raises(ValueError, match="ws_layout"):
        mixing_rows(G)


def test_path_length_penalty_matches_the_closed_form(monkeypatch):
    """With y = 1 / sqrt(H W) and z = 1 the path length of the linear stand-in is |M y| over rows."""
    G = LinearGenerator()
    loss = VolumeGANObjective(style_mixing_prob=0.0, pl_weight=2.0, pl_interval=4, pl_batch_shrink=2)
    ones = types.SimpleNamespace(normal=lambda shape, **_: torch.ones(shape), uniform=torch.rand,
                                 randint=torch.randint)
    monkeypatch.setattr(objective_module, "random_draws", ones)  # z
    monkeypatch.setattr(regularizers, "random_draws", ones)  # the image-space noise, drawn by core's regularizer
    terms = loss.generator_regularizer(G, inputs(batch=4))
    y = torch.ones(3 * SIDE * SIDE) / math.sqrt(SIDE * SIDE)
    grad = (G.M @ y).reshape(NUM_WS, W_DIM).detach()
    length = grad.square().sum(1).mean().sqrt()
    mean = 0.01 * length  # running mean from 0 with decay 0.01
    assert float(terms["pl_length"]) == pytest.approx(float(length), rel=1e-5)
    assert float(terms["pl"]) == pytest.approx(float((length - mean) ** 2), rel=1e-4)
    assert float(terms["loss"].detach()) == pytest.approx(float(2.0 * 4 * (length - mean) ** 2), rel=1e-4)
    assert float(loss.path_length.mean_path_length) == pytest.approx(float(mean), rel=1e-5)
    terms["loss"].backward()
    assert G.M.grad is not None and G.M.grad.abs().sum() > 0


def test_path_length_runs_on_a_shrunk_batch_and_can_be_switched_off():
    G = LinearGenerator()
    seen = []
    synthesis = G.synthesis
    G.synthesis = lambda ws, cams, **kw: seen.append(ws.shape[0]) or synthesis(ws, cams, **kw)
    VolumeGANObjective(pl_batch_shrink=2).generator_regularizer(G, inputs(batch=8))
    assert seen == [4]
    off = VolumeGANObjective(pl_weight=0.0)
    assert off.generator_regularizer(G, inputs()) == {} and off.g_reg_interval == 0


def test_phase_order_and_defaults_follow_the_official_runner():
    loss = VolumeGANObjective()
    assert loss.generator_step_first and loss.g_reg_own_step and loss.d_reg_own_step
    assert (loss.r1_gamma, loss.r1_interval, loss.g_reg_interval, loss.style_mixing_prob) == (10.0, 16, 4, 0.9)
    assert loss.regularize_discriminator_now(0) and not loss.regularize_discriminator_now(1)


def test_levels_of_detail_of_g_and_d_must_agree():
    G = types.SimpleNamespace(upsampler=types.SimpleNamespace(lod=torch.tensor(3.0)))
    VolumeGANObjective.check_levels(G, types.SimpleNamespace(lod=torch.tensor(3.0)))
    with pytest.raises(ValueError, match="same lod_"):
        VolumeGANObjective.check_levels(G, types.SimpleNamespace(lod=torch.tensor(2.5)))


@pytest.mark.parametrize("kwargs", [dict(style_mixing_prob=1.5), dict(pl_interval=0), dict(pl_decay=0.0),
                                    dict(pl_weight=-1.0)])
def test_bad_options_are_refused(kwargs):
    with pytest.raises(ValueError, match="volumegan loss"):
        VolumeGANObjective(**kwargs)


def test_optimizer_states_reset_when_the_level_of_detail_starts_or_stops_changing():
    """ProgressScheduler: reset when int(lod) or ceil(lod) changes against the previous iteration's lod,
    which starts at 0.0 (so a run starting at lod 3 resets at once, harmlessly, on empty states)."""
    loss = VolumeGANObjective()
    levels = [3.0, 3.0, 2.75, 2.5, 2.25, 2.0, 2.0, 1.5, 1.0, 0.5, 0.0, 0.0]
    resets = []
    for step, lod in enumerate(levels):
        D = types.SimpleNamespace(lod=torch.tensor(lod))
        G = types.SimpleNamespace(upsampler=types.SimpleNamespace(lod=torch.tensor(lod)))
        resets.append(loss.reset_optimizers_now(G, D, step, 0.0))
    #          3.0   3.0    2.75  2.5    2.25   2.0   2.0    1.5   1.0   0.5   0.0   0.0
    assert resets == [True, False, True, False, False, True, False, True, True, True, True, False]
    off = VolumeGANObjective(reset_optimizer=False)
    G = types.SimpleNamespace()
    assert not any(off.reset_optimizers_now(G, types.SimpleNamespace(lod=torch.tensor(v)), 0, 0.0) for v in (3.0, 2.5))
    # A discriminator and upsampler without a level of detail (swapped modules): never.
    assert not loss.reset_optimizers_now(G, types.SimpleNamespace(), 0, 0.0)


def test_the_generator_phase_logs_the_level_of_detail_outside_the_loss():
    """``lod`` (the discriminator's, equal to the renderer's) is a logged term; ``loss`` is the adversarial one."""
    from gan3d.core.types import DiscriminatorOutput

    class Critic(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("lod", torch.tensor(0.75))

        def forward(self, x):
            return DiscriminatorOutput(logits=x.image.mean(dim=(1, 2, 3)).unsqueeze(1))

    G, D = LinearGenerator(), Critic()
    G.upsampler = types.SimpleNamespace(lod=torch.tensor(0.75))
    terms = VolumeGANObjective(style_mixing_prob=0.0).generator_loss(G, D, inputs())
    assert float(terms["lod"]) == 0.75 and not terms["lod"].requires_grad
    assert float(terms["loss"].detach()) == pytest.approx(float(terms["g_adv"].detach()))
