"""pi-GAN's released-checkpoint files import (generator.pth, ema.pth, discriminator.pth), and the
imported network renders the official images from the recipe's own cameras.

The fixture (tests/fixtures/official/pigan, made by tools/fixtures/make_pigan_fixture.py from
marcoamonteiro/pi-GAN at the commit in its fixture.json) is a reduced-width pi-GAN saved as train.py
saves it, with staged_forward's images and depth of the moving average for two latents and poses,
deterministic sampling.

Tolerance: 4 x the fixture's ``rounding_sensitivity``, how far the *official* outputs move when its
ray directions or its FiLM frequencies move by float32 rounding (~2e-4 image, ~7e-6 depth): gan3d's
SIREN folds the frequencies into the weights (``x (W^T f) + (b f + phase)``, one batched matmul), so
its FiLM pre-activations are rounded differently, and the fixture's SIREN is steep (frequencies
~30, points scaled by 2 / 0.24, density head x256). The samples themselves are bit-equal.
"""

from __future__ import annotations

import json
import lzma
import math
from pathlib import Path

import pytest
import torch

import gan3d.samplers.uniform_point_sampler as uniform_point_sampler
from gan3d.core.checkpoint import load_checkpoint, load_generator, recipe_of
from gan3d.core.generator import build_module
from gan3d.core.official.importer import write_imported_checkpoint
from gan3d.core.types import DiscriminatorInput
from gan3d.methods.pigan.official import PiGANImporter
from gan3d.samplers.spherical_pose_sampler import SphericalPoseSampler

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "official" / "pigan"
EXPECTED = torch.load(FIXTURE / "expected.pt", weights_only=True)
INFO = json.loads((FIXTURE / "fixture.json").read_text())
RESOLUTION = INFO["curriculum"]["img_size"]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("pigan")
    for name in ("generator.pth", "ema.pth", "discriminator.pth"):
        (folder / name).write_bytes(lzma.decompress((FIXTURE / f"{name}.xz").read_bytes()))
    return folder


@pytest.fixture(scope="module")
def checkpoint(files) -> Path:
    return write_imported_checkpoint(PiGANImporter().load(files / "generator.pth"), files / "pigan.pt")


def recipe_cameras(recipe):
    """The recipe's pose sampler fixed at each official pose: pi-GAN's yaw theta is our pi - theta."""
    options = dict(recipe.modules["pose_sampler"].kwargs)
    cameras = []
    for yaw, pitch in zip(EXPECTED["yaw"].tolist(), EXPECTED["pitch"].tolist()):
        options.update(yaw_strategy="fix", yaw_mean=math.pi - yaw, polar_strategy="fix", polar_mean=pitch)
        cameras.append(SphericalPoseSampler(**options)(1))
    return type(cameras[0])(torch.cat([c.cam2world for c in cameras]), torch.cat([c.intrinsics for c in cameras]))


def render(checkpoint: Path, **sampler_options):
    G, recipe = load_generator(checkpoint)
    G.point_sampler.perturb_in_eval = False  # the fixture's deterministic sampling
    for key, value in sampler_options.items():
        setattr(G.point_sampler, key, value)
    with torch.no_grad():
        return G(EXPECTED["z"], recipe_cameras(recipe), resolution=RESOLUTION)


def assert_official(out) -> None:
    for ours, theirs in (("image", "image"), ("depth", "depth")):
        diff = (getattr(out, ours) - EXPECTED[theirs]).abs().max().item()
        tolerance = 4 * INFO["rounding_sensitivity"][theirs]
        assert diff < tolerance, f"{ours}: max abs difference {diff:.3g} > {tolerance:.3g}"


def test_import_reads_the_three_files(files):
    imported = PiGANImporter().load(files / "generator.pth")
    recipe = imported.recipe
    assert recipe.variant == "celeba"  # told by the discriminator's class (CCSEncoderDiscriminator)
    mapper, decoder = recipe.modules["stochasticity_mapper"].kwargs, recipe.modules["feature_decoder"].kwargs
    assert (mapper["z_dim"], mapper["hidden_dim"], mapper["film_dim"], mapper["num_ws"]) == (16, 256, 32, 9)
    assert (decoder["hidden_dim"], decoder["num_layers"]) == (32, 8)
    assert recipe.modules["point_embedder"].kwargs["box_warp"] == pytest.approx(0.24)
    assert set(imported.meta["files"]) == {"generator", "ema", "discriminator"}
    # G_ema is the moving average (what the render scripts copy in), G the training weights.
    assert not torch.equal(imported.G["decoder.density_head.weight"], imported.G_ema["decoder.density_head.weight"])
    assert imported.G_ema["mapper.w_avg"].shape == (9, 64) and imported.G_ema["mapper.w_avg"].abs().sum() > 0


def test_without_ema_the_training_weights_are_used(files, tmp_path):
    (tmp_path / "generator.pth").write_bytes((files / "generator.pth").read_bytes())
    imported = PiGANImporter().load(tmp_path / "generator.pth", variant="cats")
    assert imported.G_ema is None and imported.D is None and imported.recipe.variant == "cats"


def test_our_rays_are_the_official_rays(checkpoint):
    G, recipe = load_generator(checkpoint)
    samples = G.point_sampler(recipe_cameras(recipe), (RESOLUTION, RESOLUTION))
    torch.testing.assert_close(samples.origins, EXPECTED["ray_origins"], atol=2.4e-7, rtol=0)
    torch.testing.assert_close(samples.directions, EXPECTED["ray_directions"], atol=2.4e-7, rtol=0)


def test_images_equal_the_official_forward_on_the_official_rays(checkpoint, monkeypatch):
    monkeypatch.setattr(uniform_point_sampler, "pixel_rays",
                        lambda *args, **kwargs: (EXPECTED["ray_origins"], EXPECTED["ray_directions"]))
    assert_official(render(checkpoint))


def test_images_equal_the_official_forward_from_the_recipes_cameras(checkpoint):
    assert_official(render(checkpoint))


@pytest.mark.parametrize("options", [{"align_corners": False}, {"importance_pdf": "nerf"}])
def test_each_fix_matters(checkpoint, options):
    """Rays through pixel centres (instead of pi-GAN's corner-aligned grid), or NeRF's importance PDF
    (without pi-GAN's second 1e-5, which moves fine samples on nearly empty stretches of a ray):
    the depth is far outside the tolerance (0.02 and 1e-4 against 8e-6)."""
    out = render(checkpoint, **options)
    assert (out.depth - EXPECTED["depth"]).abs().max() > 10 * INFO["rounding_sensitivity"]["depth"]


def test_discriminator_outputs_equal_the_official(checkpoint):
    state = load_checkpoint(checkpoint)
    D = build_module(recipe_of(state), "discriminator")
    D.load_state_dict(state["D"])
    with torch.no_grad():
        out = D.eval()(DiscriminatorInput(EXPECTED["d_input"], alpha=INFO["d_alpha"]))
    # Outputs reach ~300 after seven 400-channel residual blocks: float32 rounding is relative to
    # the outputs' size (and the convolution algorithm, which the thread count picks, changes it).
    scale = max(EXPECTED[k].abs().max().item() for k in ("d_prediction", "d_latent", "d_position"))
    for ours, theirs in ((out.logits, "d_prediction"), (out.latent, "d_latent"), (out.pose, "d_position")):
        torch.testing.assert_close(ours, EXPECTED[theirs], atol=1e-5 * scale, rtol=0)


@pytest.mark.parametrize("variant", ["carla", "cats"])
def test_the_other_curricula_discriminators_equal_the_official(files, tmp_path, variant):
    """CARLA's ProgressiveEncoderDiscriminator (pooled coordinate-conv blocks) and Cats'
    StridedDiscriminator (plain convs, no latent or pose head, an unused pose_layer), imported from
    ``<variant>_discriminator.pth`` beside ``<variant>_generator.pth``."""
    (tmp_path / f"{variant}_generator.pth").write_bytes((files / "generator.pth").read_bytes())
    (tmp_path / f"{variant}_discriminator.pth").write_bytes(
        lzma.decompress((FIXTURE / f"{variant}_discriminator.pth.xz").read_bytes()))
    imported = PiGANImporter().load(tmp_path / f"{variant}_generator.pth", variant=variant)
    assert imported.meta["official_classes"]["D"] == {"carla": "ProgressiveEncoderDiscriminator",
                                                      "cats": "StridedDiscriminator"}[variant]
    spec = imported.recipe.modules["discriminator"]
    D = build_module(imported.recipe, "discriminator")
    D.load_state_dict(imported.D)
    with torch.no_grad():
        out = D.eval()(DiscriminatorInput(EXPECTED["d_input"], alpha=INFO["d_alpha"]))
    expected = {"logits": f"d_{variant}_prediction", "latent": f"d_{variant}_latent", "pose": f"d_{variant}_position"}
    scale = max(EXPECTED[k].abs().max().item() for k in expected.values() if k in EXPECTED)
    for ours, theirs in expected.items():
        if theirs not in EXPECTED:
            assert getattr(out, ours) is None and spec.kwargs["latent_dim"] == 0
            continue
        torch.testing.assert_close(getattr(out, ours), EXPECTED[theirs], atol=1e-5 * scale, rtol=0)
