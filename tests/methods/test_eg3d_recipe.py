"""EG3D's recipes: published values, JSON round trip, the resolution-fade stages, and the FFHQ 512
generator built on CPU with the parameter count of the official TriPlaneGenerator."""

from __future__ import annotations

import math

import pytest

from gan3d.core.generator import build_generator
from gan3d.core.recipe import Recipe
from gan3d.methods.eg3d.recipe import VARIANTS, eg3d_recipe, resolution_fade_stages


@pytest.mark.parametrize("variant", [*VARIANTS, "synthetic"])
def test_recipes_round_trip(variant):
    recipe = eg3d_recipe(variant)
    assert Recipe.from_json(recipe.to_json()) == recipe and recipe.variant == variant
    with pytest.raises(ValueError, match="ffhq512, afhq512, shapenet128, synthetic"):
        eg3d_recipe("celeba")


def test_ffhq512_values():
    r = eg3d_recipe()
    m = {k: v.kwargs for k, v in r.modules.items()}
    assert m["stochasticity_mapper"]["num_layers"] == 2 and m["stochasticity_mapper"]["c_dim"] == 25
    assert (m["point_sampler"]["ray_start"], m["point_sampler"]["ray_end"], m["point_sampler"]["num_samples"]) == (
        2.25, 3.3, 48)
    assert r.generator["num_importance"] == 48 and r.generator["render_resolution"] == 64
    assert m["point_embedder"]["box_warp"] == 1.0 and m["point_embedder"]["resolution"] == 256
    assert m["loss"]["r1_gamma"] == 1.0 and m["loss"]["gpc_reg_prob"] == 0.5 and m["loss"]["blur_fade_kimg"] == 200.0
    assert m["loss"]["density_reg"] == 0.25 and m["loss"]["density_reg_every"] == 4
    t = r.training
    assert (t["batch_size"], t["g_lr"], t["d_lr"], t["ema_kimg"], t["ema_rampup"]) == (32, 0.0025, 0.002, 10.0, 0.05)
    assert t["total_kimg"] == 27000.0
    s = eg3d_recipe("shapenet128").modules
    assert s["point_embedder"].kwargs["box_warp"] == 1.6 and s["volume_renderer"].kwargs["white_back"] is True
    assert s["loss"].kwargs["gen_pose_cond"] is False and s["upsampler"].kwargs["image_resolution"] == 128


def test_fade_stages_follow_rint_of_the_linear_blend():
    stages = resolution_fade_stages(25000.0, 64, 128, 1000.0)
    assert stages[-1] == {"resolution": 128} and len(stages) == 65
    for kimg in (25000.0, 25100.0, 25503.0, 25990.0, 26500.0):
        a = min((kimg - 25000.0) / 1000.0, 1.0)
        expected = int(round(64 * (1 - a) + 128 * a))
        stage = next(s for s in stages if "until_kimg" not in s or kimg < s["until_kimg"])
        assert stage["resolution"] == expected, kimg
    assert eg3d_recipe().training["stages"][0]["resolution"] == 64


def _official_triplane_generator_parameters() -> int:
    """TriPlaneGenerator(z 512, c 25, w 512, img_resolution 512) from NVlabs/eg3d's construction:
    MappingNetwork (embed 25->512, 2 layers 1024->512->512), SynthesisNetwork at 256 with 96 output
    channels (channel_base 32768, max 512), SuperresolutionHybrid8XDC (blocks 32->256 at 256,
    256->128 at 512) and OSGDecoder (32->64->33). A SynthesisLayer holds affine (w*in + in), weight
    (out*in*9), bias (out) and noise_strength (1); a ToRGBLayer affine, weight (c*in) and bias (c)."""
    w = 512

    def layer(i, o):
        return w * i + i + o * i * 9 + o + 1

    def torgb(i, c):
        return w * i + i + c * i + c

    ch = {r: min(32768 // r, 512) for r in (4, 8, 16, 32, 64, 128, 256)}
    synthesis = 512 * 16 + layer(512, 512) + torgb(512, 96)
    for r in (8, 16, 32, 64, 128, 256):
        synthesis += layer(ch[r // 2], ch[r]) + layer(ch[r], ch[r]) + torgb(ch[r], 96)
    mapping = (25 * 512 + 512) + (1024 * 512 + 512) + (512 * 512 + 512)
    superres = (layer(32, 256) + layer(256, 256) + torgb(256, 3)) + (layer(256, 128) + layer(128, 128) + torgb(128, 3))
    decoder = (32 * 64 + 64) + (64 * 33 + 33)
    return mapping + synthesis + superres + decoder


def test_ffhq512_generator_builds_on_cpu_with_the_official_parameter_count():
    G = build_generator(eg3d_recipe("ffhq512"))
    count = {name: sum(p.numel() for p in getattr(G, name).parameters())
             for name in ("mapper", "embedder", "decoder", "renderer", "upsampler")}
    assert count == {"mapper": 800_768, "embedder": 28_207_533, "decoder": 4_257, "renderer": 0,
                     "upsampler": 1_649_578}
    assert sum(count.values()) == _official_triplane_generator_parameters() == 30_662_136
    assert G.mapper.num_ws == 14 and math.isclose(G.embedder.box_warp, 1.0)
