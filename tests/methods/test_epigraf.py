"""EpiGRAF: the Beta patch-scale schedule (hand-computed), patch draws and their parameters, camera angles,
the scalar encoder, the patch-aware discriminator (official counts and behaviour) and the objective
(one training step reaching every parameter, R1 on the patch pixels only)."""

import math

import pytest
import torch

from gan3d.core.generator import Generator
from gan3d.core.objective import LossInputs
from gan3d.core.types import DiscriminatorOutput
from gan3d.embedders.feature_decoders.osg import OSGDecoder
from gan3d.embedders.point_embedders.triplane import TriplaneEmbedder
from gan3d.embedders.stochasticity_mappers.stylegan2 import StyleGAN2Mapper
from gan3d.methods.epigraf.camera_angles import (
    epigraf_cameras,
    epigraf_focal,
    match_camera_angles,
    to_epigraf_angles,
    to_gan3d_angles,
)
from gan3d.methods.epigraf.discriminator import EpiGRAFPatchDiscriminator
from gan3d.methods.epigraf.objective import EpiGRAFObjective
from gan3d.methods.epigraf.patch_schedule import (
    beta_one_quantile,
    beta_parameter,
    epigraf_patch_params,
    linear_schedule,
    sample_epigraf_patches,
)
from gan3d.methods.epigraf.scalar_encoding import ScalarEncoder1d, log_spaced_frequencies
from gan3d.renderers.identity_upsampler import IdentityUpsampler
from gan3d.renderers.volume import DensityVolumeRenderer
from gan3d.samplers.spherical_pose_sampler import SphericalPoseSampler
from gan3d.samplers.uniform_point_sampler import UniformPointSampler

#: tools/official/epigraf_parameter_counts.py on universome/epigraf bda8d47.
OFFICIAL_D = {"ffhq512": 27_490_816, "ffhq512_camera": 27_503_104, "cats256": 27_444_480}


# ------------------------------------------------------------------ the Beta schedule
@pytest.mark.parametrize("kimg, expected", [(-5.0, 0.001), (0.0, 0.001), (2500.0, 0.001 + 0.799 / 4),
                                            (5000.0, 0.4005), (10_000.0, 0.8), (40_000.0, 0.8)])
def test_beta_parameter_is_linear_over_10000_kimg(kimg, expected):
    assert beta_parameter(kimg) == pytest.approx(expected, abs=1e-12)


def test_linear_schedule_and_beta_quantile_hand_values():
    assert linear_schedule(2500.0, 1.0, 0.0, 5000.0) == 0.5  # EpiGRAF's density-noise schedule at 2500 kimg
    # Beta(1, b): F(x) = 1 - (1 - x)^b  =>  x(u) = 1 - (1 - u)^(1/b).
    assert float(beta_one_quantile(torch.tensor(0.5), 0.8)) == pytest.approx(1 - 0.5 ** 1.25)
    assert float(beta_one_quantile(torch.tensor(0.5), 1.0)) == pytest.approx(0.5)  # Beta(1, 1) is uniform
    assert float(beta_one_quantile(torch.tensor(0.999), 0.001)) == pytest.approx(1.0)  # b -> 0: whole images
    with pytest.raises(ValueError, match="positive"):
        beta_one_quantile(torch.tensor(0.5), 0.0)


def test_scale_draws_follow_the_beta_distribution():
    """Mean of Beta(1, b) is 1 / (1 + b); the scale is min + (1 - min) x."""
    g = torch.Generator().manual_seed(0)
    for kimg, b in ((10_000.0, 0.8), (5000.0, 0.4005)):
        scales, _ = sample_epigraf_patches(40_000, kimg=kimg, min_scale=0.125, group_size=1, generator=g)
        assert float(scales.mean()) == pytest.approx(0.125 + 0.875 / (1 + b), abs=0.01)
        assert float(scales.min()) >= 0.125 and float(scales.max()) <= 1.0
    early, _ = sample_epigraf_patches(4000, kimg=0.0, min_scale=0.125, group_size=1, generator=g)
    # Beta(1, 0.001): P(x > 0.99) = 0.01^0.001 = 0.9954 -- nearly always the whole image.
    assert float((early > 0.99).float().mean()) == pytest.approx(0.01 ** 0.001, abs=0.005)


def test_patches_are_shared_by_consecutive_groups_and_stay_inside():
    scales, centres = sample_epigraf_patches(16, kimg=10_000.0, min_scale=0.125, group_size=4,
                                             generator=torch.Generator().manual_seed(3))
    assert scales.shape == (16,) and centres.shape == (16, 2)
    for g in range(4):
        assert bool((scales[4 * g: 4 * g + 4] == scales[4 * g]).all())
        assert bool((centres[4 * g: 4 * g + 4] == centres[4 * g]).all())
    assert len(set(scales.tolist())) == 4
    assert bool((centres.abs() <= 1 - scales[:, None] + 1e-6).all())
    with pytest.raises(ValueError, match="multiple of the group size"):
        sample_epigraf_patches(6, kimg=0.0, min_scale=0.125, group_size=4)


def test_patch_params_are_offsets_from_the_left_and_bottom_edges():
    # Top-left quarter: x in [-1, 0], y (down) in [-1, 0]: o_x = 0, and from the bottom o_y = 0.5.
    params = epigraf_patch_params(torch.tensor([0.5, 0.25]), torch.tensor([[-0.5, -0.5], [0.75, 0.75]]))
    torch.testing.assert_close(params, torch.tensor([[0.5, 0.0, 0.5], [0.25, 0.75, 0.0]]))
    # Round trip with the draw: offsets lie in [0, 1 - s].
    scales, centres = sample_epigraf_patches(64, kimg=10_000.0, min_scale=0.125, group_size=1,
                                             generator=torch.Generator().manual_seed(1))
    p = epigraf_patch_params(scales, centres)
    assert bool((p[:, 1:] >= -1e-6).all()) and bool((p[:, 1:] <= (1 - scales[:, None]) + 1e-6).all())


# ------------------------------------------------------------------ cameras
def _epigraf_cam2world(angles: torch.Tensor, radius: float) -> torch.Tensor:
    """rendering.py compute_cam2world_matrix restated (OpenGL camera, EpiGRAF's world)."""
    yaw, pitch = angles[:, 0], angles[:, 1]
    origin = radius * torch.stack([pitch.sin() * yaw.cos(), pitch.cos(), pitch.sin() * yaw.sin()], -1)
    forward = torch.nn.functional.normalize(-origin, dim=-1)
    up = torch.tensor([0.0, 1.0, 0.0]).expand_as(forward)
    left = torch.nn.functional.normalize(torch.linalg.cross(up, forward, dim=-1), dim=-1)
    up = torch.nn.functional.normalize(torch.linalg.cross(forward, left, dim=-1), dim=-1)
    c2w = torch.eye(4).repeat(angles.shape[0], 1, 1)
    c2w[:, :3, :3] = torch.stack([-left, up, -forward], -1)
    c2w[:, :3, 3] = origin
    return c2w


def test_cameras_are_epigrafs_after_the_quarter_turn():
    angles = torch.tensor([[0.0, math.pi / 2, 0.0], [0.4, 1.2, 0.0], [-2.5, 2.0, 0.0]])
    cams = epigraf_cameras(angles, radius=1.0, fov=12.0, image_resolution=512)
    turn = torch.tensor([[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])  # gan3d = turn @ EpiGRAF
    opengl_to_opencv = torch.diag(torch.tensor([1.0, -1.0, -1.0]))
    c2w = _epigraf_cam2world(angles, 1.0)
    torch.testing.assert_close(cams.cam2world[:, :3, :3], turn @ c2w[:, :3, :3] @ opengl_to_opencv, atol=1e-6, rtol=0)
    torch.testing.assert_close(cams.origins, (turn @ c2w[:, :3, 3:]).squeeze(-1), atol=1e-6, rtol=0)
    torch.testing.assert_close(cams.origins[0], torch.tensor([0.0, 0.0, 1.0]), atol=1e-6, rtol=0)  # front on +z
    assert float(cams.intrinsics[0, 0, 0]) == pytest.approx(511 / (1024 * math.tan(math.radians(6))))


def test_mirroring_is_yaw_negation_and_angles_round_trip():
    angles = torch.tensor([[0.3, 1.4, 0.0], [-1.0, 1.8, 0.0]])
    mirrored = epigraf_cameras(angles).mirror_x()
    flipped = epigraf_cameras(angles * torch.tensor([-1.0, 1.0, 1.0]))  # dataset.py: yaw -> -yaw
    torch.testing.assert_close(mirrored.cam2world, flipped.cam2world, atol=1e-6, rtol=0)
    torch.testing.assert_close(to_epigraf_angles(to_gan3d_angles(angles)), angles)
    assert epigraf_focal(12.0, 64) == pytest.approx(63 / (128 * math.tan(math.radians(6))))


def test_dataset_json_angles_are_matched_without_extensions():
    angles = match_camera_angles(["00000/img1.png", "00000/img2.png"],
                                 {"00000/img2.jpg": [0.2, 1.5, 0.0], "00000/img1.jpg": [0.1, 1.6, 0.0]})
    torch.testing.assert_close(angles, torch.tensor([[0.1, 1.6, 0.0], [0.2, 1.5, 0.0]]))
    with pytest.raises(ValueError, match="no entry for image"):
        match_camera_angles(["a.png"], {"b.png": [0, 1, 0]})
    with pytest.raises(ValueError, match="another extension"):
        match_camera_angles(["a.png"], {"a.png": [0, 1, 0], "a.jpg": [0, 1, 0]})
    with pytest.raises(ValueError, match="yaw, pitch, roll"):
        match_camera_angles(["a.png"], {"a.png": [0, 1]})


# ------------------------------------------------------------------ the discriminator
def test_scalar_encoder_layout():
    torch.testing.assert_close(log_spaced_frequencies(1000.0), 2.0 ** torch.arange(10) * math.pi / 1024)
    enc = ScalarEncoder1d(3, 1000.0, 4)
    x = torch.tensor([[0.5, 0.0, 1.0]])
    out = enc(x).view(3, 24)  # per coordinate: 10 sines, 10 cosines, the 4-value embedding of round(1000 x)
    freqs = log_spaced_frequencies(1000.0)
    torch.testing.assert_close(out[0, :10], torch.sin(freqs * 500))
    torch.testing.assert_close(out[0, 10:20], torch.cos(freqs * 500))
    torch.testing.assert_close(out[2, 20:], enc.const_embed.weight[1000])
    assert ScalarEncoder1d(3, 1000.0, 256).out_dim == 828 and ScalarEncoder1d(2, 64.0, 0).out_dim == 24
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        enc(torch.tensor([[1.5, 0.0, 0.0]]))


@pytest.mark.parametrize("name, kwargs", [("ffhq512", {}), ("cats256", {"image_resolution": 256}),
                                          ("ffhq512_camera", {"camera_cond": True, "camera_cond_drop_p": 0.5})])
def test_discriminator_counts_equal_the_official(name, kwargs):
    d = EpiGRAFPatchDiscriminator(**kwargs)
    assert sum(p.numel() for p in d.parameters()) == OFFICIAL_D[name]


def test_discriminator_structure_and_conditioning():
    torch.manual_seed(0)
    d = EpiGRAFPatchDiscriminator(patch_resolution=16, image_resolution=64, channel_base=512, channel_max=32).eval()
    assert d.block_resolutions == [64, 32, 16, 8] and d.num_additional_start_blocks == 2
    assert [getattr(d, f"b{r}").down for r in d.block_resolutions] == [1, 1, 2, 2]
    # Every block builds fromrgb (official), only the first reads it.
    assert all(hasattr(getattr(d, f"b{r}"), "fromrgb") for r in d.block_resolutions)
    assert hasattr(d.b64.conv1, "affine") and not hasattr(d.b64.conv0, "affine")
    image = torch.randn(4, 3, 16, 16)
    centres = torch.zeros(4, 2)
    a = d(image, patch_scales=torch.full((4,), 0.5), patch_centres=centres).logits
    b = d(image, patch_scales=torch.full((4,), 0.25), patch_centres=centres).logits
    assert a.shape == (4, 1) and not torch.allclose(a, b)  # the patch scale conditions the score
    with pytest.raises(ValueError, match="patch_scales"):
        d(image)
    with pytest.raises(ValueError, match=r"\[B, 3, 16, 16\]"):
        d(torch.randn(4, 3, 32, 32), patch_scales=torch.ones(4), patch_centres=centres)
    with pytest.raises(ValueError, match="power of two"):
        EpiGRAFPatchDiscriminator(patch_resolution=16, image_resolution=48)
    cam = EpiGRAFPatchDiscriminator(patch_resolution=16, image_resolution=16, channel_base=256, channel_max=16,
                                    camera_cond=True).eval()
    args = dict(patch_scales=torch.ones(4), patch_centres=centres)
    yaw = torch.tensor([[1.5, 1.5]] * 4)
    assert not torch.allclose(cam(image, camera_angles=yaw, **args).logits,
                              cam(image, camera_angles=yaw + torch.tensor([0.3, 0.0]), **args).logits)
    with pytest.raises(ValueError, match="camera_angles"):
        cam(image, **args)


# ------------------------------------------------------------------ the objective
def tiny_epigraf(patch: int = 8) -> Generator:
    embedder = TriplaneEmbedder(resolution=16, channels=4, w_dim=16, channel_base=128, channel_max=16, box_warp=0.4,
                                plane_axes="epigraf", align_corners=True, conv_clamp=256.0)
    return Generator(
        StyleGAN2Mapper(z_dim=16, w_dim=16, num_ws=embedder.num_ws, num_layers=2),
        SphericalPoseSampler(yaw_strategy="normal", yaw_stddev=0.3, radius=1.0, pivot=[0.0, 0.0, 0.0], fov=12.0,
                             focal=0.0),
        UniformPointSampler(num_samples=6, ray_start=0.88, ray_end=1.12, perturbation="middle_uniform",
                            perturb_in_eval=True, smooth_importance_weights=False),
        embedder,
        OSGDecoder(in_channels=4, hidden_dim=8, output_dim=3, hidden_activation="lrelu", feature_activation="linear",
                   density_channel="last"),
        DensityVolumeRenderer(density_activation="softplus", noise_std=1.0),
        IdentityUpsampler(),
        render_resolution=patch, num_importance=6, image_range="tanh",
    )


def _inputs(kimg: float = 10_000.0, batch: int = 4) -> LossInputs:
    g = torch.Generator().manual_seed(0)
    cams = SphericalPoseSampler(yaw_strategy="normal", yaw_stddev=0.3, radius=1.0, pivot=[0.0, 0.0, 0.0],
                                fov=12.0, focal=0.0)(batch, generator=g)
    return LossInputs(real_images=torch.rand(batch, 3, 32, 32, generator=g) * 2 - 1, real_labels=cams.label,
                      z=torch.randn(batch, 16, generator=g), kimg=kimg, generator=g)


def test_one_training_step_reaches_every_parameter():
    torch.manual_seed(0)
    G = tiny_epigraf()
    D = EpiGRAFPatchDiscriminator(patch_resolution=8, image_resolution=32, channel_base=256, channel_max=16,
                                  camera_cond=True)
    loss = EpiGRAFObjective(patch_size=8, image_resolution=32, min_scale=0.25)
    inputs = _inputs()
    g_terms = loss.generator_loss(G, D, inputs)
    g_terms["loss"].backward()
    for name, p in G.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    G.zero_grad()
    D.zero_grad()
    d_terms = loss.discriminator_loss(G, D, inputs)
    d_terms["loss"].backward()
    unused = {f"b{r}.fromrgb.{k}" for r in D.block_resolutions[1:] for k in ("weight", "bias")}
    for name, p in D.named_parameters():
        if name in unused:  # built by EpiGRAF in every block, read only by the first one
            assert p.grad is None, name
        else:
            assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert all(p.grad is None for p in G.parameters())


def test_mapper_mean_moves_only_for_the_discriminator_fakes():
    G, D = tiny_epigraf(), EpiGRAFPatchDiscriminator(patch_resolution=8, image_resolution=32, channel_base=256,
                                                     channel_max=16)
    loss = EpiGRAFObjective(patch_size=8, image_resolution=32, min_scale=0.25)
    before = G.mapper.w_avg.clone()
    loss.generator_loss(G, D, _inputs())
    torch.testing.assert_close(G.mapper.w_avg, before)
    loss.discriminator_loss(G, D, _inputs())
    assert not torch.allclose(G.mapper.w_avg, before)


def test_r1_is_on_the_unblurred_real_patch_pixels_only():
    """For D = 0.5 * sum(blurred image), the gradient w.r.t. the patch is 0.5 * (blur^T 1): its squared sum is
    what the penalty must be, and the patch parameters get no penalty."""
    loss = EpiGRAFObjective(r1_gamma=2.0, r1_interval=4, patch_size=8, image_resolution=32, min_scale=0.25,
                            blur_init_sigma=0.0)

    class Linear(torch.nn.Module):
        def forward(self, image, **kwargs):
            return DiscriminatorOutput(logits=0.5 * image.flatten(1).sum(1, keepdim=True))

    terms = loss.discriminator_regularizer(Linear(), _inputs())
    assert float(terms["r1"]) == pytest.approx(3 * 64 * 0.25)
    assert float(terms["loss"].detach()) == pytest.approx(3 * 64 * 0.25 * 1.0 * 4)  # gamma / 2 * interval
    blurred = EpiGRAFObjective(patch_size=8, image_resolution=32, min_scale=0.25)
    assert blurred.blur_sigma(0.0) == 10.0 and blurred.blur_sigma(100.0) == 5.0 and blurred.blur_sigma(300.0) == 0.0


def test_objective_checks_its_options_and_inputs():
    with pytest.raises(ValueError, match="min_scale"):
        EpiGRAFObjective(patch_size=64, image_resolution=512, min_scale=0.1)
    loss = EpiGRAFObjective(patch_size=8, image_resolution=32, min_scale=0.25)
    bad = LossInputs(torch.zeros(4, 3, 16, 16), torch.zeros(4, 25), torch.zeros(4, 16))
    with pytest.raises(ValueError, match="image_resolution"):
        loss.real_inputs(bad)
