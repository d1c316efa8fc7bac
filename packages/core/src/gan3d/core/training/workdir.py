"""The job directory: whether a run may start or resume in it, its lock, its identity, setting it up.

A job directory holds ``job.json`` (the job's identity), ``recipe.json``, ``log.json`` (JSON
Lines), ``events/`` (TensorBoard), ``samples/`` and ``checkpoints/``, plus the hidden lock file
``.lock``. It is never overwritten: an existing one is only continued with ``resume=True``, from
its newest complete checkpoint, or from step 0 when it has none yet (a run killed or failed before
its first checkpoint). Only one process trains a job at a time (:class:`JobLock`), and a job
resumes only from its own checkpoints (each carries the job's id).
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import socket
import uuid
from pathlib import Path
from typing import Any

from ..checkpoint import (
    atomic_write_bytes,
    check_training_state,
    latest_checkpoint,
    load_checkpoint,
    recipe_of,
)
from ..recipe import Recipe, RecipeError

try:  # POSIX record locks: released by the kernel when the holder exits, however it ends
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

__all__ = [
    "WorkDirError",
    "JobLock",
    "LOCK_NAME",
    "JOB_FILE",
    "check_work_dir",
    "in_use_message",
    "job_in_use",
    "new_job_id",
    "user_files",
    "saved_recipe",
    "read_job",
    "read_job_id",
    "job_recipe",
    "resume_point",
    "prepare_work_dir",
    "trim_log",
]

logger = logging.getLogger(__name__)

#: the lock file inside a job directory (hidden; not one of the job's files).
LOCK_NAME = ".lock"
#: the job's identity: ``{"id": hex, "created": ISO time}``; every checkpoint carries the id.
JOB_FILE = "job.json"


class WorkDirError(RuntimeError):
    """The work directory cannot be used as asked (exists without --resume, nothing to resume,
    in use by another run, a checkpoint of another job)."""


# ---------------------------------------------------------------------------------------- lock
class JobLock:
    """An exclusive lock on a job directory, so that two runs never train one job at once.

    The lock is a POSIX record lock (``fcntl.lockf``) on ``JOB/.lock``: the kernel drops it when the
    holding process ends, however it ends (SIGKILL and out-of-memory kills included), so a dead
    run never keeps a job locked; on NFS the server drops it when the client's lease runs out. The
    file records the holder (process id, host, start time) for the message a second run gets.
    Within one process the lock is shared (re-entrant, counted): a notebook or a test may hold two
    trainers of one job.

    Example:
        >>> lock = JobLock(Path("work_dirs/pigan-synthetic")).acquire()     # doctest: +SKIP
        >>> lock.release()                                                   # doctest: +SKIP
    """

    _held: dict[str, list[int]] = {}  # realpath of the lock file -> [fd, count], this process

    def __init__(self, work_dir: Path | str) -> None:
        self.work_dir = Path(work_dir)
        self.path = self.work_dir / LOCK_NAME
        self._key: str | None = None
        self.created_dir = False

    def acquire(self) -> JobLock:
        """Create the job directory if needed and take the lock, or raise :class:`WorkDirError`
        naming the run that holds it."""
        self.created_dir = not self.work_dir.exists()
        try:
            self.work_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WorkDirError(f"cannot create the job directory {self.work_dir}: {exc.strerror or exc}") from None
        key = os.path.realpath(self.path)
        held = self._held.get(key)
        if held is not None:
            held[1] += 1
            self._key = key
            return self
        if fcntl is None:  # pragma: no cover - Windows
            logger.warning("no POSIX locks on this platform: %s is not locked against a second run", self.work_dir)
            self._held[key] = [-1, 1]
            self._key = key
            return self
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise WorkDirError(f"cannot create the lock file {self.path}: {exc.strerror or exc}") from None
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise WorkDirError(in_use_message(self.work_dir)) from None
        owner = {"pid": os.getpid(), "host": socket.gethostname(),
                 "since": datetime.datetime.now().isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(owner) + "\n").encode(), 0)
        self._held[key] = [fd, 1]
        self._key = key
        return self

    def release(self, *, remove_new_dir: bool = False) -> None:
        """Give the lock back (once per :meth:`acquire`). With ``remove_new_dir``, a job directory
        this lock created and that holds nothing else is removed again (a run that failed before
        writing anything leaves no trace)."""
        if self._key is None:
            return
        held = self._held[self._key]
        held[1] -= 1
        if held[1] == 0:
            del self._held[self._key]
            if held[0] >= 0:
                if remove_new_dir and self.created_dir:
                    self._remove_if_empty()
                os.close(held[0])  # closing the descriptor drops the POSIX lock
        self._key = None

    def _remove_if_empty(self) -> None:
        try:
            if [p.name for p in self.work_dir.iterdir()] == [LOCK_NAME]:
                self.path.unlink()
                self.work_dir.rmdir()
        except OSError:
            pass

    @property
    def held(self) -> bool:
        return self._key is not None


def _lock_owner(work_dir: Path) -> dict[str, Any]:
    try:
        owner = json.loads((work_dir / LOCK_NAME).read_text() or "{}")
        return owner if isinstance(owner, dict) else {}
    except (OSError, ValueError):
        return {}


def in_use_message(work_dir: Path) -> str:
    owner = _lock_owner(work_dir)
    who = (f"process {owner.get('pid', '?')} on host {owner.get('host', '?')}, running since "
           f"{owner.get('since', '?')}") if owner else "another process"
    return (f"job directory {work_dir} is in use by another run ({who}); two runs of one job would overwrite "
            "each other's checkpoints and logs. Wait for it to end or stop it (a killed run frees the job at once), "
            "or choose another --job_name")


def job_in_use(work_dir: Path) -> str | None:
    """The message of :func:`in_use_message` when another process holds the job's lock, else ``None``."""
    if fcntl is None or not (work_dir / LOCK_NAME).is_file():
        return None
    if os.path.realpath(work_dir / LOCK_NAME) in JobLock._held:
        return None  # this process holds it
    try:
        fd = os.open(work_dir / LOCK_NAME, os.O_RDWR)
    except OSError:
        return None
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return in_use_message(work_dir)
    finally:
        os.close(fd)
    return None


# --------------------------------------------------------------------------------- the directory
def user_files(work_dir: Path) -> list[Path]:
    """What a job directory holds, less the lock file and the temporary files a killed atomic write leaves."""
    return [p for p in work_dir.iterdir()
            if p.name != LOCK_NAME and not (p.name.startswith(".") and p.name.endswith(".tmp"))]


def saved_recipe(work_dir: Path) -> Recipe | None:
    """The recipe a job directory was started with, or ``None`` when it has no readable one."""
    try:
        return Recipe.from_json((work_dir / "recipe.json").read_text(), source=str(work_dir / "recipe.json"))
    except (OSError, RecipeError, UnicodeDecodeError, RecursionError):
        return None


def check_work_dir(work_dir: Path, resume: bool) -> None:
    """Check, without writing anything, that a run may start (or with ``resume`` continue) in
    ``work_dir``: no file stands where a folder must be, it can be written, it does not exist yet
    (unless ``resume``), and with ``resume`` there is something to resume."""
    for path in (work_dir, *work_dir.parents):
        if path.exists() or path.is_symlink():
            if not path.is_dir():
                what = "the job directory" if path == work_dir else "a folder of the job directory's path"
                raise WorkDirError(f"{path} is a file, not a folder; it cannot be {what} ({work_dir}): "
                                   "choose another --root_work_dir or --job_name")
            if not os.access(path, os.W_OK | os.X_OK):
                raise WorkDirError(f"cannot write into {path} (permission denied); choose another --root_work_dir")
            break
    if not resume:
        if work_dir.is_dir() and user_files(work_dir):
            raise WorkDirError(
                f"work directory {work_dir} already exists; pass --resume to continue it, "
                "or choose another --job_name (nothing was overwritten)"
            )
        return
    if latest_checkpoint(work_dir / "checkpoints") is None and not (work_dir / "recipe.json").is_file() and (
            not work_dir.is_dir() or user_files(work_dir)):
        raise WorkDirError(f"--resume: no checkpoint in {work_dir / 'checkpoints'} to continue from")


def read_job(work_dir: Path) -> dict[str, Any]:
    """``JOB/job.json`` (``{"id": ..., "created": ..., "data": ...}``), or ``{}`` for a job made
    before gan3d wrote one."""
    path = work_dir / JOB_FILE
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not data["id"]:
            raise TypeError
        return data
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
        raise WorkDirError(f"{path} is damaged ({type(exc).__name__}); restore it, or delete it to let --resume "
                           "adopt the newest checkpoint whose recipe matches recipe.json") from None


def read_job_id(work_dir: Path) -> str | None:
    """The id in ``JOB/job.json``, or ``None`` for a job made before gan3d wrote one."""
    return read_job(work_dir).get("id")


def job_recipe(work_dir: Path) -> tuple[Recipe | None, Path | None]:
    """For ``--resume``: the recipe of the job (its newest checkpoint's, or ``recipe.json``'s when
    it has no checkpoint yet) and that checkpoint's path (``None`` for a restart from step 0).
    ``(None, None)`` for a job killed before it wrote anything: it starts as a new one."""
    check_work_dir(work_dir, resume=True)
    message = job_in_use(work_dir)
    if message:
        raise WorkDirError(message)
    ckpt = latest_checkpoint(work_dir / "checkpoints")
    if ckpt is not None:
        return recipe_of(load_checkpoint(ckpt), ckpt), ckpt
    recipe = saved_recipe(work_dir)
    if recipe is None and (work_dir / "recipe.json").exists():
        raise WorkDirError(f"--resume: no checkpoint in {work_dir / 'checkpoints'} to continue from, and "
                           f"{work_dir / 'recipe.json'} is unreadable; start the job again without --resume "
                           "under another --job_name")
    return recipe, None


def _check_own(work_dir: Path, checkpoint: dict[str, Any], ckpt_path: Path) -> str | None:
    """Raise :class:`WorkDirError` when the checkpoint belongs to another job; returns the job id."""
    job_id = read_job_id(work_dir)
    meta = checkpoint.get("meta") if isinstance(checkpoint.get("meta"), dict) else {}
    own = meta.get("job")
    foreign = None
    if job_id is not None:
        if own != job_id:
            foreign = f"it was written by job {own}" if own else "it carries no job id"
            foreign += f", and this job is {job_id} ({work_dir / JOB_FILE})"
    else:  # a job made before job ids: its recipe.json must agree with the checkpoint's recipe
        saved = saved_recipe(work_dir)
        theirs = recipe_of(checkpoint, ckpt_path)
        if saved is not None and saved.to_dict() | {"training": None} != theirs.to_dict() | {"training": None}:
            foreign = f"its recipe differs from {work_dir / 'recipe.json'} outside the training section"
    if foreign:
        raise WorkDirError(
            f"--resume: {ckpt_path} belongs to another job ({foreign}); a job resumes only from its own "
            f"checkpoints. Move that file out of {ckpt_path.parent} (nothing was changed)"
        )
    return job_id or own


def resume_point(work_dir: Path, recipe: Recipe, resume: bool, *,
                 check: bool = True) -> tuple[dict[str, Any] | None, Path | None, str | None]:
    """What a run of ``recipe`` in ``work_dir`` continues from: ``(checkpoint state, its path, job id)``.
    Run it holding the job's lock (``check``: also check the directory again, as
    :func:`check_work_dir` does, now that no other run can change it).

    Without ``resume``, or with it in a job that has no checkpoint yet (killed or failed before its
    first), the run starts at step 0: ``(None, None, the job's id if it has one)``. Raises
    :class:`WorkDirError` (and :class:`~gan3d.core.checkpoint.CheckpointError`) when the newest
    checkpoint belongs to another job, cannot be resumed from, or its recipe differs from
    ``recipe`` outside the ``training`` section.
    """
    if check:
        check_work_dir(work_dir, resume)
    if not resume:
        return None, None, None
    ckpt_path = latest_checkpoint(work_dir / "checkpoints")
    if ckpt_path is None:
        logger.warning("--resume: %s has no checkpoint yet; starting the job again from step 0", work_dir)
        return None, None, read_job_id(work_dir)
    checkpoint = load_checkpoint(ckpt_path)
    check_training_state(checkpoint, ckpt_path)
    job_id = _check_own(work_dir, checkpoint, ckpt_path)
    saved = recipe_of(checkpoint, ckpt_path)
    if saved.to_dict() | {"training": None} != recipe.to_dict() | {"training": None}:
        raise WorkDirError(
            f"--resume: the recipe differs from the one in {ckpt_path} outside the training section; "
            "a resumed run keeps its modules (start a new job to change them)"
        )
    return checkpoint, ckpt_path, job_id


def new_job_id() -> str:
    return uuid.uuid4().hex


def prepare_work_dir(work_dir: Path, recipe: Recipe, *, resume: bool, step: int, job_id: str,
                     seed: int | None = None, data: str | None = None) -> None:
    """Create the job directory's layout and write ``job.json`` (when absent; with the ``seed`` and
    the ``data`` set, for ``--resume``) and ``recipe.json``; on ``resume`` remove what a killed run
    left after its checkpoint at ``step`` (temporary files, later log lines)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    # recipe.json first: a job killed at any later point has it, so --resume can take the job up.
    recipe_path = work_dir / "recipe.json"
    atomic_write_bytes(recipe_path, lambda f: f.write(recipe.to_json().encode()))
    if not (work_dir / JOB_FILE).exists():
        record = {"id": job_id, "created": datetime.datetime.now().isoformat(timespec="seconds"), "seed": seed,
                  "data": data}
        atomic_write_bytes(work_dir / JOB_FILE, lambda f: f.write((json.dumps(record, indent=2) + "\n").encode()))
    (work_dir / "checkpoints").mkdir(exist_ok=True)
    (work_dir / "samples").mkdir(exist_ok=True)
    for stale in work_dir.glob(".*.tmp"):  # temporary files of a killed run's atomic writes
        stale.unlink(missing_ok=True)
    for stale in (work_dir / "checkpoints").glob(".*.tmp"):
        stale.unlink(missing_ok=True)
    log_path = work_dir / "log.json"
    if resume and log_path.exists():
        trim_log(log_path, step)


def trim_log(log_path: Path, step: int) -> None:
    """Keep only the complete lines of ``log.json`` up to ``step``: a run killed after its last
    checkpoint leaves later lines (and maybe half a line) that the resumed run rewrites."""
    kept = []
    for line in log_path.read_text(errors="replace").splitlines(keepends=True):
        if not line.endswith("\n"):
            break
        try:
            entry = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            break
        if isinstance(entry, dict) and isinstance(entry.get("step", 0), int) and entry.get("step", 0) <= step:
            kept.append(line)
    atomic_write_bytes(log_path, lambda f: f.write("".join(kept).encode()))

