"""The names gan3d's own distributions provide, by family.

Used only for the error message when a name is missing ("it is provided by gan3d-embedders").
``tests/test_catalogue.py`` checks that this table equals what the installed first-party plugins
register, so it cannot go stale.
"""

from __future__ import annotations

FIRST_PARTY: dict[str, dict[str, str]] = {}


def _add(distribution: str, family: str, *names: str) -> None:
    for name in names:
        FIRST_PARTY.setdefault(family, {})[name] = distribution
