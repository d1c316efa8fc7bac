"""Images (with or without labels) from a folder, zip, tar or LMDB, through a method's official preprocessing.

:class:`ImageDataset` is what ``tools/run.py train`` reads. It takes the layouts users download or
prepare:

* a raw image collection: CelebA's ``img_align_celeba/*.jpg``, a folder of cats, a zip of either,
  searched recursively for ``.png``, ``.jpg``, ``.jpeg`` and ``.webp`` files;
* an EG3D ``dataset_tool.py`` zip or folder, with camera labels in ``dataset.json`` or with
  ``"labels": null``;
* a tar (plain or compressed) or an LMDB database: Carver's (every key an image), LSUN's (GIRAFFE's
  churches) and StyleSDF's ``prepare_data.py`` layout (keys ``"{size}-{index:05d}"`` for several
  sizes plus ``"length"``: the smallest stored size not below the training size is read).

Each image is decoded (OpenCV; grey and RGBA become RGB as PIL's ``convert('RGB')`` does), passed
through the :class:`~gan3d.core.data.preprocessing.Preprocessing` of the recipe (the method's official
crops and resizes), and returned in ``[-1, 1]``. Labels are read by the format's reader
(:mod:`gan3d.core.data.labels`); when they are present the labelled images are the data set (EG3D's
rule), otherwise every image is.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import Tensor

from ..types import Cameras
from .archives import Archive, DatasetError, LmdbArchive, open_archive
from .base import GanDataset
from .eg3d_dataset import ImageSample
from .labels import LabelTable, read_dataset_json, read_labels
from .preprocessing import Preprocessing

__all__ = ["ImageDataset", "open_training_dataset", "decode_image", "image_names", "LABEL_POLICIES", "IMAGE_SUFFIXES",
           "DATA_KEYS"]

logger = logging.getLogger(__name__)

#: image file name endings read from folders, zips and tars (case-insensitive).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
#: what a method does with labels: ``required`` (its pose sampler draws the data set's cameras, or its
#: discriminator is conditioned on them), ``optional`` (read when present), ``unused`` (never read).
LABEL_POLICIES = ("required", "optional", "unused")
#: StyleSDF ``prepare_data.py`` keys: f"{size}-{str(index).zfill(5)}", plus "length".
_STYLESDF_KEY = re.compile(r"^(\d+)-(\d+)$")


def decode_image(data: bytes, where: str) -> np.ndarray:
    """Decode encoded bytes into ``[H, W, 3]`` uint8 RGB; raises :class:`DatasetError` naming ``where``.

    Grey images are repeated to three channels and an alpha channel is dropped (PIL's
    ``convert('RGB')``, which the official loaders call); 16-bit images are scaled to 8 bits.
    EXIF orientation is not applied (neither PIL's ``Image.open`` nor EG3D's tool apply it).
    """
    array = np.frombuffer(data, dtype=np.uint8)
    image = cv2.imdecode(array, cv2.IMREAD_UNCHANGED) if array.size else None
    if image is None:
        raise DatasetError(f"{where} cannot be decoded as an image (corrupt or truncated bytes); replace or remove it")
    if image.dtype == np.uint16:
        image = ((image.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise DatasetError(f"{where} has {image.dtype} pixels; give 8- or 16-bit images")
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    channels = image.shape[2]
    if channels == 1:
        return np.repeat(image, 3, axis=2)
    if channels == 3:
        return image[:, :, ::-1]
    if channels == 4:
        return image[:, :, 2::-1]
    raise DatasetError(f"{where} has {channels} channels; give grey, RGB or RGBA images")


def _stylesdf_groups(names: list[str]) -> dict[int, list[str]] | None:
    """StyleSDF's multi-resolution LMDB: ``{size: names ordered by index}``, or ``None`` for another layout."""
    if "length" not in names:
        return None
    groups: dict[int, list[tuple[int, str]]] = {}
    for name in names:
        if name == "length":
            continue
        match = _STYLESDF_KEY.match(name)
        if match is None:
            return None
        groups.setdefault(int(match.group(1)), []).append((int(match.group(2)), name))
    return {size: [n for _, n in sorted(items)] for size, items in groups.items()} or None


def image_names(archive: Archive, size: int | None = None) -> list[str]:
    """The image members of ``archive`` in a fixed order.

    Folders, zips and tars: members ending in an image suffix, sorted. LMDB: every key (their names
    carry no suffix, as in Carver's ``LmdbReader``); in StyleSDF's layout, the keys of the stored
    ``size`` when there is one, else of the smallest stored size above ``size`` (the largest when none
    is, or when ``size`` is ``None``), in index order.
    """
    names = archive.names()
    if isinstance(archive, LmdbArchive):
        groups = _stylesdf_groups(names)
        if groups is None:
            return names
        sizes = sorted(groups)
        fitting = [s for s in sizes if size is not None and s >= size]
        chosen = fitting[0] if fitting else sizes[-1]
        logger.info("%s: StyleSDF layout with sizes %s; reading the %d px images", archive.path, sizes, chosen)
        return groups[chosen]
    return [n for n in names if n.lower().endswith(IMAGE_SUFFIXES)]


def _stylesdf_stored_size(pipeline: Preprocessing) -> int | None:
    """``S`` when the pipeline starts with StyleSDF ``prepare_data.py``'s own steps (short side to ``S``,
    centre crop ``S``): a StyleSDF LMDB holds images with those steps applied, under keys ``"S-..."``."""
    steps = pipeline.steps
    if len(steps) < 2 or steps[0]["op"] != "resize" or steps[1]["op"] != "center_crop":
        return None
    side = steps[0]["size"]
    return side if isinstance(side, int) and steps[1]["size"] in (side, [side, side]) else None


class ImageDataset(GanDataset):
    """Images of a folder, zip, tar or LMDB data set through a preprocessing pipeline, with labels if any.

    Args:
        path: the folder, ``.zip``, ``.tar`` (``.tar.gz`` ...) or LMDB directory.
        preprocessing: the steps (see :mod:`gan3d.core.data.preprocessing`); ``None``: none.
        resolution: the training image side. It sizes ``"training"`` resize steps; a pipeline that
            ends at another size is resized to it at the end (pixel-area average when shrinking,
            bilinear when growing); ``None`` keeps the pipeline's output.
        xflip: double the set with left-right mirrored images (items ``[N, 2N)``); camera labels
            are mirrored too (:meth:`Cameras.mirror_x`).
        labels: ``'required'``, ``'optional'`` or ``'unused'`` (:data:`LABEL_POLICIES`).
        label_format: the label reader (:data:`gan3d.core.data.labels.LABEL_READERS`).
        label_options: the reader's keyword options (a format's camera: EpiGRAF's ``fov``, ``radius``,
            ``resolution``).
        labels_file: a labels file outside the data set (replaces the set's own ``dataset.json``).
        needed_by: who requires the labels, for the error message (``"method 'eg3d'"``).

    A set made by ``datasets prepare --method M`` records the steps it applied; when they are the
    start of ``preprocessing`` only the rest is applied here, otherwise all of it (with a warning).

    Items are :class:`~gan3d.core.data.ImageSample` ``(image [3, H, W] in [-1, 1], label [D])``, ``D`` the
    label length (25 for cameras) or 0 without labels.

    Example:
        >>> data = ImageDataset("img_align_celeba", resolution=64, xflip=True, preprocessing=[
        ...     {"op": "resize", "size": 320, "filter": "bilinear"}, {"op": "center_crop", "size": 256},
        ...     {"op": "resize", "size": "training", "filter": "torch_nearest"}])   # doctest: +SKIP
        >>> data[0].image.shape                                                    # doctest: +SKIP
        torch.Size([3, 64, 64])
    """

    def __init__(
        self,
        path: str | Path,
        *,
        preprocessing: list[dict[str, Any]] | Preprocessing | None = None,
        resolution: int | None = None,
        xflip: bool = False,
        labels: str = "optional",
        label_format: str = "eg3d",
        labels_file: str | Path | None = None,
        needed_by: str = "this method",
        label_options: dict[str, Any] | None = None,
    ) -> None:
        self.path = Path(path)
        if labels not in LABEL_POLICIES:
            raise ValueError(f"labels must be one of {', '.join(LABEL_POLICIES)}, got {labels!r}")
        if resolution is not None and (isinstance(resolution, bool) or not isinstance(resolution, int)
                                       or resolution < 1):
            raise ValueError(f"resolution must be a positive int or None, got {resolution!r}")
        self.resolution = resolution
        self.xflip = xflip
        self._archive = open_archive(self.path)
        pipeline = preprocessing if isinstance(preprocessing, Preprocessing) else Preprocessing(
            preprocessing, "data.preprocessing")
        self.preprocessing = pipeline.resolved(resolution)
        self.applied = self._already_applied()
        self.label_table = self._read_labels(labels, label_format, labels_file, needed_by, label_options)
        self.image_names = self._index()
        self._lmdb_layout()
        self._rng_state: tuple[int, np.random.Generator] | None = None
        first = self._load(0)
        self.image_size: int = first.shape[0]
        if self.label_table is not None:
            values = torch.from_numpy(np.ascontiguousarray(self.label_table.values))
            if xflip and self.label_table.kind == "camera":
                values = torch.cat([values, Cameras.from_label(values).mirror_x().label])
            elif xflip:
                values = torch.cat([values, values])
            self._labels: Tensor | None = values
        else:
            self._labels = None
        self._archive.close()  # reopened on first read, in whichever process reads

    # ---- index ----------------------------------------------------------------------------------

    def _already_applied(self) -> Preprocessing:
        """The steps still to apply, given what a ``datasets prepare`` record says was applied."""
        if self._archive.kind == "lmdb" or not self.preprocessing.steps:
            return self.preprocessing
        meta, where = read_dataset_json(self._archive)
        record = (meta or {}).get("gan3d", {}) if isinstance(meta, dict) else {}
        applied = record.get("preprocessing") if isinstance(record, dict) else None
        if not applied:
            return self.preprocessing
        rest = self.preprocessing.after(applied)
        if rest is None:
            done = Preprocessing(applied, where).describe()
            logger.warning("%s was prepared with [%s]; the recipe's preprocessing [%s] is applied on top of it "
                           "(prepare the raw images with --method to store the recipe's own steps)",
                           self.path, done, self.preprocessing.describe())
            return self.preprocessing
        return rest

    def _lmdb_layout(self) -> None:
        """A StyleSDF LMDB stores images already resized and cropped to each size: read the size the
        pipeline's first two steps ask for and skip those steps."""
        if self._archive.kind != "lmdb" or self.label_table is not None:
            return
        groups = _stylesdf_groups(self._archive.names())
        stored = _stylesdf_stored_size(self.preprocessing)
        if groups is None or stored is None:
            return
        if stored in groups:
            self.image_names = groups[stored]
            self.applied = Preprocessing(self.preprocessing.steps[2:], self.preprocessing.where)
        else:
            logger.warning("%s: StyleSDF layout without %d px images (stored: %s); the recipe's whole "
                           "preprocessing [%s] is applied to the stored ones", self.path, stored, sorted(groups),
                           self.preprocessing.describe())

    def _read_labels(self, policy: str, label_format: str, labels_file: str | Path | None,
                     needed_by: str, options: dict[str, Any] | None = None) -> LabelTable | None:
        if policy == "unused":
            if labels_file is not None:  # given for nothing: say so rather than ignore it
                raise DatasetError(f"labels file {labels_file}: {needed_by} does not use per-image labels (its "
                                   "recipe's data.labels is 'unused'); leave out --labels")
            return None
        table = read_labels(self._archive, label_format, labels_file, options)
        if table is None and policy == "required":
            if not image_names(self._archive):
                raise self._empty()  # the first thing to say
            source = labels_file or f"{self.path}: dataset.json"
            raise DatasetError(
                f"{self.path} carries no camera labels ({source} is absent or has \"labels\": null), but "
                f"{needed_by} needs one per image: its generator renders from the data set's own cameras. "
                "Give a set with labels (EG3D's dataset_preprocessing scripts write them), or "
                "--labels dataset.json (EG3D's format), or train a method that draws poses from a prior "
                "(pigan, giraffe, stylesdf)"
            )
        return table

    def _index(self) -> list[str]:
        if self.label_table is not None:
            names = self.label_table.names
            for name in names:
                if not self._archive.exists(name):
                    raise DatasetError(f"{self._archive.where(name)} is named in {self.label_table.source} "
                                       "but does not exist")
            listed = set(names)
            unlisted = sum(1 for n in image_names(self._archive) if n not in listed)
            if unlisted:
                logger.warning("%s: %d image(s) have no label in %s and are not used", self.path, unlisted,
                               self.label_table.source)
            return list(names)
        names = image_names(self._archive, self.resolution)
        if not names:
            raise self._empty()
        return names

    def _empty(self) -> DatasetError:
        what = "no keys" if self._archive.kind == "lmdb" else f"no images ({', '.join(IMAGE_SUFFIXES)})"
        return DatasetError(f"{self.path} holds {what}; point --dataset at the folder or archive of the "
                            "images (folders are searched recursively)")

    # ---- decoding -------------------------------------------------------------------------------

    def _rng(self) -> np.random.Generator:
        """A generator per process, seeded from torch's seed of that process (a DataLoader gives each
        worker its own), so random crops are reproducible and differ across workers."""
        if self._rng_state is None or self._rng_state[0] != os.getpid():
            self._rng_state = (os.getpid(), np.random.default_rng(torch.initial_seed()))
        return self._rng_state[1]

    def _load(self, raw_index: int) -> np.ndarray:
        """Image ``raw_index`` decoded and preprocessed: ``[S, S, 3]`` uint8."""
        name = self.image_names[raw_index]
        where = self._archive.where(name)
        image = self.applied(decode_image(self._archive.read(name), where), self._rng(), where)
        height, width = image.shape[:2]
        if height != width:
            raise DatasetError(
                f"{where} is {width}x{height} after preprocessing [{self.applied.describe()}]; training images "
                "must be square: give the method's preprocessing (recipe data.preprocessing) or prepare the set "
                "with `tools/run.py datasets prepare SRC OUT.zip --resolution R`"
            )
        expected = getattr(self, "_side", None)
        if expected is None:
            self._side = height
        elif height != expected:
            raise DatasetError(
                f"{where} is {width}x{height} after preprocessing [{self.applied.describe()}] but the first image is "
                f"{expected}x{expected}; all images must have one size: give a preprocessing that ends at a fixed "
                "size, or prepare the set with `tools/run.py datasets prepare SRC OUT.zip --resolution R`"
            )
        if self.resolution is not None and height != self.resolution:
            shrink = height > self.resolution
            image = cv2.resize(np.ascontiguousarray(image), (self.resolution, self.resolution),
                               interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        return image

    # ---- Dataset --------------------------------------------------------------------------------

    @property
    def num_raw_images(self) -> int:
        """Images without the x-flipped copies."""
        return len(self.image_names)

    @property
    def labels(self) -> Tensor | None:
        """``[len(self), D]`` float32 labels of every item (mirrored ones included), or ``None``."""
        return self._labels

    @property
    def source(self) -> str:
        """The folder or archive read."""
        return str(self.path.expanduser().resolve())

    @property
    def has_labels(self) -> bool:
        return self._labels is not None

    def __len__(self) -> int:
        return self.num_raw_images * (2 if self.xflip else 1)

    def __getitem__(self, index: int) -> ImageSample:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for a data set of {len(self)} items")
        index = index % len(self)
        raw_index, mirrored = index % self.num_raw_images, index >= self.num_raw_images
        image = self._load(raw_index)
        if mirrored:
            image = image[:, ::-1]
        # one pass to channel-first float32, then in place to [-1, 1]
        image_t = torch.from_numpy(image.transpose(2, 0, 1).astype(np.float32)).div_(127.5).sub_(1.0)
        label = self._labels[index].clone() if self._labels is not None else torch.zeros(0)
        return ImageSample(image_t, label)

    def close(self) -> None:
        """Close this process's archive handles (reopened on the next read)."""
        self._archive.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: nothing left to release
            pass

    def __repr__(self) -> str:
        return (f"ImageDataset({str(self.path)!r}, {self._archive.kind}, images={self.num_raw_images}, "
                f"labels={'yes' if self.has_labels else 'no'}, xflip={self.xflip}, size={self.image_size}, "
                f"preprocessing=[{self.applied.describe()}])")


#: keys of a recipe's ``data`` section.
DATA_KEYS = {
    "labels": "required | optional | unused: what the method does with per-image labels",
    "label_format": "the label reader (gan3d.core.data.labels.LABEL_READERS), default 'eg3d'",
    "label_options": "keyword options of the label reader (EpiGRAF's camera: fov, radius, resolution)",
    "preprocessing": "the official pipeline, a list of steps (gan3d.core.data.preprocessing)",
}


def open_training_dataset(
    path: str | Path,
    data: dict[str, Any] | None,
    *,
    resolution: int | None = None,
    xflip: bool = False,
    labels_file: str | Path | None = None,
    method: str = "this method",
) -> ImageDataset:
    """The data set a recipe trains on: ``path`` read as its ``data`` section says.

    Args:
        path: folder, zip, tar or LMDB.
        data: the recipe's ``data`` section (:data:`DATA_KEYS`); empty or ``None``: labels optional, no
            preprocessing (recipes written before the section existed).
        resolution: the training image side (sizes ``"training"`` steps).
        xflip: ``training.xflip``.
        labels_file: a ``dataset.json`` outside the set.
        method: the method's name, for messages.

    Example:
        >>> recipe = registry.get("method", "pigan")("celeba")                     # doctest: +SKIP
        >>> data = open_training_dataset("img_align_celeba", recipe.data, resolution=64,
        ...                              xflip=True, method="pigan")              # doctest: +SKIP
    """
    data = dict(data or {})
    unknown = sorted(set(data) - set(DATA_KEYS))
    if unknown:
        raise DatasetError(f"recipe data: unknown key(s) {unknown}; keys: "
                           + "; ".join(f"{k} ({v})" for k, v in DATA_KEYS.items()))
    return ImageDataset(path, preprocessing=data.get("preprocessing"), resolution=resolution, xflip=xflip,
                        labels=data.get("labels", "optional"), label_format=data.get("label_format", "eg3d"),
                        labels_file=labels_file, needed_by=f"method {method!r}",
                        label_options=data.get("label_options"))
