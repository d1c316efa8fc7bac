"""GIRAFFE's released-checkpoint files import, and the imported network renders the official outputs.

The fixture (tests/fixtures/official/giraffe, made by tools/fixtures/make_giraffe_fixture.py from
autonomousvision/giraffe at the commit in its fixture.json) is a reduced-width GIRAFFE at the cars 64
configuration saved as train.py saves it, with ``generator_test``'s ``mode='val'`` outputs (no jitter, no
density noise) for one-object scenes (the cars configuration) and two-object scenes (three fields
composed, a rotated background): the image, the 16x16 feature image, each object's alpha map and the
depth (the expected distance along the ray under the official compositing weights).

Tolerance: 4 x the fixture's ``rounding_sensitivity``, how far the *official* outputs move when its ray
points move by float32 rounding (relative 1.2e-7; image 1.3e-5, features 2.7e-4, alpha 2.2e-4, depth
6.8e-4: the density heads are sharpened, and rays that cross the background's near-empty stretches put
their depth wherever the last opaque sample is). gan3d computes the same function in another order: it
moves world samples into each object's frame (GIRAFFE moves the camera and pixel points and samples
there), normalizes its rays and divides the camera depth by the cosine (GIRAFFE scales unnormalized
rays), and its MLPs read the encodings in our axes (the same products added in another order). It
stays within a quarter of the sensitivity; undoing any one of the fixes (corner-aligned rays, camera
depths, encodings in our axes) moves the outputs thousands of times further (``test_each_fix_matters``).
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
from gan3d.core.types import DiscriminatorInput
from gan3d.embedders.positional_encoding import PositionalEncoding
from gan3d.methods.giraffe import official
from gan3d.methods.giraffe.official import AXES, GiraffeImporter, cameras, scene_latent, to_our_axes
from gan3d.samplers.spherical_pose_sampler import SphericalPoseSampler

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "official" / "giraffe"
EXPECTED = torch.load(FIXTURE / "expected.pt", weights_only=True)
INFO = json.loads((FIXTURE / "fixture.json").read_text())
OUTPUTS = ("image", "features", "alpha", "depth")


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    """The fixture under a released file's name (which tells the data set: compcars64 -> cars64)."""
    path = tmp_path_factory.mktemp("giraffe") / "checkpoint_compcars64-0123abcd.pt"
    path.write_bytes(lzma.decompress((FIXTURE / "model.pt.xz").read_bytes()))
    return path


@pytest.fixture(scope="module")
def checkpoint(model_file) -> Path:
    return write_imported_checkpoint(GiraffeImporter().load(model_file), model_file.with_name("giraffe.pt"))


def official_scene(prefix: str):
    codes = tuple(EXPECTED[f"{prefix}_{n}"] for n in ("z_shape_obj", "z_app_obj", "z_shape_bg", "z_app_bg"))
    transformations = tuple(EXPECTED[f"{prefix}_{n}"] for n in ("scale", "translation", "rotation"))
    return scene_latent(codes, transformations, EXPECTED[f"{prefix}_bg_rotation"])


def mapper_noise(mapper) -> torch.Tensor:
    """The ``giraffe`` mapper's ``z`` for the ``one`` scenes: the official codes, then every value in
    [0, 1] the official bounding-box generator was given, as ``Phi^-1(u)`` in our axes (translation
    ``(x, z, -y)``: GIRAFFE's y range is our z range reversed, so ``u_y -> 1 - u_y``)."""
    rows = []
    for b, (u_scale, u_t, u_r) in enumerate(INFO["one"]):
        u = [*u_scale, u_t[0], u_t[2], 1 - u_t[1], u_r]
        rows.append(torch.cat([EXPECTED["one_z_shape_obj"][b, 0], EXPECTED["one_z_app_obj"][b, 0],
                               torch.special.ndtri(torch.tensor(u)), EXPECTED["one_z_shape_bg"][b],
                               EXPECTED["one_z_app_bg"][b], torch.zeros(1)]))
    z = torch.stack(rows)
    assert z.shape[1] == mapper.z_dim
    return z


def render(G, prefix: str, *, through_mapper: bool = False):
    """Our outputs for the official scene set ``prefix``: image in [0, 1], features, per-object alpha, depth."""
    latent = G.mapping(mapper_noise(G.mapper)) if through_mapper else official_scene(prefix)
    with torch.no_grad():
        out = G.synthesis(latent, cameras(EXPECTED["camera_mat"], EXPECTED["world_mat"]), requests={"layers"})
    alpha = torch.cat([out.layers[f"main/{i}"].alpha for i in range(latent.instances("main"))], dim=1)
    return {"image": (out.image + 1) / 2, "features": out.features, "alpha": alpha, "depth": out.depth}


def differences(ours: dict, prefix: str) -> dict[str, float]:
    return {k: (ours[k] - EXPECTED[f"{prefix}_{k}"]).abs().max().item() for k in OUTPUTS}


def load(checkpoint: Path, **sampler_options):
    G, recipe = load_generator(checkpoint)
    for key, value in sampler_options.items():
        setattr(G.point_sampler, key, value)
    return G.eval(), recipe


def test_import_reads_the_checkpoint(model_file):
    imported = GiraffeImporter().load(model_file)
    recipe = imported.recipe
    assert recipe.variant == "cars64"  # from the file name
    mapper, decoder = recipe.modules["stochasticity_mapper"].kwargs, recipe.modules["feature_decoder"].kwargs
    background, upsampler = recipe.modules["background/feature_decoder"].kwargs, recipe.modules["upsampler"].kwargs
    widths = INFO["widths"]
    assert (mapper["object_z_dim"], mapper["background_z_dim"]) == (widths["z_dim"], widths["z_dim_bg"])
    assert (decoder["hidden_dim"], decoder["n_blocks"], decoder["skips"], decoder["feature_dim"]) == (
        widths["hidden_size"], 8, [4], widths["rgb_out_dim"])
    assert (decoder["num_frequencies"], decoder["num_view_frequencies"]) == (10, 4)
    assert (background["hidden_dim"], background["n_blocks"], background["skips"]) == (widths["hidden_size_bg"], 4, [])
    assert (upsampler["n_feat"], upsampler["min_feat"], upsampler["out_resolution"]) == (
        widths["rgb_out_dim"], widths["min_feat"], 64)
    assert recipe.modules["discriminator"].kwargs["n_feat"] == widths["d_n_feat"]
    # G the training weights, G_ema generator_test (what the official renderer uses).
    assert not torch.equal(imported.G["decoder.sigma_out.weight"], imported.G_ema["decoder.sigma_out.weight"])
    assert imported.D is not None and imported.meta["iteration"] == 500


def test_the_variant_comes_from_the_file_name_or_the_option(model_file, tmp_path):
    renamed = tmp_path / "model_best.pt"
    renamed.write_bytes(model_file.read_bytes())
    with pytest.raises(CheckpointError, match="pass --variant"):
        GiraffeImporter().load(renamed)
    assert GiraffeImporter().load(renamed, variant="celeba64").recipe.variant == "celeba64"
    with pytest.raises(CheckpointError, match="makes 64-px images"):
        GiraffeImporter().load(renamed, variant="celebahq256")  # the network makes 64-px images
    clevr = tmp_path / "checkpoint_clevr2345256-aa03cd59.pt"
    clevr.write_bytes(model_file.read_bytes())
    with pytest.raises(CheckpointError, match="sample_object_existance"):
        GiraffeImporter().load(clevr)


def test_a_file_of_another_kind_is_refused(tmp_path):
    path = tmp_path / "checkpoint_compcars64-0.pt"
    torch.save({"g_ema": {"style.0.weight": torch.zeros(1)}}, path)
    with pytest.raises(CheckpointError, match="not a GIRAFFE checkpoint"):
        GiraffeImporter().load(path)


def test_encoding_columns_read_our_axes():
    """A layer reading GIRAFFE's encoding of a z-up point equals the rearranged layer reading ours."""
    encoding = PositionalEncoding(in_channels=3, num_frequencies=4, include_input=False, multiply_by_pi=True)
    weight = torch.randn(5, encoding.out_channels, dtype=torch.float64)
    points = torch.randn(7, 3, dtype=torch.float64)
    giraffe = encoding(points) @ weight.T
    ours = encoding(points @ AXES.double().T) @ to_our_axes(weight).T
    torch.testing.assert_close(ours, giraffe, rtol=0, atol=1e-12)


def test_the_recipes_cameras_are_giraffes():
    """GIRAFFE's camera at (u, v) is the recipe's spherical sampler at yaw pi + 2 pi u, polar arccos(1 - 2 v)."""
    theirs = cameras(EXPECTED["camera_mat"], EXPECTED["world_mat"])
    recipe = official.giraffe_recipe("cars64")
    options = dict(recipe.modules["pose_sampler"].kwargs)
    u_range, v_range = INFO["cameras"]["range_u"], [0.41667, 0.5]
    for b, (val_u, val_v) in enumerate(INFO["cameras"]["val_u_v"]):
        u = u_range[0] + val_u * (u_range[1] - u_range[0])
        v = v_range[0] + val_v * (v_range[1] - v_range[0])
        options.update(yaw_strategy="fix", yaw_mean=math.pi + 2 * math.pi * u, polar_strategy="fix",
                       polar_mean=math.acos(1 - 2 * v))
        ours = SphericalPoseSampler(**options)(1)
        torch.testing.assert_close(ours.cam2world[0], theirs.cam2world[b], atol=2e-6, rtol=0)
        torch.testing.assert_close(ours.intrinsics[0], theirs.intrinsics[b], atol=1e-6, rtol=0)


def test_the_mapper_gives_giraffes_transformations(checkpoint):
    """The ``giraffe`` mapper, fed the bounding-box generator's values, gives the official transformations
    (in our axes): the recipe's box ranges are GIRAFFE's."""
    G, _ = load(checkpoint)
    mine, theirs = G.mapping(mapper_noise(G.mapper)), official_scene("one")
    for name in ("scale", "translation", "rotation"):
        torch.testing.assert_close(getattr(mine.frames["main"], name), getattr(theirs.frames["main"], name),
                                   atol=1e-6, rtol=0)
    torch.testing.assert_close(mine.codes["main"], theirs.codes["main"], atol=0, rtol=0)


def test_our_rays_and_samples_are_the_official_ones(checkpoint):
    G, recipe = load(checkpoint)
    cams = cameras(EXPECTED["camera_mat"], EXPECTED["world_mat"])
    samples = G.point_sampler(cams, (16, 16))

    def ours(points):  # GIRAFFE's rays run down the columns (arange_pixels: x-major), ours along the rows
        return (points.reshape(-1, 16, 16, 3).transpose(1, 2).reshape(-1, 256, 3)) @ AXES.T

    origins = ours(EXPECTED["one_camera_world"])
    rays = ours(EXPECTED["one_pixels_world"] - EXPECTED["one_camera_world"])  # of camera depth 1
    torch.testing.assert_close(samples.origins, origins, atol=1e-6, rtol=0)
    torch.testing.assert_close(samples.directions, rays / rays.norm(dim=-1, keepdim=True), atol=1e-6, rtol=0)
    # configs/default.yaml depth_range [0.5, 6], 64 samples: depths along the optical axis.
    depths = 0.5 + torch.linspace(0, 1, 64) * 5.5
    points = origins[:, :, None] + depths[:, None] * rays[:, :, None]
    torch.testing.assert_close(samples.points, points, atol=4e-6, rtol=0)


@pytest.mark.parametrize("prefix", ["one", "two"])
def test_outputs_equal_the_official_forward(checkpoint, prefix):
    G, _ = load(checkpoint)
    for through_mapper in ((False, True) if prefix == "one" else (False,)):
        diff = differences(render(G, prefix, through_mapper=through_mapper), prefix)
        for key, value in diff.items():
            tolerance = 4 * INFO["rounding_sensitivity"][key]
            assert value < tolerance, f"{prefix} {key}: max abs difference {value:.3g} > {tolerance:.3g}"


@pytest.mark.parametrize("cause, output, factor", [
    ({"align_corners": False}, "depth", 1000.0),  # rays through pixel centres: a narrower field of view
    ({"axis_depths": False}, "depth", 1000.0),  # depths along each ray: the samples drift off the planes
    ("axes", "features", 1000.0),  # the MLPs read GIRAFFE's z-up encodings as if they were ours
])
def test_each_fix_matters(model_file, checkpoint, tmp_path, monkeypatch, cause, output, factor):
    if cause == "axes":
        monkeypatch.setattr(official, "to_our_axes", lambda weight: weight)
        G, _ = load(write_imported_checkpoint(GiraffeImporter().load(model_file), tmp_path / "by_name.pt"))
    else:
        G, _ = load(checkpoint, **cause)
    diff = differences(render(G, "two"), "two")
    assert diff[output] > factor * INFO["rounding_sensitivity"][output], diff


def test_discriminator_outputs_equal_the_official(checkpoint):
    """The DC discriminator on the official images (ours takes [-1, 1] and maps them back to [0, 1])."""
    state = load_checkpoint(checkpoint)
    D = build_module(recipe_of(state), "discriminator")
    D.load_state_dict(state["D"])
    with torch.no_grad():
        logits = D.eval()(DiscriminatorInput(EXPECTED["one_image"] * 2 - 1)).logits
    scale = EXPECTED["d_logits"].abs().max().item()
    torch.testing.assert_close(logits, EXPECTED["d_logits"], atol=1e-5 * scale, rtol=0)
