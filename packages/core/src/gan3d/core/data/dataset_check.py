"""Full validation of a data set: every image (and depth map) decoded and checked.

An EG3D-format set (a ``dataset.json`` with camera labels) is checked as :class:`EG3DDataset` reads it;
any other folder, zip, tar or LMDB of images as :class:`~gan3d.core.data.ImageDataset` reads it raw.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .archives import open_archive
from .eg3d_dataset import IMAGE_EXTENSIONS, EG3DDataset
from .image_dataset import decode_image, image_names
from .labels import read_dataset_json

__all__ = ["check_dataset", "DatasetReport"]

logger = logging.getLogger(__name__)


@dataclass
class DatasetReport:
    """What :func:`check_dataset` found in a valid data set.

    Attributes:
        path: the folder or zip checked.
        kind: ``'folder'``, ``'zip'``, ``'tar'`` or ``'lmdb'``.
        num_images: the images of the set (those listed in ``dataset.json`` when it has labels), all
            decoded and valid.
        resolution: the side of every image, in pixels; ``None`` when they are not all square and of
            one size (a raw collection: the method's preprocessing makes them so).
        channels: always 3 (RGB).
        has_depth: whether the set carries ground-truth depth maps (all read and valid).
        unlisted_images: image files present but not named in ``dataset.json`` (not used; EG3D's own
            reader would fail on them, since it looks every image file up in the labels).
    """

    path: Path
    kind: str
    num_images: int
    resolution: int
    channels: int
    has_depth: bool
    unlisted_images: int
    labelled: bool = True
    sizes: list[tuple[int, int]] | None = None


def check_dataset(path: str | Path, progress: Callable[[int, int], None] | None = None) -> DatasetReport:
    """Read every image (and depth map) of the data set at ``path``; raise on the first defect.

    Raises the same :class:`~gan3d.core.data.DatasetError` as :class:`EG3DDataset`, naming the file and
    the entry: missing or malformed ``dataset.json``, absent entries, labels of the wrong length or
    with non-finite values, corrupt or truncated images, wrong channel count, non-square or mixed
    resolutions, unreadable depth maps. ``progress(done, total)`` is called after each image.

    Example:
        >>> report = check_dataset("cars_128.zip")
        >>> report.num_images, report.resolution
        (..., 128)
    """
    archive = open_archive(path)
    try:
        meta = read_dataset_json(archive)[0] if archive.kind in ("folder", "zip") else None
        eg3d_format = isinstance(meta, dict) and meta.get("labels") is not None
    finally:
        archive.close()
    if not eg3d_format:
        return _check_image_set(path, progress)
    dataset = EG3DDataset(path)
    total = dataset.num_raw_images
    try:
        for raw_index in range(total):
            dataset._decode_image(raw_index)
            if dataset.has_depth:
                dataset._decode_depth(raw_index)
            if progress is not None:
                progress(raw_index + 1, total)
        listed = set(dataset.image_names)
        unlisted = sum(
            1 for name in dataset._archive.names() if name.lower().endswith(IMAGE_EXTENSIONS) and name not in listed
        )
    finally:
        dataset.close()
    if unlisted:
        logger.warning("%s: %d image file(s) are not named in dataset.json and are not used", path, unlisted)
    return DatasetReport(
        path=dataset.path,
        kind="zip" if dataset._archive.is_zip else "folder",
        num_images=total,
        resolution=dataset.native_resolution,
        channels=3,
        has_depth=dataset.has_depth,
        unlisted_images=unlisted,
    )


def _check_image_set(path: str | Path, progress: Callable[[int, int], None] | None) -> DatasetReport:
    """Every image of an unlabelled folder, zip, tar or LMDB decoded; sizes may differ (raw collections)."""
    from .archives import DatasetError

    archive = open_archive(path)
    try:
        names = image_names(archive)
        if not names:
            raise DatasetError(f"{path} holds no images (.png, .jpg, .jpeg, .webp), searched recursively")
        sizes: set[tuple[int, int]] = set()
        for index, name in enumerate(names):
            sizes.add(decode_image(archive.read(name), archive.where(name)).shape[:2])
            if progress is not None:
                progress(index + 1, len(names))
    finally:
        archive.close()
    ordered = sorted(sizes)
    resolution = ordered[0][0] if len(ordered) == 1 and ordered[0][0] == ordered[0][1] else None
    return DatasetReport(path=Path(path), kind=archive.kind, num_images=len(names), resolution=resolution,
                         channels=3, has_depth=False, unlisted_images=0, labelled=False, sizes=ordered)
