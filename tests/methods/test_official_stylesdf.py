"""StyleSDF's released-checkpoint format ({'g', 'd', 'g_ema'} state dicts) imports, and the imported
full pipeline renders the official images from the recipe's own cameras.

The fixture (tests/fixtures/official/stylesdf, made by tools/fixtures/make_stylesdf_fixture.py from
royorel/StyleSDF at the commit in its fixture.json, its CUDA ops replaced by pure-PyTorch ones) is a
reduced-width Generator with the official inference outputs: the 128-px image, the 64-px volume
rendering ("thumb") and the surface points ``xyz`` its depth maps are made from.

Tolerance: 4 x the fixture's ``rounding_sensitivity``, how far the *official* outputs move when its
ray directions or its decoder's input features move by float32 rounding (image ~4e-5 over values up
to 8, thumb ~1e-6, xyz ~6e-6): gan3d's decoder is NVIDIA's StyleGAN2 formulation of the same layers
(rosinality's in the official code), its rays are normalised and rescaled, so its rounding differs.
"""

from __future__ import annotations

import json
import lzma
import math
from pathlib import Path

import pytest
import torch

from gan3d.core.checkpoint import load_checkpoint, load_generator, recipe_of
from gan3d.core.generator import build_module
from gan3d.core.official.importer import write_imported_checkpoint
from gan3d.core.types import Cameras, DiscriminatorInput
from gan3d.methods.stylesdf.official import StyleSDFImporter
from gan3d.samplers.spherical_pose_sampler import SphericalPoseSampler

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "official" / "stylesdf"
EXPECTED = torch.load(FIXTURE / "expected.pt", weights_only=True)
INFO = json.loads((FIXTURE / "fixture.json").read_text())


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("stylesdf") / "models.pt"
    path.write_bytes(lzma.decompress((FIXTURE / "models.pt.xz").read_bytes()))
    return path


@pytest.fixture(scope="module")
def checkpoint(models) -> Path:
    return write_imported_checkpoint(StyleSDFImporter().load(models), models.with_name("stylesdf.pt"))


def recipe_cameras(recipe) -> Cameras:
    """The recipe's pose sampler at each official (azimuth, elevation): yaw pi/2 + azimuth, polar
    pi/2 - elevation (StyleSDF's camera_dir (cos e sin a, sin e, cos e cos a))."""
    options = dict(recipe.modules["pose_sampler"].kwargs)
    cams = []
    for azimuth, elevation in EXPECTED["locations"].tolist():
        options.update(yaw_strategy="fix", yaw_mean=math.pi / 2 + azimuth, polar_strategy="fix",
                       polar_mean=math.pi / 2 - elevation)
        cams.append(SphericalPoseSampler(**options)(1))
    return Cameras(torch.cat([c.cam2world for c in cams]), torch.cat([c.intrinsics for c in cams]))


def render(checkpoint: Path, renderer_options: dict | None = None, **sampler_options):
    G, recipe = load_generator(checkpoint)
    G.upsampler.noise_mode = "const"  # the fixture's randomize_noise=False (the stored noise)
    for key, value in sampler_options.items():
        setattr(G.point_sampler, key, value)
    for key, value in (renderer_options or {}).items():
        setattr(G.renderer, key, value)
    cameras = recipe_cameras(recipe)
    with torch.no_grad():
        out = G(EXPECTED["z"], cameras)
    samples = G.point_sampler(cameras, (out.depth.shape[-1],) * 2)
    # StyleSDF's xyz = sum_i w_i p_i with the weights summing to 1 (force_background).
    xyz = samples.origins + samples.directions * out.depth.flatten(2).transpose(1, 2)
    return {"image": out.image, "thumb": out.image_raw, "xyz": xyz.transpose(1, 2).reshape_as(EXPECTED["xyz"])}


def test_import_reads_the_sizes_from_the_state_dict(models):
    imported = StyleSDFImporter().load(models)
    m = imported.recipe.modules
    assert imported.recipe.variant == "ffhq_full"
    assert (m["feature_decoder"].kwargs["width"], m["feature_decoder"].kwargs["depth"]) == (32, 3)
    up = m["upsampler"].kwargs
    assert (up["in_resolution"], up["out_resolution"], up["channel_multiplier"], up["style_dim"]) == (64, 128, 1, 32)
    assert m["discriminator"].kwargs == {**m["discriminator"].kwargs, "resolution": 128, "channel_base": 16384}
    assert not torch.equal(imported.G["upsampler.torgb_in.bias"], imported.G_ema["upsampler.torgb_in.bias"])
    assert imported.G_ema["renderer.sigmoid_beta"].item() == pytest.approx(2 ** -6 + 2 ** -8)


def test_the_recipe_cameras_are_the_official_ones(checkpoint):
    _, recipe = load_generator(checkpoint)
    cams = recipe_cameras(recipe)
    # Ours are OpenCV (x right, y down, z forward), StyleSDF's OpenGL (y up, looking down -z).
    flip = torch.tensor([1.0, -1.0, -1.0])
    torch.testing.assert_close(cams.cam2world[:, :3, :3] * flip, EXPECTED["cam2world"][:, :3, :3], atol=2.4e-7, rtol=0)
    torch.testing.assert_close(cams.cam2world[:, :3, 3], EXPECTED["cam2world"][:, :3, 3], atol=2.4e-7, rtol=0)


def test_images_equal_the_official_forward_from_the_recipes_cameras(checkpoint):
    out = render(checkpoint)
    for key, ours in out.items():
        diff = (ours - EXPECTED[key]).abs().max().item()
        tolerance = 4 * INFO["rounding_sensitivity"][key]
        assert diff < tolerance, f"{key}: max abs difference {diff:.3g} > {tolerance:.3g}"


@pytest.mark.parametrize("options, key", [({"axis_depths": False}, "xyz"),
                                          ({"static_view_directions_in_eval": False}, "image"),
                                          ({"renderer_options": {"eval_last_back": False}}, "thumb")])
def test_each_fix_matters(checkpoint, options, key):
    """Depths along the ray (instead of the optical axis) put the samples off by more than their
    spacing towards the image corners; world view directions change the colours and features; without
    force_background the transparent rest of a ray shows black instead of its last sample."""
    out = render(checkpoint, **options)
    assert (out[key] - EXPECTED[key]).abs().max() > 100 * INFO["rounding_sensitivity"][key]


def test_image_discriminator_scores_equal_the_official(checkpoint):
    state = load_checkpoint(checkpoint)
    D = build_module(recipe_of(state), "discriminator")
    D.load_state_dict(state["D"])
    with torch.no_grad():
        logits = D.eval()(DiscriminatorInput(EXPECTED["image"])).logits
    torch.testing.assert_close(logits, EXPECTED["d_logits"], atol=1e-5, rtol=0)
