"""Ctrl-C, SIGTERM and SIGKILL at random moments of ``tools/run.py train``, before the first
checkpoint and during the first step included, always leave a job that ``--resume`` finishes, with
the weights and losses of an uninterrupted run.

The test runs this file as a script: it registers the tiny method of ``conftest.py`` and calls the
command line's ``main`` (so the interrupt goes through the real handlers), with steps and
checkpoint writes slowed down on demand so that the signals land where each trial wants them:

- one Ctrl-C (SIGINT) or SIGTERM: the step finishes, is checkpointed, the command prints one line
  (``interrupted (Ctrl-C): stopped after step N; checkpoint ... holds it; continue with --resume``)
  and exits with 130 (143);
- two Ctrl-C, the second during a checkpoint write: the command stops at once, the half-written
  checkpoint is discarded and the previous one stays;
- SIGKILL: nothing runs, the newest complete checkpoint stays (or, before the first, the job
  starts again from step 0).
"""

from __future__ import annotations

import ast
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
STEPS = 16  # batch 4: 0.064 kimg; the tiny recipe checkpoints every 2 steps
KIMG = str(STEPS * 4 / 1000)


def _script_main(argv: list[str]) -> int:
    """The command line with the tiny method registered and optional slow steps and writes."""
    sys.path.insert(0, str(HERE))
    from reliability_support import load_run_module, tiny_method

    import gan3d.core.checkpoint as checkpoint
    from gan3d.core.training.trainer import Trainer

    torch.set_num_threads(1)
    step_pause = float(os.environ.get("INTERRUPT_TEST_STEP_PAUSE", "0"))
    write_pause = float(os.environ.get("INTERRUPT_TEST_CHECKPOINT_PAUSE", "0"))
    if step_pause:
        real_step = Trainer.train_step

        def slow_step(self):
            time.sleep(step_pause)
            return real_step(self)

        Trainer.train_step = slow_step
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
    run = load_run_module()
    with tiny_method():
        return run.main(argv)


def _start(dataset: Path, root: Path, job: str, *extra: str, new_session: bool = False,
           **pauses: float) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "300",
           **{f"INTERRUPT_TEST_{k.upper()}": str(v) for k, v in pauses.items()}}
    env.pop("GAN3D_DEBUG", None)
    argv = [sys.executable, str(Path(__file__).resolve()), "train", "--method", "tiny", "--dataset", str(dataset),
            "--root_work_dir", str(root), "--job_name", job, "--kimg", KIMG, "--seed", "3", *extra]
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=new_session)


def _wait_for(condition, proc: subprocess.Popen, timeout: float = 120.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.005)
    raise AssertionError("the training process neither progressed nor ended")


def _log_lines(job: Path) -> int:
    try:
        return (job / "log.json").read_text().count("\n")
    except OSError:
        return 0


def _locked_by(job: Path, proc: subprocess.Popen) -> bool:
    """Whether ``proc`` holds the job's lock (its record is in the lock file): it is building its trainer."""
    try:
        return json.loads((job / ".lock").read_text() or "{}").get("pid") == proc.pid
    except (OSError, ValueError):
        return False


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _newest_step(job: Path) -> int | None:
    from gan3d.core.checkpoint import latest_checkpoint

    newest = latest_checkpoint(job / "checkpoints")
    return int(newest.name[11:20]) if newest else None


#: (what is sent, when). Each trial continues the job the previous ones left.
TRIALS = [
    ("SIGKILL", "during set-up"),          # before the first checkpoint, maybe before recipe.json
    ("SIGINT", "during set-up"),
    ("SIGINT", "during the first step"),
    ("SIGTERM", "during a step"),
    ("SIGINT", "during a checkpoint write"),
    ("SIGINT twice", "during a checkpoint write"),
    ("SIGKILL", "during a step"),
    ("SIGINT", "at a random moment"),
]


def test_interrupted_runs_resume_to_the_uninterrupted_result(tmp_path):
    # Children inherit an ignored SIGINT: no earlier test may leave this process ignoring it.
    assert signal.getsignal(signal.SIGINT) is not signal.SIG_IGN
    sys.path.insert(0, str(HERE))
    from reliability_support import write_eg3d_set

    from gan3d.core.checkpoint import latest_checkpoint, load_checkpoint

    rng = random.Random(20261204)
    data = write_eg3d_set(tmp_path / "set", num=12)
    root = tmp_path / "w"
    reference = _start(data, root, "reference")
    job = root / "job"
    outcomes = []
    for what, when in TRIALS:
        resume = ["--resume"] if job.exists() else []
        started = time.time() - 0.01
        proc = _start(data, root, "job", *resume, step_pause=0.15, checkpoint_pause=0.3)
        if when == "during set-up":  # this process locked the job directory: its trainer is being built
            _wait_for(lambda p=proc: _locked_by(job, p), proc)
            time.sleep(rng.uniform(0.0, 0.1))
        elif when == "during the first step":  # it has (re)written recipe.json: set-up is over
            _wait_for(lambda t=started: _mtime(job / "recipe.json") >= t, proc)
            time.sleep(rng.uniform(0.0, 0.1))
        elif when == "during a step":
            _wait_for(lambda t=started: _mtime(job / "recipe.json") >= t, proc)
            target = _log_lines(job) + 1
            _wait_for(lambda t=target: _log_lines(job) >= t, proc)
            time.sleep(rng.uniform(0.0, 0.1))
        elif when == "during a checkpoint write":
            _wait_for(lambda t=started: _mtime(job / "recipe.json") >= t
                      and any((job / "checkpoints").glob(".checkpoint-*.tmp")), proc)
        else:
            _wait_for(lambda p=proc: _locked_by(job, p), proc)
            time.sleep(rng.uniform(0.0, 2.0))
        alive = proc.poll() is None
        if alive:
            sig = {"SIGKILL": signal.SIGKILL, "SIGTERM": signal.SIGTERM}.get(what, signal.SIGINT)
            os.kill(proc.pid, sig)
            if what == "SIGINT twice":
                time.sleep(0.05)
                os.kill(proc.pid, signal.SIGINT)
        output = proc.communicate(timeout=180)[0]
        lines = [line for line in output.splitlines() if line.strip()]
        assert "Traceback" not in output, f"{what} {when}:\n{output[-3000:]}"
        if not alive:
            assert proc.returncode == 0, f"{what} {when} failed by itself:\n{output[-3000:]}"
        elif what == "SIGKILL":
            assert proc.returncode == -signal.SIGKILL
        else:
            expected = 143 if what == "SIGTERM" else 130
            assert proc.returncode == expected, f"{what} {when}: rc {proc.returncode}\n{output[-3000:]}"
            last = lines[-1]
            assert last.startswith(("interrupted (Ctrl-C)", "terminated (SIGTERM)")), output[-2000:]
            assert "continue with --resume" in last or "nothing was written" in last, last
            if "stopped after step" in last:  # one Ctrl-C in training: its step was finished and checkpointed
                assert f"stopped after step {_newest_step(job)}; checkpoint" in last, last
            elif what != "SIGINT twice":  # outside the training loop (set-up): what the job holds
                assert when in ("during set-up", "during the first step", "at a random moment"), last
        assert not list((job / "checkpoints").glob(".*.tmp")) or what == "SIGKILL"
        outcomes.append((what, when, "killed" if alive else "ended first", _newest_step(job)))
    final = _start(data, root, "job", "--resume")
    output = final.communicate(timeout=180)[0]
    assert final.returncode == 0, output[-3000:]
    assert reference.wait(timeout=180) == 0, reference.stdout.read()[-3000:]
    print("interrupt trials (signal, moment, outcome, newest checkpoint step):", outcomes)
    assert sum(outcome == "killed" for *_, outcome, _ in outcomes) >= len(TRIALS) - 2

    # Every step logged once, complete lines, with the uninterrupted run's losses.
    entries = [json.loads(line) for line in (job / "log.json").read_text().splitlines()]
    expected = [json.loads(line) for line in (root / "reference" / "log.json").read_text().splitlines()]
    assert [e["step"] for e in entries] == list(range(1, STEPS + 1))
    for got, want in zip(entries, expected):
        for key in ("D/loss", "G/loss", "d_real", "d_fake", "g_adv", "kimg"):
            assert got[key] == want[key], (got["step"], key)
    mine = load_checkpoint(latest_checkpoint(job / "checkpoints"))
    theirs = load_checkpoint(latest_checkpoint(root / "reference" / "checkpoints"))
    assert mine["step"] == theirs["step"] == STEPS
    for part in ("G", "G_ema", "D"):
        for key, value in theirs[part].items():
            assert torch.equal(mine[part][key], value), f"{part}.{key}"
    assert not list(job.rglob(".*.tmp"))


def test_a_signal_to_the_whole_process_group_stops_cleanly_with_loader_workers(tmp_path):
    """Ctrl-C in a terminal, ``timeout`` and Slurm's preemption signal every process of the job, the data
    loader's workers too. The workers leave stopping to the trainer: the step finishes, is saved, and the
    command prints its one line (a worker killed by the signal used to end in "internal error: DataLoader
    worker is killed by signal: Terminated", the step unsaved)."""
    assert signal.getsignal(signal.SIGINT) is not signal.SIG_IGN
    sys.path.insert(0, str(HERE))
    from reliability_support import write_eg3d_set

    data = write_eg3d_set(tmp_path / "set", num=12)
    root = tmp_path / "w"
    for number, sig in enumerate((signal.SIGTERM, signal.SIGINT)):
        job = root / f"job{number}"
        proc = _start(data, root, job.name, "--workers", "2", new_session=True, step_pause=0.3)
        _wait_for(lambda j=job: _log_lines(j) >= 1, proc)
        assert proc.poll() is None
        os.killpg(proc.pid, sig)  # the process group: the trainer and its loader workers
        output = proc.communicate(timeout=180)[0]
        assert "Traceback" not in output and "internal error" not in output, output[-3000:]
        assert proc.returncode == (143 if sig == signal.SIGTERM else 130), output[-3000:]
        last = [line for line in output.splitlines() if line.strip()][-1]
        assert f"stopped after step {_newest_step(job)}; checkpoint" in last, output[-2000:]


def test_a_loader_worker_killed_from_outside_is_one_line_that_is_not_a_bug(tmp_path):
    """The out-of-memory killer ends a data-loader worker (here: SIGKILL to its pid): the command says so in
    one line, status 2, and the checkpoints already written stay (it used to call it a bug in gan3d)."""
    sys.path.insert(0, str(HERE))
    from reliability_support import write_eg3d_set

    data = write_eg3d_set(tmp_path / "set", num=12)
    job = tmp_path / "w" / "job"
    proc = _start(data, tmp_path / "w", job.name, "--workers", "2", new_session=True, step_pause=0.3)
    _wait_for(lambda: _newest_step(job) is not None, proc)
    children = subprocess.run(["ps", "-o", "pid=", "--ppid", str(proc.pid)], capture_output=True, text=True)
    workers = [int(pid) for pid in children.stdout.split()]
    assert workers and proc.poll() is None
    os.kill(workers[0], signal.SIGKILL)
    output = proc.communicate(timeout=180)[0]
    assert proc.returncode == 2, output[-3000:]
    last = [line for line in output.splitlines() if line.strip()][-1]
    assert last.startswith("error: a data-loader worker died (DataLoader worker (pid"), output[-2000:]
    assert "out-of-memory killer" in last and "Traceback" not in output, output[-2000:]
    assert _newest_step(job) >= 2


def test_a_process_whose_trainer_still_has_loader_workers_exits(tmp_path):
    """A run that ends (or fails) with its loader's workers alive must not keep the process from exiting:
    at exit Python joins its child processes, after PyTorch ends the workers with SIGTERM. The workers
    leave the trainer's process group instead of ignoring the signals (they did once: every process that
    held a trainer to its end, the test suite included, then waited for them forever). Also: ``close()``
    ends the workers at once."""
    script = tmp_path / "hold.py"
    script.write_text(f"""
import multiprocessing, os, sys
sys.path.insert(0, {str(HERE)!r})
import torch
from reliability_support import tiny_method, tiny_modules, write_eg3d_set
from gan3d.core.data import EG3DDataset
from gan3d.core.training.trainer import Trainer
from pathlib import Path

torch.set_num_threads(1)
root = Path(sys.argv[1])
data = EG3DDataset(write_eg3d_set(root / "set", num=12))
kept = []
with tiny_method():
    for name in ("closed", "kept"):
        trainer = Trainer(tiny_modules().tiny_recipe(), data, root / name, workers=2, progress=False,
                          tensorboard=False)
        trainer.train_step()
        workers = multiprocessing.active_children()
        print(name, [(w.pid, os.getpgid(w.pid)) for w in workers], flush=True)
        if name == "closed":
            trainer.close()
            print("after close", len(multiprocessing.active_children()), flush=True)
        else:
            kept.append(trainer)  # alive until the interpreter exits, its workers too
""")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(script), str(tmp_path)], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = dict(line.split(" ", 1) for line in done.stdout.splitlines() if line.strip())
    assert lines["after"] == "close 0", done.stdout
    pids = []
    for name in ("closed", "kept"):
        workers = ast.literal_eval(lines[name])  # [(pid, process group)]
        assert len(workers) == 2, done.stdout
        assert all(pid == group for pid, group in workers), done.stdout  # each leads a group of its own
        pids += [pid for pid, _ in workers]
    for pid in pids:  # none outlives the process
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        raise AssertionError(f"loader worker {pid} outlived its trainer's process")

if __name__ == "__main__":
    sys.exit(_script_main(sys.argv[1:]))
