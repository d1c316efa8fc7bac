"""StyleSDF's first-stage checkpoints (the volume renderer, e.g. ``pretrained_renderer/ffhq_vol_renderer.pt``)
import, render the official volume images from the recipe's cameras, and the viewpoint-predicting
VolumeRenderDiscriminator scores as the official one.

Fixture: tests/fixtures/official/stylesdf_volume (tools/fixtures/make_stylesdf_fixture.py --stage volume);
tolerances as in test_official_stylesdf.py (4 x the official outputs' own float32 rounding sensitivity).
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

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "official" / "stylesdf_volume"
EXPECTED = torch.load(FIXTURE / "expected.pt", weights_only=True)
INFO = json.loads((FIXTURE / "fixture.json").read_text())


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("stylesdf_volume") / "models.pt"
    path.write_bytes(lzma.decompress((FIXTURE / "models.pt.xz").read_bytes()))
    return write_imported_checkpoint(StyleSDFImporter().load(path), path.with_name("volume.pt"))


def test_volume_renderings_equal_the_official_from_the_recipes_cameras(checkpoint):
    G, recipe = load_generator(checkpoint)
    assert recipe.variant == "ffhq_volume" and recipe.modules["discriminator"].kwargs["channels"] == [
        128, 256, 400, 400, 400, 400]
    options = dict(recipe.modules["pose_sampler"].kwargs)
    cams = []
    for azimuth, elevation in EXPECTED["locations"].tolist():
        options.update(yaw_strategy="fix", yaw_mean=math.pi / 2 + azimuth, polar_strategy="fix",
                       polar_mean=math.pi / 2 - elevation)
        cams.append(SphericalPoseSampler(**options)(1))
    cameras = Cameras(torch.cat([c.cam2world for c in cams]), torch.cat([c.intrinsics for c in cams]))
    with torch.no_grad():
        out = G(EXPECTED["z"], cameras)
    samples = G.point_sampler(cameras, (64, 64))
    xyz = (samples.origins + samples.directions * out.depth.flatten(2).transpose(1, 2)).transpose(1, 2)
    for key, ours in (("thumb", out.image), ("xyz", xyz.reshape_as(EXPECTED["xyz"]))):
        diff = (ours - EXPECTED[key]).abs().max().item()
        tolerance = 4 * INFO["rounding_sensitivity"][key]
        assert diff < tolerance, f"{key}: max abs difference {diff:.3g} > {tolerance:.3g}"


def test_volume_discriminator_outputs_equal_the_official(checkpoint):
    state = load_checkpoint(checkpoint)
    D = build_module(recipe_of(state), "discriminator")
    D.load_state_dict(state["D"])
    with torch.no_grad():
        out = D.eval()(DiscriminatorInput(EXPECTED["thumb"]))
    # Five 400-wide residual blocks on a 64-px image: outputs of order 20, rounding relative to them.
    scale = max(EXPECTED[k].abs().max().item() for k in ("d_logits", "d_viewpoints"))
    for ours, theirs in ((out.logits, "d_logits"), (out.pose, "d_viewpoints")):
        torch.testing.assert_close(ours, EXPECTED[theirs], atol=1e-5 * scale, rtol=0)
