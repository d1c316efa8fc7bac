"""StyleSDF's losses at hand-computed values, the viewpoint convention, the sphere fit and the
SDF-to-density of the recipe's renderer."""

from __future__ import annotations

import math

import pytest
import torch

from gan3d.core.generator import build_generator
from gan3d.core.registry import get_registry
from gan3d.core.types import Cameras, DiscriminatorOutput, Field, RaySamples
from gan3d.methods.stylesdf.objective import StyleSDFObjective, eikonal_loss, minimal_surface_loss
from gan3d.methods.stylesdf.recipe import stylesdf_recipe
from gan3d.methods.stylesdf.sphere_init import fit_sphere, sphere_sdf
from gan3d.methods.stylesdf.viewpoint import stylesdf_viewpoint


def test_eikonal_of_an_exact_sphere_is_zero_and_grows_when_scaled():
    points = (torch.rand(500, 3) - 0.5).requires_grad_(True)
    sdf = sphere_sdf(points, 0.3)
    grad = torch.autograd.grad(sdf.sum(), points)[0]
    assert eikonal_loss(grad).item() == pytest.approx(0.0, abs=1e-10)
    grad2 = torch.autograd.grad((2.0 * sphere_sdf(points, 0.3)).sum(), points)[0]
    assert eikonal_loss(grad2).item() == pytest.approx(1.0, abs=1e-5)  # (|2 n| - 1)^2 = 1


def test_minimal_surface_at_hand_values():
    sdf = torch.tensor([0.0, 0.01, -0.02])
    expected = (1 + math.exp(-1) + math.exp(-2)) / 3
    assert minimal_surface_loss(sdf, 100.0).item() == pytest.approx(expected, rel=1e-6)


def test_viewpoint_convention_from_angles_and_matrices():
    sampler = get_registry().build("pose_sampler", "spherical", yaw_strategy="uniform", yaw_range=[1.2, 1.9],
                                   polar_strategy="uniform", polar_range=[1.4, 1.7], radius=1.0,
                                   pivot=[0.0, 0.0, 0.0], orbit_center=[0.0, 0.0, 0.0], fov=12.0, focal=0.0)
    cams = sampler(6, generator=torch.Generator().manual_seed(0))
    from_angles = stylesdf_viewpoint(cams)
    torch.testing.assert_close(from_angles[:, 0], cams.angles[:, 0] - math.pi / 2)
    torch.testing.assert_close(from_angles[:, 1], math.pi / 2 - cams.angles[:, 1])
    from_matrix = stylesdf_viewpoint(Cameras(cams.cam2world, cams.intrinsics))
    torch.testing.assert_close(from_matrix, from_angles, atol=1e-5, rtol=0)
    # StyleSDF's camera (cos e sin a, sin e, cos e cos a) is the direction pivot -> camera.
    a, e = from_angles[:, 0], from_angles[:, 1]
    origin = torch.stack([e.cos() * a.sin(), e.sin(), e.cos() * a.cos()], -1)
    torch.testing.assert_close(cams.origins, origin, atol=1e-5, rtol=0)


def test_view_loss_is_weighted_smooth_l1_on_both_sides():
    loss = StyleSDFObjective(view_lambda=15.0)
    angles = torch.tensor([[math.pi / 2 + 0.5, math.pi / 2]])
    cams = Cameras(torch.eye(4).unsqueeze(0), torch.eye(3).unsqueeze(0), angles)
    out = type("Out", (), {"cameras": cams})()
    d_out = DiscriminatorOutput(logits=torch.zeros(1, 1), pose=torch.tensor([[2.5, 0.0]]))
    # smooth_l1 of (2.0, 0.0): (2 - 0.5) / 2 per element, mean over 2 -> 0.75, times 15.
    assert loss.view_term(d_out, out)["view"].item() == pytest.approx(15 * 0.75)
    with pytest.raises(ValueError, match="viewpoint"):
        loss.view_term(DiscriminatorOutput(logits=torch.zeros(1, 1)), out)


def test_recipe_renderer_turns_sdf_into_density_at_hand_values():
    recipe = stylesdf_recipe("ffhq_volume")
    spec = recipe.modules["volume_renderer"]
    renderer = get_registry().build("volume_renderer", spec.name, **spec.kwargs)
    depths = torch.tensor([1.0, 1.1, 1.3]).view(1, 1, 3, 1)
    samples = RaySamples.along_rays(torch.zeros(1, 1, 3), torch.tensor([[[0.0, 0.0, 1.0]]]), depths)
    sdf = torch.tensor([0.1, 0.0, -0.1]).view(1, 1, 3, 1)
    render = renderer(Field(torch.ones(1, 1, 3, 3), sdf=sdf), samples)
    sig = [torch.sigmoid(torch.tensor(-s / 0.1)).item() / 0.1 for s in (0.1, 0.0, -0.1)]
    alpha = [1 - math.exp(-sig[0] * 0.1), 1 - math.exp(-sig[1] * 0.2), 1.0]  # last interval 1e10
    w = [alpha[0], (1 - alpha[0]) * alpha[1], (1 - alpha[0]) * (1 - alpha[1]) * alpha[2]]
    torch.testing.assert_close(render.weights.flatten(), torch.tensor(w), atol=1e-5, rtol=1e-4)


def test_sphere_fit_moves_the_sdf_towards_the_configured_sphere():
    recipe = stylesdf_recipe("ffhq_volume").overrides([
        "stochasticity_mapper.z_dim=16", "stochasticity_mapper.w_avg_samples=0", "feature_decoder.width=32",
        "feature_decoder.depth=2", "feature_decoder.style_dim=16", "point_sampler.num_samples=8",
        "generator.render_resolution=8"])
    torch.manual_seed(0)
    G = build_generator(recipe)
    kwargs = dict(radius=0.06, batch_size=2, generator=torch.Generator().manual_seed(0))
    before = fit_sphere(G, steps=1, lr=0.0, **kwargs)
    after = fit_sphere(G, steps=30, lr=3e-3, **kwargs)
    assert after < 0.7 * before


def test_path_length_penalty_at_hand_values():
    """image = styles @ A: J^T y = y @ A^T per sample, so the lengths are known in closed form."""
    from gan3d.methods.stylesdf.objective import path_length_penalty

    torch.manual_seed(0)
    b, rows, dim, h = 3, 2, 4, 2
    A = torch.randn(dim, 3 * h * h, dtype=torch.float64, requires_grad=True)  # the "weights"
    styles = torch.randn(b, rows, dim, dtype=torch.float64, requires_grad=True)
    image = (styles.sum(1) @ A).view(b, 3, h, h)  # every row feeds the image the same way
    noise = torch.randn(b, 3, h, h, dtype=torch.float64) / math.sqrt(h * h)
    penalty, new_mean, lengths = path_length_penalty(image, styles, noise, torch.tensor(0.5, dtype=torch.float64))
    jt_y = noise.view(b, -1) @ A.detach().T  # [b, dim], the same for both rows
    expected = jt_y.square().sum(1).sqrt()  # mean over the rows of equal values
    torch.testing.assert_close(lengths, expected)
    torch.testing.assert_close(new_mean, 0.5 + 0.01 * (expected.mean() - 0.5))
    torch.testing.assert_close(penalty, (expected - new_mean).square().mean())
    penalty.backward()  # the penalty reaches the weights through the Jacobian (create_graph)
    assert A.grad is not None and torch.isfinite(A.grad).all() and A.grad.abs().sum() > 0


def test_path_regularizer_runs_every_fourth_step_and_its_mean_travels_with_checkpoints(tmp_path):
    import importlib.util
    from pathlib import Path

    from gan3d.core.trainer import Trainer

    spec = importlib.util.spec_from_file_location("stylesdf_recipe_tests", Path(__file__).with_name(
        "test_stylesdf_recipe.py"))
    helpers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helpers)
    tiny_full = [o for o in helpers.TINY_VOLUME if not o.startswith("discriminator.")] + [
        "upsampler.in_resolution=8", "upsampler.out_resolution=16", "discriminator.resolution=16",
        "discriminator.channel_base=128", "discriminator.channel_max=16", "training.batch_size=4",
        "training.frozen_slots=[]"]
    recipe = stylesdf_recipe("ffhq_full").overrides(tiny_full)
    assert recipe.modules["loss"].kwargs["path_regularize"] == 2.0
    trainer = Trainer(recipe, helpers._Images(8, 16), tmp_path / "run", progress=False, tensorboard=False)
    # StyleGAN2's lazy-regularization Adam from the interval: lr 0.002 * 4/5, beta2 0.99 ** (4/5).
    group = trainer.G_opt.param_groups[0]
    assert group["lr"] == pytest.approx(0.002 * 0.8) and group["betas"][1] == pytest.approx(0.99 ** 0.8)
    fired = []
    for _ in range(5):
        logs = trainer.train_step()
        fired.append("path" in logs)
        if fired[-1]:
            assert logs["path_length"] > 0 and math.isfinite(logs["path"])
    assert fired == [True, False, False, False, True]
    mean = float(trainer.loss.mean_path_length)
    assert mean > 0
    restored = Trainer(recipe, helpers._Images(8, 16), tmp_path / "run", resume=trainer.save(),
                       progress=False, tensorboard=False)
    assert float(restored.loss.mean_path_length) == mean


def test_path_regularizer_needs_the_stylesdf_upsampler():
    recipe = stylesdf_recipe("synthetic")
    G = build_generator(recipe)
    loss = StyleSDFObjective(path_regularize=2.0, sphere_init_steps=0)
    from gan3d.core.objective import LossInputs

    inputs = LossInputs(real_images=torch.zeros(2, 3, 8, 8), real_labels=torch.zeros(2, 25),
                        z=torch.randn(2, G.z_dim))
    with pytest.raises(ValueError, match="path_regularize > 0 needs the stylesdf upsampler"):
        loss.generator_regularizer(G, inputs)
    with pytest.raises(ValueError, match="path_regularize >= 0"):
        StyleSDFObjective(path_regularize=-1.0)
