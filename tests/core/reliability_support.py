"""Helpers of the reliability tests (bad inputs, job directories, interrupts): the command line as
a module, tiny EG3D-format data sets, and the tiny method of ``conftest.py`` registered where the
command line looks for methods.

Test files put ``tests/core`` on ``sys.path`` and import this module (pytest runs with
``--import-mode=importlib``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
RUN_PY = REPO / "tools" / "run.py"
# A valid EG3D label: cam2world (camera 2.0 in front of the origin) and normalized intrinsics.
LABEL = [1.0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2.0, 0, 0, 0, 1, 1.5, 0, 0.5, 0, 1.5, 0.5, 0, 0, 1]


def load_run_module(name: str = "gan3d_tools_run_reliability"):
    """tools/run.py as a module (tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location(name, RUN_PY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_eg3d_set(folder: Path, num: int = 4, resolution: int = 8, *, entries=None) -> Path:
    """An EG3D-format folder of ``num`` random PNGs of ``resolution`` px; ``entries(list)`` may
    rewrite its ``dataset.json`` entries."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    listed = []
    for i in range(num):
        cv2.imwrite(str(folder / f"img{i:02d}.png"), rng.integers(0, 256, (resolution, resolution, 3), dtype=np.uint8))
        listed.append([f"img{i:02d}.png", list(LABEL)])
    (folder / "dataset.json").write_text(json.dumps({"labels": entries(listed) if entries else listed}))
    return folder


def tiny_modules():
    """``tests/core/conftest.py`` as a module (loaded by path, under its own name): the tiny
    modules, ``TinyPlugin``, ``tiny_recipe``, ``TinyDataset``."""
    import sys

    name = "gan3d_tests_core_tiny_modules"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, HERE / "conftest.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@contextlib.contextmanager
def tiny_method() -> Iterator[None]:
    """The tiny modules and the ``tiny`` method of ``conftest.py`` in the process-wide registry
    (the one the command line uses), for the duration of the block."""
    from gan3d.core import get_registry

    registry = get_registry()
    name = registry.register(tiny_modules().TinyPlugin(), name="tiny-reliability", distribution="tests")
    try:
        yield
    finally:
        registry.unregister(name)


def said(capsys) -> str:
    """What a command printed, stdout and stderr, with line breaks made spaces."""
    captured = capsys.readouterr()
    return " ".join((captured.out + captured.err).split())
