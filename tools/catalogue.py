"""Write gan3d-core's catalogue of first-party names from what the first-party plugins register.

The catalogue (``packages/core/src/gan3d/core/catalogue.py``) lets a missing-plugin error say which of our
distributions provides a name that is not installed; it is derived from the registrations, never edited
by hand::

    python tools/catalogue.py           # exit 1 and show the difference when the file is stale
    python tools/catalogue.py --write   # rewrite it (every first-party package must be installed)

``tests/core/test_catalogue.py`` runs the check.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

CATALOGUE = Path(__file__).resolve().parents[1] / "packages" / "core" / "src" / "gan3d" / "core" / "catalogue.py"
FIRST_PARTY_DISTRIBUTIONS = ("gan3d-core", "gan3d-samplers", "gan3d-embedders", "gan3d-renderers", "gan3d-evaluators",
                             "gan3d-methods")

HEADER = '''"""The names gan3d's own distributions provide, by family (generated: do not edit).

Used only for the error message when a name is missing ("it is provided by gan3d-embedders"). Made by
``python tools/catalogue.py --write`` from what the installed first-party plugins register;
``tests/core/test_catalogue.py`` fails when it is stale.
"""

from __future__ import annotations
'''


def registered() -> dict[str, dict[str, str]]:
    """``family -> name -> distribution`` of every first-party registration (all packages must be installed)."""
    from gan3d.core.registry import Registry

    registry = Registry(autoload=True)
    missing = set(FIRST_PARTY_DISTRIBUTIONS) - set(registry.plugins().values())
    if missing:
        raise SystemExit(f"install every first-party package first; missing: {', '.join(sorted(missing))}")
    out: dict[str, dict[str, str]] = {}
    for entry in registry.entries():
        if entry.distribution in FIRST_PARTY_DISTRIBUTIONS:
            out.setdefault(entry.family, {})[entry.name] = entry.distribution
    return out


def render(table: dict[str, dict[str, str]]) -> str:
    lines = [HEADER, "FIRST_PARTY: dict[str, dict[str, str]] = {"]
    for family in sorted(table):
        lines.append(f"    {family!r}: {{".replace("'", '"'))
        for name in sorted(table[family]):
            lines.append(f"        {name!r}: {table[family][name]!r},".replace("'", '"'))
        lines.append("    },")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite the catalogue instead of checking it")
    args = parser.parse_args(argv)
    text = render(registered())
    if args.write:
        CATALOGUE.write_text(text)
        print(f"wrote {CATALOGUE}")
        return 0
    if CATALOGUE.read_text() != text:
        print(f"{CATALOGUE} is stale: run python tools/catalogue.py --write", file=sys.stderr)
        return 1
    print("catalogue up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
