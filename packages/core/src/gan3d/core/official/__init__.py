"""Officially released checkpoints: read them without running their code, and turn them into gan3d
checkpoints (:mod:`.pickles` reads the containers, :mod:`.importer` is what a method implements)."""

from .pickles import (
    KnownClasses,
    OfficialDict,
    OfficialObject,
    TypeReference,
    UnsafePickleError,
    load_pickled,
    torch_nn,
)

__all__ = ["KnownClasses", "OfficialDict", "OfficialObject", "TypeReference", "UnsafePickleError", "load_pickled",
           "torch_nn"]
