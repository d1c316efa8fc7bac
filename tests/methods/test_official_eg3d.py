"""EG3D's released-checkpoint format imports, and the imported network computes the official function.

The fixture (tests/fixtures/official/eg3d, made by tools/fixtures/make_eg3d_fixture.py from
NVlabs/eg3d at the commit in its fixture.json) is a reduced-width network pickle written by the
official code, with the official forward's outputs for two latents and cameras, deterministic
sampling and constant noise.

Tolerances:
* rays: 2 float32 ulps of a unit vector (2.4e-7): ours are R d normalised, EG3D's (R d + t) - t.
* on the official rays: 5e-5. The tri-planes agree to ~2e-6 (the same StyleGAN2 arithmetic in
  another order); the fixture's decoder is sharpened (x8 density) so that depth varies, which
  amplifies that to ~1e-5 in the images.
* end to end (our own rays): 4 x the fixture's ``rounding_sensitivity``, how far the *official*
  outputs move when its ray directions move by float32 rounding (measured by the fixture script,
  ~5e-4): ours are rounded differently, so they may differ by that much and no more.
"""

from __future__ import annotations

import json
import lzma
from pathlib import Path

import pytest
import torch

import gan3d.samplers.uniform_point_sampler as uniform_point_sampler
from gan3d.core.cameras import pixel_rays
from gan3d.core.checkpoint import load_checkpoint, load_generator, recipe_of
from gan3d.core.generator import build_module
from gan3d.core.official.importer import write_imported_checkpoint
from gan3d.core.types import Cameras, DiscriminatorInput
from gan3d.methods.eg3d.official import EG3DImporter

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "official" / "eg3d"
EXPECTED = torch.load(FIXTURE / "expected.pt", weights_only=True)
INFO = json.loads((FIXTURE / "fixture.json").read_text())
OUTPUTS = {"image": "image", "image_raw": "image_raw", "depth": "image_depth"}


@pytest.fixture(scope="module")
def network_pickle(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("eg3d") / "network-snapshot.pkl"
    path.write_bytes(lzma.decompress((FIXTURE / "network-snapshot.pkl.xz").read_bytes()))
    return path


@pytest.fixture(scope="module")
def checkpoint(network_pickle) -> Path:
    return write_imported_checkpoint(EG3DImporter().load(network_pickle), network_pickle.with_suffix(".pt"))


def deterministic_generator(checkpoint: Path):
    """The imported G_ema with the fixture's sampling: no jitter, linspace quantiles, constant noise."""
    G, recipe = load_generator(checkpoint)
    G.point_sampler.perturb_in_eval = False
    G.embedder.noise_mode = "const"
    return G, recipe


def render(G, **kwargs):
    c = EXPECTED["c"]
    with torch.no_grad():
        return G(EXPECTED["z"], Cameras.from_label(c), c=c, truncation_psi=INFO["truncation_psi"], **kwargs)


def test_import_reads_the_networks_sizes_and_rendering_options(network_pickle):
    imported = EG3DImporter().load(network_pickle)
    m, g = imported.recipe.modules, imported.recipe.generator
    assert imported.recipe.method == "eg3d" and imported.recipe.variant == "ffhq512"
    assert (m["stochasticity_mapper"].kwargs["z_dim"], m["stochasticity_mapper"].kwargs["layer_features"]) == (8, 16)
    assert (m["point_embedder"].kwargs["channel_base"], m["point_embedder"].kwargs["channel_max"]) == (1024, 4)
    assert m["upsampler"].kwargs["image_resolution"] == 128 and m["upsampler"].kwargs["conv_clamp"] == 256.0
    assert (g["render_resolution"], g["num_importance"], m["point_sampler"].kwargs["num_samples"]) == (32, 12, 12)
    assert m["discriminator"].kwargs["mbstd_group_size"] == 2
    # G_ema is what the authors render with; the pickle's G differs from it (its decoder moved).
    assert not torch.equal(imported.G["decoder.hidden.bias"], imported.G_ema["decoder.hidden.bias"])
    assert imported.meta["official_classes"] == {"G": "TriPlaneGenerator", "G_ema": "TriPlaneGenerator",
                                                 "D": "DualDiscriminator"}


def test_our_rays_are_the_official_rays():
    c = EXPECTED["c"]
    res = INFO["neural_rendering_resolution"]
    origins, directions = pixel_rays(c[:, :16].view(-1, 4, 4), c[:, 16:].view(-1, 3, 3), (res, res))
    torch.testing.assert_close(origins, EXPECTED["ray_origins"], atol=0, rtol=0)
    torch.testing.assert_close(directions, EXPECTED["ray_directions"], atol=2.4e-7, rtol=0)


def test_images_equal_the_official_forward_on_the_official_rays(checkpoint, monkeypatch):
    G, _ = deterministic_generator(checkpoint)
    monkeypatch.setattr(uniform_point_sampler, "pixel_rays",
                        lambda *args, **kwargs: (EXPECTED["ray_origins"], EXPECTED["ray_directions"]))
    out = render(G)
    for ours, theirs in OUTPUTS.items():
        diff = (getattr(out, ours) - EXPECTED[theirs]).abs().max().item()
        assert diff < 5e-5, f"{ours}: max abs difference {diff:.3g} from the official forward"


def test_images_equal_the_official_forward_end_to_end(checkpoint):
    G, _ = deterministic_generator(checkpoint)
    out = render(G)
    for ours, theirs in OUTPUTS.items():
        diff = (getattr(out, ours) - EXPECTED[theirs]).abs().max().item()
        tolerance = 4 * INFO["rounding_sensitivity"][theirs]
        assert diff < tolerance, f"{ours}: max abs difference {diff:.3g} > {tolerance:.3g}"


def test_at_the_2x_input_resolution_image_raw_carries_the_official_in_place_add(checkpoint):
    """Rendered at 64 px (SuperresolutionHybrid2X's input resolution) the official first block adds its ToRGB
    output into image_raw in place; gan3d reports the same raw image (``raw_in_place``), and the images
    agree as at 32 px. Without it the raw image is off by more than 1 and the final image is unchanged."""
    G, _ = deterministic_generator(checkpoint)
    out = render(G, resolution=64)
    for ours, theirs in OUTPUTS.items():
        diff = (getattr(out, ours) - EXPECTED[theirs + "_64"]).abs().max().item()
        tolerance = 4 * INFO["rounding_sensitivity"][theirs]
        assert diff < tolerance, f"{ours}: max abs difference {diff:.3g} > {tolerance:.3g}"
    G.upsampler.raw_in_place = False
    plain = render(G, resolution=64)
    assert torch.equal(plain.image, out.image)
    assert (plain.image_raw - EXPECTED["image_raw_64"]).abs().max() > 1.0


def test_the_pre_fix_importance_pdf_is_far_off(checkpoint):
    """Without EG3D's importance PDF (interval weights as if per sample, last bin never drawn) the
    images are far outside the tolerance: the test can tell the difference."""
    G, _ = deterministic_generator(checkpoint)
    G.point_sampler.importance_pdf = "nerf"
    out = render(G)
    assert (out.depth - EXPECTED["image_depth"]).abs().max() > 20 * INFO["rounding_sensitivity"]["image_depth"]


def test_dual_discriminator_scores_equal_the_official(checkpoint):
    state = load_checkpoint(checkpoint)
    D = build_module(recipe_of(state), "discriminator")
    D.load_state_dict(state["D"])
    with torch.no_grad():
        x = DiscriminatorInput(EXPECTED["image"], image_raw=EXPECTED["image_raw"], camera_label=EXPECTED["c"])
        logits = D.eval()(x).logits
    torch.testing.assert_close(logits, EXPECTED["d_logits"], atol=1e-5, rtol=0)
