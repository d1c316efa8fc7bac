"""The catalogue of first-party names (used in missing-plugin messages) is the one derived from what the
first-party plugins register (``tools/catalogue.py``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from gan3d.core.catalogue import FIRST_PARTY
from gan3d.core.registry import Registry

TOOL = Path(__file__).resolve().parents[2] / "tools" / "catalogue.py"


def _tool():
    spec = importlib.util.spec_from_file_location("catalogue_tool", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_catalogue_equals_first_party_registrations():
    tool = _tool()
    if not set(tool.FIRST_PARTY_DISTRIBUTIONS) <= set(Registry(autoload=True).plugins().values()):
        pytest.skip("not every first-party package is installed")
    table = tool.registered()
    assert FIRST_PARTY == table, "stale catalogue: run python tools/catalogue.py --write"
    assert tool.CATALOGUE.read_text() == tool.render(table)


def test_the_generated_file_round_trips():
    tool = _tool()
    namespace: dict = {}
    exec(compile(tool.render({"point_embedder": {"b": "gan3d-x", "a": "gan3d-y"}}), "catalogue", "exec"), namespace)
    assert namespace["FIRST_PARTY"] == {"point_embedder": {"a": "gan3d-y", "b": "gan3d-x"}}
