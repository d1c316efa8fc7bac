"""The seed codebase's demo scripts: each exists, answers --help and its usage, launches the documented
torchrun command with the demo's preset, builds a valid recipe; Carver's README ablation commands work
as written; one script trains end to end on the embedded set."""

from __future__ import annotations

import importlib.util
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts" / "training_demos"
ENV = {**os.environ, "COLUMNS": "200", "OMP_NUM_THREADS": "1"}


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


demos = _load("gan3d_tools_seed_demos", ROOT / "tools" / "seed_demos.py")
run_py = _load("gan3d_tools_run_seed_demos", ROOT / "tools" / "run.py")


def script(name: str, *args: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPTS / f"{name}.sh"), *args], capture_output=True, text=True, cwd=ROOT,
                          env={**ENV, **(env or {})}, timeout=300)


def _train_args(cmd: list[str]):
    """``tools/run.py train ...`` of a launched command, parsed as run.py parses it."""
    start = cmd.index("train")
    argv = cmd[start:]
    parser = run_py.build_parser(with_plugin_commands=False)
    args, extra = parser.parse_known_args(argv)
    run_py._parse_method_options(args, extra, parser)
    return args


def test_every_demo_has_its_script_and_every_script_a_demo():
    scripts = {p.stem for p in SCRIPTS.glob("*.sh") if p.name != "_launch.sh"}
    assert scripts == set(demos.DEMOS)
    for name in scripts:
        path = SCRIPTS / f"{name}.sh"
        assert os.access(path, os.X_OK) and path.resolve() == (SCRIPTS / "_launch.sh").resolve()
    assert not set(demos.NOT_YET) & set(demos.DEMOS)
    # the seed's job names, verbatim from Carver's scripts
    assert demos.DEMOS["eg3d_ffhq512"].job_name == "eg3d_ffhq512"
    assert demos.DEMOS["giraffe_ffhq256"].job_name == "giraffe_ffhq_256"


@pytest.mark.parametrize("name", sorted(demos.DEMOS))
def test_each_demo_builds_its_recipe(name):
    demo = demos.DEMOS[name]
    args = _train_args(demos.command(name, "8", "/data/set.zip", []))
    assert (args.method, args.variant, args.job_name, args.dataset) == (
        demo.method, demo.variant, demo.job_name, "/data/set.zip")
    recipe = run_py._recipe_from_args(args)
    assert recipe.method == demo.method


@pytest.mark.parametrize("name", sorted(demos.DEMOS))
def test_each_script_answers_help_and_usage(name):
    usage = script(name)
    assert usage.returncode == 0 and f"Usage: ./scripts/training_demos/{name}.sh GPUS DATASET [OPTIONS]" in usage.stdout
    helped = script(name, "8", "/data/ffhq256.zip", "--help")
    assert helped.returncode == 0, helped.stderr
    assert "Runs:" in helped.stdout and f"--job_name {demos.DEMOS[name].job_name}" in helped.stdout
    assert "usage: tools/run.py train" in helped.stdout


def test_the_launched_command_is_the_documented_one():
    out = script("eg3d_ffhq512", "2", "/data/ffhq512.zip", "--r1_gamma", "2", "--job_name=mine",
                 env={"GAN3D_DRY_RUN": "1"})
    assert out.returncode == 0, out.stderr
    line = next(line for line in out.stdout.splitlines() if line.startswith("+ "))
    cmd = shlex.split(line[2:])
    assert cmd[:cmd.index("--nproc_per_node")] == demos.launcher()  # torchrun (or python -m torch.distributed.run)
    assert cmd[cmd.index("--nproc_per_node") + 1] == "2"
    assert cmd[cmd.index("--nproc_per_node") + 2:] == [
        str(ROOT / "tools" / "run.py"), "train", "--method", "eg3d", "--variant", "ffhq512", "--dataset",
        "/data/ffhq512.zip", "--job_name", "eg3d_ffhq512", "--resolution", "64", "--r1_gamma", "2",
        "--job_name=mine"]
    args = _train_args(cmd)
    recipe = run_py._recipe_from_args(args)
    assert args.job_name == "mine" and recipe.modules["loss"].kwargs["r1_gamma"] == 2.0  # OPTIONS win


README_ABLATIONS = [
    "--ref_mode 'coordinate' --use_positional_encoding false --mlp_type 'stylenerf' --mlp_depth 16 "
    "--mlp_hidden_dim 128 --mlp_output_dim 64 --r1_gamma 1.5",
    "--ref_mode 'volume' --fv_feat_res 64 --use_positional_encoding false --mlp_type 'stylenerf' --mlp_depth 16 "
    "--mlp_hidden_dim 128 --mlp_output_dim 64 --r1_gamma 1.5",
    "--ref_mode 'triplane' --fv_feat_res 64 --use_positional_encoding false --mlp_type 'eg3d' --mlp_depth 2 "
    "--mlp_hidden_dim 64 --mlp_output_dim 32 --r1_gamma 1.5",
]


@pytest.mark.parametrize("options", README_ABLATIONS)
def test_carver_readme_ablation_commands_work_as_written(options):
    argv = ["8", "/data/ffhq256.zip", "--job_name", "abl", "--root_work_dir", "/tmp/abl", *shlex.split(options)]
    out = script("ablation3d", *argv, env={"GAN3D_DRY_RUN": "1"})
    assert out.returncode == 0, out.stderr
    cmd = shlex.split(next(line for line in out.stdout.splitlines() if line.startswith("+ "))[2:])
    args = _train_args(cmd)
    assert args.method_options["use_positional_encoding"] is False and args.method_options["r1_gamma"] == 1.5
    recipe = run_py._recipe_from_args(args)
    assert recipe.modules["loss"].kwargs["r1_gamma"] == 1.5
    assert args.job_name == "abl" and args.root_work_dir == "/tmp/abl"


def test_a_demo_of_a_method_not_in_gan3d_yet_says_so():
    name = next(iter(demos.NOT_YET), None)
    if name is None:
        pytest.skip("every seed demo's method is in gan3d")
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "seed_demos.py"), name, "1", "x"],
                         capture_output=True, text=True, env=ENV)
    assert out.returncode == 2 and "its method is not in gan3d yet" in out.stderr


def test_one_script_trains_end_to_end_on_the_embedded_set(tmp_path):
    from gan3d.core.data import default_dataset_path

    tiny = ["--variant", "synthetic", "--set", "stochasticity_mapper.z_dim=8", "--set",
            "stochasticity_mapper.hidden_dim=8", "--set", "stochasticity_mapper.film_dim=8", "--set",
            "feature_decoder.hidden_dim=8", "--set", "stochasticity_mapper.num_ws=3", "--set",
            "feature_decoder.num_layers=2", "--set", "point_sampler.num_samples=4", "--set",
            "generator.num_importance=4", "--set", "discriminator.channels=[4, 4, 8, 8, 8, 8, 8, 8]", "--set",
            "discriminator.latent_dim=8"]
    out = script("pigan_ffhq64", "1", str(default_dataset_path()), *tiny, "--kimg", "0.008", "--root_work_dir",
                 str(tmp_path))
    assert out.returncode == 0, out.stdout + out.stderr
    job = tmp_path / "pigan_ffhq64"  # the seed's default job name
    assert any((job / "checkpoints").glob("checkpoint-*.pt"))
    assert "--nproc_per_node 1" in out.stdout


def test_seed_inference_and_metric_spellings_parse():
    parser = run_py.build_parser(with_plugin_commands=False)
    infer = parser.parse_args(["infer", "--model", "m.pt", "--work_dir", "w", "--save_image", "true", "--save_video",
                               "false", "--save_shape", "true", "--shape_res", "512", "--num", "10",
                               "--truncation_psi", "0.7"])
    assert (infer.save_image, infer.save_video, infer.save_shape, infer.shape_res) == (True, False, True, 512)
    assert parser.parse_args(["infer", "--model", "m.pt", "--save_video"]).save_video is True
    metrics = parser.parse_args(["eval", "--dataset", "d", "--model", "m.pt", "--test_fid", "true", "--align_face",
                                 "true", "--test_identity", "true", "--test_reprojection_error", "true", "--test_pose",
                                 "true", "--test_depth", "true", "--fake_num", "1000"])
    assert metrics.test_fid and metrics.align_face and metrics.test_identity and metrics.test_depth
    assert metrics.fake_num == 1000 and not metrics.test_kid
    with pytest.raises(SystemExit):
        parser.parse_args(["infer", "--model", "m.pt", "--save_image", "maybe"])
