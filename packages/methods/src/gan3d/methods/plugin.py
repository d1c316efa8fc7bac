"""The gan3d plugin of gan3d-methods: registers every method recipe with its discriminator and loss.

Each method lives in its own module with a ``register(registry)`` function; add one line below per
method.
"""

from __future__ import annotations

from gan3d.core import hookimpl

from . import ablation3d, eg3d, giraffe, pigan, stylenerf, stylesdf


@hookimpl
def gan3d_register(registry) -> None:
    """Register gan3d-methods' recipes, discriminators and losses."""
    pigan.register(registry)
    eg3d.register(registry)
    ablation3d.register(registry)
    stylesdf.register(registry)
    giraffe.register(registry)
    stylenerf.register(registry)
