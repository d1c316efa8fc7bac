"""Every first-party method end to end on each device named in ``GAN3D_TEST_DEVICES``.

``GAN3D_TEST_DEVICES`` is a comma-separated list of torch devices (default ``cpu``); a device this
machine does not have is skipped with the reason. On a GPU machine::

    GAN3D_TEST_DEVICES=cpu,cuda python -m pytest tests/test_devices.py -q -rs

Per device and method (the methods the registry offers from gan3d's own distributions): the
generator and discriminator built on the device, a forward pass with sampled cameras, one generator
and one discriminator pass of the method's objective with every trainable parameter receiving a
finite gradient on the device; ``Trainer.train_step`` with the lazy regularizers firing and not
firing, sample grids, a checkpoint and a resume (weights, optimizer state and RNG states back on the
device). For two methods, the evaluators that need no downloaded weights (RE, and DE/PE with an
estimator trained here) and the visualizers (image grid, orbit video, mesh). Finally the command
line: ``train --device``, ``--resume``, ``infer`` and ``eval`` on the checkpoint.

The configurations are the ``synthetic`` variants shrunk by the recipes of ``tests/methods`` (16-px
renders, batch 2), so the CPU run stays cheap; it is what shows the harness itself works.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import cv2
import imageio
import pytest
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "methods"))
# The tiny recipes and the CLI helpers of the method and CLI tests, so the sizes are defined once.
import test_cli  # noqa: E402
from test_ablation3d_recipe import tiny as tiny_ablation3d  # noqa: E402
from test_cli import TINY_PIGAN, run  # noqa: E402
from test_eg3d_objective import tiny_eg3d_recipe  # noqa: E402
from test_gram import tiny_recipe as tiny_gram_recipe  # noqa: E402
from test_pigan_recipe import tiny_pigan_recipe  # noqa: E402
from test_stylesdf_recipe import TINY_VOLUME  # noqa: E402

from gan3d.core.catalogue import FIRST_PARTY  # noqa: E402
from gan3d.core.checkpoint import load_checkpoint  # noqa: E402
from gan3d.core.data import EG3DDataset  # noqa: E402
from gan3d.core.generator import build_generator, build_module  # noqa: E402
from gan3d.core.objective import LossInputs  # noqa: E402
from gan3d.core.recipe import Recipe  # noqa: E402
from gan3d.core.registry import get_registry  # noqa: E402
from gan3d.core.trainer import Trainer  # noqa: E402
from gan3d.core.types import SceneLatent  # noqa: E402
from gan3d.evaluators.metrics.estimators import save_depth_pose_net, train_depth_pose_net  # noqa: E402
from gan3d.evaluators.visualizers import read_ply  # noqa: E402
from gan3d.evaluators.visualizers.field_volume import generator_cube, sample_field_volume  # noqa: E402
from gan3d.methods.epigraf.recipe import epigraf_recipe  # noqa: E402
from gan3d.methods.giraffe.recipe import giraffe_recipe  # noqa: E402
from gan3d.methods.graf.recipe import graf_recipe  # noqa: E402
from gan3d.methods.stylenerf.recipe import stylenerf_recipe  # noqa: E402
from gan3d.methods.stylesdf.recipe import stylesdf_recipe  # noqa: E402
from gan3d.methods.volumegan.recipe import volumegan_recipe  # noqa: E402

#: The CLI tests' module-scoped fixture: the synthetic head set, 8 views at 16 px (with depth).
tiny_dataset = test_cli.tiny_dataset

DEVICES_ENV = "GAN3D_TEST_DEVICES"
RENDER = 16  # volume-rendering side of every recipe here
BATCH = 2


# ----------------------------------------------------------------------------- devices
def _unavailable(name: str) -> str | None:
    """Why device ``name`` cannot be tested on this machine, or ``None`` when it can."""
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError) as error:
        return f"{DEVICES_ENV} names {name!r}, which is not a torch device ({error})"
    if device.type == "cpu":
        return None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            return (f"{DEVICES_ENV} asks for {name!r} but CUDA is not available here (torch {torch.__version__}, "
                    f"built with CUDA {torch.version.cuda or 'none'})")
        if device.index is not None and device.index >= torch.cuda.device_count():
            return f"{DEVICES_ENV} asks for {name!r} but this machine has {torch.cuda.device_count()} CUDA device(s)"
    try:
        torch.zeros(1, device=device)
    except (RuntimeError, AssertionError) as error:
        return f"{DEVICES_ENV} asks for {name!r}, which cannot hold a tensor here ({error})"
    return None


def _device_params() -> list:
    names = list(dict.fromkeys(n.strip() for n in os.environ.get(DEVICES_ENV, "cpu").split(",") if n.strip()))
    params = []
    for name in names or ["cpu"]:
        reason = _unavailable(name)
        params.append(pytest.param(name, id=name, marks=[pytest.mark.skip(reason=reason)] if reason else []))
    return params


DEVICES = _device_params()


def same_device(tensor: torch.Tensor, device: str) -> bool:
    """``tensor`` lives on ``device`` (``'cuda'`` matches the current CUDA device)."""
    want = torch.device(device)
    if want.type == "cuda" and want.index is None:
        want = torch.device("cuda", torch.cuda.current_device())
    return tensor.device == want


# ----------------------------------------------------------------------------- methods
def first_party_methods() -> list[str]:
    """The methods the registry offers from gan3d's own distributions (not third-party plugins)."""
    ours = {dist for names in FIRST_PARTY.values() for dist in names.values()}
    return [entry.name for entry in get_registry().entries("method") if entry.distribution in ours]


METHODS = first_party_methods()
TINY = [f"generator.render_resolution={RENDER}", f"training.batch_size={BATCH}"]


def _pigan() -> Recipe:
    # Four discriminator levels take 16-px images; no resolution stage (the render side is fixed).
    return tiny_pigan_recipe("synthetic").overrides(["discriminator.channels=[8, 8, 12, 12]", "training.stages=[]"])


#: Lazy R1 and density regularization every 2 steps, so two steps show both firing and resting; a
#: 7-tap discriminator blur (sigma 1) instead of 61 taps at 128 px.
EG3D_LOSS = ["loss.r1_interval=2", "loss.density_reg_every=2", "loss.blur_init_sigma=1.0"]


def _eg3d() -> Recipe:
    return tiny_eg3d_recipe().overrides(EG3D_LOSS)


def _ablation3d() -> Recipe:
    return tiny_ablation3d("triplane", "eg3d").overrides([
        "point_embedder.base_options.resolution=16", "stochasticity_mapper.num_ws=6", *EG3D_LOSS])


def _stylesdf() -> Recipe:
    # Four discriminator levels for 16-px images; a 3-step sphere fit (its device path) before training.
    return stylesdf_recipe("synthetic").overrides(
        [o for o in TINY_VOLUME if not o.startswith("loss.sphere_init_steps")]
        + ["discriminator.channels=[8, 8, 8, 8]", "loss.sphere_init_steps=3", "loss.sphere_init_batch=1"])


def _giraffe() -> Recipe:
    # 16-px features upsampled to 32 px, a 16-feature discriminator at 32 px.
    return giraffe_recipe("synthetic").overrides([
        "point_sampler.num_samples=4", "upsampler.in_resolution=16", "upsampler.out_resolution=32",
        "discriminator.img_size=32", "discriminator.n_feat=16"])


def _volumegan() -> Recipe:
    # One octave (16 -> 32 px) fully grown (no level-of-detail schedule: every layer is read), 6 + 6
    # samples, both lazy regularizers every 2 steps.
    return volumegan_recipe("synthetic").overrides([
        "upsampler.out_resolution=32", "upsampler.progressive=false", "discriminator.img_resolution=32",
        "discriminator.progressive=false", "discriminator.init_lod=1.0", "point_sampler.num_samples=6",
        "generator.num_importance=6", "loss.r1_interval=2", "loss.pl_interval=2"])


def _graf() -> Recipe:
    # 32-px patches (the patch discriminator's smallest layout) of the 16-px images, 4 samples per ray.
    return graf_recipe("synthetic").overrides([
        "point_sampler.num_samples=4", "feature_decoder.hidden_dim=16", "discriminator.ndf=4"])


def _epigraf() -> Recipe:
    # 8-px patches of the 16-px reals (one size-keeping D block), groups of 2 sharing a patch (batch 2), lazy R1
    # every 2 steps, a 7-tap blur.
    return epigraf_recipe("synthetic").overrides([
        "point_sampler.num_samples=4", "generator.num_importance=4", "point_embedder.resolution=16",
        "discriminator.patch_resolution=8", "discriminator.image_resolution=16", "discriminator.mbstd_group_size=2",
        "loss.patch_size=8", "loss.image_resolution=16", "loss.min_scale=0.5", "loss.group_size=2",
        "loss.r1_interval=2", "loss.blur_init_sigma=1.0"])


def _gram() -> Recipe:
    # Four discriminator levels for 16-px images.
    return tiny_gram_recipe().overrides(["discriminator.img_resolution=16", "discriminator.channels=[8, 8, 8, 8]"])


def _stylenerf() -> Recipe:
    # 16-px renders grown to 32 px; R1 and path length every 2 steps; few samples. The fade-in runs over the
    # first 4 images, so the trainer's steps 0, 1 and (resumed) 2 train before it (16 px), halfway through it
    # (a blend, the NeRF path term on) and grown, each on the device.
    return stylenerf_recipe("synthetic").overrides([
        "point_sampler.num_samples=4", "generator.num_importance=4", "background/point_sampler.num_samples=2",
        "upsampler.image_resolution=32", "discriminator.img_resolution=32", "loss.r1_interval=2",
        "loss.pl_interval=2", "upsampler.fade_start_kimg=0", "upsampler.fade_end_kimg=0.004"])



TINY_RECIPES = {"pigan": _pigan, "eg3d": _eg3d, "ablation3d": _ablation3d, "stylesdf": _stylesdf,
                "giraffe": _giraffe, "graf": _graf, "epigraf": _epigraf,
                "gram": _gram, "stylenerf": _stylenerf}
TINY_RECIPES["volumegan"] = _volumegan

#: EG3D's super-resolution runs with noise_mode 'none' (its --sr_noise_mode): its noise strengths are unused.
SUPERRES_NOISE = tuple(f"upsampler.block{b}.conv{c}.noise_strength" for b in (0, 1) for c in (0, 1))
#: Trainable parameters that get no gradient by design, by method (name prefixes).
NO_GRADIENT = {"eg3d": SUPERRES_NOISE, "ablation3d": SUPERRES_NOISE}
#: Discriminator parameters that get no gradient by design: EpiGRAF builds fromrgb in every block and reads only
#: the first block's (networks_discriminator.py), here b16 of blocks b16, b8.
D_NO_GRADIENT = {"epigraf": ("b8.fromrgb.",)}

#: Scalars the method's objective logs every step, besides the adversarial ones.
EVERY_STEP_TERMS = {
    "pigan": {"g_pos", "d_pos", "r1"},
    "stylesdf": {"view", "d_view", "eikonal", "min_surf", "r1"},
    "giraffe": {"r1"},
    "gram": {"g_pos", "d_pos", "d_real_pos", "r1"},
    "stylenerf": {"fade"},
}
EVERY_STEP_TERMS["graf"] = {"r1"}
EVERY_STEP_TERMS["volumegan"] = {"lod"}  # the level of detail, logged by the generator phase

#: Scalars logged only on the steps a lazy regularizer fires (interval 2 in the recipes above).
LAZY_TERMS = {"eg3d": {"r1", "density_reg"}, "ablation3d": {"r1", "density_reg"}, "epigraf": {"r1"},
              "stylenerf": {"r1", "pl_penalty"},
              "volumegan": {"r1", "pl"}}
#: Discriminator parameters that get no gradient by design: VolumeGAN's lower-resolution fromRGB
#: entries, read only at a coarser level of detail (the 4-px one never).
D_NO_GRADIENT["volumegan"] = ("fromrgb16.", "fromrgb8.", "fromrgb4.")


def tiny_recipe(method: str) -> Recipe:
    """``method``'s synthetic recipe shrunk for this file."""
    if method not in TINY_RECIPES:
        pytest.fail(f"method {method!r} is offered by the registry but tests/test_devices.py has no tiny recipe for "
                    "it; add one to TINY_RECIPES (and its objective's logged terms)")
    return TINY_RECIPES[method]().overrides(TINY)


def test_every_first_party_method_is_covered():
    assert {"pigan", "eg3d"} <= set(METHODS)  # the registry did load the methods
    assert sorted(METHODS) == sorted(TINY_RECIPES), "a method was added or removed: update TINY_RECIPES"
    for method in METHODS:
        recipe = tiny_recipe(method)
        assert recipe.method == method and recipe.variant == "synthetic"
        assert recipe.generator["render_resolution"] == RENDER and recipe.training["batch_size"] == BATCH


# ----------------------------------------------------------------------------- helpers
def output_side(G) -> int:
    return G.output_resolution()


def real_batch(dataset: EG3DDataset, side: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``BATCH`` images of the set resized to ``side``, and their labels, on ``device``."""
    images = torch.stack([dataset[i][0] for i in range(BATCH)]).to(device)
    images = torch.nn.functional.interpolate(images, size=(side, side), mode="bilinear", align_corners=False)
    return images, dataset.labels[:BATCH].to(device)


def check_tensor(t: torch.Tensor, device: str, shape: tuple | None, what: str, *, finite: bool = True) -> None:
    assert same_device(t, device), f"{what} is on {t.device}, not {device}"
    if shape is not None:
        assert tuple(t.shape) == tuple(shape), f"{what}: shape {tuple(t.shape)}, expected {tuple(shape)}"
    if finite:
        assert bool(torch.isfinite(t).all()), f"{what} has non-finite values"


def check_terms(terms: dict[str, torch.Tensor], device: str, what: str) -> None:
    assert "loss" in terms, f"{what}: no 'loss' term"
    for name, value in terms.items():
        check_tensor(value, device, (), f"{what} term {name!r}")


def check_gradients(module: torch.nn.Module, device: str, exempt: tuple[str, ...], what: str) -> None:
    """Every trainable parameter not in ``exempt`` has a finite gradient on ``device``."""
    params = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
    assert params, f"{what} has no trainable parameter"
    missing = [n for n, p in params if p.grad is None and not n.startswith(exempt)]
    assert not missing, f"{what}: no gradient reaches {missing}"
    for name, p in params:
        if p.grad is not None:
            check_tensor(p.grad, device, p.shape, f"{what} gradient of {name}")


def check_module_on(module: torch.nn.Module, device: str, what: str) -> None:
    for name, t in [*module.named_parameters(), *module.named_buffers()]:
        assert same_device(t, device), f"{what}.{name} is on {t.device}, not {device}"
        if t.is_floating_point():
            assert bool(torch.isfinite(t).all()), f"{what}.{name} has non-finite values"


# ----------------------------------------------------------------------------- the networks
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("device", DEVICES)
def test_generator_discriminator_and_gradients_on_device(device, method, tiny_dataset):
    recipe = tiny_recipe(method)
    data = EG3DDataset(tiny_dataset)
    torch.manual_seed(0)
    G = build_generator(recipe).to(device).train()
    D = build_module(recipe, "discriminator").to(device).train()
    loss = build_module(recipe, "loss").to(device)
    G.pose_sampler.bind_dataset_poses(data.labels.to(device))  # EG3D's poses; the others ignore them
    check_module_on(G, device, "G")
    check_module_on(D, device, "D")

    # A seeded CPU generator draws the poses and sample jitter on the CPU (the same on every device).
    rng = torch.Generator().manual_seed(1)
    cameras = G.pose_sampler(BATCH, device=device, generator=rng)
    check_tensor(cameras.cam2world, device, (BATCH, 4, 4), "cam2world")
    check_tensor(cameras.intrinsics, device, (BATCH, 3, 3), "intrinsics")
    z = torch.randn(BATCH, G.z_dim, device=device)
    out = G(z, cameras, generator=rng)
    side, res = output_side(G), G.render_resolution
    check_tensor(out.image, device, (BATCH, 3, side, side), "image")
    check_tensor(out.image_raw, device, (BATCH, 3, res, res), "image_raw")
    check_tensor(out.depth, device, (BATCH, 1, res, res), "depth")
    check_tensor(out.alpha, device, (BATCH, 1, res, res), "alpha")
    check_tensor(out.features, device, (BATCH, out.features.shape[1], res, res), "features")
    if isinstance(out.ws, SceneLatent):  # GIRAFFE: per-group codes and frames
        for group, codes in out.ws.codes.items():
            check_tensor(codes, device, (BATCH, *codes.shape[1:]), f"ws.codes[{group}]")
    else:
        check_tensor(out.ws, device, (BATCH, G.mapper.num_ws, out.ws.shape[-1]), "ws")
    check_tensor(out.surface_depth, device, (BATCH, 1, res, res), "surface_depth", finite=False)
    assert bool((out.alpha >= -1e-5).all() & (out.alpha <= 1 + 1e-5).all()), "alpha outside [0, 1]"

    # A generator on the device (as the metrics make them) reaches every draw of the objective:
    # jitter, importance quantiles, EG3D's pose swaps and density points, StyleSDF's sphere fit.
    device_rng = torch.Generator(device=device).manual_seed(2)
    loss.initialize_generator(G, generator=device_rng)
    if hasattr(G.mapper, "estimate_w_avg"):  # pi-GAN's truncation mean
        check_tensor(G.mapper.estimate_w_avg(16, generator=device_rng), device, None, "w_avg")
    real, labels = real_batch(data, side, device)
    inputs = LossInputs(real, labels, z, gen_cameras=cameras, resolution=res, kimg=0.0, step=0, generator=device_rng)
    # Generator phase: the adversarial loss, the method's terms and its regularizer (EG3D's density).
    D.requires_grad_(False)
    g_terms = loss.generator_loss(G, D, inputs)
    check_terms(g_terms, device, f"{method} generator")
    total = g_terms["loss"]
    g_reg = loss.generator_regularizer(G, inputs) if loss.g_reg_interval else {}
    if g_reg:
        check_terms(g_reg, device, f"{method} generator regularizer")
        total = total + g_reg["loss"]
    total.backward()
    check_gradients(G, device, NO_GRADIENT.get(method, ()), f"{method} G")
    # Discriminator phase: real and fake scores and R1 on the reals.
    G.requires_grad_(False)
    D.requires_grad_(True)
    d_terms = loss.discriminator_loss(G, D, inputs)
    check_terms(d_terms, device, f"{method} discriminator")
    r1 = loss.discriminator_regularizer(D, inputs)
    assert r1, f"{method}: the recipe's R1 is off"
    check_terms(r1, device, f"{method} R1")
    assert float(r1["r1"]) >= 0
    (d_terms["loss"] + r1["loss"]).backward()
    exempt = D_NO_GRADIENT.get(method, ())
    if hasattr(D, "start_index"):  # pi-GAN's progressive D reads only the from-RGB layer of its input size
        start = D.start_index(side)
        exempt = tuple(n for n, _ in D.named_parameters() if n.startswith("from_rgb.")
                       and not n.startswith(f"from_rgb.{start}."))
    check_gradients(D, device, exempt, f"{method} D")


# ----------------------------------------------------------------------------- the trainer
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("device", DEVICES)
def test_trainer_steps_samples_checkpoint_and_resume_on_device(device, method, tiny_dataset, tmp_path):
    recipe = tiny_recipe(method)
    data = EG3DDataset(tiny_dataset)
    job = tmp_path / "job"
    trainer = Trainer(recipe, data, job, device=device, progress=False, tensorboard=False)
    for name in ("G", "G_ema", "D", "loss"):
        check_module_on(getattr(trainer, name), device, name)
    before = {n: p.detach().clone() for n, p in trainer.G.named_parameters()}
    d_before = {n: p.detach().clone() for n, p in trainer.D.named_parameters()}

    steps = [trainer.train_step() for _ in range(2)]
    for step, logs in enumerate(steps):
        bad = {k: v for k, v in logs.items() if not math.isfinite(v)}
        assert not bad, f"{method} step {step}: non-finite logs {bad}"
        assert ("r1" in logs) == trainer.loss.regularize_discriminator_now(step)
        missing = EVERY_STEP_TERMS.get(method, set()) - set(logs)
        assert not missing, f"{method} step {step} logged no {missing}"
        for term in LAZY_TERMS.get(method, set()):
            assert (term in logs) == (step % 2 == 0), f"{method}: {term} at step {step}: {sorted(logs)}"
    assert "r1" in steps[0]  # every lazy regularizer fires at step 0
    for module, start in ((trainer.G, before), (trainer.D, d_before)):
        changed = [n for n, p in module.named_parameters() if not torch.equal(p.detach(), start[n])]
        assert changed, f"{method}: an optimizer step changed no parameter of {type(module).__name__}"
    for name in ("G", "G_ema", "D"):
        check_module_on(getattr(trainer, name), device, name)

    # Sample grids draw with a CPU generator and render on the device (the trainer's snapshots).
    grid = cv2.imread(str(trainer.save_samples("fakes-test")))
    side = output_side(trainer.G)
    assert grid is not None and grid.shape == (4 * side, 4 * side, 3)

    path = trainer.save()
    state = load_checkpoint(path)
    assert state["step"] == 2
    saved_rng = state["rng"]["ranks"][0]
    assert ("cuda" in saved_rng) == (torch.device(device).type == "cuda")
    resumed = Trainer(recipe, data, job, resume=True, device=device, progress=False, tensorboard=False)
    # The global RNG states (CPU and, on a GPU, CUDA) are those of the checkpoint, before any draw.
    assert torch.equal(torch.get_rng_state(), saved_rng["cpu"])
    if "cuda" in saved_rng:
        assert torch.equal(torch.cuda.get_rng_state(torch.device(device)), saved_rng["cuda"])
    assert resumed.step == 2
    for name in ("G", "G_ema", "D"):
        mine, theirs = getattr(resumed, name).state_dict(), getattr(trainer, name).state_dict()
        for key, value in mine.items():
            assert same_device(value, device), f"resumed {name}.{key} is on {value.device}"
            assert torch.equal(value, theirs[key]), f"resumed {name}.{key} differs from the saved one"
    for opt in (resumed.G_opt, resumed.D_opt):
        for slots in opt.state.values():
            for key, value in slots.items():
                if torch.is_tensor(value) and key != "step":  # Adam keeps its step count on the CPU
                    assert same_device(value, device), f"optimizer state {key!r} is on {value.device}"
    logs = resumed.train_step()  # step 2: the lazy regularizers fire again
    assert "r1" in logs and all(math.isfinite(v) for v in logs.values())
    check_module_on(resumed.G, device, "resumed G")


# ----------------------------------------------------------------------------- evaluators, visualizers
#: StyleSDF: an SDF fitted to a sphere, so every metric sees a surface; EG3D: pose-conditioned
#: mapper, the data set's poses, tri-planes and super-resolution.
EVALUATED = ("stylesdf", "eg3d")


@pytest.mark.parametrize("method", EVALUATED)
@pytest.mark.parametrize("device", DEVICES)
def test_evaluators_and_visualizers_on_device(device, method, tiny_dataset, tmp_path):
    assert method in METHODS, f"{method} is no longer offered by the registry; pick another method here"
    registry = get_registry()
    recipe = tiny_recipe(method)
    torch.manual_seed(0)
    G = build_generator(recipe).to(device)
    loss = build_module(recipe, "loss").to(device)
    loss.initialize_generator(G, generator=torch.Generator().manual_seed(0))  # StyleSDF's sphere fit, on device
    data = EG3DDataset(tiny_dataset, load_depth=True)
    G.pose_sampler.bind_dataset_poses(data.labels.to(device))
    G.eval()

    # RE: five views of each latent warped into each other.
    re = registry.build("evaluator", "reprojection", num_samples=2, batch_size=2).evaluate(G, device=device, seed=0)
    assert 0.0 <= re["re_covisible"] <= 1.0
    assert math.isfinite(re["re"]) == (re["re_covisible"] > 0) and not re["re"] < 0
    # DE and PE with gan3d's own estimator, trained for two steps on the device.
    net = train_depth_pose_net(data, steps=2, batch_size=4, resolution=16, channels=4, seed=0, device=device)
    check_module_on(net, device, "estimator")
    weights = str(save_depth_pose_net(net, tmp_path / "depth_pose_net.pth"))
    options = {"estimator": "trained", "estimator_options": {"weights": weights}, "num_samples": 2, "batch_size": 2}
    de = registry.build("evaluator", "depth", **options).evaluate(G, device=device, seed=0)["de"]
    pose = registry.build("evaluator", "pose", **options).evaluate(G, device=device, seed=0)
    assert math.isnan(de) or de >= 0
    assert pose["pe"] >= 0 and 0 <= pose["pe_yaw_deg"] <= 180 and 0 <= pose["pe_polar_deg"] <= 180
    if method == "stylesdf":  # the sphere covers every pixel: every metric is a number
        assert re["re_covisible"] > 0.5 and math.isfinite(de)
    check_module_on(G, device, "G after the metrics")

    side, res = output_side(G), G.render_resolution
    out_dir = tmp_path / "vis"
    grid = registry.build("visualizer", "image_grid", num=2, save_raw=True, save_depth=True, truncation_psi=1.0)
    paths = {p.name: p for p in grid.visualize(G, out_dir, device=device, seed=0)}
    assert cv2.imread(str(paths["image_grid.png"])).shape == (side, 2 * side, 3)
    assert cv2.imread(str(paths["image_raw_grid.png"])).shape == (res, 2 * res, 3)
    assert cv2.imread(str(paths["image_depth_grid.png"])).shape == (res, 2 * res, 3)

    video = registry.build("visualizer", "orbit_video", num=1, num_frames=4, fps=4, truncation_psi=1.0)
    [mp4] = video.visualize(G, out_dir, device=device, seed=0)
    reader = imageio.get_reader(mp4, format="FFMPEG")
    try:
        frames = list(reader.iter_data())
    finally:
        reader.close()
    assert len(frames) == 4 and frames[0].shape == (side, side, 3)

    # The mesh at the median of the sampled field, so an untrained field has a surface too.
    cube, center = generator_cube(G) or (2.0, (0.0, 0.0, 0.0))
    with torch.no_grad():
        ws = G.mapping(torch.randn(1, G.z_dim, device=device), G.pose_sampler(1, device=device).label)
        volume = sample_field_volume(G, ws, resolution=12, cube_length=cube, center=center)
    assert volume.values.shape == (12, 12, 12) and bool(torch.isfinite(volume.values).all())
    level = float(volume.values.median())
    shape = registry.build("visualizer", "shape", num=1, shape_res=12, preview_res=24, truncation_psi=1.0,
                           cube_length=cube, cube_center=center, density_level=level, sdf_level=level,
                           occupancy_level=level, density_activation="none")
    written = {p.suffix: p for p in shape.visualize(G, out_dir, device=device, seed=0)}
    assert set(written) == {".ply", ".obj", ".png"}, f"no mesh written: {sorted(written)}"
    vertices, faces = read_ply(written[".ply"])
    assert len(vertices) > 0 and len(faces) > 0
    assert cv2.imread(str(written[".png"])).shape == (24, 24, 3)


@pytest.mark.parametrize("device", DEVICES)
def test_reference_scene_draws_with_a_generator_of_either_device(device):
    """The metrics' analytic reference scene draws its poses where the generator lives, like every
    pose sampler: a seeded CPU generator gives the same cameras on every device."""
    from gan3d.evaluators.metrics.reference_scene import ReferenceSphereGenerator

    G = ReferenceSphereGenerator(resolution=8).to(device)
    z = torch.randn(2, G.z_dim, device=device)
    on_cpu = G.pose_sampler(2, generator=torch.Generator().manual_seed(0))
    for rng in (torch.Generator().manual_seed(0), torch.Generator(device=device).manual_seed(0)):
        cameras = G.pose_sampler(2, device=device, generator=rng)
        check_tensor(cameras.cam2world, device, (2, 4, 4), "reference cam2world")
        check_tensor(G(z, cameras).image, device, (2, 3, 8, 8), "reference image")
    torch.testing.assert_close(G.pose_sampler(2, device=device, generator=torch.Generator().manual_seed(0))
                               .cam2world.cpu(), on_cpu.cam2world)


# ----------------------------------------------------------------------------- the command line
@pytest.mark.parametrize("device", DEVICES)
def test_cli_train_resume_infer_eval_on_device(device, tiny_dataset, tmp_path):
    where = ["--dataset", str(tiny_dataset), "--root_work_dir", str(tmp_path), "--job-name", "tiny", "--device", device]
    run("train", *where, "--resolution", "8", "--batch_size", "2", *TINY_PIGAN, "--kimg", "0.004")
    run("train", *where, "--kimg", "0.008", "--resume")
    job = tmp_path / "tiny"
    log = [json.loads(line) for line in (job / "log.json").read_text().splitlines()]
    assert [e["step"] for e in log] == [2, 4] and all(math.isfinite(e["G/loss"]) for e in log)
    ckpt = sorted((job / "checkpoints").glob("checkpoint-*.pt"))[-1]
    assert ckpt.name == "checkpoint-000000004.pt"
    if torch.device(device).type != "cpu":  # the weights were trained (and saved) on the device
        state = torch.load(ckpt, weights_only=True)
        assert all(t.device.type == torch.device(device).type for t in state["G"].values())

    run("infer", "--model", str(ckpt), "--save_image", "--num", "2", "--device", device)
    settings = json.loads((job / "infer-000" / "inference.json").read_text())
    assert settings["device"] == device
    assert cv2.imread(str(job / "infer-000" / "image_grid.png")).shape == (8, 16, 3)

    run("eval", "--model", str(ckpt), "--dataset", str(tiny_dataset), "--test_reprojection_error", "--fake_num", "2",
        "--device", device)
    report = json.loads((job / "eval-000000004.json").read_text())
    results = report["results"]
    assert report["step"] == 4 and 0 <= results["re_covisible"] <= 1
    assert math.isfinite(results["re"]) == (results["re_covisible"] > 0)
    assert not results["re"] >= 1 and not results["re"] < 0
