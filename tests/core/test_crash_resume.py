"""A training process killed with SIGKILL at any moment resumes from its last complete checkpoint and
ends exactly as an uninterrupted run: same step count, same logged losses, same weights.

The test runs this file as a training script (tiny modules from ``conftest.py``, with ``tests/core``
on ``PYTHONPATH``), kills it at random moments, by turns: a random delay into training (a step, a
log write, set-up), while a checkpoint is half written (the script writes checkpoints slowly: half the
bytes, a pause, the rest), and right after a log line appears; then it resumes it with ``--resume``.
A point sampler that jitters its depths with the global torch RNG makes the comparison depend on the
saved RNG states too.
"""

from __future__ import annotations

import io
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
STEPS = 12  # batch 4 -> 0.048 kimg; a checkpoint every 2 steps
KILLS = 4


def _train_main(job: Path, resume: bool) -> None:
    """The training script: the tiny recipe with a jittering point sampler, slowed down on demand."""
    from conftest import TinyDataset, TinyPlugin, TinyRays, tiny_recipe  # tests/core is on PYTHONPATH

    import gan3d.core.checkpoint as checkpoint
    import gan3d.core.plugin as core_plugin
    from gan3d.core import hookimpl
    from gan3d.core.recipe import ModuleSpec
    from gan3d.core.registry import Registry
    from gan3d.core.trainer import Trainer

    torch.set_num_threads(1)

    class JitteredRays(TinyRays):
        """TinyRays with depths jittered from the global RNG (as stratified samplers do)."""

        def forward(self, cameras, resolution, *, pixels=None, generator=None):
            samples = super().forward(cameras, resolution, pixels=pixels, generator=generator)
            jitter = torch.rand(samples.depths.shape, generator=generator) * 0.05
            return type(samples).along_rays(samples.origins, samples.directions, samples.depths + jitter)

    class JitterPlugin:
        @hookimpl
        def gan3d_register(self, registry):
            registry.add("point_sampler", "tiny_jitter", JitteredRays)

    step_pause = float(os.environ.get("CRASH_TEST_STEP_PAUSE", "0"))
    write_pause = float(os.environ.get("CRASH_TEST_CHECKPOINT_PAUSE", "0"))
    if write_pause:
        real_save = torch.save

        def slow_save(obj, f, *args, **kwargs):
            buffer = io.BytesIO()
            real_save(obj, buffer, *args, **kwargs)
            data = buffer.getvalue()
            f.write(data[: len(data) // 2])
            f.flush()
            time.sleep(write_pause)
            f.write(data[len(data) // 2:])

        checkpoint.torch.save = slow_save

    registry = Registry(autoload=False)
    registry.register(core_plugin, name="core", distribution="gan3d-core")
    registry.register(TinyPlugin(), name="tiny", distribution="tests")
    registry.register(JitterPlugin(), name="jitter", distribution="tests")
    recipe = _recipe(ModuleSpec, tiny_recipe)
    trainer = Trainer(recipe, TinyDataset(), job, resume=resume, registry=registry, seed=7, progress=False,
                      tensorboard=False)
    if step_pause:
        real_step = trainer.train_step

        def slow_step():
            time.sleep(step_pause)
            return real_step()

        trainer.train_step = slow_step
    trainer.train()


def _recipe(module_spec, tiny_recipe):
    recipe = tiny_recipe()
    recipe.modules["point_sampler"] = module_spec("tiny_jitter")
    return recipe.override(f"training.total_kimg={STEPS * 4 / 1000}").override(
        "training.image_snapshot_kimg=1.0")


def _start(job: Path, resume: bool, **pauses: float) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1", **{f"CRASH_TEST_{k.upper()}": str(v) for k, v in pauses.items()}}
    argv = [sys.executable, str(Path(__file__).resolve()), str(job)] + (["--resume"] if resume else [])
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for(condition, proc: subprocess.Popen, timeout: float = 60.0) -> bool:
    """Poll until ``condition()`` holds (True) or the process ends (False)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.005)
    raise AssertionError("the training process neither progressed nor ended")


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _log_steps(job: Path) -> int:
    try:
        return (job / "log.json").read_text().count("\n")
    except OSError:
        return 0


def test_killed_runs_resume_to_the_uninterrupted_result(tmp_path):
    from gan3d.core.checkpoint import latest_checkpoint, load_checkpoint

    rng = random.Random(20260426)
    reference_job = tmp_path / "reference"
    reference = _start(reference_job, resume=False)
    job = tmp_path / "killed"
    outcomes = []
    for trial in range(KILLS):
        resume = job.exists() and any(job.iterdir())
        proc = _start(job, resume, step_pause=0.03, checkpoint_pause=0.2)
        mode = ("random delay", "during a checkpoint write", "after a log line")[trial % 3]
        if mode == "random delay":  # once the process has set up (it rewrites recipe.json), anywhere in training
            started = time.time() - 0.01
            if _wait_for(lambda t=started: _mtime(job / "recipe.json") >= t, proc):
                time.sleep(rng.uniform(0.0, 1.0))
        elif mode == "during a checkpoint write":
            _wait_for(lambda: any((job / "checkpoints").glob(".checkpoint-*.tmp")), proc)
        else:
            target = _log_steps(job) + rng.randint(1, 3)
            _wait_for(lambda t=target: _log_steps(job) >= t, proc)
        alive = proc.poll() is None
        if alive:
            os.kill(proc.pid, signal.SIGKILL)
        output = proc.communicate()[0]
        assert alive or proc.returncode == 0, f"trial {trial} ({mode}) failed by itself:\n{output[-3000:]}"
        newest = latest_checkpoint(job / "checkpoints")
        outcomes.append((mode, "killed" if alive else f"ended first (rc {proc.returncode})",
                         int(newest.name[11:20]) if newest else None))
    final = _start(job, resume=job.exists() and any(job.iterdir()))
    output = final.communicate(timeout=120)[0]
    assert final.returncode == 0, output[-3000:]
    assert reference.wait(timeout=120) == 0, reference.stdout.read()[-3000:]
    print("kill-and-resume trials (mode, outcome, newest checkpoint step after it):", outcomes)
    assert sum(outcome == "killed" for _, outcome, _ in outcomes) >= KILLS - 1  # kills landed mid-run

    # The log holds every step once, all lines complete, with the uninterrupted run's losses.
    lines = (job / "log.json").read_text().splitlines()
    entries = [json.loads(line) for line in lines]
    expected = [json.loads(line) for line in (reference_job / "log.json").read_text().splitlines()]
    assert [e["step"] for e in entries] == list(range(1, STEPS + 1))
    for got, want in zip(entries, expected):
        for key in ("D/loss", "G/loss", "d_real", "d_fake", "g_adv", "kimg"):
            assert got[key] == want[key], (got["step"], key)
        assert ("r1" in got) == ("r1" in want)
    # The final checkpoint equals the uninterrupted one: weights, EMA, optimizer moments, RNG.
    mine = load_checkpoint(latest_checkpoint(job / "checkpoints"))
    theirs = load_checkpoint(latest_checkpoint(reference_job / "checkpoints"))
    assert mine["step"] == theirs["step"] == STEPS
    for part in ("G", "G_ema", "D"):
        for key, value in theirs[part].items():
            assert torch.equal(mine[part][key], value), f"{part}.{key}"
    for part in ("G_opt", "D_opt"):
        for index, moments in theirs[part]["state"].items():
            for name, value in moments.items():
                assert torch.equal(mine[part]["state"][index][name], value), f"{part}[{index}].{name}"
    assert torch.equal(mine["rng"]["torch"], theirs["rng"]["torch"])
    assert not list((job / "checkpoints").glob("*.tmp")) and not list(job.glob(".*.tmp"))


if __name__ == "__main__":
    _train_main(Path(sys.argv[1]), resume="--resume" in sys.argv[2:])
