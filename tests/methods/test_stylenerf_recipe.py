"""StyleNeRF's recipes through ``build_generator``: published values, official parameter counts and the
official ``ws`` split, the background composited behind the foreground on a hand-computed case, importance
sampling on the foreground's own weights, and the synthetic generator rendering."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import gan3d.core.plugin as core_plugin
import gan3d.renderers.plugin as renderers_plugin
from gan3d.core import hookimpl
from gan3d.core.cameras import focal_to_intrinsics
from gan3d.core.generator import build_generator, build_module
from gan3d.core.interfaces import FeatureDecoder, PointEmbedder, PointSampler, PoseSampler, StochasticityMapper
from gan3d.core.recipe import ModuleSpec, Recipe
from gan3d.core.registry import Registry, get_registry
from gan3d.core.types import Cameras, Field, RaySamples
from gan3d.methods.stylenerf.recipe import DATA, SPECS, SYNTHETIC_DATA_WORLD, VARIANTS, stylenerf_recipe

#: Official totals (tools/reference/stylenerf_official.py on facebookresearch/StyleNeRF 7f5610a).
OFFICIAL = {"ffhq256": (5_264_749, 23_052_353, 17), "ffhq512": (5_411_840, 27_774_017, 19),
            "ffhq1024": (5_481_547, 27_801_889, 21)}


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("variant", list(OFFICIAL))
def test_parameter_counts_and_ws_split_equal_the_official_networks(variant):
    recipe = stylenerf_recipe(variant)
    registry = get_registry()
    with torch.device("meta"):  # counts only: no memory, no initialisation
        G = build_generator(recipe, registry)
        D = registry.build("discriminator", "stylenerf", **recipe.modules["discriminator"].kwargs)
    g_total, d_total, num_ws = OFFICIAL[variant]
    assert count(G) == g_total and count(D) == d_total and G.num_ws == num_ws
    # Official split (NeRFSynthesisNetwork.forward): foreground NeRF rows 0..9, background none, upsampler the rest.
    assert G.ws_layout == {"point_embedder": slice(0, 0), "feature_decoder": slice(0, 10),
                           "background/point_embedder": slice(10, 10), "background/feature_decoder": slice(10, 10),
                           "upsampler": slice(10, num_ws)}
    # Wiring: PE(10) of 3D points -> 60 channels, of NeRF++'s 4D coordinates + z_bg -> 80 + 32; 3 + 256 features.
    assert G.decoder.in_channels == 60 and G.groups["background"].decoder.in_channels == 112
    assert G.upsampler.in_channels == 259 and G.upsampler.w_dim == 512


def test_published_values():
    for variant, spec in SPECS.items():
        recipe = stylenerf_recipe(variant)
        m = {slot: v.kwargs for slot, v in recipe.modules.items()}
        assert m["upsampler"]["image_resolution"] == m["discriminator"]["img_resolution"] == spec["resolution"]
        assert m["discriminator"]["mbstd_group_size"] == spec["mbstd"] and m["loss"]["r1_gamma"] == spec["gamma"]
        t = recipe.training
        assert (t["batch_size"], t["g_lr"], t["d_lr"], t["ema_kimg"]) == (spec["batch"], spec["lr"], spec["lr"],
                                                                         spec["ema"])
        assert t["batch_gpu"] == spec["mbstd"]  # run_train.py: rounds of the minibatch-std group
        assert recipe.data == DATA and recipe.method == "stylenerf" and recipe.variant == variant
    recipe = stylenerf_recipe()
    m = {slot: v.kwargs for slot, v in recipe.modules.items()}
    assert recipe.variant == "ffhq256" and m["discriminator"]["channel_base"] == 16384
    assert (m["point_sampler"]["ray_start"], m["point_sampler"]["ray_end"]) == (0.88, 1.12)
    assert m["point_sampler"]["axis_depths"] is True and recipe.generator["num_importance"] == 14
    assert (m["pose_sampler"]["yaw_stddev"], m["pose_sampler"]["polar_stddev"], m["pose_sampler"]["fov"]) == (
        0.3, 0.155, 12.0)
    assert m["background/point_sampler"]["num_samples"] == 4 and m["background/point_embedder"]["latent_dim"] == 32
    assert m["volume_renderer"]["last_delta"] == 0.0 and m["volume_renderer"]["last_back"] is True
    assert m["loss"]["style_mixing_prob"] == 0.9 and m["loss"]["pl_weight"] == 2.0
    assert (m["upsampler"]["fade_start_kimg"], m["upsampler"]["fade_end_kimg"]) == (500.0, 5000.0)
    assert recipe.training["xflip"] is True and recipe.generator["groups"] == {"background": {"num_importance": 0}}
    with pytest.raises(ValueError, match="ffhq256, ffhq512, ffhq1024, synthetic"):
        stylenerf_recipe("afhq256")


def test_synthetic_cameras_are_the_sets_moved_onto_nerfplusplus_unit_sphere():
    """The synthetic variant is the head set's world (cameras 2.7 from the pivot (0, 0, 0.2)) scaled by 1 / 2.7
    about that pivot: the same view directions and field of view, so the same images, with the cameras on the unit
    sphere about the origin that NeRF++'s background needs, and the same samples along the rays."""
    synthetic = stylenerf_recipe("synthetic")
    data_world = synthetic.overrides(SYNTHETIC_DATA_WORLD)
    pivot = torch.tensor([0.0, 0.0, 0.2])
    ours = build_module(synthetic, "pose_sampler")(64, generator=torch.Generator().manual_seed(1))
    sets = build_module(data_world, "pose_sampler")(64, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(ours.cam2world[:, :3, :3], sets.cam2world[:, :3, :3])  # same view directions
    torch.testing.assert_close(ours.cam2world[:, :3, 3], (sets.cam2world[:, :3, 3] - pivot) / 2.7)
    torch.testing.assert_close(ours.intrinsics, sets.intrinsics)  # same field of view
    torch.testing.assert_close(ours.cam2world[:, :3, 3].norm(dim=-1), torch.ones(64))
    assert float((sets.cam2world[:, :3, 3] - pivot).norm(dim=-1).sub(2.7).abs().max()) < 1e-5  # the set's rig

    a = build_module(synthetic, "point_sampler")(ours, (4, 4), generator=torch.Generator().manual_seed(2))
    b = build_module(data_world, "point_sampler")(sets, (4, 4), generator=torch.Generator().manual_seed(2))
    points_a, points_b = (s.origins[:, :, None] + s.depths * s.directions[:, :, None] for s in (a, b))
    torch.testing.assert_close(points_a, (points_b - pivot) / 2.7)
    # ... all inside the unit sphere, in front of the background (which begins at radius 2).
    assert float(points_a.norm(dim=-1).max()) < 1.0
    bg = synthetic.modules["background/point_sampler"].kwargs
    assert bg["sphere_radius"] == synthetic.modules["background/point_embedder"].kwargs["sphere_radius"] == 1.0


@pytest.mark.parametrize("variant", VARIANTS)
def test_recipes_round_trip_through_json(variant):
    recipe = stylenerf_recipe(variant)
    assert Recipe.from_json(recipe.to_json()) == recipe


# ---------------------------------------------------------------- a hand-computed ray through build_generator
class _Mapper(StochasticityMapper):
    def __init__(self, num_ws: int = 1) -> None:
        super().__init__()
        self.z_dim, self.w_dim, self.num_ws = 2, 2, num_ws

    def forward(self, z, c=None, *, truncation_psi=1.0, truncation_cutoff=None, update_w_avg=False):
        return z.unsqueeze(1).repeat(1, self.num_ws, 1)


class _Camera(PoseSampler):
    """One camera at the origin looking down +z (OpenCV axes), so the 1 x 1 image's ray is the z axis."""

    def forward(self, batch_size, *, device="cpu", generator=None):
        return Cameras(torch.eye(4).expand(batch_size, 4, 4).clone(), focal_to_intrinsics(1.0, batch_size))


class _FixedDepths(PointSampler):
    """Samples at fixed distances along each ray, with explicit ``deltas`` when given; its importance pass records
    the weights it is handed and adds one sample 0.02 behind the first."""

    supports_importance = True
    seen: list = []

    def __init__(self, depths: list, deltas: list | None = None) -> None:
        super().__init__()
        self.depths, self.deltas = depths, deltas

    def forward(self, cameras, resolution, *, pixels=None, generator=None):
        origins = cameras.cam2world[:, None, :3, 3]
        directions = cameras.cam2world[:, None, :3, 2]
        depths = torch.tensor(self.depths).view(1, 1, -1, 1).expand(origins.shape[0], 1, -1, 1)
        samples = RaySamples.along_rays(origins, directions, depths)
        if self.deltas is not None:
            samples.deltas = torch.tensor(self.deltas).view(1, 1, -1, 1).expand_as(depths).clone()
        return samples

    def importance(self, samples, weights, num_samples, *, generator=None):
        type(self).seen.append(weights)
        return RaySamples.along_rays(samples.origins, samples.directions, samples.depths[..., :1, :] + 0.02)


class _Depth(PointEmbedder):
    """The sample's distance from the camera at the origin (to look its field value up)."""

    out_channels = 1

    def forward(self, points, scene):
        return points.norm(dim=-1, keepdim=True)


class _Table(FeatureDecoder):
    """Raw density and a feature per sample (in all three channels), looked up by depth in a table."""

    field_kind = "density"

    def __init__(self, depths: list, density: list, features: list, in_channels: int = 1) -> None:
        super().__init__()
        self.table = (torch.tensor(depths), torch.tensor(density), torch.tensor(features))
        self.out_channels = 3

    def forward(self, features, directions, ws):
        depths, density, values = self.table
        index = (features - depths).abs().argmin(-1)
        return Field(features=values[index].unsqueeze(-1).expand(*index.shape, 3), density=density[index].unsqueeze(-1))


class _Plugin:
    @hookimpl
    def gan3d_register(self, registry):
        registry.add("stochasticity_mapper", "t_mapper", _Mapper)
        registry.add("pose_sampler", "t_camera", _Camera)
        registry.add("point_sampler", "t_depths", _FixedDepths)
        registry.add("point_embedder", "t_depth", _Depth)
        registry.add("feature_decoder", "t_table", _Table)


def _hand_generator(num_importance: int = 0, foreground: tuple = (1.0, 1.1)):
    registry = Registry(autoload=False)
    registry.register(core_plugin, name="core", distribution="gan3d-core")
    registry.register(renderers_plugin, name="renderers", distribution="gan3d-renderers")
    registry.register(_Plugin(), name="hand", distribution="tests")
    table = {"depths": [1.0, 1.05, 1.1, 2.5, 1e6], "density": [2.0, 0.5, 3.0, 4.0, -1.0],
             "features": [1.0, 7.0, 2.0, 3.0, 5.0]}
    modules = {
        "stochasticity_mapper": ModuleSpec("t_mapper"), "pose_sampler": ModuleSpec("t_camera"),
        "point_sampler": ModuleSpec("t_depths", {"depths": list(foreground)}), "point_embedder": ModuleSpec("t_depth"),
        "feature_decoder": ModuleSpec("t_table", table),
        # NeRF++ background: depths 2.5 and "infinity", intervals in inverse radius (0.25) and 1e10.
        "background/point_sampler": ModuleSpec("t_depths", {"depths": [2.5, 1e6], "deltas": [0.25, 1e10]}),
        "background/point_embedder": ModuleSpec("t_depth"), "background/feature_decoder": ModuleSpec("t_table", table),
        "volume_renderer": stylenerf_recipe().modules["volume_renderer"],  # the published renderer options
        "upsampler": ModuleSpec("identity"),
    }
    recipe = Recipe("hand", modules, {"render_resolution": 1, "num_importance": num_importance})
    return build_generator(recipe, registry).eval()  # eval: no density noise


@torch.no_grad()
def test_background_composites_behind_the_foreground_as_the_official_renderer():
    """Two foreground samples then two background ones on one ray, by hand (StyleNeRF forward_rendering +
    forward_rendering_background + calc_volume_weights): foreground deltas (0.1, 0: last_dist 0), background
    deltas in inverse radius (0.25, 1e10) with the last background alpha forced to 1; feature =
    sum w_fg f + T_fg * sum w_bg f_bg. Built by ``build_generator`` with the published renderer options."""
    G = _hand_generator()
    out = G(torch.zeros(1, 2), requests={"intervals", "weights"})
    a_fg = 1 - math.exp(-0.2)  # second foreground alpha: 1 - exp(-3 * 0) = 0
    t_fg = 1 - a_fg + 1e-10
    a_bg = 1 - math.exp(-1.0)
    expected = a_fg * 1.0 + t_fg * (a_bg * 3.0 + (1 - a_bg + 1e-10) * 1.0 * 5.0)
    torch.testing.assert_close(out.features.flatten(), torch.full((3,), expected), rtol=1e-6, atol=0)
    assert float(out.features[0, 0]) == pytest.approx(3.23984, abs=1e-4)
    # Depth and opacity are the foreground's: the background (at infinity) adds colour only.
    assert float(out.alpha) == pytest.approx(a_fg, rel=1e-6) and float(out.depth) == pytest.approx(a_fg, rel=1e-6)
    # The merged ray's intervals, by depth: the foreground's two, then the background's two.
    weights = out.aux["interval_weights"].flatten()
    torch.testing.assert_close(weights, torch.tensor([a_fg, 0.0, t_fg * a_bg, 1 - a_fg - t_fg * a_bg]), atol=1e-6,
                               rtol=1e-5)
    torch.testing.assert_close(out.aux["interval_features"][..., 0].flatten(), torch.tensor([1.0, 2.0, 3.0, 5.0]))
    # Render.weights are the foreground's own samples' (in the merged compositing).
    torch.testing.assert_close(out.aux["weights"].flatten(), weights[:2])


@torch.no_grad()
def test_importance_sampling_reads_the_foregrounds_own_weights():
    """The fine samples are drawn from the foreground rendered alone (calc_volume_weights with last_dist 0, before
    the background is added; sample_pdf reads the interior weights[1:-1]), and join the foreground before
    compositing with the background."""
    _FixedDepths.seen = []
    G = _hand_generator(num_importance=1, foreground=(1.0, 1.05, 1.1))
    out = G(torch.zeros(1, 2), requests={"intervals"})
    (weights,) = _FixedDepths.seen
    a0, a1 = 1 - math.exp(-2.0 * 0.05), 1 - math.exp(-0.5 * 0.05)
    assert weights.shape == (1, 1, 3, 1)
    assert float(weights[0, 0, 1]) == pytest.approx((1 - a0 + 1e-10) * a1, rel=1e-5)  # the interior weight
    # The fine sample at 1.02 (density 2, as the nearest table entry 1.0) joins the foreground's samples:
    # intervals 1.0 -> 1.02 -> 1.05 -> 1.1 (0 long) -> the background.
    assert out.aux["interval_depths"].flatten()[:4].tolist() == pytest.approx([1.0, 1.02, 1.05, 1.1])
    alphas = [1 - math.exp(-2.0 * 0.02), 1 - math.exp(-2.0 * 0.03), 1 - math.exp(-0.5 * 0.05), 0.0]
    expected, light = [], 1.0
    for a in alphas:
        expected.append(light * a)
        light *= 1 - a + 1e-10
    torch.testing.assert_close(out.aux["interval_weights"].flatten()[:4], torch.tensor(expected), atol=1e-7,
                               rtol=1e-5)


# ---------------------------------------------------------------- the synthetic generator
@pytest.fixture(scope="module")
def synthetic_generator():
    torch.manual_seed(0)
    return build_generator(stylenerf_recipe("synthetic"))


def test_training_composite_keeps_the_coarse_samples_noise(synthetic_generator):
    """Officially the coarse samples' noisy densities, from which the importance weights came, are concatenated
    with the fine ones for the final composite (training/stylenerf.py ``forward_rendering``): every density the
    renderer composites in training is a draw the generator made once, where it evaluated the field. Measured on
    an official 12-kimg network (tools/official/stylenerf_train.py): foreground opacity in training 0.276
    (official) vs 0.302 with the coarse noise drawn again, 0.276 drawn once."""
    G = synthetic_generator.train()
    drawn, composited = [], []
    renderer = G.renderer
    sample_noise, activation = renderer.sample_noise, renderer.density

    def record_draw(field):
        out = sample_noise(field)
        drawn.append(out.density.detach())
        return out

    def record_composite(raw):  # the raw densities each composite activates, noise included
        composited.append(raw.detach())
        return activation(raw)

    renderer.sample_noise, renderer.density = record_draw, record_composite
    try:
        with torch.no_grad():
            G(torch.randn(2, G.z_dim), G.pose_sampler(2), generator=torch.Generator().manual_seed(4))
    finally:
        del renderer.sample_noise, renderer.density
        G.eval()
    coarse, fine, background = drawn  # the order the generator evaluates the fields in
    assert coarse.shape[-2] == fine.shape[-2] == 8 and background.shape[-2] == 4
    assert [d.shape[-2] for d in composited] == [8, 16, 4]  # importance weights, then the merged ray and the bg
    torch.testing.assert_close(composited[0], coarse, rtol=0, atol=0)
    merged = torch.cat([coarse, fine], -2).sort(-2).values
    torch.testing.assert_close(composited[1].sort(-2).values, merged, rtol=0, atol=0)
    torch.testing.assert_close(composited[2], background, rtol=0, atol=0)


def test_synthetic_generator_renders_at_its_fade_in(synthetic_generator):
    G = synthetic_generator.eval()
    z = torch.randn(2, G.z_dim)
    cams = G.pose_sampler(2, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        full = G(z, cams, generator=torch.Generator().manual_seed(2), requests={"intervals"})
        again = G(z, cams, generator=torch.Generator().manual_seed(2))
        G.set_training_step(0, 0.0)  # before the fade-in: the rendered RGB itself, at 16 px
        low = G(z, cams, generator=torch.Generator().manual_seed(2))
        G.set_training_step(0, 10.0)
    assert full.image.shape == (2, 3, 64, 64) and G.output_resolution() == 64
    torch.testing.assert_close(full.image, again.image)  # the seed fixes the background latent
    assert low.image.shape == (2, 3, 16, 16)
    torch.testing.assert_close(low.image, low.image_raw)
    assert full.alpha.le(1).all() and full.depth.le(3.3 / 2.7 * 1.02).all()  # the foreground's, not the background's
    # 8 + 8 foreground intervals then 4 background ones, in depth order.
    depths = full.aux["interval_depths"]
    assert depths.shape == (2, 16 * 16, 20, 1) and depths.diff(dim=-2).ge(0).all()
    # The foreground ends at 3.3 / 2.7 along the axis (a little more along the off-axis rays); the background
    # starts where a ray from the camera, 1 from the origin and looking at it, leaves the sphere of radius 2
    # (inverse radius 0.5): about 3 from the camera.
    assert depths[..., :16, :].max() < 3.3 / 2.7 * 1.02 and depths[..., 16:, :].min() > 2.9
    composited = (full.aux["interval_weights"] * full.aux["interval_features"]).sum(-2)
    torch.testing.assert_close(composited.transpose(1, 2).reshape(2, -1, 16, 16), full.features, atol=1e-5, rtol=1e-5)
    G.chunk = 100  # chunks of rays: their intervals are concatenated
    with torch.no_grad():
        chunked = G(z, cams, generator=torch.Generator().manual_seed(2), requests={"intervals"})
    G.chunk = None
    torch.testing.assert_close(chunked.aux["interval_weights"], full.aux["interval_weights"])
