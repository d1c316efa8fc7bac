"""The catalogue of first-party names (used in missing-plugin messages) matches what is registered."""

from __future__ import annotations

import pytest

from gan3d.core.catalogue import FIRST_PARTY
from gan3d.core.registry import Registry

OURS = {"gan3d-core", "gan3d-samplers", "gan3d-embedders", "gan3d-renderers", "gan3d-evaluators", "gan3d-methods"}


def test_catalogue_equals_first_party_registrations():
    registry = Registry(autoload=True)
    if not OURS <= set(registry.plugins().values()):
        pytest.skip("not every first-party package is installed")
    registered: dict[str, dict[str, str]] = {}
    for e in registry.entries():
        if e.distribution in OURS:
            registered.setdefault(e.family, {})[e.name] = e.distribution
    lines = [f'_add("{d}", "{f}", {", ".join(repr(n).replace(chr(39), chr(34)) for n in sorted(ns))})'
             for f, names in sorted(registered.items())
             for d in sorted(set(names.values()))
             for ns in [[n for n, dd in names.items() if dd == d]]]
    assert FIRST_PARTY == registered, "update gan3d/core/catalogue.py to:\n" + "\n".join(lines)
