"""Loading a network's weights from a user-given file, with errors that say what to do.

Nothing is downloaded: every metric network takes the path of its published weight file as an
option. Files are read with ``torch.load(weights_only=True)``, so a file can hold tensors and plain
containers only, never pickled code.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

from gan3d.core.checkpoint import describe_load_failure, torch_load_quietly

__all__ = ["WeightsError", "load_weights", "file_digest", "read_state_dict"]

logger = logging.getLogger(__name__)


class WeightsError(RuntimeError):
    """A weight file is missing, unreadable, or does not fit the network."""


def file_digest(path: str | Path, length: int = 16) -> str:
    """The first ``length`` hex digits of the file's SHA-256 (keys caches to the exact weights)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:length]


def _missing_message(what: str, path: str, option: str, expected_name: str, source: str) -> str:
    where = f"'{path}' does not exist" if path else "no file was given"
    return (
        f"{what} weights: {where}. Get {expected_name} ({source}), put it anywhere readable and pass its "
        f"path as the evaluator option '{option}'."
    )


def read_state_dict(
    path: str | Path,
    *,
    what: str,
    option: str,
    expected_name: str,
    source: str,
    nested_keys: Sequence[str] = ("state_dict",),
) -> dict[str, torch.Tensor]:
    """Read a state dict from ``path`` with ``torch.load(weights_only=True)``.

    A file that holds a dict with one of ``nested_keys`` (e.g. Deep3DFaceRecon's ``net_recon``) is
    unwrapped; a ``module.`` prefix left by ``DataParallel`` is stripped.
    """
    path = str(path or "")
    if not path or not Path(path).is_file():
        raise WeightsError(_missing_message(what, path, option, expected_name, source))
    try:
        obj = torch_load_quietly(path)
    except Exception as exc:  # unpickling errors come in many types
        raise WeightsError(
            f"{what} weights: '{path}' {describe_load_failure(path, exc)} (read with torch.load(weights_only=True)). "
            f"Expected a PyTorch state dict such as {expected_name} ({source})."
        ) from None
    for key in nested_keys:
        if isinstance(obj, Mapping) and key in obj and isinstance(obj[key], Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(
            f"{what} weights: '{path}' holds a {type(obj).__name__}, not a state dict of tensors "
            f"(looked inside keys {list(nested_keys)}). Expected {expected_name} ({source})."
        )
    state = dict(obj)
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def load_weights(
    module: nn.Module,
    path: str | Path,
    *,
    what: str,
    option: str,
    expected_name: str,
    source: str,
    nested_keys: Sequence[str] = ("state_dict",),
    ignore_unexpected: Sequence[str] = (),
) -> nn.Module:
    """Load ``path`` into ``module`` strictly, raising :class:`WeightsError` with the differences.

    Args:
        module: the network to fill.
        path: the weight file (the user's option value).
        what: the network's name for messages ("FID Inception-v3").
        option: the option that takes the path ("fid.inception_weights").
        expected_name: the published file name ("pt_inception-2015-12-05-6726825d.pth").
        source: where that file is published.
        nested_keys: dict keys that may wrap the state dict in the file.
        ignore_unexpected: key prefixes in the file that the network does not use (e.g. a
            classifier head); they are dropped silently.

    ``num_batches_tracked`` buffers absent from older files are not required.
    """
    state = read_state_dict(path, what=what, option=option, expected_name=expected_name, source=source,
                            nested_keys=nested_keys)
    state = {k: v for k, v in state.items() if not any(k.startswith(p) for p in ignore_unexpected)}
    own = module.state_dict()
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        raise WeightsError(
            f"{what} weights: '{path}' does not fit the network: {len(missing)} missing key(s) "
            f"{missing[:5]}, {len(unexpected)} unexpected key(s) {unexpected[:5]}. "
            f"Expected {expected_name} ({source})."
        )
    wrong = [(k, tuple(state[k].shape), tuple(v.shape)) for k, v in own.items() if k in state
             and tuple(state[k].shape) != tuple(v.shape)]
    if wrong:
        k, got, want = wrong[0]
        raise WeightsError(
            f"{what} weights: '{path}' has {len(wrong)} tensor(s) of the wrong shape, e.g. {k!r} is {got}, "
            f"the network needs {want}. Is it the right architecture? Expected {expected_name} ({source})."
        )
    for k, v in own.items():  # files written before BatchNorm counted batches lack these buffers
        if k not in state:
            state[k] = v
    module.load_state_dict(state, strict=True)
    logger.info("loaded %s weights from %s", what, path)
    return module
