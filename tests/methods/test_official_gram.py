"""GRAM's released-checkpoint files import (generator.pth, ema.pth, discriminator.pth), and the imported
network renders the official images, depth and manifold samples from the recipe's own cameras.

The fixture (tests/fixtures/official/gram, made by tools/fixtures/make_gram_fixture.py from microsoft/GRAM
at the commit in its fixture.json) is a reduced-width GRAM (FFHQ_default's config, radiance width 32) saved
as training_loop.py saves it, with ``GramGenerator.experiment``'s images, depth and sorted samples of the
moving average for two latents and poses.

Tolerance: 4 x the fixture's ``rounding_sensitivity`` (at least 1e-5 of the image range and 1e-6 of the
depth), how far the *official* outputs move when its ray directions or its FiLM frequencies move by
float32 rounding (~5e-6 image, ~5e-7 depth): gan3d folds the FiLM frequencies into the weights (one
batched matmul), casts rays through its own camera math, and evaluates the manifold predictor on points
computed as ``o + t d`` rather than GRAM's ``cam2world @ (d t)``: the same values up to float32 rounding.
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
from gan3d.core.official.pickles import UnsafePickleError
from gan3d.core.types import Cameras, DiscriminatorInput
from gan3d.methods.gram.official import GRAMImporter
from gan3d.samplers.spherical_pose_sampler import SphericalPoseSampler

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "official" / "gram"
EXPECTED = torch.load(FIXTURE / "expected.pt", weights_only=True)
INFO = json.loads((FIXTURE / "fixture.json").read_text())
RESOLUTION = INFO["img_size"]
STRIDE = INFO["ray_stride"]


def tolerance(key: str) -> float:
    return 4 * max(INFO["rounding_sensitivity"][key], 1e-6 if key == "depth" else 1e-5)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("gram")
    for name in ("generator.pth", "ema.pth", "discriminator.pth"):
        (folder / name).write_bytes(lzma.decompress((FIXTURE / f"{name}.xz").read_bytes()))
    return folder


@pytest.fixture(scope="module")
def checkpoint(files) -> Path:
    return write_imported_checkpoint(GRAMImporter().load(files / "generator.pth"), files / "gram.pt")


def recipe_cameras(recipe) -> Cameras:
    """The recipe's pose sampler fixed at each official pose: GRAM's (phi, theta) is our polar phi and
    yaw pi - theta."""
    options = dict(recipe.modules["pose_sampler"].kwargs)
    cameras = []
    for phi, theta in zip(EXPECTED["phi"].tolist(), EXPECTED["theta"].tolist()):
        options.update(yaw_strategy="fix", yaw_mean=math.pi - theta, polar_strategy="fix", polar_mean=phi)
        cameras.append(SphericalPoseSampler(**options)(1))
    return Cameras(torch.cat([c.cam2world for c in cameras]), torch.cat([c.intrinsics for c in cameras]),
                   torch.cat([c.angles for c in cameras]))


def render(checkpoint: Path, **sampler_options):
    G, recipe = load_generator(checkpoint)
    for key, value in sampler_options.items():
        setattr(G.point_sampler, key, value)
    with torch.no_grad():
        return G(EXPECTED["z"], recipe_cameras(recipe), resolution=RESOLUTION, requests={"samples", "weights"})


def test_import_reads_the_three_files(files):
    imported = GRAMImporter().load(files / "generator.pth")
    recipe = imported.recipe
    assert recipe.variant == "ffhq256"  # told by the manifold predictor's width (128)
    mapper = recipe.modules["stochasticity_mapper"].kwargs
    assert (mapper["z_dim"], mapper["hidden_dim"], mapper["film_dim"]) == (16, 256, 32)
    sampler = recipe.modules["point_sampler"].kwargs
    assert (sampler["hidden_dim"], sampler["num_layers"], sampler["num_manifolds"]) == (128, 3, 24)
    assert set(imported.meta["files"]) == {"generator", "ema", "discriminator"}
    # G_ema is the moving average (what the render scripts copy in), G the training weights.
    key = "decoder.density_heads.0.weight"
    assert not torch.equal(imported.G[key], imported.G_ema[key])
    assert imported.G_ema["mapper.w_avg"].shape == (9, 64) and imported.G_ema["mapper.w_avg"].abs().sum() > 0
    # The pose head's rows: GRAM predicts (phi, theta), gan3d (theta, phi).
    official_head = torch.load(files / "discriminator.pth", weights_only=True)["final_layer.weight"]
    torch.testing.assert_close(imported.D["head.weight"], official_head[[0, 2, 1]])


def test_without_ema_the_training_weights_are_used(files, tmp_path):
    (tmp_path / "generator.pth").write_bytes((files / "generator.pth").read_bytes())
    imported = GRAMImporter().load(tmp_path / "generator.pth", variant="cats256")
    assert imported.G_ema is None and imported.D is None and imported.recipe.variant == "cats256"


def test_bad_files_are_refused_with_their_name(files, tmp_path):
    from gan3d.core.checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match="ema.pth.*not a state dict"):
        GRAMImporter().load(files / "ema.pth")
    with pytest.raises(CheckpointError, match="sample_network"):
        GRAMImporter().load(files / "discriminator.pth")
    with pytest.raises(CheckpointError, match="no released config 'celeba'"):
        GRAMImporter().load(files / "generator.pth", variant="celeba")
    import pickle

    evil = tmp_path / "generator.pth"
    evil.write_bytes(pickle.dumps(print))
    with pytest.raises(UnsafePickleError, match="print"):
        GRAMImporter().load(evil)


def test_our_manifold_samples_are_the_official_ones(checkpoint):
    out = render(checkpoint)
    samples = out.aux["samples"]
    rays = slice(None, None, STRIDE)
    torch.testing.assert_close(samples.depths[:, rays], EXPECTED["z_vals"], atol=2e-6, rtol=0)
    torch.testing.assert_close(samples.points[:, rays], EXPECTED["points"], atol=2e-6, rtol=0)
    # The same samples are valid: GRAM's weights are zero exactly where is_valid is.
    assert torch.equal(samples.mask[:, rays], EXPECTED["weights"] > 0)
    torch.testing.assert_close(out.aux["weights"][:, rays], EXPECTED["weights"], atol=1e-5, rtol=0)


def test_images_and_depth_equal_the_official_forward(checkpoint):
    out = render(checkpoint)
    for ours, theirs in ((out.image, "image"), (out.image_raw, "image"), (out.depth, "depth")):
        diff = (ours - EXPECTED[theirs]).abs().max().item()
        assert diff < tolerance(theirs), f"{theirs}: max abs difference {diff:.3g} > {tolerance(theirs):.3g}"


def test_rays_through_pixel_centres_would_not_be_grams(checkpoint):
    """GRAM casts its W rays on linspace(-1, 1, W): through pixel centres, the depth moves far outside the
    tolerance."""
    out = render(checkpoint, align_corners=False)
    assert (out.depth - EXPECTED["depth"]).abs().max() > 100 * tolerance("depth")


def test_discriminator_outputs_equal_the_official(checkpoint):
    state = load_checkpoint(checkpoint)
    D = build_module(recipe_of(state), "discriminator")
    D.load_state_dict(state["D"])
    d_input = torch.nn.functional.interpolate(EXPECTED["image"], size=INFO["d_resolution"], mode="bilinear",
                                              align_corners=False)
    with torch.no_grad():
        out = D.eval()(DiscriminatorInput(d_input))
    # Outputs grow through seven 400-channel residual blocks: float32 rounding is relative to their size
    # (and the convolution algorithm, which the thread count picks, changes it).
    scale = max(EXPECTED[k].abs().max().item() for k in ("d_prediction", "d_position"))
    torch.testing.assert_close(out.logits, EXPECTED["d_prediction"], atol=1e-5 * scale, rtol=0)
    torch.testing.assert_close(out.pose, EXPECTED["d_position"][:, [1, 0]], atol=1e-5 * scale, rtol=0)
