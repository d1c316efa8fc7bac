"""VolumeGAN's recipes (written to the Generator v2 contract) and the official-weight renames.

Until the v2 generator wires slots, ``wire`` below hands each module what the generator will: the
mapper's ``w_dim`` to the others, the embedder's ``out_channels`` to the decoder, the decoder's to the
upsampler, and the total of the latent rows to the mapper.
"""

import math

import pytest
import torch

from gan3d.core.generator import feature_image
from gan3d.core.recipe import Recipe
from gan3d.core.registry import get_registry
from gan3d.methods.volumegan.official import convert_official_state_dict, discriminator_key, generator_key
from gan3d.methods.volumegan.recipe import VARIANTS, pinhole_focal_of_corner_grid, volumegan_recipe

#: genforce/volumegan FFHQ-256, counted by building the official networks (tools/reference/volumegan_official.py).
OFFICIAL_G, OFFICIAL_D = 8_688_271, 28_875_393
GENERATOR_SLOTS = ("stochasticity_mapper", "point_embedder", "feature_decoder", "upsampler")
WIRED = {"stochasticity_mapper": {"num_ws"}, "point_embedder": {"w_dim"}, "feature_decoder": {"in_channels", "w_dim"},
         "upsampler": {"in_channels", "w_dim"}}


def wire(recipe: Recipe) -> dict[str, torch.nn.Module]:
    """Build the recipe's generator modules with the values the v2 generator wires."""
    reg = get_registry()
    spec = recipe.modules
    w_dim = spec["stochasticity_mapper"].kwargs["w_dim"]
    embedder = reg.build("point_embedder", "volume", **spec["point_embedder"].kwargs, w_dim=w_dim)
    decoder = reg.build("feature_decoder", spec["feature_decoder"].name, **spec["feature_decoder"].kwargs,
                        in_channels=embedder.out_channels, w_dim=w_dim)
    upsampler = reg.build("upsampler", spec["upsampler"].name, **spec["upsampler"].kwargs,
                          in_channels=decoder.out_channels, w_dim=w_dim)
    num_ws = embedder.num_ws + decoder.num_ws - decoder.ws_from_previous + upsampler.num_ws
    mapper = reg.build("stochasticity_mapper", "stylegan2", **spec["stochasticity_mapper"].kwargs, num_ws=num_ws)
    return {"stochasticity_mapper": mapper, "point_embedder": embedder, "feature_decoder": decoder,
            "upsampler": upsampler}


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
def ffhq256_modules():
    """The full-size FFHQ-256 generator modules and discriminator, built once (37M parameters)."""
    recipe = volumegan_recipe("ffhq256")
    modules = wire(recipe)
    spec = recipe.modules["discriminator"]
    modules["discriminator"] = get_registry().build("discriminator", spec.name, **spec.kwargs)
    return modules


def test_ffhq256_totals_equal_the_official_networks(ffhq256_modules):
    modules = dict(ffhq256_modules)
    assert modules["stochasticity_mapper"].num_ws == 12  # official num_layers = 4 NeRF + 8 CNN rows
    assert count(modules.pop("discriminator")) == OFFICIAL_D
    assert sum(count(m) for m in modules.values()) == OFFICIAL_G


def test_ffhq256_facts():
    recipe = volumegan_recipe()
    m, t = recipe.modules, recipe.training
    assert m["stochasticity_mapper"].kwargs["w_avg_beta"] == 0.995
    assert m["point_sampler"].kwargs["num_samples"] == recipe.generator["num_importance"] == 12
    assert (m["point_sampler"].kwargs["ray_start"], m["point_sampler"].kwargs["ray_end"]) == (0.8, 1.2)
    assert m["loss"].kwargs == {"r1_gamma": 10.0, "r1_interval": 16, "style_mixing_prob": 0.9, "pl_weight": 2.0,
                                "pl_interval": 4, "pl_batch_shrink": 2, "pl_decay": 0.01}
    assert (t["batch_size"], t["g_lr"], t["d_lr"], t["ema_kimg"], t["total_kimg"]) == (64, 0.002, 0.002, 20.0, 25000.0)


def test_corner_grid_focal_reproduces_the_official_ray_directions():
    """points_sampling.py casts rays through linspace(-1, 1, W) at depth 1 / tan(fov / 2); a pinhole with
    the derived focal sends its pixel-centre rays through the same points."""
    from gan3d.core.cameras import focal_to_intrinsics, pixel_rays

    for res, fov in ((32, 12.0), (64, 30.0)):
        focal = pinhole_focal_of_corner_grid(fov, res)
        _, dirs = pixel_rays(torch.eye(4).unsqueeze(0), focal_to_intrinsics(focal), (res, res))
        dirs = dirs.reshape(res, res, 3)
        tan = math.tan(math.radians(fov) / 2)
        grid = torch.linspace(-1, 1, res) * tan
        # OpenCV camera: x right, y down, z forward; the direction over z is the image-plane coordinate.
        torch.testing.assert_close(dirs[0, :, 0] / dirs[0, :, 2], grid, atol=1e-5, rtol=0)
        torch.testing.assert_close(dirs[:, 0, 1] / dirs[:, 0, 2], grid, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="resolution >= 2"):
        pinhole_focal_of_corner_grid(12.0, 1)


def test_synthetic_modules_compose_from_rays_to_discriminator_logits():
    """The synthetic recipe's modules chained by hand as the generator chains them: 16-px feature image ->
    64-px image at every level of detail, with the synthetic head set's cameras looking into the volume."""
    torch.manual_seed(0)
    recipe = volumegan_recipe("synthetic")
    reg = get_registry()
    modules = wire(recipe)
    poses = reg.build("pose_sampler", recipe.modules["pose_sampler"].name, **recipe.modules["pose_sampler"].kwargs)
    points = reg.build("point_sampler", recipe.modules["point_sampler"].name,
                       **recipe.modules["point_sampler"].kwargs)
    renderer = reg.build("volume_renderer", recipe.modules["volume_renderer"].name,
                         **recipe.modules["volume_renderer"].kwargs)
    spec = recipe.modules["discriminator"]
    disc = reg.build("discriminator", spec.name, **spec.kwargs)
    res = recipe.generator["render_resolution"]
    batch = 4
    ws = modules["stochasticity_mapper"](torch.randn(batch, modules["stochasticity_mapper"].z_dim))
    rows = {"point_embedder": ws[:, :1], "feature_decoder": ws[:, :2], "upsampler": ws[:, 2:]}
    samples = points(poses(batch, generator=torch.Generator().manual_seed(0)), (res, res))
    # The cameras look at the head's box: the central ray passes within the volume bounds.
    centre = samples.points[:, res * (res // 2) + res // 2]
    assert (centre.abs() < 0.5).all(dim=-1).any(dim=-1).all()
    volume = modules["point_embedder"].scene(rows["point_embedder"])
    field = modules["feature_decoder"](modules["point_embedder"](samples.points, volume),
                                       samples.sample_directions, rows["feature_decoder"])
    features = feature_image(renderer(field, samples).features, res)
    assert features.shape == (batch, recipe.modules["feature_decoder"].kwargs["output_dim"], res, res)
    for lod in (2.0, 1.5, 0.0):
        image = modules["upsampler"](features, rows["upsampler"], lod=lod)
        assert image.shape == (batch, 3, 64, 64) and torch.isfinite(image).all()
        disc.lod.fill_(lod)
        assert disc(image).logits.shape == (batch, 1)


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


def test_official_names_map_one_to_one_onto_every_tensor_of_ours(ffhq256_modules):
    modules = ffhq256_modules
    ours = {slot: m.state_dict() for slot, m in modules.items()}
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
    for slot, module in modules.items():
        rebuilt = {k for k in ours[slot] if k.endswith("resample_filter")}
        assert set(converted[slot]) == set(ours[slot]) - rebuilt, slot
        module.load_state_dict(converted[slot], strict=False)
    with pytest.raises(KeyError, match="unknown official VolumeGAN generator"):
        generator_key("nerfmlp.bg_mlps.0.weight")
    with pytest.raises(KeyError, match="unknown official VolumeGAN discriminator"):
        discriminator_key("embedding.weight")
