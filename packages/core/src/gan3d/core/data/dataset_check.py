"""Full validation of an EG3D-format data set: every image (and depth map) decoded and checked."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .eg3d_dataset import IMAGE_EXTENSIONS, EG3DDataset

__all__ = ["check_dataset", "DatasetReport"]

logger = logging.getLogger(__name__)


@dataclass
class DatasetReport:
    """What :func:`check_dataset` found in a valid data set.

    Attributes:
        path: the folder or zip checked.
        kind: ``'folder'`` or ``'zip'``.
        num_images: images listed in ``dataset.json`` (all decoded and valid).
        resolution: the side of every image, in pixels.
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
