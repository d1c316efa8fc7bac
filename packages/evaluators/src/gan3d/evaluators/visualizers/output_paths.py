"""Writing outputs without ever replacing a file that is already there.

Every visualizer writes through these helpers, so a second run into the same folder fails with a
clear error instead of silently overwriting earlier results, and a crash never leaves a half-written
file under the final name (files are written under a temporary name and linked into place; a hard
link refuses to replace an existing name, atomically).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

__all__ = ["write_new_file", "publish_new_file", "temporary_sibling", "fresh_subdirectory", "refuse_existing"]


def refuse_existing(path: Path) -> None:
    """Raise :class:`FileExistsError` when ``path`` exists, saying what to do instead."""
    if path.exists():
        raise FileExistsError(
            f"{path} already exists; visualizers never overwrite outputs. Choose another output folder "
            "(run_inference makes a fresh one per run) or move the old file away."
        )


def temporary_sibling(path: Path) -> Path:
    """A unique hidden name next to ``path`` with the same suffix (encoders pick the format from it)."""
    return path.with_name(f".{path.stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp{path.suffix}")


def publish_new_file(temporary: Path, path: Path) -> Path:
    """Give the finished file ``temporary`` its final name ``path``; fail if ``path`` exists.

    ``os.link`` never replaces an existing name (``os.replace`` would), so two writers racing for
    the same name cannot clobber each other. The temporary name is removed in every case.
    """
    try:
        os.link(temporary, path)
    except FileExistsError:
        raise FileExistsError(
            f"{path} already exists; visualizers never overwrite outputs. Choose another output folder."
        ) from None
    finally:
        temporary.unlink(missing_ok=True)
    return path


def write_new_file(path: Path | str, data: bytes) -> Path:
    """Write ``data`` to a new file ``path`` (parents created); :class:`FileExistsError` if it exists."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    refuse_existing(path)
    temporary = temporary_sibling(path)
    with open(temporary, "xb") as handle:
        handle.write(data)
    return publish_new_file(temporary, path)


def fresh_subdirectory(parent: Path | str, prefix: str) -> Path:
    """Create and return ``parent/<prefix>-NNN`` with the lowest number not taken yet.

    ``mkdir`` without ``exist_ok`` is atomic, so concurrent runs each get their own folder.
    """
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    index = 0
    while True:
        candidate = parent / f"{prefix}-{index:03d}"
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            index += 1
