"""EpiGRAF's network-pickle format imports, and the imported network computes the official function.

The fixture (tests/fixtures/official/epigraf, made by tools/fixtures/make_epigraf_fixture.py from
universome/epigraf at the commit in its fixture.json) is a reduced-width network pickle written by the official
code (with its OmegaConf configuration and optimizers, as training_loop.py saves it), with the official
forward's outputs for two latents and camera angles: the full 64-px image and depth (eval mode), a 16-px patch
(training mode) at two patches, and the patch discriminator's logits; deterministic sampling, constant noise.

Tolerances: 4 x the fixture's ``rounding_sensitivity``, how far the *official* outputs move when its ray
directions move by float32 rounding (measured by the fixture script): our rays come from a pinhole camera
(EpiGRAF's focal ``(W - 1) / (2 W tan(fov / 2))``, cropped to the patch by ``PatchParams``) where EpiGRAF scales
``linspace(-1, 1)`` NDC grids, so they are rounded differently and may differ by that much and no more.
Discriminator logits: 1e-5 of the largest (the convolution algorithm the thread count picks rounds differently).
"""

from __future__ import annotations

import json
import lzma
from pathlib import Path

import pytest
import torch

from gan3d.core.checkpoint import CheckpointError, load_checkpoint, load_generator, recipe_of
from gan3d.core.generator import build_module
from gan3d.core.official.importer import write_imported_checkpoint
from gan3d.core.types import DiscriminatorInput
from gan3d.methods.epigraf.camera_angles import epigraf_cameras
from gan3d.methods.epigraf.official import EpiGRAFImporter, config_to_dict
from gan3d.methods.epigraf.patches import to_patch_params

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "official" / "epigraf"
EXPECTED = torch.load(FIXTURE / "expected.pt", weights_only=True)
INFO = json.loads((FIXTURE / "fixture.json").read_text())
RESOLUTION, PATCH = INFO["resolution"], INFO["patch_resolution"]


@pytest.fixture(scope="module")
def network_pickle(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("epigraf") / "network-snapshot.pkl"
    path.write_bytes(lzma.decompress((FIXTURE / "network-snapshot.pkl.xz").read_bytes()))
    return path


@pytest.fixture(scope="module")
def checkpoint(network_pickle) -> Path:
    return write_imported_checkpoint(EpiGRAFImporter().load(network_pickle), network_pickle.with_suffix(".pt"))


def deterministic_generator(checkpoint: Path):
    """The imported G_ema with the fixture's sampling: no jitter, linspace quantiles, constant noise."""
    G, recipe = load_generator(checkpoint)
    G.point_sampler.perturb_in_eval = False
    G.embedder.noise_mode = "const"
    return G.eval(), recipe


def cameras(angles: torch.Tensor):
    return epigraf_cameras(angles, radius=1.0, fov=12.0, image_resolution=RESOLUTION)


def test_import_reads_the_configuration_sizes_and_options(network_pickle):
    imported = EpiGRAFImporter().load(network_pickle)
    recipe = imported.recipe
    m, g = recipe.modules, recipe.generator
    assert recipe.method == "epigraf" and recipe.variant == "ffhq512"
    assert (m["stochasticity_mapper"].kwargs["z_dim"], m["stochasticity_mapper"].kwargs["w_dim"]) == (16, 32)
    embedder = m["point_embedder"].kwargs
    assert (embedder["resolution"], embedder["channels"], embedder["channel_base"], embedder["channel_max"]) == (
        32, 8, 512, 16)
    assert embedder["box_warp"] == pytest.approx(0.4)  # 2 * cube_scale, through the ${dataset} interpolation
    assert (g["render_resolution"], g["num_importance"], m["point_sampler"].kwargs["num_samples"]) == (64, 12, 12)
    assert m["feature_decoder"].kwargs["hidden_dim"] == 16
    assert (m["discriminator"].kwargs["patch_resolution"], m["discriminator"].kwargs["image_resolution"]) == (16, 64)
    assert (m["loss"].kwargs["patch_size"], m["loss"].kwargs["min_scale"]) == (16, 0.25)  # ${training.patch}
    assert recipe.data["label_options"] == {"fov": 12.0, "radius": 1.0, "resolution": 64}
    assert "mapper.network.w_avg" in imported.G_ema and not any("mean_camera_pose" in k for k in imported.G_ema)
    # G_ema is what the authors render with; the pickle's G differs from it (its MLP moved).
    assert not torch.equal(imported.G["decoder.hidden.bias"], imported.G_ema["decoder.hidden.bias"])
    assert imported.meta["official_classes"] == {"G": "Generator", "G_ema": "Generator", "D": "Discriminator"}


def test_images_and_depth_equal_the_official_forward(checkpoint):
    G, _ = deterministic_generator(checkpoint)
    with torch.no_grad():
        out = G(EXPECTED["z"], cameras(EXPECTED["angles"]), truncation_psi=INFO["truncation_psi"])
    for ours, theirs in (("image", "image"), ("depth", "depth")):
        diff = (getattr(out, ours) - EXPECTED[theirs]).abs().max().item()
        tolerance = 4 * INFO["rounding_sensitivity"][theirs]
        assert diff < tolerance, f"{ours}: max abs difference {diff:.3g} > {tolerance:.3g}"


def test_patches_render_from_cropped_cameras_as_the_official_patch_path(checkpoint):
    G, _ = deterministic_generator(checkpoint)
    patch = to_patch_params(EXPECTED["patches"][:2], RESOLUTION)
    with torch.no_grad():
        ws = G.mapping(EXPECTED["z"][:1].repeat(2, 1), None, truncation_psi=INFO["truncation_psi"])
        out = G.synthesis(ws, patch.cameras(cameras(EXPECTED["angles"][:1].repeat(2, 1))), resolution=PATCH)
    diff = (out.image - EXPECTED["patch"]).abs().max().item()
    tolerance = 4 * INFO["rounding_sensitivity"]["patch"]
    assert diff < tolerance, f"patch: max abs difference {diff:.3g} > {tolerance:.3g}"


def test_the_full_field_of_view_pinhole_is_far_off(checkpoint):
    """A pinhole whose field of view spans the image edges (focal 1 / (2 tan(fov / 2))) instead of EpiGRAF's, whose
    corner PIXEL CENTRES span it (the focal (W - 1) / W as long at W = 64), gives images far outside the
    tolerance: the test can tell the camera conventions apart."""
    G, _ = deterministic_generator(checkpoint)
    cams = cameras(EXPECTED["angles"])
    cams.intrinsics[:, :2, :2] *= RESOLUTION / (RESOLUTION - 1)
    with torch.no_grad():
        out = G(EXPECTED["z"], cams, truncation_psi=INFO["truncation_psi"])
    assert (out.image - EXPECTED["image"]).abs().max() > 20 * INFO["rounding_sensitivity"]["image"]


def test_patch_discriminator_scores_equal_the_official(checkpoint):
    state = load_checkpoint(checkpoint)
    D = build_module(recipe_of(state), "discriminator")
    D.load_state_dict(state["D"])
    x = DiscriminatorInput(EXPECTED["patch_images"], patch=to_patch_params(EXPECTED["patches"], RESOLUTION))
    with torch.no_grad():
        logits = D.eval()(x).logits
    scale = EXPECTED["d_logits"].abs().max().item()
    torch.testing.assert_close(logits.flatten(), EXPECTED["d_logits"].flatten(), atol=1e-5 * max(scale, 1.0), rtol=0)


def test_configuration_interpolations_resolve_and_unsupported_options_are_refused(network_pickle, tmp_path):
    from gan3d.core.official import load_pickled
    from gan3d.methods.epigraf.official import KNOWN_CLASSES, recipe_from_official

    data = load_pickled(network_pickle, KNOWN_CLASSES)
    cfg = config_to_dict(data["G_ema"].state["_init_kwargs"]["cfg"])
    assert cfg["patch"]["resolution"] == 16 and cfg["dataset"]["camera"]["fov"] == 12.0  # ${training.patch}, ...
    assert cfg["patch"]["mbstd_group_size"] == 4  # ${model.discriminator.mbstd_group_size}, two levels deep
    # A configuration gan3d's EpiGRAF does not reproduce is refused by name (here: a background model).
    G = data["G_ema"]
    bg_type = G.state["_init_kwargs"]["cfg"].state["_content"]["bg_model"].state["_content"]["type"]
    bg_type.state["_val"] = "sphere"
    with pytest.raises(CheckpointError, match="a background model \\('sphere'\\)"):
        recipe_from_official(G, None, None, "the fixture")
