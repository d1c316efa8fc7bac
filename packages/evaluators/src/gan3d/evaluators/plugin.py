"""The gan3d plugin of gan3d-evaluators: registers its implementations."""

from __future__ import annotations

from gan3d.core import hookimpl


@hookimpl
def gan3d_register(registry) -> None:
    """Register gan3d-evaluators's implementations."""
