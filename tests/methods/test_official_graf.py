"""GRAF's released-checkpoint format (GAN_stability CheckpointIO state dicts) imports, and the imported
generator renders the official images and depths from the recipe's own cameras.

The fixture (tests/fixtures/official/graf, made by tools/fixtures/make_graf_fixture.py from
autonomousvision/graf at the commit in its fixture.json) is a reduced-width GRAF NeRF (width 32, depth 6, z 8 + 8,
the released octaves and 64 samples) with the official test-time outputs for the celebA config (two cameras at
radii 9.7 and 10.4: the near/far shift) and the carla config (white background), 64 px each.

Tolerance: 4 x the fixture's ``rounding_sensitivity``, how far the *official* outputs move when its ray
directions move by float32 rounding (image ~1e-5, depth ~8e-5 over depths up to 12.5): gan3d computes the rays
from its own camera (normalized directions, its look-at), so its rounding differs by that much.
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
from gan3d.methods.graf.official import GRAFImporter, graf_pose, z_up_columns
from gan3d.samplers.spherical_pose_sampler import SphericalPoseSampler

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "official" / "graf"
EXPECTED = torch.load(FIXTURE / "expected.pt", weights_only=True)
INFO = json.loads((FIXTURE / "fixture.json").read_text())


@pytest.fixture(scope="module")
def official_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("graf") / "celebA_64.pt"
    path.write_bytes(lzma.decompress((FIXTURE / "celebA_64.pt.xz").read_bytes()))
    return path


@pytest.fixture(scope="module")
def checkpoints(official_file) -> dict[str, Path]:
    """The file imported as the celebA variant its name says, and as carla64 (the same network)."""
    out = {"celeba": write_imported_checkpoint(GRAFImporter().load(official_file), official_file.with_name("c.pt"))}
    carla = GRAFImporter().load(official_file, variant="carla64")
    out["carla"] = write_imported_checkpoint(carla, official_file.with_name("carla.pt"))
    return out


def recipe_cameras(recipe, config: str, **pose_options) -> Cameras:
    """The recipe's pose sampler at each official (u, v, radius): yaw pi + 2 pi u, polar arccos(1 - 2 v)."""
    options = dict(recipe.modules["pose_sampler"].kwargs) | pose_options
    cams = []
    for u, v, radius in EXPECTED[f"{config}_cameras"].tolist():
        options.update(yaw_strategy="fix", yaw_mean=math.pi + 2 * math.pi * u, polar_strategy="fix",
                       polar_mean=math.acos(1 - 2 * v), radius_strategy="fix", radius=radius, radius_range=[])
        cams.append(SphericalPoseSampler(**options)(1))
    return Cameras(torch.cat([c.cam2world for c in cams]), torch.cat([c.intrinsics for c in cams]))


def render(checkpoint: Path, config: str, pose_options: dict | None = None, **sampler_options
           ) -> dict[str, torch.Tensor]:
    G, recipe = load_generator(checkpoint)
    for key, value in sampler_options.items():
        setattr(G.point_sampler, key, value)
    cameras = recipe_cameras(recipe, config, **(pose_options or {}))
    with torch.no_grad():
        out = G(EXPECTED["z" if config == "celeba" else "z_carla"], cameras, resolution=INFO["imsize"])
    # GRAF's depth_map is the expected camera-space depth; ours is along the (unit) ray: times cos(angle).
    directions = G.point_sampler(cameras, (INFO["imsize"],) * 2).directions  # [B, R, 3]
    cosine = (directions * cameras.cam2world[:, None, :3, 2]).sum(-1).reshape_as(out.depth[:, 0]).unsqueeze(1)
    return {"image": out.image, "depth": out.depth * cosine, "acc": out.alpha}


def test_import_reads_the_sizes_and_the_variant(official_file):
    imported = GRAFImporter().load(official_file)
    assert imported.recipe.variant == "celeba64"  # from the file name celebA_64.pt
    dec = imported.recipe.modules["feature_decoder"].kwargs
    assert (dec["hidden_dim"], dec["num_layers"], dec["skips"], dec["appearance_dim"]) == (32, 6, [4], 8)
    assert imported.recipe.modules["stochasticity_mapper"].kwargs["z_dim"] == 16
    assert imported.recipe.modules["discriminator"].kwargs["ndf"] == 8
    # generator_test (the average eval.py renders with) is G_ema and differs from the generator.
    assert not torch.equal(imported.G["decoder.rgb_linear.bias"], imported.G_ema["decoder.rgb_linear.bias"])
    assert imported.meta["iteration"] == 4999
    renamed = official_file.with_name("model_best.pt")
    renamed.write_bytes(official_file.read_bytes())
    with pytest.raises(CheckpointError, match="--variant"):
        GRAFImporter().load(renamed)
    assert GRAFImporter().load(renamed, variant="celebahq256").recipe.generator["render_resolution"] == 256


def test_a_file_the_official_code_trained_on_the_synthetic_set_imports_as_synthetic(official_file):
    """tools/official/graf_train.py trains the official code at the synthetic recipe's cameras and samples; its
    file takes that recipe with the network sizes of the file, and an unknown variant names the choices."""
    imported = GRAFImporter().load(official_file, variant="synthetic")
    recipe = imported.recipe
    assert recipe.variant == "synthetic" and recipe.generator["render_resolution"] == 64
    assert recipe.modules["pose_sampler"].kwargs["pivot"] == [0.0, 0.0, 0.2]
    assert recipe.modules["point_sampler"].kwargs["num_samples"] == 16
    dec = recipe.modules["feature_decoder"].kwargs
    assert (dec["hidden_dim"], dec["num_layers"], dec["skips"], dec["appearance_dim"]) == (32, 6, [4], 8)
    with pytest.raises(CheckpointError, match="synthetic"):
        GRAFImporter().load(official_file, variant="celeba32")


def test_graf_pose_is_grafs_look_at_of_the_same_camera():
    """A camera of ours on +z, 2 from the origin and looking at it, is GRAF's camera at (0, -2, 0): by hand,
    graf/utils.py ``look_at(eye)`` (up +z) gives z = eye / |eye| = (0, -1, 0), x = up x z = (1, 0, 0),
    y = z x x = (0, 0, 1); a camera turned about the vertical stays at the same height and radius."""
    from gan3d.core.cameras import look_at

    front = look_at(torch.tensor([[0.0, 0.0, 2.0]]), torch.zeros(3))
    expected = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, -1.0, -2.0], [0.0, 1.0, 0.0, 0.0]])
    torch.testing.assert_close(graf_pose(front)[0], expected)
    side = look_at(torch.tensor([[2.0, 0.5, 0.0]]), torch.zeros(3))  # ours: on +x, 0.5 up
    pose = graf_pose(side)[0]
    torch.testing.assert_close(pose[:, 3], torch.tensor([2.0, 0.0, 0.5]))  # GRAF (x, -z, y): 0.5 up its z
    torch.testing.assert_close(pose[:, 2], pose[:, 3] / pose[:, 3].norm())  # looking at the origin
    torch.testing.assert_close(pose[:, :3] @ pose[:, :3].T, torch.eye(3))  # a rotation ...
    assert torch.linalg.det(pose[:, :3]) > 0 and pose[2, 0].abs() < 1e-6  # ... with a level x axis, as look_at's


class _Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.marker}",)


def test_a_malicious_file_is_refused_without_running(tmp_path):
    import pickle

    from gan3d.core.official import UnsafePickleError

    marker = tmp_path / "pwned"
    evil = tmp_path / "carla_128.pt"
    evil.write_bytes(pickle.dumps({"generator": {"pts_linears.0.weight": _Payload(marker)}}))
    with pytest.raises(UnsafePickleError, match="system"):
        GRAFImporter().load(evil)
    assert not marker.exists()
    with pytest.raises(CheckpointError, match="not a GRAF checkpoint"):
        torch.save({"g_ema": {}}, tmp_path / "carla_64.pt")
        GRAFImporter().load(tmp_path / "carla_64.pt")


def test_z_up_columns_map_grafs_encoding_onto_ours():
    """gamma(p_graf)[source] * sign == gamma(p_ours) for p_graf = (x, -z, y)."""
    from gan3d.embedders.positional_encoding import PositionalEncoding

    p = torch.randn(50, 3)
    graf = torch.stack([p[:, 0], -p[:, 2], p[:, 1]], -1)
    enc = PositionalEncoding(in_channels=3, num_frequencies=4)
    source, sign = z_up_columns(4)
    torch.testing.assert_close(enc(graf)[:, source] * sign, enc(p))


@pytest.mark.parametrize("config", ["celeba", "carla"])
def test_images_equal_the_official_forward_from_the_recipes_cameras(checkpoints, config):
    out = render(checkpoints[config], config)
    for key, ours in out.items():
        expected = EXPECTED[f"{config}_{key}"]
        diff = (ours - expected).abs().max().item()
        tolerance = 4 * INFO["rounding_sensitivity"][f"{config}_{key}"]
        assert diff < tolerance, f"{config} {key}: max abs difference {diff:.3g} > {tolerance:.3g}"


def test_the_recipe_cameras_are_the_official_ones(checkpoints):
    """GRAF's z-up look-at cameras, in gan3d's y-up world ((x, y, z) = GRAF (x, z, -y)), OpenGL -> OpenCV axes."""
    _, recipe = load_generator(checkpoints["celeba"])
    cams = recipe_cameras(recipe, "celeba")
    to_graf = torch.tensor([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])  # our coordinates -> GRAF's
    flip = torch.tensor([1.0, -1.0, -1.0])
    official = EXPECTED["celeba_cam2world"]
    torch.testing.assert_close(to_graf @ cams.cam2world[:, :3, :3] * flip, official[:, :3, :3], atol=1e-6, rtol=0)
    torch.testing.assert_close(cams.cam2world[:, :3, 3] @ to_graf.T, official[:, :3, 3], atol=4e-6, rtol=0)
    # Every pixel's ray: GRAF's get_rays through pixel indices = ours through the shifted principal point.
    G, _ = load_generator(checkpoints["celeba"])
    samples = G.point_sampler(cams, (INFO["imsize"],) * 2)
    origins, directions = EXPECTED["celeba_rays"].reshape(2, 2, -1, 3)
    torch.testing.assert_close(samples.origins @ to_graf.T, origins, atol=4e-6, rtol=0)
    torch.testing.assert_close(samples.directions @ to_graf.T, directions / directions.norm(dim=-1, keepdim=True),
                               atol=1e-6, rtol=0)


@pytest.mark.parametrize("options, key", [({"axis_depths": False}, "depth"), ({"range_reference_radius": 0.0}, "image"),
                                          ({"pose_options": {"principal_point": [0.5, 0.5]}}, "image")])
def test_each_difference_matters(checkpoints, options, key):
    """Depths along the ray instead of the optical axis, no near/far shift with the camera's radius, or a centred
    principal point (rays through pixel centres, not GRAF's pixel indices) move the outputs by far more than
    rounding."""
    out = render(checkpoints["celeba"], "celeba", **options)
    assert (out[key] - EXPECTED[f"celeba_{key}"]).abs().max() > 100 * INFO["rounding_sensitivity"][f"celeba_{key}"]


def test_without_the_column_permutation_the_images_differ(official_file, tmp_path):
    imported = GRAFImporter().load(official_file)
    source, sign = z_up_columns(10)
    inverse = torch.argsort(source)
    for state in (imported.G, imported.G_ema):  # undo the permutation of the first layer only
        w = state["decoder.pts_linears.0.weight"]
        w[:, :63] = (w[:, :63] * sign)[:, inverse]
    G, _ = load_generator(write_imported_checkpoint(imported, tmp_path / "unpermuted.pt"))
    cameras = recipe_cameras(imported.recipe, "celeba")
    with torch.no_grad():
        image = G(EXPECTED["z"], cameras, resolution=INFO["imsize"]).image
    assert (image - EXPECTED["celeba_image"]).abs().max() > 100 * INFO["rounding_sensitivity"]["celeba_image"]


def test_discriminator_logits_equal_the_official(checkpoints):
    state = load_checkpoint(checkpoints["celeba"])
    D = build_module(recipe_of(state), "discriminator")
    D.load_state_dict(state["D"])
    D.eval()  # spectral norm with the stored u, v (the official D in eval mode)
    with torch.no_grad():
        logits = D(DiscriminatorInput(EXPECTED["d_input"])).logits
    torch.testing.assert_close(logits, EXPECTED["d_logits"].reshape(-1, 1), atol=1e-5 * float(logits.abs().max()),
                               rtol=0)
