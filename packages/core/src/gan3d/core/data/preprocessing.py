"""Image preprocessing as plain data: the official data pipelines of each method, step by step.

A pipeline is a list of steps, each a JSON-able dict, kept in a recipe's ``data`` section
(``recipe.data["preprocessing"]``) so that ``--set`` can change it and checkpoints record it::

    [{"op": "resize", "size": 320, "filter": "bilinear"},        # short side to 320 (torchvision Resize(320))
     {"op": "center_crop", "size": 256},                          # torchvision CenterCrop(256)
     {"op": "resize", "size": "training", "filter": "torch_nearest"}]   # to the training size

Steps (semantics of the libraries the official code uses, so a pipeline is the official one):

* ``resize``: ``size`` an int (the short side, the long side ``int(size * long / short)``, as
  torchvision's ``Resize(int)``), ``[height, width]``, or ``"training"`` (the training image size
  ``R``, given when the data set is opened: ``[R, R]``, or the short side ``R`` with
  ``"fit": "short_side"``). ``filter``: PIL's ``nearest``, ``bilinear`` (torchvision's
  default on PIL images), ``bicubic``, ``lanczos``, ``hamming``, ``box``; ``torch_nearest`` (the
  nearest neighbour of ``torch.nn.functional.interpolate``, source index ``floor(i * in / out)``,
  which torchvision uses on tensors: pi-GAN's CelebA resizes a tensor); ``area`` (OpenCV's pixel-area
  average). PIL filters are anti-aliased when shrinking, as PIL always is.
* ``center_crop``: ``size`` an int, ``[height, width]`` or ``"training"``; torchvision's ``CenterCrop`` (offsets
  ``int(round((H - h) / 2))``, zero padding when the image is smaller).
* ``random_crop``: torchvision's ``RandomCrop(size)`` without padding (offsets uniform in
  ``[0, H - h]``), drawn from the data set's per-process generator.
* ``square_center_crop``: the centred square of the short side (EG3D ``dataset_tool.py``
  ``center_crop``: rows ``(H - s) // 2 : (H + s) // 2``).

Horizontal flips are not a step: ``training.xflip`` doubles the data set with mirrored copies (and
mirrors camera labels), which draws the same distribution as the official per-item random flips.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from .archives import DatasetError

__all__ = ["Preprocessing", "PreprocessingError", "FILTERS", "OPS"]

#: resize filters by name (PIL's, plus torch's nearest and OpenCV's area average).
FILTERS = ("nearest", "bilinear", "bicubic", "lanczos", "hamming", "box", "torch_nearest", "area")
#: step names and the keys each takes besides ``op`` (True: required, False: optional).
OPS: dict[str, dict[str, bool]] = {
    "resize": {"size": True, "filter": True, "fit": False},
    "center_crop": {"size": True},
    "random_crop": {"size": True},
    "square_center_crop": {},
}
_RANDOM_OPS = {"random_crop"}


class PreprocessingError(DatasetError):
    """A preprocessing spec is malformed; the message names the step and the key."""


def _pil_filter(name: str) -> int:
    from PIL import Image

    return {"nearest": Image.NEAREST, "bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC,
            "lanczos": Image.LANCZOS, "hamming": Image.HAMMING, "box": Image.BOX}[name]


def _check_size(value: Any, where: str, allow_training: bool) -> None:
    if allow_training and value == "training":
        return
    if isinstance(value, bool):
        ok = False
    elif isinstance(value, int):
        ok = value > 0
    elif isinstance(value, (list, tuple)):
        ok = len(value) == 2 and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
    else:
        ok = False
    if not ok:
        extra = ', or "training" (the training image size)' if allow_training else ""
        raise PreprocessingError(f"{where}: size must be a positive int (the short side for resize, the square side "
                                 f"for crops) or [height, width]{extra}; got {value!r}")


def _validate(step: Any, where: str) -> dict[str, Any]:
    if not isinstance(step, dict) or "op" not in step:
        raise PreprocessingError(f"{where} must be a dict with an 'op' ({', '.join(OPS)}), got {step!r}")
    op = step["op"]
    if op not in OPS:
        raise PreprocessingError(f"{where}: unknown op {op!r}; ops: {', '.join(OPS)}")
    keys = OPS[op]
    unknown = set(step) - set(keys) - {"op"}
    if unknown:
        raise PreprocessingError(f"{where}: op {op!r} takes {sorted(keys) or 'no options'}, not {sorted(unknown)}")
    missing = [k for k, required in keys.items() if required and k not in step]
    if missing:
        raise PreprocessingError(f"{where}: op {op!r} needs {missing}")
    if "size" in keys:
        _check_size(step["size"], where, allow_training=True)
    if op == "resize" and step["filter"] not in FILTERS:
        raise PreprocessingError(f"{where}: filter {step['filter']!r} is unknown; filters: {', '.join(FILTERS)}")
    if "fit" in step and (step["fit"] not in ("exact", "short_side") or step["size"] != "training"):
        raise PreprocessingError(f"{where}: 'fit' ('exact' or 'short_side') applies to size \"training\" only, "
                                 f"got fit={step['fit']!r} with size={step['size']!r}")
    return copy.deepcopy(step)


def _as_hw(size: int | Sequence[int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def _resize(image: np.ndarray, size: Any, filter_name: str) -> np.ndarray:
    height, width = image.shape[:2]
    if isinstance(size, int):
        # torchvision.transforms.functional._compute_resized_output_size: the short side to `size`,
        # the long side truncated to int(size * long / short).
        short, long = (width, height) if width <= height else (height, width)
        new_short, new_long = size, int(size * long / short)
        out_h, out_w = (new_long, new_short) if width <= height else (new_short, new_long)
    else:
        out_h, out_w = _as_hw(size)
    if (out_h, out_w) == (height, width):
        return image
    if filter_name == "torch_nearest":
        # torch.nn.functional.interpolate(mode="nearest"): source index floor(dst * in / out).
        rows = np.minimum((np.arange(out_h) * (height / out_h)).astype(np.int64), height - 1)
        cols = np.minimum((np.arange(out_w) * (width / out_w)).astype(np.int64), width - 1)
        return image[rows][:, cols]
    if filter_name == "area":
        interpolation = cv2.INTER_AREA if out_h <= height and out_w <= width else cv2.INTER_LINEAR
        return cv2.resize(np.ascontiguousarray(image), (out_w, out_h), interpolation=interpolation)
    from PIL import Image

    resized = Image.fromarray(np.ascontiguousarray(image)).resize((out_w, out_h), _pil_filter(filter_name))
    return np.asarray(resized)


def _center_crop(image: np.ndarray, size: Any) -> np.ndarray:
    crop_h, crop_w = _as_hw(size)
    height, width = image.shape[:2]
    if crop_h > height or crop_w > width:
        # torchvision CenterCrop pads with zeros first: left/top (d // 2), right/bottom ((d + 1) // 2).
        pad_h, pad_w = max(crop_h - height, 0), max(crop_w - width, 0)
        image = np.pad(image, ((pad_h // 2, (pad_h + 1) // 2), (pad_w // 2, (pad_w + 1) // 2), (0, 0)))
        height, width = image.shape[:2]
    top = int(round((height - crop_h) / 2.0))
    left = int(round((width - crop_w) / 2.0))
    return image[top:top + crop_h, left:left + crop_w]


def _random_crop(image: np.ndarray, size: Any, rng: np.random.Generator, where: str) -> np.ndarray:
    crop_h, crop_w = _as_hw(size)
    height, width = image.shape[:2]
    if crop_h > height or crop_w > width:
        raise DatasetError(f"{where}: random_crop of {crop_w}x{crop_h} does not fit the {width}x{height} image; "
                           "resize it first (the recipe's preprocessing) or give larger images")
    top = int(rng.integers(0, height - crop_h + 1))
    left = int(rng.integers(0, width - crop_w + 1))
    return image[top:top + crop_h, left:left + crop_w]


def _square_center_crop(image: np.ndarray) -> np.ndarray:
    height, width = image.shape[:2]
    side = min(height, width)
    return image[(height - side) // 2:(height + side) // 2, (width - side) // 2:(width + side) // 2]


class Preprocessing:
    """A validated pipeline of steps (see the module docstring); callable on ``[H, W, 3]`` uint8 images.

    Args:
        steps: the spec, a list of step dicts (``None`` or ``[]``: no preprocessing).
        where: how to name the spec in errors (``'recipe data.preprocessing'``).

    Example:
        >>> pipeline = Preprocessing([{"op": "resize", "size": 320, "filter": "bilinear"},
        ...                           {"op": "center_crop", "size": 256},
        ...                           {"op": "resize", "size": "training", "filter": "torch_nearest"}])
        >>> out = pipeline.resolved(64)(np.zeros((218, 178, 3), np.uint8), np.random.default_rng(0))
        >>> out.shape
        (64, 64, 3)
    """

    def __init__(self, steps: Sequence[dict[str, Any]] | None = None, where: str = "preprocessing") -> None:
        if steps is not None and not isinstance(steps, (list, tuple)):
            raise PreprocessingError(f"{where} must be a list of steps, got {type(steps).__name__}")
        self.where = where
        self.steps: list[dict[str, Any]] = [_validate(s, f"{where}[{i}]") for i, s in enumerate(steps or [])]

    def to_spec(self) -> list[dict[str, Any]]:
        """The steps as plain data (a deep copy)."""
        return copy.deepcopy(self.steps)

    @property
    def needs_resolution(self) -> bool:
        """Whether a step resizes to the training size (so :meth:`resolved` needs one)."""
        return any(s.get("size") == "training" for s in self.steps)

    @property
    def is_random(self) -> bool:
        return any(s["op"] in _RANDOM_OPS for s in self.steps)

    def resolved(self, resolution: int | None) -> Preprocessing:
        """A copy with ``"training"`` sizes replaced by ``[resolution, resolution]`` (``resolution`` for a
        resize with ``"fit": "short_side"``)."""
        if self.needs_resolution and resolution is None:
            raise PreprocessingError(f"{self.where} resizes or crops to the training size; give the resolution")
        steps = []
        for s in self.steps:
            if s.get("size") == "training":
                fit = s.get("fit", "exact")
                s = {k: v for k, v in s.items() if k != "fit"}
                s["size"] = resolution if fit == "short_side" else [resolution, resolution]
            steps.append(s)
        return Preprocessing(steps, self.where)

    def deterministic_prefix(self) -> Preprocessing:
        """The steps before the first random one (what ``datasets prepare`` can apply once, ahead)."""
        steps = []
        for step in self.steps:
            if step["op"] in _RANDOM_OPS:
                break
            steps.append(step)
        return Preprocessing(steps, self.where)

    def after(self, applied: Sequence[dict[str, Any]]) -> Preprocessing | None:
        """The remaining steps when ``applied`` (a prepared set's record) is a prefix of this pipeline,
        else ``None``."""
        applied = list(applied)
        if self.steps[:len(applied)] != applied:
            return None
        return Preprocessing(self.steps[len(applied):], self.where)

    def __call__(self, image: np.ndarray, rng: np.random.Generator, where: str = "image") -> np.ndarray:
        """Apply every step to ``image [H, W, C]`` uint8; returns ``[H', W', C]`` uint8."""
        for step in self.steps:
            op = step["op"]
            if step.get("size") == "training":
                raise PreprocessingError(f"{self.where}: resolve the training size first (resolved(resolution))")
            if op == "resize":
                image = _resize(image, step["size"], step["filter"])
            elif op == "center_crop":
                image = _center_crop(image, step["size"])
            elif op == "random_crop":
                image = _random_crop(image, step["size"], rng, where)
            else:
                image = _square_center_crop(image)
        return image

    def __len__(self) -> int:
        return len(self.steps)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Preprocessing) and self.steps == other.steps

    def describe(self) -> str:
        """One line: ``resize 320 (bilinear) -> center_crop 256 -> resize training (torch_nearest)``."""
        if not self.steps:
            return "none"
        parts = []
        for s in self.steps:
            size = s.get("size")
            size = "x".join(map(str, size)) if isinstance(size, list) else size
            parts.append(" ".join(str(p) for p in (s["op"], size) if p is not None)
                         + (f" ({s['filter']})" if "filter" in s else ""))
        return " -> ".join(parts)

    def __repr__(self) -> str:
        return f"Preprocessing({self.describe()})"
