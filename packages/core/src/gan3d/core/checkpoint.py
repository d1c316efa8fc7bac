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
import warnings
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
    "check_training_state",
    "checkpoint_step",
    "describe_load_failure",
    "file_problem",
    "state_dict_mismatch",
    "torch_load_quietly",
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


def file_problem(path: Path | str) -> str | None:
    """What a file that ``torch.load`` cannot read is, judged from its first bytes, or ``None`` when
    it starts as a PyTorch file does (a zip archive, or a pickle for the legacy format).

    Downloads that went wrong are common: a Git LFS pointer committed instead of the weights, an
    HTML error page saved under the file's name, an empty file.
    """
    path = Path(path)
    if path.is_dir():
        return "is a folder, not a file"
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if not head:
        return "is empty (0 bytes); the download or copy did not finish"
    if head.startswith(b"PK\x03\x04") or head.startswith(b"\x80"):
        return None  # torch.save's zip format, or a legacy pickle
    if head.startswith(b"version https://git-lfs"):
        return ("is a Git LFS pointer, not the file itself: fetch the real file (git lfs pull) or download "
                "it again")
    text = head.lstrip().lower()
    if text.startswith((b"<!doctype html", b"<html", b"<?xml", b"<head", b"<body")):
        return ("is an HTML page, not a PyTorch file (a download that saved a web page, such as a login or "
                "error page?); download the file again")
    return "is not a PyTorch file (it starts with neither a zip nor a pickle header)"


def describe_load_failure(path: Path | str, exc: BaseException) -> str:
    """Why ``torch.load(path, weights_only=True)`` raised ``exc``, as a phrase to put after the
    file's name ("... is an HTML page", "... carries pickled Python objects (code) ...")."""
    problem = file_problem(path)
    if problem is not None:
        return problem
    if _carries_code(exc):
        return ("carries pickled Python objects (code), which gan3d never loads; only state dicts and plain "
                "data are accepted")
    return f"is not a readable PyTorch file (truncated or corrupt?): {_torch_error_gist(exc)}"


def _carries_code(exc: BaseException) -> bool:
    # weights_only refuses to look up any global (a class, a function to call): that is code.
    lowered = str(exc).lower()
    return isinstance(exc, pickle.UnpicklingError) and ("global" in lowered or "blocked" in lowered
                                                        or "unsupported class" in lowered)


def _torch_error_gist(exc: BaseException) -> str:
    """The informative line of a ``torch.load`` error, without torch's advice to load unsafely."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip() and "weights_only" not in line
             and "torch.load" not in line]
    return lines[0][:200] if lines else type(exc).__name__


def torch_load_quietly(path: Path | str, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(path, weights_only=True)`` without the warnings torch prints about odd files
    (the caller reports what is wrong)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.load(path, map_location=map_location, weights_only=True)


def load_checkpoint(path: Path | str, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``torch.load(weights_only=True)``.

    Raises :class:`CheckpointError` naming the file when it is missing, truncated, not a gan3d
    checkpoint (another program's file, a Git LFS pointer, an HTML page), or carries pickled code
    (which ``weights_only`` refuses to run).
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder; give a checkpoint file (JOB/checkpoints/checkpoint-*.pt)")
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    problem = file_problem(path)
    if problem is not None:
        raise CheckpointError(f"{path} {problem}")
    try:
        state = torch_load_quietly(path, map_location)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, KeyError, TypeError,
            AttributeError, IndexError, MemoryError, RecursionError) as exc:
        if _carries_code(exc):
            raise CheckpointError(f"{path}: refused: the file {describe_load_failure(path, exc)}") from None
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated or corrupt?): "
                              f"{_torch_error_gist(exc)}") from None
    if not isinstance(state, dict) or "recipe" not in state or "format" not in state:
        raise CheckpointError(f"{path}: not a gan3d checkpoint (no recipe/format entries)")
    fmt = state["format"]
    if not isinstance(fmt, int) or isinstance(fmt, bool) or fmt < 1:
        raise CheckpointError(f"{path}: not a gan3d checkpoint (its format is {fmt!r}, not a version number)")
    if fmt > CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: checkpoint format {fmt} is newer than this gan3d "
                              f"({CHECKPOINT_FORMAT}); upgrade gan3d")
    if not isinstance(state["recipe"], str):
        raise CheckpointError(f"{path}: not a gan3d checkpoint (its recipe is a {type(state['recipe']).__name__}, "
                              "not JSON text)")
    if "step" in state and (not isinstance(state["step"], int) or isinstance(state["step"], bool)
                            or state["step"] < 0):
        raise CheckpointError(f"{path}: damaged checkpoint: its step is {state['step']!r}, not a count")
    return migrate_checkpoint(state, path)


def checkpoint_step(state: dict[str, Any]) -> int:
    """The training step a loaded checkpoint was saved at (0 when it has none)."""
    return int(state.get("step", 0))


def check_training_state(state: dict[str, Any], path: Path | str) -> None:
    """Raise :class:`CheckpointError` unless ``state`` holds what a resumed run restores: the
    networks, the optimizer states, the RNG states and the step counters."""
    needed = {"G": dict, "G_ema": dict, "D": dict, "loss": dict, "G_opt": dict, "D_opt": dict, "rng": dict,
              "step": int, "nimg": int}
    if isinstance(state.get("meta"), dict) and state["meta"].get("imported"):
        # An official checkpoint imported by tools/run.py import: weights only (and maybe D); the
        # optimizers and random draws start afresh.
        needed = {"G": dict, "G_ema": dict, "step": int, "nimg": int}
    missing = [k for k in needed if k not in state]
    if missing:
        raise CheckpointError(f"{path}: cannot resume from it: it has no {', '.join(missing)} "
                              "(a generator-only export, or damaged); start a new job")
    wrong = [f"{k} is a {type(state[k]).__name__}" for k, t in needed.items()
             if not isinstance(state[k], t) or isinstance(state[k], bool)]
    if wrong:
        raise CheckpointError(f"{path}: damaged checkpoint: {', '.join(wrong)}")
    if "rng" in needed and (not isinstance(state["rng"].get("trainer"), torch.Tensor)
                            or not isinstance(state["rng"].get("torch"), torch.Tensor)):
        raise CheckpointError(f"{path}: damaged checkpoint: its rng entry lacks the trainer/torch states")


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
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as exc:
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
    if not isinstance(state.get(key), dict):
        raise CheckpointError(f"{path}: has no generator weights ('G' or 'G_ema' state dict); it cannot be "
                              "used for inference or evaluation")
    mismatch = state_dict_mismatch(G, state[key])
    if mismatch:
        raise CheckpointError(f"{path}: weights do not fit the recipe's generator ({key}): {mismatch}")
    try:
        G.load_state_dict(state[key])
    except (RuntimeError, TypeError, ValueError, KeyError, AttributeError) as exc:
        raise CheckpointError(f"{path}: weights do not fit the recipe's generator: {_first_line(exc)}") from None
    return G, recipe


def recipe_of(state: dict[str, Any], path: Path | str = "checkpoint") -> Recipe:
    """The recipe a checkpoint was trained with (:class:`CheckpointError` when it is unusable)."""
    if not isinstance(state.get("recipe"), str):
        raise CheckpointError(f"{path}: not a gan3d checkpoint (no recipe JSON text)")
    try:
        return Recipe.from_json(state["recipe"], source=f"{path} (recipe)")
    except RecipeError as exc:
        raise CheckpointError(str(exc)) from None
    except (TypeError, ValueError, AttributeError, RecursionError) as exc:
        raise CheckpointError(f"{path} (recipe): {exc}") from None


def load_generator(path: Path | str, *, ema: bool = True, device: str | torch.device = "cpu", registry=None):
    """Rebuild the generator of a checkpoint and load its weights.

    Returns ``(generator, recipe)``; the generator is in eval mode on ``device``. A recipe naming a
    plugin that is not installed raises the registry's error, which says what to install.
    """
    G, recipe = generator_from_checkpoint(load_checkpoint(path), path, ema=ema, registry=registry)
    return G.to(device).eval().requires_grad_(False), recipe


def state_dict_mismatch(module: torch.nn.Module, state: dict[str, Any], limit: int = 3) -> str | None:
    """Why ``state`` does not load into ``module`` (missing or unexpected keys, other shapes), in a
    line that names a few of each, or ``None`` when the keys and shapes fit."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
              if k in state and isinstance(state[k], torch.Tensor) and state[k].shape != v.shape]
    not_tensors = [k for k in own if k in state and not isinstance(state[k], torch.Tensor)]

    def some(keys: list[str]) -> str:
        return ", ".join(keys[:limit]) + (f" and {len(keys) - limit} more" if len(keys) > limit else "")

    parts = [f"{len(keys)} {what} ({some(keys)})" for keys, what in (
        (missing, "missing"), (unexpected, "unexpected"), (shapes, "of another shape"), (not_tensors, "not tensors"))
        if keys]
    return "; ".join(parts) or None


def _first_line(exc: BaseException, limit: int = 400) -> str:
    """The gist of a long error (PyTorch's load_state_dict lists every key over many lines)."""
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[:limit] + " ..."
