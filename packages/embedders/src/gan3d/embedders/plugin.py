"""The gan3d plugin of gan3d-embedders: registers its implementations."""

from __future__ import annotations

from gan3d.core import hookimpl


@hookimpl
def gan3d_register(registry) -> None:
    """Register gan3d-embedders's implementations."""
