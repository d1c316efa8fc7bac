"""The gan3d plugin of gan3d-core: the generic GAN objective every method can start from."""

from __future__ import annotations

from .hookspecs import hookimpl
from .objective import Objective


@hookimpl
def gan3d_register(registry) -> None:
    """Register gan3d-core's implementations."""
    registry.add("loss", "logistic", Objective)
