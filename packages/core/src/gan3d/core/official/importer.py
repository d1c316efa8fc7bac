"""Turning an officially released checkpoint into a gan3d checkpoint.

Each method that can read its authors' released weights registers an :class:`OfficialImporter`
under the ``importer`` family, in its own module (``gan3d.methods.<method>.official``): which classes
the file may name (:class:`~gan3d.core.official.pickles.KnownClasses`), how to rebuild the recipe
from what the file says about the network, and how the official state dict maps onto ours
(:func:`rename_keys`). Core does the rest: :func:`imported_checkpoint` checks every weight against
the generator the recipe builds (names and shapes, nothing left over, nothing missing) and
:func:`write_imported_checkpoint` writes an ordinary checkpoint (:mod:`gan3d.core.checkpoint`) that
``tools/run.py infer``, ``eval``, ``train --resume`` and :func:`~gan3d.core.checkpoint.load_generator`
accept.

Example:
    >>> importer = get_registry().get("importer", "eg3d")()                         # doctest: +SKIP
    >>> imported = importer.load("ffhq512-128.pkl")                                  # doctest: +SKIP
    >>> write_imported_checkpoint(imported, "ffhq512-128.pt")                        # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..checkpoint import CHECKPOINT_FORMAT, CheckpointError, atomic_write_bytes
from ..recipe import Recipe

__all__ = [
    "ImportedCheckpoint",
    "OfficialImporter",
    "rename_keys",
    "fit_state_dict",
    "file_sha256",
    "network_pickle_nets",
    "imported_checkpoint",
    "write_imported_checkpoint",
]

logger = logging.getLogger(__name__)


@dataclass
class ImportedCheckpoint:
    """What an importer read from an official file.

    Attributes:
        recipe: the gan3d recipe of the same network (the variant's, with the sizes and rendering
            options the file states).
        G: state dict of our generator holding the official generator's weights.
        G_ema: the same for the official moving average (the one the authors render with); ``None``
            when the file has none (then inference uses ``G``).
        D: state dict of our discriminator, or ``None`` when the file has no discriminator.
        meta: JSON-able facts: the source file and its SHA-256, the official class names, what was
            left out and why.
    """

    recipe: Recipe
    G: dict[str, Tensor]
    G_ema: dict[str, Tensor] | None = None
    D: dict[str, Tensor] | None = None
    meta: dict[str, Any] = field(default_factory=dict)


class OfficialImporter:
    """Reads one method's released checkpoint format (registered as ``importer`` ``<method>``).

    Subclasses set the class attributes and implement :meth:`load`.

    Attributes:
        method: the registered method name the checkpoints belong to.
        formats: one line naming the files it reads (shown by ``tools/run.py import --help`` and in errors).
        repository: the official repository, ``owner/name``.
    """

    method: str = ""
    formats: str = ""
    repository: str = ""

    def load(self, path: Path, *, variant: str | None = None) -> ImportedCheckpoint:
        """Read the official file at ``path``; ``variant`` picks the recipe where the file does not say.

        Raises :class:`~gan3d.core.checkpoint.CheckpointError` naming the file for anything that does
        not fit (and :class:`~gan3d.core.official.pickles.UnsafePickleError` for unknown globals).
        """
        raise NotImplementedError


def file_sha256(path: Path | str) -> str:
    """Hex SHA-256 of a file (recorded in the checkpoint's ``meta``)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def network_pickle_nets(data: Any, source: str, classes: Mapping[str, str], *, label: str) -> dict[str, Any]:
    """The networks of a StyleGAN2-ADA-style training snapshot (EG3D, EpiGRAF, StyleNeRF ``*.pkl``).

    ``data`` is what :func:`~gan3d.core.official.load_pickled` read; ``classes`` maps each entry that may be
    present (``"G"``, ``"G_ema"``, ``"D"``) to the official class name it must hold. Returns the
    entries present as ``{key: OfficialObject}``; a snapshot with neither ``G_ema`` nor ``G``, or an entry of
    another class, is a :class:`CheckpointError` naming ``source`` (``label``: "an EG3D", "a StyleNeRF" ...).
    """
    from .pickles import OfficialObject

    if not isinstance(data, dict) or not any(k in data for k in ("G_ema", "G")):
        raise CheckpointError(f"{source}: not {label} network pickle (no 'G_ema' or 'G' entry)")
    nets = {}
    for key, expected in classes.items():
        net = data.get(key)
        if net is None:
            continue
        if not isinstance(net, OfficialObject) or net.class_name != expected:
            raise CheckpointError(f"{source}: {key} is {net!r}, not {label} {expected}")
        nets[key] = net
    return nets


def rename_keys(state: Mapping[str, Tensor], rules: Iterable[tuple[str, str | None]]) -> dict[str, Tensor]:
    """Map official state-dict names to ours with the first matching ``(pattern, replacement)`` rule.

    Patterns are regular expressions matched against the whole name (``re.fullmatch``); the
    replacement uses ``\\1``-style groups, and ``None`` drops the entry. A name no rule matches is
    kept as it is (so that :func:`fit_state_dict` reports it).

    Example:
        >>> rules = [(r"decoder\\.net\\.0\\.(.*)", r"decoder.hidden.\\1")]
        >>> rename_keys({"decoder.net.0.weight": t}, rules)  # doctest: +SKIP
        {'decoder.hidden.weight': t}
    """
    compiled = [(re.compile(p), r) for p, r in rules]
    out: dict[str, Tensor] = {}
    for name, value in state.items():
        for pattern, replacement in compiled:
            match = pattern.fullmatch(name)
            if match:
                if replacement is not None:
                    out[match.expand(replacement)] = value
                break
        else:
            out[name] = value
    return out


def fit_state_dict(module: nn.Module, state: Mapping[str, Tensor], *, what: str) -> dict[str, Tensor]:
    """Check that ``state`` gives every entry of ``module.state_dict()`` with its shape, and nothing
    else; return it as float32/int tensors of our dtypes.

    Raises :class:`CheckpointError` listing the missing, unexpected and mis-shaped entries.
    """
    ours = module.state_dict()
    missing = [k for k in ours if k not in state]
    unexpected = [k for k in state if k not in ours]
    shapes = [f"{k}: official {tuple(state[k].shape)}, ours {tuple(ours[k].shape)}"
              for k in ours if k in state and tuple(state[k].shape) != tuple(ours[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)}: {', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)}: {', '.join(unexpected[:8])}"
                         f"{' ...' if len(unexpected) > 8 else ''}")
        if shapes:
            parts.append(f"shapes differ ({len(shapes)}): {'; '.join(shapes[:6])}")
        raise CheckpointError(f"{what}: the official weights do not fit the recipe's network: " + " | ".join(parts))
    return {k: state[k].detach().to(ours[k].dtype).clone().contiguous() for k in ours}


def imported_checkpoint(imported: ImportedCheckpoint, *, registry=None) -> dict[str, Any]:
    """The gan3d checkpoint dict of ``imported``, after building the recipe's generator (and
    discriminator) and loading every state dict into them strictly.

    The dict has no optimizer or random-number state: ``train --resume`` starts those afresh (and
    counts from step 0) when it continues from an imported checkpoint.
    """
    from ..generator import build_generator, build_module

    G = build_generator(imported.recipe, registry)
    for key in ("G", "G_ema"):
        weights = getattr(imported, key)
        if weights is not None:
            G.load_state_dict(fit_state_dict(G, weights, what=f"{key} of {imported.meta.get('source', 'the file')}"))
    state: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT,
        "recipe": imported.recipe.to_json(),
        "step": 0,
        "kimg": 0.0,
        "nimg": 0,
        "G": imported.G,
        "G_ema": imported.G_ema if imported.G_ema is not None else imported.G,
        "meta": {"imported": True, **imported.meta},
    }
    if imported.D is not None:
        if "discriminator" not in imported.recipe.modules:
            raise CheckpointError("the importer gave discriminator weights but the recipe has no discriminator")
        D = build_module(imported.recipe, "discriminator", registry)
        D.load_state_dict(fit_state_dict(D, imported.D, what=f"D of {imported.meta.get('source', 'the file')}"))
        state["D"] = imported.D
    return state


def write_imported_checkpoint(imported: ImportedCheckpoint, out: Path | str, *, overwrite: bool = False,
                              registry=None) -> Path:
    """Write ``imported`` as a gan3d checkpoint at ``out`` (atomically; an existing file is kept
    unless ``overwrite``). Returns the path."""
    out = Path(out)
    if out.exists() and not overwrite:
        raise CheckpointError(f"{out} exists; choose another --out or pass --overwrite (nothing was written)")
    state = imported_checkpoint(imported, registry=registry)
    atomic_write_bytes(out, lambda f: torch.save(state, f))
    logger.info("wrote %s (%s, from %s)", out, imported.recipe.method, imported.meta.get("source"))
    return out
