"""VolumeGAN's recipes through ``build_generator``: the latent-row layout, the official totals, the
synthetic generator at every level of detail, one training step reaching every parameter, the level of
detail reaching the EMA copy, and the official-weight renames."""

import copy
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gan3d.core.generator import build_generator, build_module
from gan3d.core.interfaces import Scheduled
from gan3d.core.objective import LossInputs
from gan3d.core.recipe import Recipe
from gan3d.core.training.ema import update_ema
from gan3d.core.types import DiscriminatorInput
from gan3d.methods.volumegan.official import convert_official_state_dict, discriminator_key, generator_key
from gan3d.methods.volumegan.recipe import VARIANTS, volumegan_recipe

#: genforce/volumegan FFHQ-256, counted by building the official networks (tools/reference/volumegan_official.py).
OFFICIAL_G, OFFICIAL_D = 8_688_271, 28_875_393
WIRED = {"stochasticity_mapper": {"num_ws"}, "point_embedder": {"w_dim"}, "feature_decoder": {"in_channels", "w_dim"},
         "upsampler": {"in_channels", "w_dim"}}
#: official rows: feature volume nerf_w[:, 0], MLP layer i nerf_w[:, i], neural renderer cnn_w = wp[:, 4:].
LAYOUT = {"point_embedder": slice(0, 1), "feature_decoder": slice(0, 4), "upsampler": slice(4, 12)}


def count(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("variant", VARIANTS)
def test_recipe_round_trips_and_leaves_the_wired_options_to_the_generator(variant):
    recipe = volumegan_recipe(variant)
    assert Recipe.from_json(recipe.to_json()) == recipe
    assert recipe.method == "volumegan" and recipe.variant == variant
    for slot, wired in WIRED.items():
        assert not wired & set(recipe.modules[slot].kwargs), (slot, wired & set(recipe.modules[slot].kwargs))
    # One level-of-detail schedule for G and D (the official runner writes one lod into both).
    up, d = recipe.modules["upsampler"].kwargs, recipe.modules["discriminator"].kwargs
    for key in ("progressive", "lod_training_kimg", "lod_transition_kimg", "minibatch_repeats"):
        assert up[key] == d[key], key
    assert d["init_lod"] == math.log2(up["out_resolution"] // up["in_resolution"])
    assert d["img_resolution"] == up["out_resolution"]
    assert recipe.generator["render_resolution"] == up["in_resolution"]


@pytest.fixture(scope="module")
def ffhq256():
    """The full-size FFHQ-256 generator and discriminator, built once (37M parameters)."""
    recipe = volumegan_recipe("ffhq256")
    return build_generator(recipe), build_module(recipe, "discriminator")


def test_ffhq256_totals_and_latent_rows_equal_the_official_networks(ffhq256):
    G, D = ffhq256
    assert G.num_ws == 12  # official num_layers = 4 NeRF + 8 CNN rows
    assert G.ws_layout == LAYOUT
    assert count(G) == OFFICIAL_G and count(D) == OFFICIAL_D
    assert G.output_resolution() == 256 and G.embedder.out_channels == 95 and G.upsampler.in_channels == 512


def test_describe_prints_the_official_totals_and_rows():
    root = Path(__file__).resolve().parents[2]
    command = [sys.executable, str(root / "tools" / "run.py"), "describe", "--method", "volumegan", "--json"]
    out = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
                         cwd=root, check=True)
    info = json.loads(out.stdout)
    assert (info["variant"], info["generator_parameters"], info["discriminator_parameters"]) == (
        "ffhq256", OFFICIAL_G, OFFICIAL_D)
    rows = {row["slot"]: row for row in info["slots"]}
    # Official parts: mapping 2,101,248, feature volume 3,440,032, point MLP 796,512, neural renderer 2,350,479.
    assert [rows[s]["parameters"] for s in ("stochasticity_mapper", "point_embedder", "feature_decoder", "upsampler")] \
        == [2_101_248, 3_440_032, 796_512, 2_350_479]
    layout = [rows[s]["latent_rows"] for s in ("point_embedder", "feature_decoder", "upsampler")]
    assert layout == [[0, 1], [0, 4], [4, 12]]


def test_ffhq256_facts():
    recipe = volumegan_recipe()
    m, t = recipe.modules, recipe.training
    assert m["stochasticity_mapper"].kwargs["w_avg_beta"] == 0.995
    assert m["point_sampler"].kwargs["num_samples"] == recipe.generator["num_importance"] == 12
    assert (m["point_sampler"].kwargs["ray_start"], m["point_sampler"].kwargs["ray_end"]) == (0.8, 1.2)
    assert m["loss"].kwargs == {"r1_gamma": 10.0, "r1_interval": 16, "style_mixing_prob": 0.9, "pl_weight": 2.0,
                                "pl_interval": 4, "pl_batch_shrink": 2, "pl_decay": 0.01}
    # ImageDataset: centred square (Decode return_square, center_crop), cv2.INTER_AREA to the resolution.
    assert recipe.data == {"labels": "unused", "preprocessing": [
        {"op": "square_center_crop"}, {"op": "resize", "size": "training", "filter": "area"}]}
    assert (t["batch_size"], t["g_lr"], t["d_lr"], t["ema_kimg"], t["total_kimg"]) == (64, 0.002, 0.002, 20.0, 25000.0)


def test_rays_are_the_official_corner_aligned_grid():
    """points_sampling.py casts rays through (x, y) = linspace(-1, 1, W) x linspace(1, -1, H) at depth
    -1 / tan(fov / 2) from a camera on the unit sphere (y up, looking at the origin), samples at distances
    linspace(0.8, 1.2, 12) along the unit ray. The recipe's cameras and point sampler give the same rays."""
    recipe = volumegan_recipe().overrides(["pose_sampler.yaw_strategy=fix", "pose_sampler.polar_strategy=fix"])
    G = build_generator(recipe).eval()
    res = 5
    samples = G.point_sampler(G.pose_sampler(1), (res, res))
    tan = math.tan(math.radians(6.0))
    x, y = torch.linspace(-1, 1, res), torch.linspace(1, -1, res)
    # Camera at (0, 0, 1) (yaw = pitch = pi / 2): camera right = +x, up = +y, forward = -z in the world.
    expected = torch.stack([x.expand(res, res), y[:, None].expand(res, res), torch.full((res, res), -1 / tan)], -1)
    expected = torch.nn.functional.normalize(expected, dim=-1).reshape(1, res * res, 3)
    torch.testing.assert_close(samples.directions, expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(samples.origins, torch.tensor([0.0, 0.0, 1.0]).expand(1, res * res, 3), atol=1e-6,
                               rtol=0)
    torch.testing.assert_close(samples.depths[0, 0, :, 0], torch.linspace(0.8, 1.2, 12))


def synthetic(progressive: bool = True):
    recipe = volumegan_recipe("synthetic")
    if not progressive:
        recipe = recipe.overrides(["upsampler.progressive=false", "discriminator.progressive=false"])
    torch.manual_seed(0)
    return recipe, build_generator(recipe), build_module(recipe, "discriminator")


def test_synthetic_generator_renders_every_level_of_detail_from_cameras_looking_into_the_volume():
    """16-px feature image -> 64-px image at every level of detail; the synthetic head set's cameras look
    into the volume's box; the rows each module reads are its own."""
    recipe, G, D = synthetic()
    assert G.ws_layout == {"point_embedder": slice(0, 1), "feature_decoder": slice(0, 2), "upsampler": slice(2, 8)}
    batch = 3
    cams = G.pose_sampler(batch, generator=torch.Generator().manual_seed(0))
    samples = G.point_sampler(cams, (16, 16))
    centre = samples.points[:, 16 * 8 + 8]
    assert (centre.abs() < 0.5).all(dim=-1).any(dim=-1).all()  # the central ray crosses the head's box
    G.eval()
    z = torch.randn(batch, G.z_dim)
    with torch.no_grad():
        ws = G.mapping(z)
        images = {}
        for lod in (2.0, 1.5, 1.0, 0.0):
            G.upsampler.lod.fill_(lod)
            out = G.synthesis(ws, cams)
            assert out.image.shape == (batch, 3, 64, 64) and torch.isfinite(out.image).all()
            assert out.depth.shape == (batch, 1, 16, 16)
            D.lod.fill_(lod)
            assert D(DiscriminatorInput(out.image)).logits.shape == (batch, 1)
            images[lod] = out.image
        # At lod 2 the output is the 16-px raw image, nearest-upsampled 4x.
        torch.testing.assert_close(images[2.0], out.image_raw.repeat_interleave(4, 2).repeat_interleave(4, 3))
        # The renderer's rows alone change the image, not the depth: rows 2.. are the upsampler's.
        other = ws.clone()
        other[:, 2:] = G.mapping(torch.randn(batch, G.z_dim))[:, 2:]
        mixed = G.synthesis(other, cams)
    torch.testing.assert_close(mixed.depth, out.depth)
    assert not torch.allclose(mixed.image, out.image)


def test_one_training_step_reaches_every_parameter():
    """Fully grown (lod 0), the generator loss and the path-length pass give every generator parameter a
    gradient, and the discriminator loss with R1 every discriminator parameter except the lower-resolution
    fromRGB entries, which only a coarser level of detail reads (the 4-px one never: tested with the
    discriminator)."""
    recipe, G, D = synthetic(progressive=False)
    loss = build_module(recipe, "loss")
    G.train()
    inputs = LossInputs(real_images=torch.rand(4, 3, 64, 64) * 2 - 1, real_labels=torch.zeros(4, 25),
                        z=torch.randn(4, G.z_dim), gen_cameras=G.pose_sampler(4), resolution=16,
                        image_resolution=G.output_resolution(), generator=torch.Generator().manual_seed(0))
    g_terms = loss.generator_loss(G, D, inputs)
    g_terms["loss"].backward()
    loss.generator_regularizer(G, inputs)["loss"].backward()
    missing = [n for n, p in G.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, missing
    G.requires_grad_(False)
    d_terms = loss.discriminator_loss(G, D, inputs)
    (d_terms["loss"] + loss.discriminator_regularizer(D, inputs)["loss"]).backward()
    missing = {n for n, p in D.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0}
    assert missing == {f"fromrgb{r}.{p}" for r in (32, 16, 8, 4) for p in ("weight", "bias")}
    assert float(loss.path_length.mean_path_length) > 0


def test_the_path_length_penalty_alone_trains_the_mapping_network():
    """The gradient is taken with respect to the mapped latents, not detached copies (official
    compute_pl_penalty, StyleGAN2-ADA's Gpl): the penalty alone reaches the mapping network's weights."""
    recipe, G, _ = synthetic(progressive=False)
    loss = build_module(recipe, "loss")
    G.train()
    inputs = LossInputs(real_images=torch.zeros(4, 3, 64, 64), real_labels=torch.zeros(4, 25),
                        z=torch.randn(4, G.z_dim), resolution=16, image_resolution=G.output_resolution(),
                        generator=torch.Generator().manual_seed(0))
    terms = loss.generator_regularizer(G, inputs)
    terms["loss"].backward()
    mapping = [p.grad for n, p in G.named_parameters() if n.startswith("mapper.")]
    assert mapping and all(g is not None and g.abs().sum() > 0 for g in mapping)


def test_the_level_of_detail_follows_the_schedule_in_g_d_and_the_ema_copy():
    """The trainer calls set_training_step(step, kimg) on G, G_ema, D and the loss each step and the EMA
    copies buffers: the three levels stay equal (synthetic: 250 + 250 images per octave, 4-step cadence)."""
    recipe, G, D = synthetic()
    G_ema = copy.deepcopy(G).eval()
    loss = build_module(recipe, "loss")
    batch, resets = 8, []
    for step in range(0, 130):
        kimg = step * batch / 1000
        for module in (G, G_ema, D, loss):
            for m in module.modules():
                if isinstance(m, Scheduled):
                    m.set_training_step(step, kimg)
        resets.append(loss.reset_optimizers_now(G, D, step, kimg))
        assert float(G.upsampler.lod) == float(D.lod) == float(G_ema.upsampler.lod)
        update_ema(G_ema, G, 0.9)
        assert float(G_ema.upsampler.lod) == float(G.upsampler.lod)
    # kimg 0.25 (step 31.25 -> first update at step 32): lod leaves 2; 0.5 (step 63 -> 64): reaches 1 ...
    assert [s for s, r in enumerate(resets) if r] == [0, 32, 64, 96, 128]
    assert float(D.lod) == 0.0


def _official_generator_names():
    """The official FFHQ-256 generator's state-dict names (VolumeGANGenerator.__init__ at the config)."""
    names = ["w_avg", "nerfmlp.fv.const", "nerfmlp.fv.mapping_network.weight", "nerfmlp.fv.mapping_network.bias",
             "synthesis.lod", "synthesis.filter"]
    names += [f"mapping.dense{i}.{p}" for i in range(8) for p in ("weight", "bias")]
    names += [f"nerfmlp.fv.layer{i}.{p}" for i in range(4) for p in ("weight", "bias")]
    names += [f"nerfmlp.fg_mlps.{i}.{p}" for i in range(4) for p in ("style.weight", "style.bias", "weight", "bias")]
    names += [f"nerfmlp.fg_{h}.{p}" for h in ("density", "color") for p in ("weight", "bias")]
    conv = ("style.weight", "style.bias", "weight", "bias", "noise_strength", "noise")
    for b in (1, 2, 3):
        names += [f"synthesis.layer{2 * b - 1}.{p}" for p in (*conv, "filter")]
        names += [f"synthesis.layer{2 * b}.{p}" for p in conv]
        names += [f"synthesis.output{b}.{p}" for p in ("style.weight", "style.bias", "weight", "bias")]
    return names


def _official_discriminator_names():
    names = ["lod", "output.weight", "output.bias"]
    names += [f"input{i}.{p}" for i in range(7) for p in ("weight", "bias")]
    for i in range(6):
        names += [f"layer{2 * i}.weight", f"layer{2 * i}.bias", f"layer{2 * i + 1}.weight",
                  f"layer{2 * i + 1}.bias", f"layer{2 * i + 1}.filter", f"residual{i}.weight", f"residual{i}.filter"]
    names += ["layer12.weight", "layer12.bias", "layer13.weight", "layer13.bias"]
    return names


def test_official_names_map_one_to_one_onto_every_tensor_of_ours(ffhq256):
    G, D = ffhq256
    prefixes = G.slot_prefixes()
    ours = {slot: {k[len(prefixes[slot]):]: v for k, v in G.state_dict().items() if k.startswith(prefixes[slot])}
            for slot in ("stochasticity_mapper", "point_embedder", "feature_decoder", "upsampler")}
    ours["discriminator"] = D.state_dict()
    # An official-named state dict holding our tensors (noise buffers in the official [1, 1, r, r] shape).
    official_g, official_d = {}, {}
    for name in _official_generator_names():
        target = generator_key(name)
        if target is not None:
            value = ours[target[0]][target[1]]
            official_g[name] = value.reshape(1, 1, *value.shape) if name.endswith(".noise") else value
    for name in _official_discriminator_names():
        target = discriminator_key(name)
        if target is not None:
            official_d[name] = ours["discriminator"][target]
    converted = convert_official_state_dict(official_g, official_d)
    for slot, state in ours.items():
        rebuilt = {k for k in state if k.endswith("resample_filter")}
        assert set(converted[slot]) == set(state) - rebuilt, slot
    with pytest.raises(KeyError, match="unknown official VolumeGAN generator"):
        generator_key("nerfmlp.bg_mlps.0.weight")
    with pytest.raises(KeyError, match="unknown official VolumeGAN discriminator"):
        discriminator_key("embedding.weight")
