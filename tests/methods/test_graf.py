"""GRAF: the annealed patch scale (hand-computed), patch draws, the patch discriminator (official layout
and count), and the objective (R1 weight, real and fake patches on GRAF's grid, one training step reaching
every parameter)."""

import math

import pytest
import torch

from gan3d.core.generator import Generator, build_generator
from gan3d.core.objective import LossInputs
from gan3d.core.registry import get_registry
from gan3d.core.testing import check_contract
from gan3d.core.types import DiscriminatorInput, DiscriminatorOutput
from gan3d.methods.graf import graf_recipe
from gan3d.methods.graf.discriminator import GRAFPatchDiscriminator
from gan3d.methods.graf.objective import GRAFObjective
from gan3d.methods.graf.patch_schedule import graf_min_scale, sample_graf_patches

#: tools/official/graf_parameter_counts.py on autonomousvision/graf c50d342 (imsize 32, ndf 64).
OFFICIAL_GRAF_DISCRIMINATOR = 2_635_776


@pytest.mark.parametrize("step, expected", [
    (0, 0.9), (14_999, 0.9),                       # exp(-0.0075 k) >= 0.9 until k = 15: capped at 0.9
    (15_000, math.exp(-0.1125)),                   # k = 15 * 3 = 45
    (100_000, math.exp(-0.75)), (100_999, math.exp(-0.75)),
    (185_000, 0.25), (1_000_000, 0.25),             # exp(-1.3875) = 0.2497 < 0.25: the floor
])
def test_min_scale_annealing_hand_values(step, expected):
    assert graf_min_scale(step) == pytest.approx(expected, abs=1e-12)


def test_min_scale_annealing_celebahq_and_off():
    # celebAHQ: min_scale 0.125, scale_anneal 0.0019: exp(-0.0057 * 200) at it = 200000.
    assert graf_min_scale(200_000, min_scale=0.125, scale_anneal=0.0019) == pytest.approx(math.exp(-1.14))
    assert graf_min_scale(10**7, min_scale=0.125, scale_anneal=0.0019) == 0.125
    assert graf_min_scale(0, min_scale=0.4, scale_anneal=-1) == 0.4  # scale_anneal <= 0: no annealing
    with pytest.raises(ValueError, match="min_scale"):
        graf_min_scale(0, min_scale=0.0)


def test_patch_draws_stay_inside_and_cover_the_range():
    g = torch.Generator().manual_seed(0)
    scales, centres = sample_graf_patches(20_000, min_scale=0.25, generator=g)
    assert float(scales.min()) >= 0.25 and float(scales.max()) <= 1.0
    assert bool((centres.abs() <= 1 - scales[:, None] + 1e-6).all())
    assert float(scales.mean()) == pytest.approx(0.625, abs=0.01)  # U(0.25, 1)
    # offset / (1 - s) is U(-1, 1), independently per axis: mean 0, variance 1/3.
    ratio = centres / (1 - scales[:, None])
    assert float(ratio.mean()) == pytest.approx(0.0, abs=0.02)
    assert float(ratio.var()) == pytest.approx(1 / 3, abs=0.02)
    again = sample_graf_patches(20_000, min_scale=0.25, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(again[0], scales)


def test_discriminator_matches_the_official_layout():
    d = GRAFPatchDiscriminator()
    assert sum(p.numel() for p in d.parameters()) == OFFICIAL_GRAF_DISCRIMINATOR
    keys = {n for n, _ in d.named_parameters()}
    assert keys == {"main.0.weight_orig", "main.3.weight_orig", "main.6.weight_orig", "main.9.weight_orig"}
    buffers = {n for n, _ in d.named_buffers()}
    assert {"main.0.weight_u", "main.0.weight_v"} <= buffers
    assert d(DiscriminatorInput(torch.randn(3, 3, 32, 32))).logits.shape == (3, 1)
    for imsize, first_out in ((64, 64), (128, 32)):
        wide = GRAFPatchDiscriminator(imsize=imsize)
        assert wide.main[0].weight_orig.shape[0] == first_out
        assert wide(DiscriminatorInput(torch.randn(2, 3, imsize, imsize))).logits.shape == (2, 1)
    with pytest.raises(ValueError, match="imsize"):
        GRAFPatchDiscriminator(imsize=48)
    with pytest.raises(ValueError, match=r"\[B, 3, 32, 32\]"):
        d(DiscriminatorInput(torch.randn(2, 3, 64, 64)))


def test_hflip_flips_some_inputs():
    torch.manual_seed(0)
    d = GRAFPatchDiscriminator(ndf=4, hflip=True).eval()
    image = torch.randn(64, 3, 32, 32)
    plain = GRAFPatchDiscriminator(ndf=4).eval()
    plain.load_state_dict(d.state_dict())
    flipped = plain(DiscriminatorInput(image.flip(3))).logits
    out = d(DiscriminatorInput(image)).logits
    same, mirrored = torch.isclose(out, plain(DiscriminatorInput(image)).logits), torch.isclose(out, flipped)
    assert bool((same | mirrored).all()) and 10 < int(mirrored.sum()) < 54


def tiny_graf(patch: int = 8, z_dim: int = 12) -> Generator:
    """A tiny GRAF through Generator v2's wiring (the synthetic recipe, narrowed)."""
    recipe = graf_recipe("synthetic").overrides([
        f"stochasticity_mapper.z_dim={z_dim}", "feature_decoder.appearance_dim=4", "feature_decoder.hidden_dim=16",
        "point_sampler.num_samples=6", "point_embedder.num_frequencies=3", "feature_decoder.num_view_frequencies=2",
        f"generator.render_resolution={patch}"])
    return build_generator(recipe, get_registry())


def _inputs(step: int = 0, batch: int = 4, resolution: int = 16) -> LossInputs:
    g = torch.Generator().manual_seed(step)
    return LossInputs(real_images=torch.rand(batch, 3, resolution, resolution, generator=g) * 2 - 1,
                      real_labels=torch.zeros(batch, 25), z=torch.randn(batch, 12, generator=g), step=step,
                      image_resolution=resolution, generator=g)


class _LinearD(torch.nn.Module):
    """D(x) = 0.5 * sum(x): its gradient is 0.5 at every pixel and channel."""

    def forward(self, x: DiscriminatorInput) -> DiscriminatorOutput:
        return DiscriminatorOutput(logits=0.5 * x.image.flatten(1).sum(1, keepdim=True))


def test_objective_r1_is_graf_row_mean():
    """GRAF's reg = reg_param * mean over the B*K*K pixel rows of the squared gradient; for D = sum(c * x)
    the gradient is c everywhere, so reg = reg_param * 3 c^2 (3 channels per row)."""
    loss = GRAFObjective(reg_param=10.0, patch_size=8)
    assert loss.r1_gamma == pytest.approx(20 / 64) and loss.r1_interval == 1
    assert loss.regularize_discriminator_now(0) and loss.regularize_discriminator_now(7)  # every step
    terms = loss.discriminator_regularizer(_LinearD(), _inputs())
    assert float(terms["loss"].detach()) == pytest.approx(10.0 * 3 * 0.25)
    assert float(terms["r1"]) == pytest.approx(8 * 8 * 3 * 0.25)  # per-image sum of squares
    assert not GRAFObjective(reg_param=0.0).discriminator_regularizer(_LinearD(), _inputs())


def test_r1_acts_on_the_real_losss_patches():
    """GRAF's compute_grad2 differentiates the real loss's forward: the regularizer after discriminator_loss gets
    the same patches of the same reals; other reals (or another step) get a fresh draw."""
    loss = GRAFObjective(patch_size=8)
    inputs = _inputs()
    first = loss.real_input(inputs)
    assert loss.real_input(inputs) is first
    again = LossInputs(inputs.real_images, inputs.real_labels, torch.zeros(4, 12), image_resolution=16, step=0)
    assert loss.real_input(again) is first  # the trainer's regularizer call: new z, the same reals
    other = loss.real_input(_inputs(step=1))
    assert other is not first and not torch.equal(other.patch.offsets, first.patch.offsets)


def test_objective_patches_follow_the_annealed_scale():
    loss = GRAFObjective(patch_size=8)
    # W = 16: a patch of NDC scale s spans s (W - 1) / W of the image in normalized coordinates.
    patch = loss.sample_patches(512, 0, 16, generator=torch.Generator().manual_seed(0))
    assert patch.align_corners and float(patch.scales.min()) >= 0.9 * 15 / 16 - 1e-6
    assert bool((patch.offsets >= 0.5 / 16 - 1e-6).all())  # never left of the first pixel centre
    assert bool((patch.offsets + patch.scales[:, None] <= 1 - 0.5 / 16 + 1e-6).all())
    patch = loss.sample_patches(512, 400_000, 16, generator=torch.Generator().manual_seed(0))
    assert float(patch.scales.min()) < 0.3 * 15 / 16
    with pytest.raises(ValueError, match="square"):
        loss.real_input(LossInputs(torch.zeros(2, 3, 8, 6), torch.zeros(2, 25), torch.zeros(2, 12)))


def test_real_patches_are_cut_from_the_full_resolution_reals():
    """A real whose pixel value is its column: the patch at scale 1 is the image; patches of larger reals are
    resized to the generator's output first (GRAF's Resize(imsize))."""
    loss = GRAFObjective(patch_size=16, min_scale=1.0, scale_anneal=0.0)
    cols = torch.arange(16, dtype=torch.float32).expand(2, 3, 16, 16)
    x = loss.real_input(LossInputs(cols, torch.zeros(2, 25), torch.zeros(2, 12), image_resolution=16))
    torch.testing.assert_close(x.image, cols, atol=1e-4, rtol=0)
    assert x.patch is not None and x.patch.align_corners
    big = loss.real_input(LossInputs(torch.zeros(2, 3, 64, 64), torch.zeros(2, 25), torch.zeros(2, 12),
                                     image_resolution=16))
    assert big.image.shape == (2, 3, 16, 16)


def test_fake_patches_are_the_full_render_at_the_patch_grid():
    """With scale 1 a patch is the whole image: rendering the patch at K = W gives the full-image render
    (same rays: the cropped camera, align_corners=True, at u = offset + s j / (W - 1) = pixel centres)."""
    torch.manual_seed(0)
    G = tiny_graf(patch=8).eval()
    loss = GRAFObjective(patch_size=8, min_scale=1.0, scale_anneal=0.0)
    z = torch.randn(2, 12)
    cams = G.pose_sampler(2, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        full = G(z, cams, resolution=8)
        patch = loss.run_generator(G, LossInputs(torch.zeros(2, 3, 8, 8), torch.zeros(2, 25), z, gen_cameras=cams,
                                                 image_resolution=8))
    assert patch.cameras.align_corners and patch.aux["patch"].scales.shape == (2,)
    torch.testing.assert_close(patch.image, full.image, atol=1e-5, rtol=0)
    torch.testing.assert_close(patch.depth, full.depth, atol=1e-4, rtol=0)


def test_one_training_step_reaches_every_parameter():
    torch.manual_seed(0)
    G, D = tiny_graf(patch=32), GRAFPatchDiscriminator(ndf=4, imsize=32)
    check_contract("discriminator", D, resolution=32)
    loss = GRAFObjective(patch_size=32)
    inputs = _inputs(step=20_000, batch=2, resolution=64)
    d_terms = loss.discriminator_loss(G, D, inputs)
    (d_terms["loss"] + loss.discriminator_regularizer(D, inputs)["loss"]).backward()
    for name, p in D.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert all(p.grad is None for p in G.parameters())  # fakes under no_grad in the D step
    D.zero_grad()
    g_terms = loss.generator_loss(G, D, inputs)
    g_terms["loss"].backward()
    for name, p in G.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    out = loss.run_generator(G, inputs)
    assert out.image.shape == (2, 3, 32, 32) and float(out.image.detach().abs().max()) <= 1.0
