"""The job directory: one run at a time (a lock that a dead run does not keep), a job resumes only
from its own checkpoints, a job with no checkpoint resumes from step 0, the last step is always
saved, and a resumed run keeps its method, variant, seed and data set."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reliability_support import load_run_module, said, tiny_method, write_eg3d_set  # noqa: E402

from gan3d.core.checkpoint import CheckpointError, latest_checkpoint, list_checkpoints, load_checkpoint  # noqa: E402
from gan3d.core.trainer import Trainer, WorkDirError  # noqa: E402
from gan3d.core.training.workdir import JOB_FILE, LOCK_NAME, JobLock  # noqa: E402


@pytest.fixture(scope="module")
def run():
    return load_run_module("gan3d_tools_run_job_directory")


def make(recipe, registry, dataset, job, **kw):
    return Trainer(recipe, dataset, job, registry=registry, progress=False, tensorboard=False, **kw)


def _files(job: Path) -> dict[str, bytes]:
    """The job's files and their bytes (the lock file's holder record aside)."""
    return {str(p.relative_to(job)): p.read_bytes() for p in sorted(job.rglob("*"))
            if p.is_file() and p.name != LOCK_NAME}


# ------------------------------------------------------------------------------------------ the lock
HOLDER = """
import sys, time
from pathlib import Path
from gan3d.core.training.workdir import JobLock
JobLock(Path(sys.argv[1])).acquire()
print("held", flush=True)
time.sleep(120)
"""

PROBE = """
import sys
from pathlib import Path
from gan3d.core.training.workdir import job_in_use
print(job_in_use(Path(sys.argv[1])) or "free")
"""


def _hold_in_another_process(job: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(job)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def _seen_from_another_process(job: Path) -> str:
    return subprocess.run([sys.executable, "-c", PROBE, str(job)], capture_output=True, text=True,
                          timeout=120).stdout.strip()


def test_a_second_run_is_refused_while_the_first_holds_the_job(tiny_recipe, tiny_registry, tiny_dataset,
                                                               tmp_path):
    job = tmp_path / "job"
    first = make(tiny_recipe(), tiny_registry, tiny_dataset, job)
    first.train_step()
    first.save()
    first.close()
    holder = _hold_in_another_process(job)
    before = _files(job)
    try:
        with pytest.raises(WorkDirError) as caught:
            make(tiny_recipe(), tiny_registry, tiny_dataset, job, resume=True)
        text = str(caught.value)
        assert f"job directory {job} is in use by another run (process {holder.pid} on host" in text
        assert "Wait for it to end or stop it" in text
        assert _files(job) == before  # nothing was written
    finally:
        holder.kill()
        holder.wait(timeout=60)
    # The holder was killed (SIGKILL): the kernel dropped its lock, so the job is free at once.
    resumed = make(tiny_recipe(), tiny_registry, tiny_dataset, job, resume=True)
    assert resumed.step == 1
    resumed.close()


def test_the_command_line_reports_a_job_in_use_in_one_line(run, tmp_path, capsys):
    data = write_eg3d_set(tmp_path / "set")
    argv = ["train", "--method", "tiny", "--dataset", str(data), "--root_work_dir", str(tmp_path / "w"),
            "--job_name", "j", "--kimg", "0.004"]
    with tiny_method():
        assert run.main(argv) == 0
        holder = _hold_in_another_process(tmp_path / "w" / "j")
        try:
            capsys.readouterr()
            assert run.main([*argv, "--resume", "--kimg", "0.008"]) == 2
            text = said(capsys)
            assert "is in use by another run (process" in text and "Traceback" not in text
        finally:
            holder.kill()
            holder.wait(timeout=60)
        assert run.main([*argv, "--resume", "--kimg", "0.008"]) == 0


def test_the_lock_is_shared_within_a_process_and_given_back(tiny_recipe, tiny_registry, tiny_dataset, tmp_path):
    job = tmp_path / "job"
    one = make(tiny_recipe(), tiny_registry, tiny_dataset, job)
    one.save()
    two = make(tiny_recipe(), tiny_registry, tiny_dataset, job, resume=True)  # same process: shared
    assert "in use by another run" in _seen_from_another_process(job)
    one.close()
    assert "in use by another run" in _seen_from_another_process(job)  # two still holds it
    two.close()
    assert _seen_from_another_process(job) == "free"
    assert (job / LOCK_NAME).is_file()  # kept (removing it would race with a starting run)


def test_a_run_that_fails_before_writing_leaves_no_directory(tmp_path):
    lock = JobLock(tmp_path / "new" / "job").acquire()
    assert (tmp_path / "new" / "job" / LOCK_NAME).is_file()
    lock.release(remove_new_dir=True)
    assert not (tmp_path / "new" / "job").exists()


# ------------------------------------------------------------------------------- whose checkpoint
def test_a_checkpoint_of_another_job_is_refused(run, tiny_recipe, tiny_registry, tiny_dataset, tmp_path, capsys):
    mine, theirs = tmp_path / "mine", tmp_path / "theirs"
    for job in (mine, theirs):
        trainer = make(tiny_recipe(), tiny_registry, tiny_dataset, job)
        trainer.train_step()
        trainer.save()
        trainer.close()
    shutil.copy(latest_checkpoint(theirs / "checkpoints"), mine / "checkpoints" / "checkpoint-000000009.pt")
    before = _files(mine)
    with pytest.raises(WorkDirError) as caught:
        make(tiny_recipe(), tiny_registry, tiny_dataset, mine, resume=True)
    text = str(caught.value)
    assert "checkpoint-000000009.pt belongs to another job (it was written by job" in text
    assert json.loads((mine / JOB_FILE).read_text())["id"] in text and "nothing was changed" in text
    assert _files(mine) == before  # its own checkpoints and recipe.json untouched
    assert run._handle(caught.value) == 2 and "belongs to another job" in said(capsys)


def test_a_job_made_before_job_ids_adopts_its_own_checkpoints_only(tiny_recipe, tiny_registry, tiny_dataset,
                                                                   tmp_path):
    job = tmp_path / "job"
    trainer = make(tiny_recipe(), tiny_registry, tiny_dataset, job)
    trainer.train_step()
    path = trainer.save()
    trainer.close()
    state = load_checkpoint(path)
    del state["meta"]["job"]  # as an older gan3d wrote it
    torch.save(state, path)
    (job / JOB_FILE).unlink()
    resumed = make(tiny_recipe(), tiny_registry, tiny_dataset, job, resume=True)
    assert resumed.step == 1 and (job / JOB_FILE).is_file()
    resumed.close()

    # A checkpoint whose recipe differs from the job's recipe.json is another job's.
    other = tiny_recipe().override("point_sampler.num_samples=5")
    state["recipe"] = other.to_json()
    torch.save(state, job / "checkpoints" / "checkpoint-000000007.pt")
    (job / JOB_FILE).unlink()
    with pytest.raises(WorkDirError, match="belongs to another job .*recipe differs from .*recipe.json"):
        make(tiny_recipe(), tiny_registry, tiny_dataset, job, resume=True)


def test_a_generator_only_checkpoint_cannot_be_resumed_from(tiny_recipe, tiny_registry, tiny_dataset, tmp_path):
    job = tmp_path / "job"
    trainer = make(tiny_recipe(), tiny_registry, tiny_dataset, job)
    path = trainer.save()
    trainer.close()
    state = load_checkpoint(path)
    for key in ("D", "D_opt", "G_opt"):
        del state[key]
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="cannot resume from it: it has no D, G_opt, D_opt"):
        make(tiny_recipe(), tiny_registry, tiny_dataset, job, resume=True)


def test_weights_that_do_not_fit_are_named(tiny_recipe, tiny_registry, tiny_dataset, tmp_path):
    job = tmp_path / "job"
    trainer = make(tiny_recipe(), tiny_registry, tiny_dataset, job)
    path = trainer.save()
    trainer.close()
    state = load_checkpoint(path)
    state["D"]["fc.weight"] = torch.zeros(1, 7)
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=r"its D weights do not fit the recipe's: 1 of another shape "
                                              r"\(fc.weight \(1, 7\) vs \(1, 4\)\)"):
        make(tiny_recipe(), tiny_registry, tiny_dataset, job, resume=True)


# ------------------------------------------------------------------------------ no checkpoint yet
def test_a_job_without_a_checkpoint_resumes_from_step_0(run, tmp_path, capsys):
    data = write_eg3d_set(tmp_path / "set")
    job = tmp_path / "w" / "j"
    argv = ["train", "--method", "tiny", "--dataset", str(data), "--root_work_dir", str(tmp_path / "w"),
            "--job_name", "j", "--kimg", "0.008"]
    with tiny_method():
        assert run.main(argv) == 0
        shutil.rmtree(job / "checkpoints")  # as if killed before its first checkpoint
        with open(job / "log.json", "a") as f:
            f.write('{"step": 9, "half')
        capsys.readouterr()
        assert run.main(argv) == 2  # a rerun without --resume still refuses to overwrite
        assert "already exists; pass --resume" in said(capsys)
        # --resume starts it again; with no weights yet, its modules may change too.
        assert run.main([*argv, "--resume", "--set", "point_sampler.num_samples=5"]) == 0
    assert [json.loads(line)["step"] for line in (job / "log.json").read_text().splitlines()] == [1, 2]
    assert json.loads((job / "recipe.json").read_text())["modules"]["point_sampler"]["kwargs"]["num_samples"] == 5
    assert load_checkpoint(latest_checkpoint(job / "checkpoints"))["step"] == 2


def test_a_failed_first_step_leaves_a_job_that_resumes(run, tmp_path, capsys):
    def corrupt_all_but_first(entries):
        for i in range(1, 4):
            (tmp_path / "bad" / f"img{i:02d}.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
        return entries

    bad = write_eg3d_set(tmp_path / "bad", entries=corrupt_all_but_first)
    good = write_eg3d_set(tmp_path / "good")
    job = tmp_path / "w" / "j"
    argv = ["--method", "tiny", "--root_work_dir", str(tmp_path / "w"), "--job_name", "j", "--kimg", "0.004"]
    with tiny_method():
        assert run.main(["train", "--dataset", str(bad), *argv]) == 2
        assert "cannot be decoded as an image" in said(capsys)
        assert (job / "recipe.json").is_file() and latest_checkpoint(job / "checkpoints") is None
        assert run.main(["train", "--dataset", str(good), *argv, "--resume"]) == 0
    assert load_checkpoint(latest_checkpoint(job / "checkpoints"))["step"] == 1


# --------------------------------------------------------------------------------- the last step
@pytest.mark.parametrize("snapshot_kimg", [0.0001, 100.0])
def test_the_last_step_is_always_checkpointed(snapshot_kimg, tiny_recipe, tiny_registry, tiny_dataset, tmp_path):
    recipe = tiny_recipe().override(f"training.snapshot_kimg={snapshot_kimg}")
    trainer = make(recipe, tiny_registry, tiny_dataset, tmp_path / "job")
    trainer.train(kimg=0.012)  # 3 steps of 4 images
    steps = [load_checkpoint(p)["step"] for p in list_checkpoints(tmp_path / "job" / "checkpoints")]
    assert steps[-1] == 3
    # 0.0001 kimg is less than one image: a checkpoint every step (the newest two kept).
    assert steps == ([2, 3] if snapshot_kimg < 1 else [3])


# ------------------------------------------------------------------------ what a resume keeps
def test_a_resumed_run_keeps_its_method_variant_seed_and_data(run, tmp_path, capsys):
    data = write_eg3d_set(tmp_path / "set")
    where = ["--root_work_dir", str(tmp_path / "w"), "--job_name", "j"]
    with tiny_method():
        assert run.main(["train", "--method", "tiny", "--dataset", str(data), *where, "--kimg", "0.004",
                         "--seed", "5"]) == 0
        job = json.loads((tmp_path / "w" / "j" / JOB_FILE).read_text())
        assert job["seed"] == 5 and job["data"] == str(data.resolve())
        for flags, message in ((["--method", "pigan"], "is a job of method 'tiny', not 'pigan'"),
                               (["--variant", "other"], "is a job of variant None, not 'other'"),
                               (["--seed", "6"], "is a job of seed 5, not 6")):
            capsys.readouterr()
            assert run.main(["train", *where, "--resume", "--kimg", "0.008", *flags]) == 2
            text = said(capsys)
            assert message in text and "Traceback" not in text
        # Without --dataset and --seed the job's own are used (not the embedded synthetic set).
        assert run.main(["train", "--method", "tiny", *where, "--resume", "--kimg", "0.008"]) == 0
        assert "embedded synthetic set" not in said(capsys)
    state = load_checkpoint(latest_checkpoint(tmp_path / "w" / "j" / "checkpoints"))
    assert state["step"] == 2 and state["meta"]["seed"] == 5


def test_the_trainer_resumes_with_the_jobs_seed(tiny_recipe, tiny_registry, tiny_dataset, tmp_path):
    trainer = make(tiny_recipe(), tiny_registry, tiny_dataset, tmp_path / "job", seed=5)
    trainer.save()
    trainer.close()
    resumed = make(tiny_recipe(), tiny_registry, tiny_dataset, tmp_path / "job", seed=0, resume=True)
    assert resumed.seed == 5  # the data order and the sample grids follow the job's seed


def test_interrupted_construction_frees_the_lock(tiny_recipe, tiny_registry, tiny_dataset, tmp_path, monkeypatch):
    """Ctrl-C while a fresh job is being set up (a method's long weight preparation) leaves no
    directory and no held lock."""
    from gan3d.core.objective import Objective

    def interrupted(self, G, *, generator=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(Objective, "initialize_generator", interrupted)
    with pytest.raises(KeyboardInterrupt):
        make(tiny_recipe(), tiny_registry, tiny_dataset, tmp_path / "job")
    import gc

    gc.collect()
    assert not (tmp_path / "job").exists()


def test_a_terminated_holder_frees_the_job(tmp_path):
    """A run stopped by SIGTERM (a cluster's preemption) frees its job as a killed one does."""
    job = tmp_path / "job"
    job.mkdir()
    holder = _hold_in_another_process(job)
    assert "in use by another run" in _seen_from_another_process(job)
    os.kill(holder.pid, signal.SIGTERM)
    holder.wait(timeout=60)
    assert _seen_from_another_process(job) == "free"
