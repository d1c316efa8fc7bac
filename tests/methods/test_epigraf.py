"""EpiGRAF: the Beta patch-scale schedule (hand-computed), patch draws and their geometry (EpiGRAF's rays and
real-patch points), camera angles, the scalar encoder, the patch-aware discriminator (official counts and
behaviour) and the objective (one training step reaching every parameter, R1 on the patch pixels only)."""

import math

import pytest
import torch
import torch.nn.functional as F

from gan3d.core.cameras import pixel_rays
from gan3d.core.generator import build_generator, build_module
from gan3d.core.objective import LossInputs
from gan3d.core.types import DiscriminatorInput, DiscriminatorOutput, PatchParams
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
    linear_schedule,
    sample_epigraf_patches,
)
from gan3d.methods.epigraf.patches import epigraf_patch_params, to_patch_params
from gan3d.methods.epigraf.recipe import epigraf_recipe
from gan3d.methods.epigraf.scalar_encoding import ScalarEncoder1d, log_spaced_frequencies
from gan3d.samplers.spherical_pose_sampler import SphericalPoseSampler

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
        scales = sample_epigraf_patches(40_000, kimg=kimg, min_scale=0.125, group_size=1, generator=g)[:, 0]
        assert float(scales.mean()) == pytest.approx(0.125 + 0.875 / (1 + b), abs=0.01)
        assert float(scales.min()) >= 0.125 and float(scales.max()) <= 1.0
    early = sample_epigraf_patches(4000, kimg=0.0, min_scale=0.125, group_size=1, generator=g)[:, 0]
    # Beta(1, 0.001): P(x > 0.99) = 0.01^0.001 = 0.9954 -- nearly always the whole image.
    assert float((early > 0.99).float().mean()) == pytest.approx(0.01 ** 0.001, abs=0.005)


def test_patches_are_shared_by_consecutive_groups_and_stay_inside():
    params = sample_epigraf_patches(16, kimg=10_000.0, min_scale=0.125, group_size=4,
                                    generator=torch.Generator().manual_seed(3))
    assert params.shape == (16, 3)
    for g in range(4):
        assert bool((params[4 * g: 4 * g + 4] == params[4 * g]).all())
    assert len(set(params[:, 0].tolist())) == 4
    scales, offsets = params[:, :1], params[:, 1:]
    assert bool((offsets >= 0).all()) and bool((offsets <= 1 - scales).all())
    with pytest.raises(ValueError, match="multiple of the group size"):
        sample_epigraf_patches(6, kimg=0.0, min_scale=0.125, group_size=4)


def test_patch_params_hand_values_and_round_trip():
    # W = 5 pixels, centres at u = 0.1, 0.3, ..., 0.9; EpiGRAF's NDC +-1 at the corner pixels' centres.
    whole = to_patch_params(torch.tensor([[1.0, 0.0, 0.0]]), 5)
    assert whole.align_corners
    torch.testing.assert_close(whole.scales, torch.tensor([0.8], dtype=torch.float64))
    torch.testing.assert_close(whole.offsets, torch.tensor([[0.1, 0.1]], dtype=torch.float64))
    # The top-left quarter is offset 0 from the left and 0.5 from the bottom: NDC x, y-down in [-1, 0].
    quarter = to_patch_params(torch.tensor([[0.5, 0.0, 0.5]]), 5)
    torch.testing.assert_close(quarter.scales, torch.tensor([0.4], dtype=torch.float64))
    torch.testing.assert_close(quarter.offsets, torch.tensor([[0.1, 0.1]], dtype=torch.float64))
    params = sample_epigraf_patches(64, kimg=10_000.0, min_scale=0.125, group_size=1,
                                    generator=torch.Generator().manual_seed(1))
    back = epigraf_patch_params(to_patch_params(params, 512), 512)
    assert torch.equal(back.float(), params.float())  # the discriminator reads back the drawn values
    with pytest.raises(ValueError, match="offsets must lie"):
        to_patch_params(torch.tensor([[0.5, 0.6, 0.0]]), 64)
    with pytest.raises(ValueError, match="align_corners"):
        epigraf_patch_params(PatchParams(torch.ones(1), torch.zeros(1, 2)), 64)


def _epigraf_patch_rays(params: torch.Tensor, k: int, fov: float) -> torch.Tensor:
    """rendering.py get_initial_rays_trig restated: camera-space (OpenGL) unit directions [B, K*K, 3]."""
    x, y = torch.meshgrid(torch.linspace(-1, 1, k, dtype=torch.float64), torch.linspace(1, -1, k, dtype=torch.float64),
                          indexing="ij")
    x, y = x.T.flatten()[None], y.T.flatten()[None]
    s, o_x, o_y = params[:, :1], params[:, 1:2], params[:, 2:3]
    x = (x + 1.0) * s - 1.0 + o_x * 2.0
    y = (y + 1.0) * s - 1.0 + o_y * 2.0
    z = -torch.ones_like(x) / math.tan(math.radians(fov) / 2)
    return F.normalize(torch.stack([x.expand_as(z), y.expand_as(z), z], dim=2), dim=2)


def _epigraf_real_patch(images: torch.Tensor, params: torch.Tensor, k: int) -> torch.Tensor:
    """training_utils.py extract_patches / compute_patch_coords / generate_coords(align_corners=True) restated."""
    row = torch.linspace(-1, 1, k, dtype=images.dtype)
    x = row.view(1, -1).repeat(k, 1)
    coords = torch.stack([x, -x.t()], dim=2)[None]  # [1, K, K, 2], row 0 at y = +1
    s, o = params[:, None, None, :1].to(images.dtype), params[:, None, None, 1:].to(images.dtype)
    coords = (coords + 1.0) * s - 1.0 + o * 2.0
    coords = torch.stack([coords[..., 0], -coords[..., 1]], dim=-1)
    return F.grid_sample(images, coords, mode="bilinear", align_corners=True)


@pytest.mark.parametrize("resolution, patch", [(64, 16), (512, 64)])
def test_cropped_cameras_cast_epigrafs_patch_rays(resolution, patch):
    params = sample_epigraf_patches(8, kimg=10_000.0, min_scale=patch / resolution, group_size=1,
                                    generator=torch.Generator().manual_seed(2))
    params[0] = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)  # the whole image
    cams = epigraf_cameras(torch.tensor([[0.3, 1.4, 0.0]]).repeat(8, 1), fov=12.0, image_resolution=resolution)
    cropped = to_patch_params(params, resolution).cameras(cams)
    assert cropped.align_corners
    _, dirs = pixel_rays(cropped.cam2world.double(), cropped.intrinsics.double(), (patch, patch),
                         align_corners=cropped.align_corners)
    camera = dirs @ cropped.cam2world[:, :3, :3].double()  # R^T d: OpenCV camera axes
    opengl = camera * torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64)
    torch.testing.assert_close(opengl, _epigraf_patch_rays(params, patch, 12.0), atol=1e-6, rtol=0)


def test_cut_takes_epigrafs_real_patch_points():
    torch.manual_seed(0)
    images = torch.rand(6, 3, 40, 40, dtype=torch.float64)
    params = sample_epigraf_patches(6, kimg=10_000.0, min_scale=0.25, group_size=1,
                                    generator=torch.Generator().manual_seed(4))
    ours = to_patch_params(params, 40).cut(images, 10)
    torch.testing.assert_close(ours, _epigraf_real_patch(images, params, 10), atol=1e-12, rtol=0)


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


def _patch(batch: int, scale: float, resolution: int) -> PatchParams:
    return to_patch_params(torch.tensor([[scale, (1 - scale) / 2, (1 - scale) / 2]]).repeat(batch, 1), resolution)


def test_discriminator_structure_and_conditioning():
    torch.manual_seed(0)
    d = EpiGRAFPatchDiscriminator(patch_resolution=16, image_resolution=64, channel_base=512, channel_max=32).eval()
    assert d.block_resolutions == [64, 32, 16, 8] and d.num_additional_start_blocks == 2
    assert [getattr(d, f"b{r}").down for r in d.block_resolutions] == [1, 1, 2, 2]
    # Every block builds fromrgb (official), only the first reads it.
    assert all(hasattr(getattr(d, f"b{r}"), "fromrgb") for r in d.block_resolutions)
    assert hasattr(d.b64.conv1, "affine") and not hasattr(d.b64.conv0, "affine")
    image = torch.randn(4, 3, 16, 16)
    a = d(DiscriminatorInput(image, patch=_patch(4, 0.5, 64))).logits
    b = d(DiscriminatorInput(image, patch=_patch(4, 0.25, 64))).logits
    assert a.shape == (4, 1) and not torch.allclose(a, b)  # the patch scale conditions the score
    with pytest.raises(ValueError, match="DiscriminatorInput.patch"):
        d(DiscriminatorInput(image))
    with pytest.raises(ValueError, match=r"\[B, 3, 16, 16\]"):
        d(DiscriminatorInput(torch.randn(4, 3, 32, 32), patch=_patch(4, 0.5, 64)))
    with pytest.raises(ValueError, match="power of two"):
        EpiGRAFPatchDiscriminator(patch_resolution=16, image_resolution=48)
    cam = EpiGRAFPatchDiscriminator(patch_resolution=16, image_resolution=16, channel_base=256, channel_max=16,
                                    camera_cond=True).eval()
    yaw = torch.tensor([[1.5, 1.5]] * 4)
    whole = _patch(4, 1.0, 16)
    assert not torch.allclose(cam(DiscriminatorInput(image, camera_angles=yaw, patch=whole)).logits,
                              cam(DiscriminatorInput(image, camera_angles=yaw + torch.tensor([0.3, 0.0]),
                                                     patch=whole)).logits)
    with pytest.raises(ValueError, match="camera_angles"):
        cam(DiscriminatorInput(image, patch=whole))


# ------------------------------------------------------------------ the objective
#: The synthetic recipe at test size: 16-px reals, 8-px patches, a 16-px tri-plane of 4 channels.
TINY = ["stochasticity_mapper.z_dim=16", "stochasticity_mapper.w_dim=16", "point_sampler.num_samples=6",
        "generator.num_importance=6", "generator.render_resolution=16", "point_embedder.resolution=16",
        "point_embedder.channels=4", "point_embedder.channel_base=128", "point_embedder.channel_max=16",
        "feature_decoder.hidden_dim=8", "discriminator.patch_resolution=8", "discriminator.image_resolution=32",
        "discriminator.channel_base=256", "discriminator.channel_max=16", "loss.patch_size=8",
        "loss.image_resolution=32", "loss.min_scale=0.25"]


def tiny(*extra: str):
    """``(G, D, loss)`` of the tiny synthetic EpiGRAF, built as the trainer builds them."""
    recipe = epigraf_recipe("synthetic").overrides([*TINY, *extra])
    G = build_generator(recipe)
    cams = SphericalPoseSampler(yaw_strategy="normal", yaw_stddev=0.3, radius=1.0, pivot=[0.0, 0.0, 0.0], fov=12.0,
                                focal=0.0)(16, generator=torch.Generator().manual_seed(5))
    G.pose_sampler.bind_dataset_poses(cams.label)
    return G, build_module(recipe, "discriminator"), build_module(recipe, "loss")


def _inputs(kimg: float = 10_000.0, batch: int = 4) -> LossInputs:
    g = torch.Generator().manual_seed(0)
    cams = SphericalPoseSampler(yaw_strategy="normal", yaw_stddev=0.3, radius=1.0, pivot=[0.0, 0.0, 0.0],
                                fov=12.0, focal=0.0)(batch, generator=g)
    return LossInputs(real_images=torch.rand(batch, 3, 32, 32, generator=g) * 2 - 1, real_labels=cams.label,
                      z=torch.randn(batch, 16, generator=g), gen_cameras=cams, kimg=kimg, generator=g)


def test_one_training_step_reaches_every_parameter():
    torch.manual_seed(0)
    G, D, loss = tiny("discriminator.camera_cond=true")
    assert G.mapper.num_ws == G.embedder.num_ws == 6 and G.ws_layout["point_embedder"] == slice(0, 6)
    assert G.decoder.num_ws == 0  # the MLP reads no latent rows (networks_epigraf.py TriPlaneMLP)
    inputs = _inputs()
    g_terms = loss.generator_loss(G, D, inputs)
    g_terms["loss"].backward()
    for name, p in G.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    G.zero_grad()
    G.requires_grad_(False)
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


def test_fakes_are_rendered_patches_where_the_discriminator_is_told():
    G, D, loss = tiny()
    inputs = _inputs()
    out = loss.run_generator(G, inputs)
    assert out.image.shape == (4, 3, 8, 8)
    x = loss.fake_input(out, inputs)
    assert x.patch is out.aux["patch"] and x.patch.align_corners
    torch.testing.assert_close(x.camera_angles, inputs.gen_cameras.angles, atol=1e-5, rtol=0)
    # The rendering cameras are the full-image cameras cropped to the patch.
    torch.testing.assert_close(out.cameras.intrinsics, x.patch.cameras(inputs.gen_cameras).intrinsics)
    real = loss.real_input(inputs)
    assert real.image.shape == (4, 3, 8, 8) and real.patch.scales.shape == (4,)
    torch.testing.assert_close(real.image, real.patch.cut(inputs.real_images, 8))


def test_mapper_mean_moves_only_for_the_discriminator_fakes():
    G, D, loss = tiny()
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
        def forward(self, x):
            return DiscriminatorOutput(logits=0.5 * x.image.flatten(1).sum(1, keepdim=True))

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
        loss.real_input(bad)
