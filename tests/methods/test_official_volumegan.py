"""genforce/volumegan's runner checkpoints ({'models': {generator, discriminator, generator_smooth},
'model_kwargs_init', ...}) import, and the imported generator renders the official images, feature
images and depths from the recipe's own cameras, at two levels of detail.

The fixture (tests/fixtures/official/volumegan, made by tools/fixtures/make_volumegan_fixture.py from
genforce/volumegan at the commit in its fixture.json) is a reduced-size VolumeGAN with the official
inference outputs (``generator_smooth``, eval, constant noise, no jitter, deterministic fine-sample
quantiles).

Tolerance: 10 x the fixture's ``rounding_sensitivity``, how far the *official* outputs move when its
sample points move by float32 rounding (image ~1.2e-6 over values up to 2.3, depth ~5e-7, opacity
~6e-7, features ~1.8e-6). gan3d computes the same functions in another order (PyTorch's
``grid_sample`` for the official hand-written trilinear lookup, NVIDIA's StyleGAN2 layers for genforce's,
its own compositing), which moves them by up to about 4 times that (measured: image 4.2e-6, depth
2.1e-6, opacity 2.5e-6, features 3.8e-6); a wrong convention moves them by orders of magnitude more
(:func:`test_each_convention_matters`).
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
from gan3d.methods.volumegan.official import VolumeGANImporter, recipe_from_kwargs
from gan3d.samplers.spherical_pose_sampler import SphericalPoseSampler

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "official" / "volumegan"
EXPECTED = torch.load(FIXTURE / "expected.pt", weights_only=True)
INFO = json.loads((FIXTURE / "fixture.json").read_text())


@pytest.fixture(scope="module")
def official_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("volumegan") / "checkpoint.pth"
    path.write_bytes(lzma.decompress((FIXTURE / "checkpoint.pth.xz").read_bytes()))
    return path


@pytest.fixture(scope="module")
def checkpoint(official_file) -> Path:
    return write_imported_checkpoint(VolumeGANImporter().load(official_file), official_file.with_name("vg.pt"))


def recipe_cameras(recipe, yaw_sign: float = -1.0) -> Cameras:
    """The recipe's pose sampler fixed at each official (yaw, pitch): VolumeGAN's camera sits at
    ``r (sin p cos y, cos p, sin p sin y)`` (points_sampling.py sample_cam_positions), gan3d's (EG3D's
    convention) at ``r (-sin p cos y, cos p, sin p sin y)``: its yaw y is our pi - y."""
    options = dict(recipe.modules["pose_sampler"].kwargs)
    cams = []
    for yaw, pitch in EXPECTED["cameras"].tolist():
        our_yaw = math.pi - yaw if yaw_sign < 0 else yaw
        options.update(yaw_strategy="fix", yaw_mean=our_yaw, polar_strategy="fix", polar_mean=pitch)
        cams.append(SphericalPoseSampler(**options)(1))
    return Cameras(torch.cat([c.cam2world for c in cams]), torch.cat([c.intrinsics for c in cams]))


def render(checkpoint: Path, *, lod: float = 0.0, yaw_sign: float = -1.0, **sampler_options) -> dict[str, torch.Tensor]:
    G, recipe = load_generator(checkpoint)
    G.eval()
    for key, value in sampler_options.items():
        setattr(G.point_sampler, key, value)
    G.upsampler.lod.fill_(lod)
    with torch.no_grad():
        out = G(EXPECTED["z"], recipe_cameras(recipe, yaw_sign))
    return {f"image_lod{lod:g}": out.image, "features": out.features, "depth": out.depth, "alpha": out.alpha,
            "image_raw": out.image_raw}


def tolerance(key: str) -> float:
    return 10 * INFO["rounding_sensitivity"][key]


def test_import_reads_the_networks_from_model_kwargs_init(official_file):
    imported = VolumeGANImporter().load(official_file)
    m, g = imported.recipe.modules, imported.recipe.generator
    assert imported.recipe.method == "volumegan" and imported.recipe.variant == "ffhq256"
    assert (g["render_resolution"], g["num_importance"]) == (16, 12)
    assert m["stochasticity_mapper"].kwargs | {"z_dim": 32, "w_dim": 512, "num_layers": 2, "layer_features": 32} \
        == m["stochasticity_mapper"].kwargs
    emb = m["point_embedder"].kwargs
    assert (emb["feat_res"], emb["init_res"], emb["base_channels"], emb["output_channels"], emb["num_frequencies"]) \
        == (8, 4, 16, 8, 4)
    assert (m["feature_decoder"].kwargs["hidden_dim"], m["feature_decoder"].kwargs["num_layers"],
            m["feature_decoder"].kwargs["output_dim"]) == (32, 2, 32)
    up = m["upsampler"].kwargs
    assert (up["in_resolution"], up["out_resolution"], up["channel_base"], up["conv_clamp"]) == (16, 64, 512, 256.0)
    d = m["discriminator"].kwargs
    assert (d["img_resolution"], d["channel_base"], d["init_lod"], d["mbstd_group_size"]) == (64, 512, 2.0, 4)
    assert (m["pose_sampler"].kwargs["fov"], m["point_sampler"].kwargs["align_corners"]) == (12.0, True)
    # generator and generator_smooth differ: inference renders the moving average.
    assert not torch.equal(imported.G["upsampler.b32.torgb.bias"], imported.G_ema["upsampler.b32.torgb.bias"])
    assert imported.meta["seen_img"] == 25_000_000 and imported.meta["lod"] == 0.0


@pytest.mark.parametrize("lod", [0.0, 0.5])
def test_images_equal_the_official_forward_from_the_recipes_cameras(checkpoint, lod):
    out = render(checkpoint, lod=lod)
    keys = [f"image_lod{lod:g}"] + (["features", "depth", "alpha"] if lod == 0.0 else [])
    for key in keys:
        diff = (out[key] - EXPECTED[key]).abs().max().item()
        assert diff < tolerance(key), f"{key}: max abs difference {diff:.3g} > {tolerance(key):.3g}"
    # The raw image is the feature image's first three channels (SynthesisNetwork: x[:, :3]).
    torch.testing.assert_close(out["image_raw"], out["features"][:, :3])


@pytest.mark.parametrize(("change", "key"), [({"yaw_sign": 1.0}, "depth"),
                                             ({"importance_pdf": "nerf"}, "depth"),
                                             ({"align_corners": False}, "features")])
def test_each_convention_matters(checkpoint, change, key):
    """VolumeGAN's yaw, its importance PDF (pi-GAN's: weights + 1e-5 and searchsorted's left side) and the
    corner-aligned ray grid each move the outputs far beyond the tolerance when changed."""
    out = render(checkpoint, **change)
    assert (out[key] - EXPECTED[key]).abs().max() > 100 * INFO["rounding_sensitivity"][key]


def test_discriminator_scores_equal_the_official(checkpoint):
    state = load_checkpoint(checkpoint)
    D = build_module(recipe_of(state), "discriminator")
    D.load_state_dict(state["D"])
    D.eval()
    with torch.no_grad():
        logits = D(DiscriminatorInput(EXPECTED["image_lod0"])).logits
        D.lod.fill_(0.5)
        faded = D(DiscriminatorInput(EXPECTED["image_lod0"])).logits
    # 1e-5 of the largest logit (~8), as for the other methods' discriminators: the convolution algorithm,
    # which the thread count picks, rounds differently.
    for ours, key in ((logits, "d_logits"), (faded, "d_logits_lod0.5")):
        torch.testing.assert_close(ours, EXPECTED[key], atol=1e-5 * float(EXPECTED[key].abs().max()), rtol=0)


def test_unsupported_official_options_and_other_files_are_refused(tmp_path):
    kwargs = dict(INFO["generator_kwargs"])
    for change, message in (({"label_size": 10}, "conditional"), ({"bg_cfg": {"num_layers": 2}}, "background"),
                            ({"embed_cfg": {"input_dim": 3, "max_freq_log2": 9, "N_freqs": 4}}, "positional"),
                            ({"ps_cfg": {**kwargs["ps_cfg"], "camera_dist": "hybrid"}}, "camera_dist")):
        with pytest.raises(CheckpointError, match=message):
            recipe_from_kwargs({**kwargs, **change}, INFO["discriminator_kwargs"])
    with pytest.raises(CheckpointError, match="architecture"):
        recipe_from_kwargs(kwargs, {**INFO["discriminator_kwargs"], "architecture": "skip"})
    other = tmp_path / "other.pth"
    torch.save({"g_ema": {"w": torch.zeros(1)}}, other)
    with pytest.raises(CheckpointError, match="not a VolumeGAN runner checkpoint"):
        VolumeGANImporter().load(other)
    bare = tmp_path / "bare.pth"
    torch.save({"models": {"generator_smooth": {"w_avg": torch.zeros(4)}}}, bare)
    with pytest.raises(CheckpointError, match="model_kwargs_init"):
        VolumeGANImporter().load(bare)
