"""Checks of values a user types (command-line options), each failing with a message that names
the option, what is wrong and what would do.

Every check raises :class:`OptionError` (a ``ValueError``) and returns the value it accepted, so
a command line can run them all before it builds or writes anything::

    seed = check_seed(args.seed)                      # OptionError: --seed must be an integer in ...
    device = check_device("cuda:1")                   # OptionError: --device cuda:1: ... 1 GPU visible
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

__all__ = [
    "OptionError",
    "MAX_SEED",
    "check_seed",
    "check_positive_int",
    "check_non_negative_int",
    "check_int_in",
    "check_finite",
    "check_kimg",
    "check_device",
    "check_name",
    "check_job_name",
    "check_folder",
    "check_file",
]

#: Seeds are 32-bit, as in StyleGAN's and EG3D's scripts (``np.random.RandomState`` takes no more).
MAX_SEED = 2**32 - 1


class OptionError(ValueError):
    """A command-line value that cannot be used; the message names the option."""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_seed(value: Any, flag: str = "--seed") -> int:
    if not _is_int(value) or not 0 <= value <= MAX_SEED:
        raise OptionError(f"{flag} must be an integer in [0, {MAX_SEED}] (32 bits), got {value!r}")
    return value


def check_positive_int(value: Any, flag: str, *, minimum: int = 1, what: str = "") -> int:
    if not _is_int(value) or value < minimum:
        raise OptionError(f"{flag} must be an integer >= {minimum}{what}, got {value!r}")
    if value > 2**31 - 1:
        raise OptionError(f"{flag} {value} is too large (at most {2**31 - 1})")
    return value


def check_non_negative_int(value: Any, flag: str, *, what: str = "") -> int:
    return check_positive_int(value, flag, minimum=0, what=what)


def check_int_in(value: Any, flag: str, low: int, high: int, *, what: str = "") -> int:
    if not _is_int(value) or not low <= value <= high:
        raise OptionError(f"{flag} must be an integer in [{low}, {high}]{what}, got {value!r}")
    return value


def check_finite(value: Any, flag: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise OptionError(f"{flag} must be a finite number, got {value!r}")
    return value


def check_kimg(value: Any, flag: str = "--kimg") -> float:
    """A run length in thousands of images: finite, and at least one image (0.001)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise OptionError(f"{flag} must be a positive number of thousands of images, got {value}")
    if int(value * 1000) < 1:
        raise OptionError(f"{flag} {value} is less than one image; give at least 0.001")
    return value


def check_device(value: str, flag: str = "--device") -> str:
    """A torch device string that this machine has: ``cpu``, ``cuda``, ``cuda:N``, ``mps``..."""
    import torch

    try:
        device = torch.device(value)
    except (RuntimeError, ValueError, TypeError):
        raise OptionError(f"{flag} {value!r} is not a device; use cpu, cuda, cuda:N or mps") from None
    if device.type == "cpu":
        return value
    if device.type == "cuda":
        if not torch.cuda.is_available():
            why = ("this PyTorch was built without CUDA" if torch.version.cuda is None
                   else "no CUDA GPU is visible (check the driver and CUDA_VISIBLE_DEVICES)")
            raise OptionError(f"{flag} {value}: {why}; use --device cpu")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise OptionError(f"{flag} {value}: only {count} CUDA device(s) visible (cuda:0 to cuda:{count - 1})")
        return value
    backend = getattr(torch.backends, device.type, None) or getattr(torch, device.type, None)
    available = getattr(backend, "is_available", None)
    if callable(available) and available():
        return value
    raise OptionError(f"{flag} {value}: no {device.type} device is available here; use cpu or cuda")


def check_name(value: str, flag: str, what: str = "a name") -> str:
    """A non-empty name (a method, a variant)."""
    if not value.strip():
        raise OptionError(f"{flag} must be {what}, got an empty string")
    return value


def check_job_name(value: str, flag: str = "--job_name") -> str:
    """A job directory name under the root: relative, without ``..``, not empty."""
    path = Path(value)
    if not value.strip() or path.is_absolute() or any(part in ("..", ".") for part in path.parts) or not path.parts:
        raise OptionError(f"{flag} {value!r} must be a folder name under --root_work_dir "
                          "(relative, without '.' or '..' parts)")
    if any(ord(ch) < 32 for ch in value):
        raise OptionError(f"{flag} {value!r} holds control characters")
    return value


def check_folder(value: str, flag: str) -> str:
    """A folder path (existing or to be made): no file stands at it or at one of its parents."""
    if "\x00" in value:
        raise OptionError(f"{flag} {value!r} holds a NUL character")
    path = Path(value)
    for candidate in (path, *path.parents):
        if candidate.exists():
            if not candidate.is_dir():
                raise OptionError(f"{flag} {value}: {candidate} is a file, not a folder")
            if not os.access(candidate, os.W_OK | os.X_OK):
                raise OptionError(f"{flag} {value}: cannot write into {candidate} (permission denied)")
            break
    return value


def check_file(value: str, flag: str, what: str = "file") -> str:
    """An existing, readable file."""
    if "\x00" in value:
        raise OptionError(f"{flag} {value!r} holds a NUL character")
    path = Path(value)
    if path.is_dir():
        raise OptionError(f"{flag} {value} is a folder; give the {what} itself")
    if not path.is_file():
        raise OptionError(f"{flag} {value}: no such {what}")
    if not os.access(path, os.R_OK):
        raise OptionError(f"{flag} {value}: cannot read it (permission denied)")
    return value
