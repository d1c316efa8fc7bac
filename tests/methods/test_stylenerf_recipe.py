"""StyleNeRF's recipe data: published values, official parameter counts with the Generator v2 wiring, the
ws layout, the background compositing on a hand-computed two-field case, and the modules run together.

Until the generator takes field groups (Generator v2), :func:`build_like_v2` builds the slots the way the
plan wires them (``/work/notes/CONTRACTS.md`` sections 2 and 3) and :func:`render_like_v2` composites the
two sample sets the way it plans to (each set's intervals, merged by depth); phase B replaces both with
``build_generator``.
"""

from __future__ import annotations

import inspect
import json
import math

import pytest
import torch

from gan3d.core.generator import feature_image, merge_samples
from gan3d.core.registry import get_registry
from gan3d.core.types import Field, RaySamples
from gan3d.methods.stylenerf.recipe import SPECS, VARIANTS, stylenerf_recipe_data
from gan3d.renderers.volume import DensityVolumeRenderer

#: Official totals (tools/reference/stylenerf_official.py on facebookresearch/StyleNeRF 7f5610a).
OFFICIAL = {"ffhq256": (5_264_749, 23_052_353, 17), "ffhq512": (5_411_840, 27_774_017, 19),
            "ffhq1024": (5_481_547, 27_801_889, 21)}
CONSUMERS = ("point_embedder", "feature_decoder", "background/point_embedder", "background/feature_decoder",
             "upsampler")


def build_like_v2(data: dict) -> dict:
    """Every module of ``data``, with the wired options handed over as Generator v2 plans, and the ws layout."""
    registry = get_registry()
    modules = data["modules"]

    def build(slot: str, **wired):
        spec = modules[slot]
        family = slot.split("/")[-1]
        cls = registry.get(family, spec["name"])
        accepted = inspect.signature(cls.__init__).parameters
        clash = set(wired) & set(spec["kwargs"])
        assert not clash, f"{slot}: the recipe sets wired options {clash}"
        return registry.build(family, spec["name"], **{k: v for k, v in wired.items() if k in accepted},
                              **spec["kwargs"])

    mapper_kwargs = modules["stochasticity_mapper"]["kwargs"]
    w_dim = mapper_kwargs["w_dim"]
    built = {"point_embedder": build("point_embedder", w_dim=w_dim),
             "background/point_embedder": build("background/point_embedder", w_dim=w_dim)}
    for group in ("", "background/"):
        built[group + "feature_decoder"] = build(group + "feature_decoder", w_dim=w_dim,
                                                 in_channels=built[group + "point_embedder"].out_channels)
    channels = {built["feature_decoder"].out_channels, built["background/feature_decoder"].out_channels}
    assert len(channels) == 1, "the groups' decoders must agree on out_channels"
    built["upsampler"] = build("upsampler", w_dim=w_dim, in_channels=channels.pop())
    layout, row = {}, 0
    for slot in CONSUMERS:  # data-flow order: main embedder, main decoder, other groups, upsampler
        n = getattr(built[slot], "num_ws", 0) or 0
        layout[slot] = slice(row, row + n)
        row += n
    built["stochasticity_mapper"] = build("stochasticity_mapper", num_ws=row)
    for slot in ("pose_sampler", "point_sampler", "background/point_sampler", "volume_renderer", "discriminator"):
        built[slot] = build(slot)
    built["layout"] = layout
    return built


def count(module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("variant", list(OFFICIAL))
def test_parameter_counts_equal_the_official_networks(variant):
    built = build_like_v2(stylenerf_recipe_data(variant))
    generator = sum(count(built[s]) for s in ("stochasticity_mapper", *CONSUMERS))
    g_total, d_total, num_ws = OFFICIAL[variant]
    assert generator == g_total and count(built["discriminator"]) == d_total
    assert built["stochasticity_mapper"].num_ws == num_ws
    # ws rows as the official split: foreground NeRF 0..9, background none, upsampler the rest.
    layout = built["layout"]
    assert layout["feature_decoder"] == slice(0, 10) and layout["background/feature_decoder"] == slice(10, 10)
    assert layout["upsampler"] == slice(10, num_ws)


def test_published_values():
    for variant, spec in SPECS.items():
        data = stylenerf_recipe_data(variant)
        m = {slot: v["kwargs"] for slot, v in data["modules"].items()}
        assert m["upsampler"]["image_resolution"] == m["discriminator"]["img_resolution"] == spec["resolution"]
        assert m["discriminator"]["mbstd_group_size"] == spec["mbstd"] and m["loss"]["r1_gamma"] == spec["gamma"]
        t = data["training"]
        assert (t["batch_size"], t["g_lr"], t["d_lr"], t["ema_kimg"]) == (spec["batch"], spec["lr"], spec["lr"],
                                                                         spec["ema"])
    data = stylenerf_recipe_data()
    m = {slot: v["kwargs"] for slot, v in data["modules"].items()}
    assert data["variant"] == "ffhq256" and m["discriminator"]["channel_base"] == 16384
    assert (m["point_sampler"]["ray_start"], m["point_sampler"]["ray_end"]) == (0.88, 1.12)
    assert m["point_sampler"]["axis_depths"] is True and data["generator"]["num_importance"] == 14
    assert (m["pose_sampler"]["yaw_stddev"], m["pose_sampler"]["polar_stddev"], m["pose_sampler"]["fov"]) == (
        0.3, 0.155, 12.0)
    assert m["background/point_sampler"]["num_samples"] == 4 and m["background/point_embedder"]["latent_dim"] == 32
    assert m["volume_renderer"]["last_delta"] == 0.0 and m["volume_renderer"]["last_back"] is True
    assert m["loss"]["style_mixing_prob"] == 0.9 and m["loss"]["pl_weight"] == 2.0
    assert (m["upsampler"]["fade_start_kimg"], m["upsampler"]["fade_end_kimg"]) == (500.0, 5000.0)
    assert data["training"]["xflip"] is True and data["generator"]["groups"] == {"background": {}}
    with pytest.raises(ValueError, match="ffhq256, ffhq512, ffhq1024, synthetic"):
        stylenerf_recipe_data("afhq256")


@pytest.mark.parametrize("variant", VARIANTS)
def test_data_round_trips_through_json(variant):
    data = stylenerf_recipe_data(variant)
    assert json.loads(json.dumps(data)) == data


@torch.no_grad()
def test_background_composites_behind_the_foreground_as_the_official_renderer():
    """Two foreground samples then two background ones on one ray, by hand (StyleNeRF
    forward_rendering + forward_rendering_background + calc_volume_weights):
    fg deltas (0.1, 0: last_dist 0), bg deltas in inverse radius (0.25, 1e10) with the last bg alpha forced
    to 1; feature = sum w_fg f + T_fg * sum w_bg f_bg."""
    options = stylenerf_recipe_data()["modules"]["volume_renderer"]["kwargs"]
    renderer = DensityVolumeRenderer(**options).eval()  # eval: no density noise
    sigma = torch.tensor([2.0, 3.0, 4.0, -1.0]).view(1, 1, 4, 1)  # the last is 0 after the ReLU
    feats = torch.tensor([1.0, 2.0, 3.0, 5.0]).view(1, 1, 4, 1)
    depths = torch.tensor([1.0, 1.1, 2.5, 1e6]).view(1, 1, 4, 1)
    deltas = torch.tensor([0.1, 0.0, 0.25, 1e10]).view(1, 1, 4, 1)
    origins, directions = torch.zeros(1, 1, 3), torch.tensor([[[0.0, 0.0, 1.0]]])
    samples = RaySamples(origins, directions, depths, origins[:, :, None] + depths * directions[:, :, None], deltas)
    render = renderer(Field(feats, density=sigma), samples)
    a_fg = 1 - math.exp(-0.2)  # second fg alpha: 1 - exp(-3 * 0) = 0
    t_fg = 1 - a_fg + 1e-10
    a_bg = 1 - math.exp(-1.0)
    expected = a_fg * 1.0 + t_fg * (a_bg * 3.0 + (1 - a_bg + 1e-10) * 1.0 * 5.0)
    assert float(render.features) == pytest.approx(expected, rel=1e-6)  # 3.2398...
    assert float(render.features) == pytest.approx(3.23984, abs=1e-4)
    assert float(render.alpha) == pytest.approx(1.0, abs=1e-6)  # the background is opaque


def render_like_v2(built: dict, ws: torch.Tensor, cameras, resolution: int, *, alpha: float):
    """The synthetic recipe's modules composed as the Generator v2 plan describes (section 1)."""
    layout, renderer = built["layout"], built["volume_renderer"]
    rows = {slot: ws[:, layout[slot]] for slot in CONSUMERS}
    groups = []
    for prefix in ("", "background/"):
        sampler, embedder = built[prefix + "point_sampler"], built[prefix + "point_embedder"]
        decoder = built[prefix + "feature_decoder"]
        scene = embedder.scene(rows[prefix + "point_embedder"])

        def field(s: RaySamples, embedder=embedder, decoder=decoder, scene=scene,
                  decoder_rows=rows[prefix + "feature_decoder"]):
            return decoder(embedder(s.points, scene), s.sample_directions, decoder_rows)

        samples = sampler(cameras, (resolution, resolution))
        values = field(samples)
        if not prefix:  # the main group's importance pass, on its own weights
            fine = sampler.importance(samples, renderer(values, samples).weights, 8)
            samples, values = merge_samples(samples, values, fine, field(fine))
            gaps = samples.depths.diff(dim=-2)
            samples.deltas = torch.cat([gaps, torch.zeros_like(gaps[..., :1, :])], dim=-2)  # last_delta 0
        groups.append((samples, values))
    (fg, fg_field), (bg, bg_field) = groups
    merged = RaySamples(fg.origins, fg.directions, torch.cat([fg.depths, bg.depths], -2),
                        torch.cat([fg.points, bg.points], -2), torch.cat([fg.deltas, bg.deltas], -2))
    assert merged.depths.diff(dim=-2).gt(0).all(), "the background lies behind the foreground"
    render = renderer(Field(torch.cat([fg_field.features, bg_field.features], -2),
                            density=torch.cat([fg_field.density, bg_field.density], -2)), merged)
    features = feature_image(render.features, resolution)
    return built["upsampler"](features, rows["upsampler"], alpha=alpha), render


def test_synthetic_modules_run_together_and_every_parameter_learns():
    torch.manual_seed(0)
    built = build_like_v2(stylenerf_recipe_data("synthetic"))
    mapper, D = built["stochasticity_mapper"], built["discriminator"]
    for slot in ("point_sampler", "background/point_sampler", "volume_renderer", "upsampler"):
        built[slot].train()
    generator = torch.Generator().manual_seed(1)
    cameras = built["pose_sampler"](4, generator=generator)
    ws = mapper(torch.randn(4, mapper.z_dim))
    image, render = render_like_v2(built, ws, cameras, 32, alpha=0.5)  # fading in 64 px
    assert image.shape == (4, 3, 64, 64) and torch.isfinite(image).all()
    torch.testing.assert_close(render.alpha, torch.ones_like(render.alpha))  # opaque background
    logits = D(image).logits
    (logits.sum() + image.square().mean()).backward()
    for slot in ("stochasticity_mapper", *CONSUMERS, "discriminator"):
        for name, p in built[slot].named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, f"{slot}.{name}"
    with torch.no_grad():
        low, _ = render_like_v2(built, ws, cameras, 32, alpha=0.0)
    assert low.shape == (4, 3, 32, 32) and D(low).logits.shape == (4, 1)
