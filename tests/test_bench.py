"""tools/bench.py: the CPU run of EG3D and pi-GAN at tiny settings writes the documented JSON fields
and prints the table; the resolution overrides, per-method options and lazy-step weights by hand."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import bench  # noqa: E402

TINY = [
    # EG3D: the CPU-sized variant shrunk further (16-px tri-planes need 2 log2(16) - 2 = 6 latents).
    "--variant", "eg3d:synthetic",
    "--set", "eg3d:point_embedder.resolution=16", "--set", "eg3d:stochasticity_mapper.num_ws=6",
    "--set", "eg3d:point_sampler.num_samples=4", "--set", "eg3d:generator.num_importance=4",
    "--set", "eg3d:discriminator.channel_max=16", "--set", "eg3d:loss.density_reg_num_points=16",
    # pi-GAN: FiLM width 16 (mapper and decoder), 2 FiLM layers, 4 + 4 samples, a small discriminator.
    "--set", "pigan:stochasticity_mapper.z_dim=8", "--set", "pigan:stochasticity_mapper.hidden_dim=16",
    "--set", "pigan:stochasticity_mapper.film_dim=16", "--set", "pigan:stochasticity_mapper.num_ws=3",
    "--set", "pigan:feature_decoder.hidden_dim=16", "--set", "pigan:feature_decoder.num_layers=2",
    "--set", "pigan:point_sampler.num_samples=4", "--set", "pigan:generator.num_importance=4",
    "--set", "pigan:discriminator.channels=[8, 8, 12, 12]", "--set", "pigan:discriminator.latent_dim=8",
    "--set", "pigan:loss.batch_split=1",
]


def test_cpu_run_of_eg3d_and_pigan_writes_the_json_and_the_table(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "bench.py"), "--method", "eg3d", "pigan", "--resolution", "16",
         "--batch_size", "2", "--warmup", "1", "--repeats", "1", "--device", "cpu", "--threads", "1",
         "--json", str(out), *TINY],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(out.read_text())
    assert {"cpu_model", "cpu_count", "torch_threads", "torch", "avx512_bf16", "amx_bf16"} <= set(report["machine"])
    assert report["config"]["resolution"] == 16 and report["config"]["repeats"] == 1
    by_method = {r["method"]: r for r in report["results"]}
    assert set(by_method) == {"eg3d", "pigan"}
    for r in by_method.values():
        assert r["output_resolution"] == 16 and r["batch_size"] == 2 and r["device"] == "cpu"
        assert r["inference"]["images_per_s"] > 0 and len(r["inference"]["seconds"]) == 1
        assert r["training"]["seconds_per_kimg"] > 0
        assert r["peak_memory_mb"]["inference"] > 0
        assert r["peak_memory_mb"]["training"] >= r["peak_memory_mb"]["inference"]
    # EG3D's super-resolution has no 16-px configuration: identity upsampler, 16-px render.
    assert "upsampler=identity" in by_method["eg3d"]["overrides"]
    assert by_method["eg3d"]["render_resolution"] == 16
    assert by_method["pigan"]["overrides"][0] == "generator.render_resolution=16"
    # EG3D: lazy R1 every 16 steps and density regularization every 4 -> three kinds of step.
    kinds = by_method["eg3d"]["training"]["step_kinds"]
    assert kinds["r1=True,g_reg=True"]["weight"] == pytest.approx(1 / 16)
    assert kinds["r1=False,g_reg=True"]["weight"] == pytest.approx(3 / 16)
    assert kinds["r1=False,g_reg=False"]["weight"] == pytest.approx(12 / 16)
    assert "pigan" in proc.stdout and "train s/kimg" in proc.stdout


def test_run_py_bench_measures_several_batch_sizes_and_refuses_bad_official_sources(tmp_path):
    """tools/run.py bench checks the recipe and the --official-src values before any child starts (one
    error line), then measures one row per --batch_size."""
    out = tmp_path / "bench.json"
    run = [sys.executable, str(ROOT / "tools" / "run.py"), "bench", "--method", "pigan", "--resolution", "8",
           "--warmup", "0", "--repeats", "1", "--no-train", "--device", "cpu", "--threads", "1", *TINY]
    proc = subprocess.run([*run, "--batch_size", "1", "2", "--json", str(out)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [r["batch_size"] for r in json.loads(out.read_text())["results"]] == [1, 2]
    assert "[bench] pigan b2: infer 1/1" in proc.stderr  # progress lines pass through
    bad = subprocess.run([*run, "--official-src", f"pigan={tmp_path / 'missing'}", "--json", str(tmp_path / "b.json")],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    assert (bad.stdout + bad.stderr).strip().splitlines()[-1].startswith("error: --official-src pigan=")
    assert not (tmp_path / "b.json").exists()


def test_per_method_options_keep_unprefixed_ones_and_their_own():
    methods = ["eg3d", "pigan"]
    values = ["a.b=1", "eg3d:c.d=2", "pigan:e=3", "f=x:y"]
    assert bench.per_method(values, "eg3d", methods) == ["a.b=1", "c.d=2", "f=x:y"]
    assert bench.per_method(values, "pigan", methods) == ["a.b=1", "e=3", "f=x:y"]
    # a prefix naming an installed method that is not measured applies to none of the measured ones
    assert bench.per_method(["eg3d:synthetic", "celeba"], "pigan", ["pigan"]) == ["celeba"]


class _Loss:
    def __init__(self, r1: int, greg: int) -> None:
        self.r1_interval, self.g_reg_interval = r1, greg

    def regularize_discriminator_now(self, step: int) -> bool:
        return step % self.r1_interval == 0


def test_step_kinds_weigh_each_lazy_regularizer_by_its_interval():
    assert bench.step_kinds(_Loss(1, 0)) == {(True, False): 1}
    assert bench.step_kinds(_Loss(16, 4)) == {(True, True): 1, (False, True): 3, (False, False): 12}
    assert bench.step_kinds(_Loss(2, 3)) == {(True, True): 1, (False, False): 2, (True, False): 2, (False, True): 1}


def test_resolution_overrides_pick_render_or_upsampler_resolution():
    from gan3d.core import get_registry

    registry = get_registry()
    eg3d = registry.get("method", "eg3d")("ffhq512")
    assert bench.resolution_overrides(eg3d, 256, registry) == [
        "upsampler.image_resolution=256", "discriminator.img_resolution=256"]
    identity = ["upsampler=identity", "generator.render_resolution=64"]
    assert bench.resolution_overrides(eg3d, 64, registry)[:2] == identity
    pigan = registry.get("method", "pigan")(None)
    assert bench.resolution_overrides(pigan, 32, registry) == ["generator.render_resolution=32"]


def _tiny_generator(method: str):
    import torch

    from gan3d.core import get_registry
    from gan3d.core.generator import build_generator

    methods = ["eg3d", "pigan"]
    sets = bench.per_method([TINY[i + 1] for i in range(len(TINY)) if TINY[i] == "--set"], method, methods)
    variants = bench.per_method([TINY[i + 1] for i in range(len(TINY)) if TINY[i] == "--variant"], method, methods)
    recipe, _ = bench.build_recipe(method, variants[-1] if variants else None, sets, 16, 2)
    torch.manual_seed(0)
    G = build_generator(recipe).eval().requires_grad_(False)
    if hasattr(G.pose_sampler, "bind_dataset_poses"):
        G.pose_sampler.bind_dataset_poses(get_registry().build("pose_sampler", "spherical")(8).label)
    return G


@pytest.mark.parametrize("method", ["pigan", "eg3d"])
def test_compiled_generator_gives_the_eager_images_on_cpu(method):
    """`tools/bench.py --compile` runs the EMA generator's forward through
    torch.compile with Inductor; on a CPU that generates C++ (20-50 s per tiny generator here). The
    compiled graph must give the eager images, with the generator's random draws taken from a
    torch.Generator as the benchmark does."""
    import torch

    G = _tiny_generator(method)
    z = torch.randn(2, G.z_dim)
    cameras = G.pose_sampler(2, generator=torch.Generator().manual_seed(1))
    compiled = torch.compile(G.forward)
    with torch.no_grad():
        eager = G(z, cameras, generator=torch.Generator().manual_seed(7))
        traced = compiled(z, cameras, generator=torch.Generator().manual_seed(7))
    assert traced.image.shape == eager.image.shape == (2, 3, 16, 16)
    torch.testing.assert_close(traced.image, eager.image, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(traced.depth, eager.depth, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("method", ["pigan", "eg3d"])
def test_bf16_images_stay_close_to_fp32(method):
    """The reduced-precision path (`--precision bf16`, `infer --precision bf16`): same latents, poses
    and draws under bfloat16 autocast give images within a few bf16 steps of fp32 (bfloat16 keeps 8
    significant bits: ~0.4% relative per rounding)."""
    import torch

    G = _tiny_generator(method)
    assert bench.image_difference(G, 2, torch.device("cpu"), "fp32") is None
    diff = bench.image_difference(G, 2, torch.device("cpu"), "bf16")
    assert 0 < diff["max_abs_diff"] < 0.1 and diff["psnr_db"] > 35, diff


def test_camera_labels_follow_a_dataset_samplers_rig():
    """EpiGRAF's ``dataset`` pose sampler declares a rig around its +-0.2 scene: the in-memory set's labels
    are cameras of that rig (its radius, inside its view ranges), not EG3D's radius-2.7 cameras, which
    would render EpiGRAF's background only; a recipe without such a rig keeps EG3D's FFHQ cameras."""
    import math

    import torch

    from gan3d.core import get_registry
    from gan3d.core.types import Cameras

    registry = get_registry()
    recipe, _ = bench.build_recipe("epigraf", None, [], None, 1)
    rig = recipe.modules["pose_sampler"].kwargs["rig"]
    cams = Cameras.from_label(bench.camera_labels(recipe, registry, 64))
    offset = cams.origins - torch.tensor(rig["pivot"])
    assert torch.allclose(offset.norm(dim=-1), torch.full((64,), float(rig["radius"])), rtol=1e-4)
    polar = torch.acos((offset[:, 1] / offset.norm(dim=-1)).clamp(-1, 1))  # y up
    assert polar.min() >= rig["polar_range"][0] - 1e-4 and polar.max() <= rig["polar_range"][1] + 1e-4
    assert float(rig["radius"]) < 2.0
    eg3d, _ = bench.build_recipe("eg3d", None, [], None, 1)
    radius = Cameras.from_label(bench.camera_labels(eg3d, registry, 8)).origins.norm(dim=-1)  # about the origin
    assert torch.allclose(radius, torch.full((8,), 2.7), rtol=1e-4)
    assert not math.isclose(float(rig["radius"]), 2.7)
