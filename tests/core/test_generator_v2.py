"""The Generator v2 contracts on the tiny modules: latent-row allocation and build-time wiring, patches
as cropped cameras and explicit pixel sets, field groups, requests, slots, the training-step hook."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch

from gan3d.core.generator import allocate_ws, build_generator
from gan3d.core.recipe import ModuleSpec, RecipeError
from gan3d.core.types import Cameras, PatchParams

sys.path.insert(0, str(Path(__file__).parent))
from conftest import TinyEmbedder, TinyRays, TinyRenderer  # noqa: E402


class _Consumer:
    def __init__(self, n: int, back: int = 0) -> None:
        self.num_ws, self.ws_from_previous = n, back


def test_latent_rows_are_consecutive_ranges_in_data_flow_order():
    layout, total = allocate_ws([("point_embedder", _Consumer(14)), ("feature_decoder", _Consumer(0)),
                                 ("background/feature_decoder", _Consumer(3)), ("upsampler", _Consumer(7))])
    assert layout == {"point_embedder": slice(0, 14), "feature_decoder": slice(14, 14),
                      "background/feature_decoder": slice(14, 17), "upsampler": slice(17, 24)} and total == 24
    # EG3D: the super-resolution reads the backbone's last row; with nothing before it, a row of its own.
    eg3d = allocate_ws([("point_embedder", _Consumer(14)), ("upsampler", _Consumer(1, 1))])
    assert eg3d == ({"point_embedder": slice(0, 14), "upsampler": slice(13, 14)}, 14)
    assert allocate_ws([("point_embedder", _Consumer(0)), ("upsampler", _Consumer(1, 1))])[1] == 1
    with pytest.raises(RecipeError, match="ws_from_previous"):
        allocate_ws([("upsampler", _Consumer(1, 2))])


def test_the_generator_wires_channels_widths_and_rows(tiny_registry, tiny_recipe):
    recipe = tiny_recipe().override("point_embedder.channels=5").override("stochasticity_mapper.w_dim=16")
    G = build_generator(recipe, tiny_registry)
    assert G.decoder.fc.in_features == 5  # the decoder's in_channels is the embedder's out_channels
    assert G.mapper.num_ws == 2 and G.ws_layout["point_embedder"] == slice(0, 2)
    # A recipe that sets a wired option to another value is refused, naming the fix.
    with pytest.raises(RecipeError, match=r"feature_decoder.in_channels=7 contradicts the generator's wiring"):
        build_generator(recipe.override("feature_decoder.in_channels=7"), tiny_registry)
    # The same value is accepted (old recipes spell it out).
    build_generator(recipe.override("feature_decoder.in_channels=5"), tiny_registry)
    # Each module gets only its rows.
    ws = G.mapping(torch.randn(2, G.z_dim))
    assert G.rows(ws, "point_embedder").shape == (2, 2, 16) and G.rows(ws, "upsampler").shape == (2, 0, 16)


def test_a_patch_is_a_cropped_camera_whose_rays_are_the_full_images_rays(tiny_registry, tiny_recipe):
    G = build_generator(tiny_recipe(), tiny_registry)
    cams = G.pose_sampler(2, generator=torch.Generator().manual_seed(0))
    full = G.point_sampler(cams, (8, 8))
    # Pixel centres: the 4 x 4 patch at offset (0.25, 0.5) of scale 0.5 holds full-image pixels 2..5 x 4..7.
    patch = PatchParams(torch.full((2,), 0.5), torch.tensor([[0.25, 0.5]] * 2))
    rays = G.point_sampler(patch.cameras(cams), (4, 4))
    want = full.directions.view(2, 8, 8, 3)[:, 4:8, 2:6].reshape(2, 16, 3)
    torch.testing.assert_close(rays.directions, want)
    # Corner-aligned: the K x K grid spans the patch edge to edge, u = x + s j / (K - 1).
    corner = PatchParams(torch.full((2,), 0.5), torch.tensor([[0.25, 0.5]] * 2), align_corners=True)
    uv = corner.coordinates(3)
    assert uv[0, 0, 0].tolist() == [0.25, 0.5] and uv[0, 2, 2].tolist() == [0.75, 1.0]
    corner_rays = G.point_sampler(corner.cameras(cams), (3, 3))
    explicit = G.point_sampler(cams, None, pixels=uv.reshape(2, 9, 2))
    torch.testing.assert_close(corner_rays.directions, explicit.directions)
    # Real patches are cut at the same points: a patch of an image that is its own x coordinate.
    u = (torch.arange(8) + 0.5) / 8
    image = u.view(1, 1, 1, 8).expand(2, 3, 8, 8)
    cut = patch.cut(image, 4)
    torch.testing.assert_close(cut[0, 0, 0], u[2:6])


def test_rendering_explicit_pixels_gives_the_full_renders_pixels(tiny_registry, tiny_recipe):
    G = build_generator(tiny_recipe(), tiny_registry).eval()
    z = torch.randn(2, G.z_dim)
    cams = G.pose_sampler(2, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ws = G.mapping(z)
        out = G.synthesis(ws, cams)
        rows, cols = torch.tensor([0, 3, 7]), torch.tensor([5, 1, 6])
        pixels = torch.stack([(cols + 0.5) / 8, (rows + 0.5) / 8], -1).expand(2, 3, 2)
        render = G.render_pixels(ws, cams, pixels)
    torch.testing.assert_close(render.features.transpose(1, 2), out.features[:, :, rows, cols])
    torch.testing.assert_close(render.depth.transpose(1, 2), out.depth[:, :, rows, cols])


class _RecordingRenderer(TinyRenderer):
    """The tiny renderer, recording the parts it is given and rendering the first (compositing several
    sample sets is gan3d-renderers' job, tested there)."""

    parts: list = []

    def render(self, parts):
        if len(parts) > 1:  # not the per-layer renders
            type(self).parts = list(parts)
        return self(parts[0].field, parts[0].samples)


def test_a_background_group_has_its_own_samples_and_rows_and_reaches_the_renderer(tiny_registry, tiny_recipe):
    tiny_registry.add("volume_renderer", "tiny_recording", _RecordingRenderer)
    recipe = tiny_recipe().override("volume_renderer=tiny_recording")
    recipe.modules["background/point_sampler"] = ModuleSpec("tiny", {"ray_start": 5.0, "ray_end": 8.0})
    recipe.modules["background/point_embedder"] = ModuleSpec("tiny")
    recipe.modules["background/feature_decoder"] = ModuleSpec("tiny")
    torch.manual_seed(0)
    G = build_generator(recipe, tiny_registry).eval()
    assert list(G.groups) == ["background"] and G.ws_layout["background/point_embedder"] == slice(2, 4)
    z = torch.randn(2, G.z_dim)
    cams = G.pose_sampler(2, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = G(z, cams, requests={"layers"})
    main, background = _RecordingRenderer.parts
    assert (main.sample_set, main.name, background.sample_set, background.name) == (
        "main", "main/0", "background", "background/0")
    assert float(background.samples.depths.min()) >= 5.0 and float(main.samples.depths.max()) <= 3.0
    assert set(out.layers) == {"main/0", "background/0"} and out.layers["background/0"].alpha.shape == (2, 1, 8, 8)
    # Slots and state-dict prefixes of the group.
    assert G.slot_modules()["background/feature_decoder"] is G.groups["background"].decoder
    assert G.slot_prefixes()["background/feature_decoder"] == "groups.background.decoder."
    with pytest.raises(RecipeError, match="no background/feature_decoder slot"):
        del recipe.modules["background/feature_decoder"]
        build_generator(recipe, tiny_registry)


def test_requests_are_checked_and_load_slots_copies_only_the_named_slots(tiny_registry, tiny_recipe):
    G = build_generator(tiny_recipe(), tiny_registry)
    with pytest.raises(ValueError, match="unknown generator request"):
        G(torch.randn(1, G.z_dim), requests={"everything"})
    torch.manual_seed(5)
    other = build_generator(tiny_recipe(), tiny_registry)
    assert G.load_slots(other.state_dict(), ["feature_decoder"]) == 2
    torch.testing.assert_close(G.decoder.fc.weight, other.decoder.fc.weight)
    assert not torch.equal(G.embedder.proj.weight, other.embedder.proj.weight)
    with pytest.raises(ValueError, match="no slot"):
        G.load_slots(other.state_dict(), ["decoder"])


def test_set_training_step_reaches_every_scheduled_module(tiny_registry, tiny_recipe):
    G = build_generator(tiny_recipe(), tiny_registry)
    seen = []
    G.renderer.set_training_step = lambda step, kimg: seen.append((step, kimg))
    G.set_training_step(7, 0.5)
    assert seen == [(7, 0.5)]


def test_cameras_crop_intrinsics_by_hand():
    cams = Cameras(torch.eye(4)[None], torch.tensor([[[2.0, 0.1, 0.5], [0.0, 2.0, 0.5], [0.0, 0.0, 1.0]]]))
    crop = cams.crop(torch.tensor([0.25]), torch.tensor([[0.5, 0.25]]), align_corners=True)
    torch.testing.assert_close(crop.intrinsics[0], torch.tensor([[8.0, 0.4, 0.0], [0.0, 8.0, 1.0], [0.0, 0.0, 1.0]]))
    assert crop.align_corners and math.isclose(float(crop.mirror_x().intrinsics[0, 0, 2]), 1.0)
    with pytest.raises(ValueError, match="crop needs scales"):
        cams.crop(torch.ones(2), torch.zeros(2, 2))


def _random_scene_registry(tiny_registry):
    class RandomSceneEmbedder(TinyEmbedder):
        """A scene with a random input of its own (as StyleNeRF's background latent)."""

        def scene(self, ws, *, generator=None):
            return ws.mean(1) + torch.randn(ws.shape[0], ws.shape[2], generator=generator)

    tiny_registry.add("point_embedder", "tiny_random", RandomSceneEmbedder)
    return tiny_registry


def test_the_pass_generator_reaches_the_scenes_and_render_pixels_can_reuse_them(tiny_registry, tiny_recipe):
    registry = _random_scene_registry(tiny_registry)
    G = build_generator(tiny_recipe().override("point_embedder=tiny_random"), registry).eval()
    z = torch.randn(2, G.z_dim)
    cams = G.pose_sampler(2, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ws = G.mapping(z)
        first = G.synthesis(ws, cams, generator=torch.Generator().manual_seed(3), requests={"scene"})
        again = G.synthesis(ws, cams, generator=torch.Generator().manual_seed(3))
        other = G.synthesis(ws, cams, generator=torch.Generator().manual_seed(4))
        torch.testing.assert_close(first.image, again.image)  # a seed reproduces the random scene
        assert not torch.allclose(first.image, other.image)
        rows, cols = torch.tensor([2, 6]), torch.tensor([1, 4])
        pixels = torch.stack([(cols + 0.5) / 8, (rows + 0.5) / 8], -1).expand(2, 2, 2)
        same = G.render_pixels(ws, cams, pixels, scenes=first.aux["scenes"])
        fresh = G.render_pixels(ws, cams, pixels, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(same.features.transpose(1, 2), first.features[:, :, rows, cols])
    torch.testing.assert_close(fresh.features.transpose(1, 2), other.features[:, :, rows, cols])


def test_alpha_is_left_to_the_upsampler_unless_given(tiny_registry, tiny_recipe):
    seen = []

    class FadingUpsampler(tiny_registry.get("upsampler", "tiny")):
        def forward(self, features, ws, *, alpha=0.25):
            seen.append(alpha)
            return features[:, :3]

    tiny_registry.add("upsampler", "tiny_fading", FadingUpsampler)
    G = build_generator(tiny_recipe().override("upsampler=tiny_fading"), tiny_registry)
    with torch.no_grad():
        G(torch.randn(1, G.z_dim))
        G(torch.randn(1, G.z_dim), alpha=0.75)
    assert seen == [0.25, 0.75]


def test_shape_queries_give_no_density_outside_the_samplers_support(tiny_registry, tiny_recipe):
    """A point sampler that declares where it can place samples (GRAM's manifolds) bounds the field that shape
    extraction sees: the renderer's density inside, zero outside; without one, the decoder's raw field."""
    class HalfSpaceRays(TinyRays):
        def support(self, points):
            return points[..., :1] > 0  # only x > 0

    tiny_registry.add("point_sampler", "tiny_half", HalfSpaceRays)
    G = build_generator(tiny_recipe(), tiny_registry).eval()
    with torch.no_grad():
        G.decoder.fc.bias[0] = 5.0  # dense everywhere, so the zero below is the support's
    points = torch.tensor([[-0.5, 0.1, 0.0], [0.5, 0.1, 0.0], [0.25, -0.3, 0.2]]).view(1, 3, 1, 3)
    directions = torch.tensor([0.0, 0.0, -1.0]).expand(1, 3, 1, 3)
    with torch.no_grad():
        ws = G.mapping(torch.randn(1, G.z_dim))
        raw, activated = G.query_field(points, directions, ws, G.scenes(ws))
        assert not activated
        half = build_generator(tiny_recipe().override("point_sampler=tiny_half"), tiny_registry).eval()
        half.load_state_dict(G.state_dict())
        field, activated = half.query_field(points, directions, ws, half.scenes(ws))
    assert activated
    assert field.density[0, 0].item() == 0.0 and G.renderer.density(raw.density)[0, 0].item() > 0
    torch.testing.assert_close(field.density[0, 1:], G.renderer.density(raw.density)[0, 1:])
