"""The gan3d plugin of gan3d-methods: registers every method recipe with its discriminator and loss.

Each method lives in its own module with a ``register(registry)`` function; add one line below per
method.
"""

from __future__ import annotations

from gan3d.core import hookimpl

from . import ablation3d, eg3d, epigraf, giraffe, graf, gram, pigan, stylenerf, stylesdf, volumegan


@hookimpl
def gan3d_register(registry) -> None:
    """Register gan3d-methods' recipes, discriminators and losses."""
    pigan.register(registry)
    eg3d.register(registry)
    ablation3d.register(registry)
    stylesdf.register(registry)
    giraffe.register(registry)
    volumegan.register(registry)
    graf.register(registry)
    epigraf.register(registry)
    gram.register(registry)
    stylenerf.register(registry)


@hookimpl
def gan3d_migrate_checkpoint(state: dict, from_format: int) -> None:
    """Bring gan3d-methods' recipes and weights in an older checkpoint up to date (:mod:`.migrations`)."""
    if from_format == 1:
        from .migrations import migrate_v1

        migrate_v1(state)
