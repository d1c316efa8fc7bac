"""Per-image labels of a data set, read by format: EG3D's ``dataset.json`` camera labels, and more by plugin.

A label reader answers one question: given a data set's :class:`~gan3d.core.data.archives.Archive`
(and optionally a labels file the user names), which images carry which label rows? It returns a
:class:`LabelTable`, or ``None`` when the set carries no labels of its format. New formats (GRAM's
per-image Cats pose files, EpiGRAF's ``camera_angles`` in ``dataset.json``) are one function each,
added with :func:`register_label_reader`; :class:`~gan3d.core.data.ImageDataset` asks the reader the
recipe names (``recipe.data["label_format"]``, default ``"eg3d"``).

EG3D's format (``dataset_tool.py``, ``training/dataset.py``)::

    dataset.json = {"labels": [[relative_path, [16 cam2world floats, 9 normalized intrinsics]], ...]}
    dataset.json = {"labels": null}            # dataset_tool's output for unlabelled images

gan3d's ``datasets prepare`` adds a ``"gan3d"`` key recording the preprocessing it applied.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .archives import Archive, DatasetError

__all__ = ["LabelTable", "LabelReader", "LABEL_READERS", "register_label_reader", "read_labels",
           "read_dataset_json", "normalize_name", "escapes", "CAMERA_LABEL_DIM"]

#: length of an EG3D camera label: 16 cam2world + 9 intrinsics floats.
CAMERA_LABEL_DIM = 25


@dataclass
class LabelTable:
    """Label rows by image name.

    Attributes:
        names: image names (archive members), in the order of ``values``.
        values: ``[N, D]`` float32 rows.
        kind: what a row is: ``'camera'`` (EG3D's 25 floats, mirrored with ``Cameras.mirror_x`` under
            x-flips) or another format's name.
        source: where the labels came from, for messages (``'set.zip: dataset.json'``).
    """

    names: list[str]
    values: np.ndarray
    kind: str
    source: str


#: ``reader(archive, labels_file, **options) -> LabelTable | None``; ``labels_file``: a path the user gave, or
#: ``None``; ``options``: the recipe's ``data.label_options`` (a format's camera, say), keyword arguments.
LabelReader = Callable[[Archive, "Path | None"], "LabelTable | None"]


def normalize_name(name: str) -> str:
    """Archive names with forward slashes (EG3D's reader does the same for labels written on Windows)."""
    return name.replace("\\", "/")


def escapes(name: str) -> bool:
    """Whether a (normalized) entry name points outside the data set: absolute, a drive, or ``..``
    (such an entry would read files the data set does not hold)."""
    return name.startswith("/") or (len(name) > 1 and name[1] == ":") or ".." in name.split("/")


def read_dataset_json(archive: Archive, labels_file: Path | None = None) -> tuple[dict | None, str]:
    """The parsed ``dataset.json`` (``labels_file`` when given, else the archive's own) and its name for
    messages; ``(None, name)`` when there is none."""
    if labels_file is not None:
        where = str(labels_file)
        if not labels_file.is_file():
            raise DatasetError(f"labels file {labels_file} does not exist")
        text = labels_file.read_bytes()
    else:
        where = f"{archive.path}: dataset.json"
        if not archive.exists("dataset.json"):
            return None, where
        text = archive.read("dataset.json")
    try:
        meta = json.loads(text)
    except (ValueError, UnicodeDecodeError) as error:
        raise DatasetError(f"{where} is not valid JSON ({error}); fix or re-create it") from error
    except RecursionError:
        raise DatasetError(f"{where} is nested too deeply to be a data set index; fix or re-create it") from None
    if not isinstance(meta, dict):
        raise DatasetError(f"{where} must be a JSON object with a 'labels' key, got {type(meta).__name__}")
    return meta, where


def read_eg3d_labels(archive: Archive, labels_file: Path | None = None) -> LabelTable | None:
    """EG3D camera labels from ``dataset.json``; ``None`` when the file is absent or ``"labels"`` is
    null or missing (an unlabelled dataset_tool zip). Malformed entries raise :class:`DatasetError`."""
    meta, where = read_dataset_json(archive, labels_file)
    if meta is None or meta.get("labels") is None:
        return None
    entries = meta["labels"]
    if not isinstance(entries, list):
        raise DatasetError(f"{where}: 'labels' must be a list of [relative_path, [25 floats]] or null")
    if not entries:
        raise DatasetError(f"{where} lists no labels; remove dataset.json or set \"labels\": null for an "
                           "unlabelled set")
    names: list[str] = []
    values = np.empty((len(entries), CAMERA_LABEL_DIM), dtype=np.float32)
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str)):
            raise DatasetError(f"{where}: labels[{index}] must be [relative_path, [25 floats]], got {entry!r:.120}")
        name, label = normalize_name(entry[0]), entry[1]
        if escapes(name):
            raise DatasetError(f"{where}: entry '{name}' points outside the data set; entries must be paths "
                               "relative to the data set's folder or archive, without '..'")
        if name in seen:
            raise DatasetError(f"{where}: entry '{name}' is listed twice; keep one")
        seen.add(name)
        if not isinstance(label, list) or len(label) != CAMERA_LABEL_DIM:
            got = len(label) if isinstance(label, list) else repr(label)
            raise DatasetError(f"{where}: entry '{name}' has a label of length {got}; an EG3D camera label is "
                               f"{CAMERA_LABEL_DIM} floats (16 cam2world, 9 normalized intrinsics)")
        try:
            with np.errstate(over="ignore"):
                values[index] = np.asarray(label, dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise DatasetError(f"{where}: entry '{name}' has a label that is not numbers ({error})") from error
        if not np.isfinite(values[index]).all():
            raise DatasetError(f"{where}: entry '{name}' has non-finite label values (NaN, inf or beyond float32); "
                               "fix its camera")
        names.append(name)
    return LabelTable(names, values, "camera", where)


#: label readers by format name; :func:`register_label_reader` adds one.
LABEL_READERS: dict[str, LabelReader] = {"eg3d": read_eg3d_labels}


def register_label_reader(name: str, reader: LabelReader) -> None:
    """Add a label format (e.g. ``"epigraf_angles"``); a name registered twice is an error. A plugin calls
    it from its ``gan3d_register`` hook, so :func:`read_labels` finds the format once plugins load."""
    if name in LABEL_READERS and LABEL_READERS[name] is not reader:
        raise ValueError(f"label format {name!r} is registered already")
    LABEL_READERS[name] = reader


def read_labels(archive: Archive, label_format: str = "eg3d", labels_file: str | Path | None = None,
                options: dict[str, Any] | None = None) -> LabelTable | None:
    """The labels of format ``label_format`` in ``archive`` (or in ``labels_file``), or ``None``.

    ``options`` are the reader's keyword options (recipe ``data.label_options``); one the reader does not
    take is a :class:`DatasetError` naming the reader's options. A format not registered yet may belong to
    a plugin (GRAM's pose files): the installed plugins are loaded, as their registration adds their
    formats, before the name is refused.
    """
    if label_format not in LABEL_READERS:
        from ..registry import get_registry

        get_registry().families()  # loads the plugins, which register their label formats
    if label_format not in LABEL_READERS:
        raise DatasetError(f"label format {label_format!r} is unknown; formats: {', '.join(LABEL_READERS)}")
    reader = LABEL_READERS[label_format]
    options = dict(options or {})
    if options:
        parameters = inspect.signature(reader).parameters
        takes = [n for n, p in list(parameters.items())[2:] if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
        unknown = sorted(set(options) - set(takes))
        if unknown and not any(p.kind == p.VAR_KEYWORD for p in parameters.values()):
            raise DatasetError(f"data.label_options {unknown} are not options of the label format {label_format!r}; "
                               f"its options: {', '.join(takes) or 'none'}")
    return reader(archive, Path(labels_file) if labels_file is not None else None, **options)
