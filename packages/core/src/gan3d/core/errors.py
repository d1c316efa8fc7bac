"""What a user sees when a command fails: one line and an exit status, never a traceback.

:func:`user_message` turns an exception into ``(message, exit status)``:

- bad input (a recipe, an option, a data set, a checkpoint, a job directory, a weight file) and
  training that cannot go on: the error's own message, status 2;
- the machine (a file that cannot be written, a full disk, memory, a data-loader worker killed from
  outside, e.g. by the out-of-memory killer): what failed and where, status 2;
- Ctrl-C and SIGTERM: what was saved and how to go on, status 128 + the signal number;
- anything else is a bug: its type and first line, with how to get the traceback, status 1.

``GAN3D_DEBUG=1`` in the environment (:func:`debug_enabled`) makes the command line re-raise
instead, so that the traceback is printed for a bug report.
"""

from __future__ import annotations

import errno
import os
import signal

__all__ = ["user_message", "debug_enabled", "one_line", "DEBUG_ENV", "BAD_INPUT_ERRORS"]

DEBUG_ENV = "GAN3D_DEBUG"

#: Names of the library's own bad-input errors, matched by name so that this module imports
#: nothing heavy and plugins' errors of the same names (their own ``WeightsError``) count too.
BAD_INPUT_ERRORS = frozenset({
    "RecipeError", "RegistryError", "CheckpointError", "DatasetError", "WorkDirError", "TrainingError",
    "WeightsError", "OptionError",
})


def debug_enabled() -> bool:
    return os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no", "off")


def one_line(text: str) -> str:
    """``text`` with its line breaks and runs of spaces made single spaces."""
    return " ".join(str(text).split())


def _gist(exc: BaseException, limit: int = 300) -> str:
    text = one_line(str(exc)) or type(exc).__name__
    return text if len(text) <= limit else text[:limit] + " ..."


def user_message(exc: BaseException) -> tuple[str, int]:
    """The one line to print for ``exc`` and the exit status (see the module docstring)."""
    if isinstance(exc, KeyboardInterrupt):
        signum = getattr(exc, "signum", None) or signal.SIGINT
        text = _gist(exc) if str(exc) else "interrupted (Ctrl-C)"
        return text, 128 + int(signum)
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & BAD_INPUT_ERRORS:
        return one_line(str(exc)), 2
    text = str(exc)
    if "OutOfMemoryError" in names or isinstance(exc, MemoryError) or (
            isinstance(exc, RuntimeError) and ("can't allocate memory" in text or "out of memory" in text)):
        return (f"out of memory ({_gist(exc, 160)}); lower --batch_size or the resolution, or use a machine "
                "with more memory"), 2
    if isinstance(exc, RuntimeError) and "DataLoader worker" in text and (
            "killed by signal" in text or "exited unexpectedly" in text):
        # PyTorch's words when a loader process dies under the trainer. Signals meant for a run stop it
        # cleanly (the workers sit in a process group of their own), so this one came from outside: the
        # kernel's out-of-memory killer, or a kill aimed at the worker's pid.
        return (f"a data-loader worker died ({_gist(exc, 160)}): it was killed from outside gan3d, by the "
                "out-of-memory killer (see `dmesg`) or a signal sent to its process; the checkpoints already "
                "written are kept: continue with --resume (fewer --workers use less memory)"), 2
    if isinstance(exc, OSError) and not isinstance(exc, (TimeoutError, ConnectionError)):
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        what = exc.strerror or _gist(exc)
        if exc.errno == errno.ENOSPC:
            what += " (free some space or write elsewhere)"
        return f"{where}{what}", 2
    if isinstance(exc, (ValueError, LookupError)) and not isinstance(exc, (KeyError, IndexError)):
        return one_line(str(exc)) or type(exc).__name__, 2
    return (f"internal error: {type(exc).__name__}: {_gist(exc)}. This is a bug in gan3d or a plugin; run again "
            f"with {DEBUG_ENV}=1 for the traceback and report it"), 1
