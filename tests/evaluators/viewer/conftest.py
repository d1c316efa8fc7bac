"""Fixtures of the viewer tests (helpers: viewer_support.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from viewer_support import tiny_recipe, write_checkpoint  # noqa: E402


@pytest.fixture(scope="session")
def checkpoint_of(tmp_path_factory):
    """``checkpoint_of(method)``: the path of a tiny checkpoint of ``method`` (written once per session)."""
    made: dict[str, Path] = {}

    def make(method: str) -> Path:
        if method not in made:
            made[method] = write_checkpoint(tiny_recipe(method), tmp_path_factory.mktemp(f"viewer-{method}"))
        return made[method]

    return make
