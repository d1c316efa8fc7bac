"""Every hook a gan3d plugin can implement.

A plugin is a module (or any object) with functions marked ``@hookimpl`` whose names match the
specifications below. Distributions expose their plugin module through one entry point in the group
``gan3d``::

    [project.entry-points.gan3d]
    my_plugin = "my_package.plugin"

and tests or notebooks register one by hand with ``gan3d.core.registry.get_registry().register(obj)``.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from .registry import Registry

PROJECT = "gan3d"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def gan3d_declare_families(registry: Registry) -> None:
    """Declare new families of implementations (optional).

    Called once per plugin, for every plugin before any ``gan3d_register``, so that any plugin may add
    implementations to a family another one declares::

        registry.add_family("point_encoder", "point encodings for coordinate MLPs", base=PointEncoder)

    A family name declared twice is an error naming both distributions. Returns nothing.
    """


@hookspec
def gan3d_register(registry: Registry) -> None:
    """Add this plugin's implementations to ``registry``.

    Called once per plugin, the first time anything is looked up in the registry (never at import
    of ``gan3d.core``). Implementations are added by family and name::

        registry.add("point_embedder", "triplane", TriplaneEmbedder)
        registry.add("method", "eg3d", eg3d_recipe)

    A family/name pair that another plugin already added is an error naming both distributions.
    Returns nothing.
    """


@hookspec
def gan3d_add_commands(subparsers: argparse._SubParsersAction, registry: Registry) -> None:
    """Add subcommands to ``tools/run.py``.

    Called while ``tools/run.py`` builds its parser, after the built-in subcommands exist, with the
    ``subparsers`` object of the top-level parser. A plugin adds a parser with
    ``subparsers.add_parser(name, help=...)`` and sets ``set_defaults(func=callable)``; the callable
    receives the parsed ``argparse.Namespace`` and returns an exit code. Returns nothing.
    """


@hookspec
def gan3d_migrate_checkpoint(state: dict, from_format: int) -> None:
    """Bring a checkpoint written by an older gan3d up to date, in place.

    Called by :func:`gan3d.core.checkpoint.load_checkpoint` once per format step, with the checkpoint's
    dict (``state["recipe"]`` is the recipe JSON, ``state["G"]``, ``state["G_ema"]``, ``state["D"]`` state
    dicts, any of which may be missing) and the format it is in now (``from_format`` -> ``from_format + 1``).
    A plugin rewrites what belongs to its own implementations (renamed options or parameters) and leaves
    the rest alone. Returns nothing.
    """
