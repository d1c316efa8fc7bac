"""StyleNeRF's network pickles import without running their code, and the imported generator renders the
official images from the recipe's own cameras.

The fixture (tests/fixtures/official/stylenerf, made by tools/fixtures/make_stylenerf_fixture.py from
facebookresearch/StyleNeRF at the commit in its fixture.json) is a reduced-width Generator and Discriminator
with the official eval-mode outputs for two latents, two cameras and two background latents: the 32-px image,
the 8-px NeRF image, the foreground depth along the rays and the opacity (from the official renderer's
foreground weights).

Tolerance: 4 x the fixture's ``rounding_sensitivity``, how far the *official* outputs move when its ray vectors
move by float32 rounding (image ~3e-3, NeRF image ~6e-3: the importance pass's inverse CDF turns a rounding of
a ray into a jump of a fine sample on a few rays); depth and opacity, which the script does not perturb, get
the NeRF image's. gan3d's median differences are ~1e-5, its largest ~2e-4 on a few rays; each fix below moves
them by far more than the tolerance.
"""

from __future__ import annotations

import json
import lzma
import math
from pathlib import Path

import pytest
import torch

from gan3d.core.checkpoint import CheckpointError, load_checkpoint, load_generator, recipe_of
from gan3d.core.generator import build_module
from gan3d.core.official.importer import write_imported_checkpoint
from gan3d.core.types import Cameras, DiscriminatorInput
from gan3d.methods.stylenerf.official import StyleNeRFImporter
from gan3d.samplers.spherical_pose_sampler import SphericalPoseSampler

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "official" / "stylenerf"
EXPECTED = torch.load(FIXTURE / "expected.pt", weights_only=True)
INFO = json.loads((FIXTURE / "fixture.json").read_text())
#: gan3d (x, y, z) = official (y, z, x): official coordinates of gan3d's points.
TO_OFFICIAL = [2, 0, 1]


@pytest.fixture(scope="module")
def pickle_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("stylenerf") / "network-snapshot.pkl"
    path.write_bytes(lzma.decompress((FIXTURE / "network-snapshot.pkl.xz").read_bytes()))
    return path


@pytest.fixture(scope="module")
def checkpoint(pickle_path) -> Path:
    return write_imported_checkpoint(StyleNeRFImporter().load(pickle_path), pickle_path.with_name("stylenerf.pt"))


def recipe_cameras(recipe) -> Cameras:
    """The recipe's pose sampler at each official (u, v): yaw pi/2 + u, polar v (module docstring of
    gan3d.methods.stylenerf.official)."""
    options = dict(recipe.modules["pose_sampler"].kwargs)
    cams = []
    for u, v in zip(EXPECTED["u"].tolist(), EXPECTED["v"].tolist()):
        options.update(yaw_strategy="fix", yaw_mean=math.pi / 2 + u, polar_strategy="fix", polar_mean=v)
        cams.append(SphericalPoseSampler(**options)(1))
    return Cameras(torch.cat([c.cam2world for c in cams]), torch.cat([c.intrinsics for c in cams]))


def render(checkpoint: Path, **changes) -> dict[str, torch.Tensor]:
    G, recipe = load_generator(checkpoint)
    G.eval()
    for path, value in changes.items():
        owner, name = path.rsplit(".", 1)
        setattr(G.get_submodule(owner), name, value)
    # The official forward was given its background latent (latent_codes); ours is the embedder's scene.
    G.groups["background"].embedder.scene = lambda ws, generator=None: EXPECTED["z_bg"]
    with torch.no_grad():
        out = G(EXPECTED["z"], recipe_cameras(recipe), truncation_psi=INFO["truncation_psi"])
    return {"image": out.image, "image_nerf": out.image_raw, "depth": out.depth, "alpha": out.alpha}


def tolerance(key: str) -> float:
    sensitivity = INFO["rounding_sensitivity"]
    return 4 * sensitivity.get(key, sensitivity["image_nerf"])


def test_import_reads_the_sizes_and_options_from_the_pickle(pickle_path):
    imported = StyleNeRFImporter().load(pickle_path)
    m = {slot: spec.kwargs for slot, spec in imported.recipe.modules.items()}
    assert (m["stochasticity_mapper"]["z_dim"], m["stochasticity_mapper"]["w_dim"]) == (8, 16)
    assert (m["feature_decoder"]["hidden_dim"], m["feature_decoder"]["depth"], m["feature_decoder"]["output_dim"]) == (
        16, 3, 8)
    assert (m["background/feature_decoder"]["hidden_dim"], m["background/point_embedder"]["latent_dim"]) == (8, 4)
    assert (m["upsampler"]["in_resolution"], m["upsampler"]["image_resolution"], m["upsampler"]["channel_base"]) == (
        8, 32, 512)
    assert m["point_sampler"]["num_samples"] == 6 and imported.recipe.generator["num_importance"] == 6
    assert (m["discriminator"]["channel_base"], m["discriminator"]["lowres_head"]) == (128, 8)
    assert m["pose_sampler"]["yaw_stddev"] == pytest.approx(0.3) and m["pose_sampler"]["fov"] == 12.0
    assert not torch.equal(imported.G["decoder.fc_in.bias"], imported.G_ema["decoder.fc_in.bias"])
    assert float(imported.G_ema["upsampler.alpha"]) == 1.0 and "alpha" not in imported.D
    # Fully grown: the fade-in is over, so training on from the import keeps the full resolution.
    assert (m["upsampler"]["fade_start_kimg"], m["upsampler"]["fade_end_kimg"]) == (0.0, 0.0)


def test_any_variant_imports_into_the_official_world(pickle_path, tmp_path):
    """The official cameras look at the origin and NeRF++'s background lies outside the unit sphere about it,
    whichever variant's training settings the import takes: a recipe's other world (the head set's own,
    cameras 2.7 from (0, 0, 0.2) and a background sphere of 3.3, as SYNTHETIC_DATA_WORLD sets) must not come
    with them."""
    imported = StyleNeRFImporter().load(pickle_path, variant="synthetic")
    m = {slot: spec.kwargs for slot, spec in imported.recipe.modules.items()}
    assert m["pose_sampler"]["pivot"] == m["pose_sampler"]["orbit_center"] == [0.0, 0.0, 0.0]
    assert m["background/point_sampler"]["sphere_radius"] == m["background/point_embedder"]["sphere_radius"] == 1.0
    assert imported.recipe.variant == "synthetic" and imported.recipe.training["batch_gpu"] == 4
    for key, ours in render(write_imported_checkpoint(imported, tmp_path / "synthetic.pt")).items():
        median = (ours - EXPECTED[key]).abs().median().item()
        assert median < 1e-4, f"{key}: median abs difference {median:.3g}"


def test_the_recipe_cameras_cast_the_official_rays(checkpoint):
    G, recipe = load_generator(checkpoint)
    samples = G.point_sampler(recipe_cameras(recipe), (8, 8))
    torch.testing.assert_close(samples.origins[..., TO_OFFICIAL], EXPECTED["ray_origins"], atol=3e-7, rtol=0)
    torch.testing.assert_close(samples.directions[..., TO_OFFICIAL], EXPECTED["ray_directions"], atol=3e-7, rtol=0)


def test_images_equal_the_official_forward_from_the_recipes_cameras(checkpoint):
    for key, ours in render(checkpoint).items():
        diff = (ours - EXPECTED[key]).abs().max().item()
        assert diff < tolerance(key), f"{key}: max abs difference {diff:.3g} > {tolerance(key):.3g}"
        median = (ours - EXPECTED[key]).abs().median().item()
        assert median < 1e-4, f"{key}: median abs difference {median:.3g}"


@pytest.mark.parametrize("changes, key", [
    ({"point_sampler.axis_depths": False}, "depth"),  # depths along the ray, not the optical axis
    ({"renderer.depth_from": "all"}, "depth"),  # the background's depth (at infinity) counted
    ({"renderer.last_delta": 1e10}, "image_nerf"),  # the foreground's last interval not 0 long
])
def test_each_fix_matters(checkpoint, changes, key):
    """(The opaque last background sample, ``eval_last_back``, changes only rays whose last background density
    is not positive, which the fixture has none of; the hand-computed case in test_stylenerf_recipe.py covers it.)"""
    out = render(checkpoint, **changes)
    assert (out[key] - EXPECTED[key]).abs().max() > 10 * tolerance(key)


def test_without_the_frame_rotation_the_images_differ(pickle_path, tmp_path, monkeypatch):
    """The official world is z-up with the front camera on +x: imported without permuting the NeRF MLPs'
    input axes, the same weights show another scene."""
    import gan3d.methods.stylenerf.official as official

    monkeypatch.setattr(official, "to_gan3d_frame", lambda state, recipe: state)
    path = write_imported_checkpoint(StyleNeRFImporter().load(pickle_path), tmp_path / "unrotated.pt")
    out = render(path)
    assert (out["image_nerf"] - EXPECTED["image_nerf"]).abs().max() > 10 * tolerance("image_nerf")


def test_discriminator_scores_equal_the_official(checkpoint):
    state = load_checkpoint(checkpoint)
    D = build_module(recipe_of(state), "discriminator")
    D.load_state_dict(state["D"])
    with torch.no_grad():
        logits = D.eval()(DiscriminatorInput(EXPECTED["image"])).logits
    torch.testing.assert_close(logits, EXPECTED["d_logits"], atol=1e-5 * float(EXPECTED["d_logits"].abs().max()),
                               rtol=0)


def test_unsupported_official_options_are_refused_by_name(pickle_path, monkeypatch):
    import gan3d.methods.stylenerf.official as official

    original = official.recipe_from_official

    def with_viewdirs(G, D, variant, source):
        G.state["_init_kwargs"]["synthesis_kwargs"]["foreground_kwargs"]["use_viewdirs"] = True
        return original(G, D, variant, source)

    monkeypatch.setattr(official, "recipe_from_official", with_viewdirs)
    with pytest.raises(CheckpointError, match=r"foreground_kwargs.use_viewdirs is True"):
        StyleNeRFImporter().load(pickle_path)
