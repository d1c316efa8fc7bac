"""Checkpoints: state dicts plus the JSON recipe, written atomically, loaded without running code.

A checkpoint is a plain ``dict`` of tensors, numbers and strings, saved with ``torch.save`` and
loaded with ``torch.load(weights_only=True)``: a file that carries pickled code is refused. The
recipe inside is enough to rebuild the generator, given the plugins it names.

Layout of the dict::

    {"format": 2, "recipe": "<json>", "step": int, "kimg": float,
     "G": state_dict, "G_ema": state_dict, "D": state_dict, "loss": state_dict,
     "G_opt": state_dict, "D_opt": state_dict, "rng": {...}, "meta": {...}}

Formats: 1, before the Generator v2 contracts; 2, since. An older checkpoint is migrated when it is
loaded (:func:`migrate_checkpoint`): core moves its own entries and every plugin its modules' (the
``gan3d_migrate_checkpoint`` hook).
"""

from __future__ import annotations

import json
import os
import pickle
import re
import tempfile
from pathlib import Path
from typing import Any

import torch

from .recipe import Recipe, RecipeError

__all__ = [
    "CheckpointError",
    "save_checkpoint",
    "load_checkpoint",
    "list_checkpoints",
    "latest_checkpoint",
    "load_generator",
    "atomic_write_bytes",
    "CHECKPOINT_FORMAT",
    "migrate_checkpoint",
    "generator_from_checkpoint",
]

CHECKPOINT_FORMAT = 2
_NAME = re.compile(r"^checkpoint-(\d{9})\.pt$")


class CheckpointError(RuntimeError):
    """A checkpoint cannot be read or used; the message names the file."""


def atomic_write_bytes(path: Path, write) -> None:
    """Write a file through ``write(file_object)`` into a temporary file in the same folder, fsync
    it, then rename it over ``path``: a reader never sees a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def checkpoint_path(folder: Path, step: int) -> Path:
    return Path(folder) / f"checkpoint-{step:09d}.pt"


def save_checkpoint(folder: Path, step: int, state: dict[str, Any], keep: int = 2) -> Path:
    """Save ``state`` as ``folder/checkpoint-<step>.pt`` atomically; keep the newest ``keep``
    complete checkpoints (the previous one is deleted only after the new one is in place)."""
    path = checkpoint_path(folder, step)
    state = {"format": CHECKPOINT_FORMAT, **state, "step": step}
    atomic_write_bytes(path, lambda f: torch.save(state, f))
    if keep > 0:
        for old in list_checkpoints(folder)[:-keep]:
            old.unlink(missing_ok=True)
    # A run killed while writing leaves its temporary file behind; one writer per job, so any
    # other temporary checkpoint here is such a leftover.
    for stale in Path(folder).glob(".checkpoint-*.tmp"):
        stale.unlink(missing_ok=True)
    return path


def list_checkpoints(folder: Path) -> list[Path]:
    """Complete checkpoints in ``folder``, oldest first (temporary files are ignored)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if _NAME.match(p.name))


def latest_checkpoint(folder: Path) -> Path | None:
    found = list_checkpoints(folder)
    return found[-1] if found else None


def load_checkpoint(path: Path | str, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``torch.load(weights_only=True)``.

    Raises :class:`CheckpointError` naming the file when it is missing, truncated, not a gan3d
    checkpoint, or carries pickled code (which ``weights_only`` refuses to run).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{path}: refused: the file carries pickled Python objects (code), which gan3d never loads; "
            f"only state dicts and plain data are accepted ({str(exc).splitlines()[0]})"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated or corrupt?): {exc}") from None
    if not isinstance(state, dict) or "recipe" not in state or "format" not in state:
        raise CheckpointError(f"{path}: not a gan3d checkpoint (no recipe/format entries)")
    if state["format"] > CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: checkpoint format {state['format']} is newer than this gan3d "
                              f"({CHECKPOINT_FORMAT}); upgrade gan3d")
    return migrate_checkpoint(state, path)


def _migrate_core_1(state: dict[str, Any]) -> None:
    """Format 1 -> 2, core's entries: ``training.frozen_modules`` (generator attribute names) becomes
    ``training.frozen_slots`` (slot names); the mapper's ``num_ws`` is dropped (the generator wires it
    from the rows its consumers read)."""
    recipe = json.loads(state["recipe"])
    mapper = recipe.get("modules", {}).get("stochasticity_mapper", {})
    mapper.get("kwargs", {}).pop("num_ws", None)
    training = recipe.get("training", {})
    names = {"mapper": "stochasticity_mapper", "pose_sampler": "pose_sampler", "point_sampler": "point_sampler",
             "embedder": "point_embedder", "decoder": "feature_decoder", "renderer": "volume_renderer",
             "upsampler": "upsampler"}
    if "frozen_modules" in training:
        training["frozen_slots"] = [names.get(n, n) for n in training.pop("frozen_modules")]
    state["recipe"] = json.dumps(recipe)


def migrate_checkpoint(state: dict[str, Any], path: Path | str = "checkpoint", registry=None) -> dict[str, Any]:
    """Bring ``state`` (a loaded checkpoint dict) to :data:`CHECKPOINT_FORMAT`, in place; returns it.

    Each step runs core's migration, then every plugin's ``gan3d_migrate_checkpoint`` hook.
    """
    from .registry import get_registry

    fmt = state.get("format")
    if not isinstance(fmt, int) or isinstance(fmt, bool) or fmt < 1:
        raise CheckpointError(f"{path}: checkpoint format must be a positive integer, got {fmt!r}")
    core_steps = {1: _migrate_core_1}
    try:
        while state["format"] < CHECKPOINT_FORMAT:
            step = state["format"]
            core_steps[step](state)
            (registry or get_registry()).call_hook("gan3d_migrate_checkpoint", state=state, from_format=step)
            state["format"] = step + 1
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: cannot migrate this format-{fmt} checkpoint: {exc!r}") from None
    return state


def generator_from_checkpoint(state: dict[str, Any], path: Path | str = "checkpoint", *, ema: bool = True,
                              registry=None):
    """Rebuild the generator of a loaded (and migrated) checkpoint dict and load its weights;
    returns ``(generator, recipe)`` in train mode on the CPU."""
    from .generator import build_generator
    from .registry import RegistryError

    recipe = recipe_of(state, path)
    try:
        G = build_generator(recipe, registry)
    except (RegistryError, RecipeError) as exc:
        raise CheckpointError(f"{path}: cannot rebuild its generator: {exc}") from None
    key = "G_ema" if ema and "G_ema" in state else "G"
    try:
        G.load_state_dict(state[key])
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit the recipe's generator: {exc}") from None
    return G, recipe


def recipe_of(state: dict[str, Any], path: Path | str = "checkpoint") -> Recipe:
    try:
        return Recipe.from_json(state["recipe"], source=f"{path} (recipe)")
    except RecipeError as exc:
        raise CheckpointError(str(exc)) from None


def load_generator(path: Path | str, *, ema: bool = True, device: str | torch.device = "cpu", registry=None):
    """Rebuild the generator of a checkpoint and load its weights.

    Returns ``(generator, recipe)``; the generator is in eval mode on ``device``. A recipe naming a
    plugin that is not installed raises the registry's error, which says what to install.
    """
    G, recipe = generator_from_checkpoint(load_checkpoint(path), path, ema=ema, registry=registry)
    return G.to(device).eval().requires_grad_(False), recipe
