"""The job directory: whether a run may start or resume in it, and setting it up.

A job directory holds ``recipe.json``, ``log.json`` (JSON Lines), ``events/`` (TensorBoard),
``samples/`` and ``checkpoints/``. It is never overwritten: an existing one is only continued with
``resume=True``, from its newest complete checkpoint (or from step 0 when it has none yet).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from ..checkpoint import atomic_write_bytes, latest_checkpoint, load_checkpoint, recipe_of
from ..recipe import Recipe, RecipeError

__all__ = ["WorkDirError", "user_files", "saved_recipe", "resume_point", "prepare_work_dir", "trim_log"]

logger = logging.getLogger(__name__)


class WorkDirError(RuntimeError):
    """The work directory cannot be used as asked (exists without --resume, nothing to resume)."""


def user_files(work_dir: Path) -> list[Path]:
    """What a job directory holds, less the temporary files a killed atomic write leaves."""
    return [p for p in work_dir.iterdir() if not (p.name.startswith(".") and p.name.endswith(".tmp"))]


def saved_recipe(work_dir: Path) -> Recipe | None:
    """The recipe a job directory was started with, or ``None`` when it has no readable one."""
    try:
        return Recipe.from_json((work_dir / "recipe.json").read_text(), source=str(work_dir / "recipe.json"))
    except (OSError, RecipeError):
        return None


def resume_point(work_dir: Path, recipe: Recipe, resume: bool) -> tuple[dict[str, Any] | None, Path | None]:
    """Check that a run of ``recipe`` may start (or, with ``resume``, continue) in ``work_dir``.

    Returns ``(checkpoint state, its path)`` to continue from, or ``(None, None)`` for a run from
    step 0. Raises :class:`WorkDirError` when the directory exists without ``resume``, when there is
    nothing to resume, or when the recipe differs from the job's outside the ``training`` section.
    """
    if not resume:
        if work_dir.exists() and user_files(work_dir):
            raise WorkDirError(
                f"work directory {work_dir} already exists; pass --resume to continue it, "
                "or choose another --job_name (nothing was overwritten)"
            )
        return None, None
    checkpoint = None
    ckpt_path = latest_checkpoint(work_dir / "checkpoints")
    if ckpt_path is None:
        # A job killed before its first checkpoint (its recipe.json, or only the temporary
        # file of that write, is there) starts again from step 0; its log is emptied later.
        saved = saved_recipe(work_dir) if (work_dir / "recipe.json").exists() else (
            recipe if work_dir.is_dir() and not user_files(work_dir) else None)
        if saved is None:
            raise WorkDirError(f"--resume: no checkpoint in {work_dir / 'checkpoints'} to continue from")
        logger.warning("--resume: %s has no checkpoint yet; starting the job again from step 0", work_dir)
        source = work_dir / "recipe.json"
    else:
        checkpoint = load_checkpoint(ckpt_path)
        saved = recipe_of(checkpoint, ckpt_path)
        source = ckpt_path
    if saved.to_dict() | {"training": None} != recipe.to_dict() | {"training": None}:
        raise WorkDirError(
            f"--resume: the recipe differs from the one in {source} outside the training section; "
            "a resumed run keeps its modules (start a new job to change them)"
        )
    return checkpoint, ckpt_path


def prepare_work_dir(work_dir: Path, recipe: Recipe, *, resume: bool, step: int) -> None:
    """Create the job directory's layout and write ``recipe.json``; on ``resume`` remove what a
    killed run left after its checkpoint at ``step`` (temporary files, later log lines)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    # recipe.json first: a job killed at any later point has it, so --resume can take the job up.
    recipe_path = work_dir / "recipe.json"
    atomic_write_bytes(recipe_path, lambda f: f.write(recipe.to_json().encode()))
    (work_dir / "checkpoints").mkdir(exist_ok=True)
    (work_dir / "samples").mkdir(exist_ok=True)
    for stale in work_dir.glob(".*.tmp"):  # temporary files of a killed run's atomic writes
        stale.unlink(missing_ok=True)
    log_path = work_dir / "log.json"
    if resume and log_path.exists():
        trim_log(log_path, step)


def trim_log(log_path: Path, step: int) -> None:
    """Keep only the complete lines of ``log.json`` up to ``step``: a run killed after its last
    checkpoint leaves later lines (and maybe half a line) that the resumed run rewrites."""
    kept = []
    for line in log_path.read_text().splitlines(keepends=True):
        if not line.endswith("\n"):
            break
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            break
        if entry.get("step", 0) <= step:
            kept.append(line)
    atomic_write_bytes(log_path, lambda f: f.write("".join(kept).encode()))
