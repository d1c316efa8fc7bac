"""The generator redesign (Generator v2) keeps every method's images.

``tests/fixtures/generator_v1/outputs.pt`` holds, per method, the synthetic recipe, the generator's weights
and its outputs for fixed latents and cameras, made by the code before the redesign (see the fixture's
``make_fixture.py``). Here the current code builds the same recipe, loads those weights (through the
checkpoint migration where names changed) and must render the same images, raw images, depth and alpha.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gan3d.core.checkpoint import generator_from_checkpoint, migrate_checkpoint
from gan3d.core.recipe import Recipe
from gan3d.core.types import Cameras

FIXTURE = Path(__file__).parent.parent / "fixtures" / "generator_v1" / "outputs.pt"
METHODS = ("pigan", "eg3d", "stylesdf", "ablation3d", "giraffe")
#: Generator v2 left every output within 1e-5 (commit 92c7a3d: all five under 1.5e-6). Since then the sample
#: depths are ``torch.linspace(start, end, S)`` as both official codes build them (issue 18), one ulp from
#: the old ``start + (end - start) * linspace(0, 1, S)``; the ablation's positional encoding (``sin(2^9 pi
#: p)``) turns that ulp into up to 9e-5 of its images. Each entry renders with the recipe stored in the fixture, so
#: recipe fixes made since do not reach it: GIRAFFE's synthetic recipe now casts GIRAFFE's corner-aligned rays with
#: camera depths (``align_corners``, ``axis_depths``, issue 18) and renders other images from these weights (0.10
#: apart); what this test pins is that a v1 checkpoint, which carries its own recipe, still renders its own images.
TOLERANCE = {"ablation3d": 2e-4}


@pytest.fixture(scope="module")
def v1():
    return torch.load(FIXTURE, weights_only=True)


@pytest.mark.parametrize("method", METHODS)
def test_v1_images_unchanged(v1, method):
    entry = v1[method]
    state = migrate_checkpoint({"format": 1, "recipe": entry["recipe"], "G": dict(entry["state"])})
    G, _ = generator_from_checkpoint(state, f"{FIXTURE}:{method}", ema=False)
    G.eval()
    cams = Cameras.from_label(entry["label"], entry["angles"])
    with torch.no_grad():
        out = G(entry["z"], cams, generator=torch.Generator().manual_seed(7))
    for name in ("image", "image_raw", "depth", "alpha"):
        got, want = getattr(out, name), entry[name]
        assert got.shape == want.shape, (method, name)
        assert (got - want).abs().max().item() < TOLERANCE.get(method, 1e-5), (method, name,
                                                                              (got - want).abs().max().item())


@pytest.mark.parametrize("method", METHODS)
def test_v1_seeded_weights_unchanged(v1, method):
    """The same recipe and seed still give the same initial weights (modules are built in the same order;
    GIRAFFE's under their new names)."""
    from gan3d.core.generator import build_generator

    entry = v1[method]
    old = migrate_checkpoint({"format": 1, "recipe": entry["recipe"], "G": dict(entry["state"])})
    torch.manual_seed(0)
    G = build_generator(Recipe.from_json(old["recipe"]))
    state = G.state_dict()
    assert set(state) == set(old["G"])
    for k, v in old["G"].items():
        assert torch.equal(state[k], v), k
