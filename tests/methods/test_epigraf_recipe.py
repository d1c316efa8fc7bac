"""EpiGRAF's recipes: the released configurations as data (R1 choice, schedules, data), the published totals
as Generator v2 builds them, and training steps of the synthetic variant through the trainer."""

import json
import math

import pytest
import torch

from gan3d.core.data import make_synthetic_dataset, open_training_dataset
from gan3d.core.data.epigraf_labels import epigraf_focal
from gan3d.core.generator import build_generator, build_module
from gan3d.core.recipe import Recipe
from gan3d.core.training import Trainer
from gan3d.methods.epigraf.recipe import VARIANTS, epigraf_recipe

OFFICIAL_G, OFFICIAL_D = 28_983_507, {"ffhq512": 27_490_816, "cats256": 27_444_480}


@pytest.mark.parametrize("variant", [*VARIANTS, "synthetic"])
def test_recipes_round_trip_and_leave_wired_options_out(variant):
    recipe = epigraf_recipe(variant)
    assert Recipe.from_json(recipe.to_json()) == recipe and recipe.variant == variant
    assert "num_ws" not in recipe.modules["stochasticity_mapper"].kwargs
    assert "w_dim" not in recipe.modules["point_embedder"].kwargs
    assert "in_channels" not in recipe.modules["feature_decoder"].kwargs


def test_released_facts():
    ffhq, cats = epigraf_recipe(), epigraf_recipe("cats256")
    assert ffhq.modules["loss"].kwargs["r1_gamma"] == 0.1 and cats.modules["loss"].kwargs["r1_gamma"] == 0.05
    assert ffhq.modules["loss"].kwargs["min_scale"] == 0.125 and cats.modules["loss"].kwargs["min_scale"] == 0.25
    assert ffhq.training["ema_kimg"] == 20.0 and ffhq.training["batch_size"] == 64
    assert ffhq.modules["point_embedder"].kwargs["resolution"] == 512
    assert cats.modules["point_embedder"].kwargs["resolution"] == 512  # the tri-plane stays 512 (model config)
    assert ffhq.modules["point_embedder"].kwargs["box_warp"] == pytest.approx(0.4)
    assert ffhq.generator["num_importance"] == 48 and ffhq.generator["render_resolution"] == 512
    assert ffhq.modules["volume_renderer"].kwargs["noise_anneal_kimg"] == 5000.0
    assert ffhq.modules["point_sampler"].kwargs["importance_pdf"] == "pigan"  # weights + 2e-5, searchsorted left
    assert ffhq.data["label_format"] == "epigraf" and ffhq.data["labels"] == "required"
    assert ffhq.data["label_options"] == {"fov": 12.0, "radius": 1.0, "resolution": 512}
    assert cats.data["label_options"]["resolution"] == 256
    rig = build_module(ffhq, "pose_sampler").camera_rig()  # no data bound: EpiGRAF's front camera
    assert (rig.radius, rig.pivot) == (1.0, (0.0, 0.0, 0.0)) and rig.focal == pytest.approx(epigraf_focal(12, 512))
    with pytest.raises(ValueError, match="variants"):
        epigraf_recipe("plants256")


def test_published_configuration_totals():
    # The generator is the same for FFHQ and Cats (tri-plane 512 for every data set).
    cats = epigraf_recipe("cats256")
    assert cats.modules["point_embedder"].kwargs == epigraf_recipe("ffhq512").modules["point_embedder"].kwargs
    G = build_generator(epigraf_recipe("ffhq512"))
    assert G.mapper.num_ws == 16 and G.ws_layout["point_embedder"] == slice(0, 16)
    assert G.ws_layout["feature_decoder"] == slice(16, 16)  # the MLP reads no rows
    assert sum(p.numel() for p in G.parameters()) == OFFICIAL_G
    for variant, count in OFFICIAL_D.items():  # Cats 256: two size-keeping D blocks instead of 3
        D = build_module(epigraf_recipe(variant), "discriminator")
        assert sum(p.numel() for p in D.parameters()) == count, variant


@pytest.fixture(scope="module")
def head_set(tmp_path_factory):
    return make_synthetic_dataset(tmp_path_factory.mktemp("data") / "head", preset="head", num_images=8,
                                  resolution=32, seed=0)


#: The synthetic recipe at test size (32-px set, 8-px patches), lazy R1 every 2 steps.
SMALL = ["generator.render_resolution=32", "point_sampler.num_samples=4", "generator.num_importance=4",
         "point_embedder.resolution=16", "discriminator.patch_resolution=8", "discriminator.image_resolution=32",
         "loss.patch_size=8", "loss.image_resolution=32", "loss.min_scale=0.25", "loss.r1_interval=2",
         "training.batch_size=4"]


def test_synthetic_variant_trains_through_the_trainer(head_set, tmp_path):
    recipe = epigraf_recipe("synthetic").overrides(SMALL)
    data = open_training_dataset(head_set, recipe.data, resolution=32, xflip=True, method="epigraf")
    trainer = Trainer(recipe, data, tmp_path / "job", progress=False, tensorboard=False)
    before = {n: p.detach().clone() for n, p in trainer.G.named_parameters()}
    logs = [trainer.train_step() for _ in range(2)]
    assert "r1" in logs[0] and "r1" not in logs[1] and all(math.isfinite(v) for v in logs[0].values())
    unchanged = [n for n, p in trainer.G.named_parameters() if torch.equal(p.detach(), before[n])]
    assert not unchanged, unchanged
    # The density noise follows the kimg schedule (1 -> 0 over the run's first kimg here).
    assert trainer.G.renderer.current_noise_std == pytest.approx(1.0 - 0.004 / 1.0)
    with torch.no_grad():
        full = trainer.G_ema(torch.randn(1, trainer.G.z_dim))  # whole images at the render resolution
    assert full.image.shape == (1, 3, 32, 32)


def test_epigraf_dataset_json_trains(tmp_path):
    """A set in EpiGRAF's format (images + dataset.json camera_angles) opens with the recipe's data section and its
    labels are EpiGRAF's cameras at the recipe's resolution, mirrored by yaw -> -yaw."""
    import numpy as np
    from PIL import Image

    root = tmp_path / "ffhq_32_posed"
    root.mkdir()
    angles = {}
    for i in range(4):
        Image.fromarray(np.full((40, 40, 3), 60 * i, np.uint8)).save(root / f"{i:05d}.png")
        angles[f"{i:05d}.jpg"] = [0.1 * i - 0.15, 1.5 + 0.02 * i, 0.0]
    (root / "dataset.json").write_text(json.dumps({"camera_angles": angles, "labels": None}))
    recipe = epigraf_recipe("synthetic").overrides(["data.label_format=epigraf"])
    recipe.data["label_options"] = {"fov": 12.0, "radius": 1.0, "resolution": 32}
    data = open_training_dataset(root, recipe.data, resolution=32, xflip=True, method="epigraf")
    assert len(data) == 8 and data[0].image.shape == (3, 32, 32)
    from gan3d.core.types import Cameras
    from gan3d.methods.epigraf.camera_angles import epigraf_cameras

    rows = torch.tensor([angles[f"{i:05d}.jpg"] for i in range(4)])
    torch.testing.assert_close(data.labels[:4], epigraf_cameras(rows, image_resolution=32).label)
    flipped = rows * torch.tensor([-1.0, 1.0, 1.0])
    torch.testing.assert_close(Cameras.from_label(data.labels[4:]).cam2world,
                               epigraf_cameras(flipped, image_resolution=32).cam2world, atol=1e-6, rtol=0)
