"""Reader of the EG3D data set format: a folder or zip of images plus ``dataset.json``.

The format is the one EG3D's ``dataset_tool.py`` writes and ``training/dataset.py``
(``ImageFolderDataset``) reads: 8-bit images (``00000/img00000000.png``, ...) and
``dataset.json = {"labels": [[relative_path, [16 cam2world floats, 9 normalized intrinsics]], ...]}``,
so FFHQ, AFHQ Cats and ShapeNet Cars prepared with EG3D's scripts load unchanged. gan3d adds one
optional key, ``"depth"`` (written by :func:`~gan3d.core.data.make_synthetic_dataset`)::

    "depth": {"files": [[image_path, depth_path], ...],      # depth_path: a .npy of float32 [H, W]
              "definition": "...distance along the unit ray...", "background": 0.0}

Differences from EG3D's reader, on purpose:

* ``dataset.json`` is the index: the images it names are the data set (EG3D lists every image file
  and looks each up in the labels); every entry must have a 25-float camera label.
* ``xflip=True`` mirrors the camera label with :meth:`Cameras.mirror_x` as well as the image. EG3D's
  in-loader x-flip (``--mirror``) flips only the image; its ``dataset_preprocessing/mirror_dataset.py``
  mirrors the label with ``flip_yaw``, the same matrix change as ``mirror_x`` for centred principal
  points.
* Images are decoded with OpenCV (``IMREAD_UNCHANGED``: no EXIF rotation, as PIL in EG3D) and must be
  3-channel 8-bit and square, all of one size.

Every defect raises :class:`DatasetError` naming the data set, the entry and what to do. Cheap checks
(``dataset.json``, names, label lengths and values, the first image) run at construction; decoding
errors are raised when the image is read. :func:`~gan3d.core.data.check_dataset` reads everything.
"""

from __future__ import annotations

import io
import json
import logging
import os
import zipfile
import zlib
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
import torch
from torch import Tensor

from ..types import Cameras
from .archives import DatasetError
from .base import GanDataset
from .labels import escapes

__all__ = ["EG3DDataset", "DatasetError", "ImageSample", "ImageDepthSample", "IMAGE_EXTENSIONS", "LABEL_DIM"]

logger = logging.getLogger(__name__)

#: file name endings read as images (case-insensitive).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp")
#: length of an EG3D camera label: 16 cam2world + 9 intrinsics floats.
LABEL_DIM = 25


class ImageSample(NamedTuple):
    """One item: ``image [3, H, W]`` float32 in ``[-1, 1]``; ``label [25]`` float32 EG3D camera label."""

    image: Tensor
    label: Tensor


class ImageDepthSample(NamedTuple):
    """One item with depth: ``image [3, H, W]``, ``label [25]``, ``depth [1, H, W]`` (0 = no surface)."""

    image: Tensor
    label: Tensor
    depth: Tensor


class _Archive:
    """Read-only access to the files of a folder or a zip; the zip handle is opened lazily per process."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.is_zip = path.is_file()
        self._zip: zipfile.ZipFile | None = None
        self._zip_pid: int | None = None
        self._zip_names: set[str] | None = None

    def where(self, name: str) -> str:
        """How to point a user at entry ``name``."""
        return f"{self.path}: entry '{name}'" if self.is_zip else f"{self.path / name}"

    def _handle(self) -> zipfile.ZipFile:
        # A zip handle must not be shared across forked DataLoader workers (their file offsets
        # collide), so each process opens its own on first use.
        if self._zip is None or self._zip_pid != os.getpid():
            try:
                self._zip = zipfile.ZipFile(self.path)
            except (zipfile.BadZipFile, OSError) as error:
                raise DatasetError(
                    f"{self.path} is not a readable zip ({error}); it may be truncated or corrupt: "
                    "re-create or re-download it"
                ) from error
            self._zip_pid = os.getpid()
        return self._zip

    def names(self) -> set[str]:
        if self.is_zip:
            if self._zip_names is None:
                self._zip_names = set(self._handle().namelist())
            return self._zip_names
        return {p.relative_to(self.path).as_posix() for p in self.path.rglob("*") if p.is_file()}

    def exists(self, name: str) -> bool:
        return name in self.names() if self.is_zip else (self.path / name).is_file()

    def read(self, name: str) -> bytes:
        try:
            if self.is_zip:
                return self._handle().read(name)
            return (self.path / name).read_bytes()
        except KeyError as error:
            raise DatasetError(f"{self.where(name)} is named in dataset.json but absent from the zip") from error
        except FileNotFoundError as error:
            raise DatasetError(f"{self.where(name)} is named in dataset.json but does not exist") from error
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as error:
            raise DatasetError(
                f"{self.where(name)} cannot be read ({error}); the file is truncated or corrupt: re-create the data set"
            ) from error

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
        self._zip, self._zip_pid = None, None

    def __getstate__(self) -> dict:
        return dict(self.__dict__, _zip=None, _zip_pid=None)


def _normalize_name(name: str) -> str:
    return name.replace("\\", "/")  # EG3D's reader does the same for labels written on Windows


class EG3DDataset(GanDataset):
    """Images and camera labels of an EG3D-format data set (a folder or a ``.zip``).

    Args:
        path: the folder or zip holding ``dataset.json`` and the images.
        xflip: double the set with left-right mirrored images whose labels are mirrored too
            (:meth:`Cameras.mirror_x`); items ``[N, 2N)`` are the mirrors of ``[0, N)``.
        resolution: output image side; ``None`` keeps the stored resolution. Downsampling averages
            pixel areas (``cv2.INTER_AREA``, anti-aliased), upsampling is bilinear; depth maps are
            resampled with the nearest pixel so that no depth between surfaces is invented.
        load_depth: also return the ground-truth depth (the set must carry ``"depth"``).

    Items are :class:`ImageSample` ``(image [3, H, W] in [-1, 1], label [25])`` or, with
    ``load_depth``, :class:`ImageDepthSample` adding ``depth [1, H, W]``; a ``DataLoader`` batches
    them into the same named tuples.

    Example:
        >>> data = EG3DDataset("ffhq_512.zip", xflip=True, resolution=128)
        >>> image, label = data[0]                       # [3, 128, 128], [25]
        >>> cameras = Cameras.from_label(data.labels)    # every camera of the set
    """

    def __init__(
        self,
        path: str | Path,
        xflip: bool = False,
        resolution: int | None = None,
        load_depth: bool = False,
    ) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise DatasetError(f"data set path {self.path} does not exist; give a folder or a .zip in the EG3D format")
        if self.path.is_file() and not zipfile.is_zipfile(self.path):
            raise DatasetError(
                f"{self.path} is neither a folder nor a readable zip (it may be truncated or corrupt); "
                "give a folder or a .zip holding dataset.json and the images"
            )
        if resolution is not None and (not isinstance(resolution, int) or resolution < 1):
            raise ValueError(f"resolution must be a positive int or None, got {resolution!r}")
        self._archive = _Archive(self.path)
        self.xflip = xflip
        self.load_depth = load_depth
        self.image_names, raw_labels, self.depth_names = self._read_index()
        self._labels = torch.from_numpy(raw_labels)
        if load_depth and self.depth_names is None:
            raise DatasetError(
                f"{self.path} carries no depth maps (no 'depth' key in dataset.json); use load_depth=False"
            )
        self.native_resolution: int | None = None
        self.native_resolution = self._decode_image(0).shape[0]
        self.resolution = resolution if resolution is not None else self.native_resolution
        if xflip:
            self._labels = torch.cat([self._labels, Cameras.from_label(self._labels).mirror_x().label])
        self._archive.close()  # reopened on first read, in whichever process reads

    # ---- index -------------------------------------------------------------------------------

    def _read_index(self) -> tuple[list[str], np.ndarray, list[str] | None]:
        where = f"{self.path}: dataset.json"
        if not self._archive.exists("dataset.json"):
            raise DatasetError(
                f"{self.path} has no dataset.json; an EG3D data set needs one with camera labels "
                "(see EG3D's dataset_preprocessing scripts, or make_synthetic_dataset)"
            )
        try:
            meta = json.loads(self._archive.read("dataset.json"))
        except (ValueError, UnicodeDecodeError) as error:
            raise DatasetError(f"{where} is not valid JSON ({error}); fix or re-create it") from error
        except RecursionError:
            raise DatasetError(f"{where} is nested too deeply to be a data set index; fix or re-create it") from None
        entries = meta.get("labels") if isinstance(meta, dict) else None
        if not isinstance(entries, list):
            raise DatasetError(f"{where} has no 'labels' list; camera labels are required for 3D-aware training")
        if len(entries) == 0:
            raise DatasetError(f"{where} lists no images: the data set is empty")
        names: list[str] = []
        labels = np.empty((len(entries), LABEL_DIM), dtype=np.float32)
        seen: set[str] = set()
        for index, entry in enumerate(entries):
            if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str)):
                raise DatasetError(f"{where}: labels[{index}] must be [relative_path, [25 floats]], got {entry!r:.120}")
            name, label = _normalize_name(entry[0]), entry[1]
            if escapes(name):
                raise DatasetError(f"{where}: entry '{name}' points outside the data set; entries must be paths "
                                   "relative to the data set's folder or zip, without '..'")
            if not name.lower().endswith(IMAGE_EXTENSIONS):
                raise DatasetError(f"{where}: entry '{name}' is not an image ({', '.join(IMAGE_EXTENSIONS)})")
            if name in seen:
                raise DatasetError(f"{where}: entry '{name}' is listed twice; keep one")
            seen.add(name)
            if not isinstance(label, list) or len(label) != LABEL_DIM:
                got = len(label) if isinstance(label, list) else repr(label)
                raise DatasetError(
                    f"{where}: entry '{name}' has a label of length {got}; an EG3D camera label is "
                    f"{LABEL_DIM} floats (16 cam2world, 9 normalized intrinsics)"
                )
            try:
                with np.errstate(over="ignore"):  # values beyond float32 become inf, reported below
                    labels[index] = np.asarray(label, dtype=np.float64)
            except (TypeError, ValueError) as error:
                raise DatasetError(f"{where}: entry '{name}' has a label that is not numbers ({error})") from error
            if not np.isfinite(labels[index]).all():
                raise DatasetError(
                    f"{where}: entry '{name}' has non-finite label values (NaN, inf or beyond float32); fix its camera"
                )
            if not self._archive.exists(name):
                raise DatasetError(f"{self._archive.where(name)} is named in dataset.json but does not exist")
            names.append(name)
        depth_names = self._read_depth_index(meta.get("depth"), names) if "depth" in meta else None
        return names, labels, depth_names

    def _read_depth_index(self, depth: object, names: list[str]) -> list[str]:
        where = f"{self.path}: dataset.json 'depth'"
        files = depth.get("files") if isinstance(depth, dict) else None
        if not isinstance(files, list):
            raise DatasetError(f"{where} must be {{'files': [[image_path, depth_path], ...]}}")
        mapping = {}
        for entry in files:
            if not (isinstance(entry, list) and len(entry) == 2 and all(isinstance(e, str) for e in entry)):
                raise DatasetError(f"{where}: each file entry must be [image_path, depth_path], got {entry!r:.120}")
            if escapes(_normalize_name(entry[1])):
                raise DatasetError(f"{where}: depth file '{entry[1]}' points outside the data set; entries must be "
                                   "paths relative to the data set's folder or zip, without '..'")
            mapping[_normalize_name(entry[0])] = _normalize_name(entry[1])
        depth_names = []
        for name in names:
            if name not in mapping:
                raise DatasetError(f"{where}: entry '{name}' has no depth map; every image needs one")
            if not self._archive.exists(mapping[name]):
                raise DatasetError(f"{self._archive.where(mapping[name])} (depth of '{name}') does not exist")
            depth_names.append(mapping[name])
        return depth_names

    # ---- decoding ----------------------------------------------------------------------------

    def _decode_image(self, raw_index: int) -> np.ndarray:
        """The stored image ``[H, W, 3]`` uint8 RGB of entry ``raw_index``, checked."""
        name = self.image_names[raw_index]
        data = np.frombuffer(self._archive.read(name), dtype=np.uint8)
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
        where = self._archive.where(name)
        if image is None:
            raise DatasetError(f"{where} cannot be decoded as an image (corrupt or truncated bytes); replace it")
        if image.dtype != np.uint8:
            raise DatasetError(f"{where} has {image.dtype} pixels; EG3D data sets hold 8-bit images")
        channels = 1 if image.ndim == 2 else image.shape[2]
        if channels != 3:
            raise DatasetError(
                f"{where} has {channels} channel(s); images must be RGB (3 channels), as EG3D's dataset_tool writes"
            )
        height, width = image.shape[:2]
        if height != width:
            raise DatasetError(f"{where} is {width}x{height}; images must be square")
        if self.native_resolution is not None and height != self.native_resolution:
            raise DatasetError(
                f"{where} is {width}x{height} but the data set's first image is "
                f"{self.native_resolution}x{self.native_resolution}; all images must have one resolution"
            )
        return image[:, :, ::-1]  # OpenCV decodes to BGR

    def _decode_depth(self, raw_index: int) -> np.ndarray:
        """The stored depth ``[H, W]`` float32 of entry ``raw_index``, checked."""
        assert self.depth_names is not None
        name = self.depth_names[raw_index]
        where = self._archive.where(name)
        try:
            depth = np.load(io.BytesIO(self._archive.read(name)), allow_pickle=False)
        except (ValueError, OSError, EOFError) as error:
            raise DatasetError(f"{where} is not a readable .npy depth map ({error}); re-create it") from error
        size = self.native_resolution
        if depth.shape != (size, size):
            raise DatasetError(
                f"{where} has shape {depth.shape}; the depth of a {size}px image must be ({size}, {size})"
            )
        depth = depth.astype(np.float32)
        if not np.isfinite(depth).all() or (depth < 0).any():
            raise DatasetError(f"{where} holds negative or non-finite depths; depth is a distance (0 = no surface)")
        return depth

    def _resize(self, array: np.ndarray, nearest: bool = False) -> np.ndarray:
        if self.resolution == self.native_resolution:
            return array
        if nearest:
            interpolation = cv2.INTER_NEAREST
        else:
            interpolation = cv2.INTER_AREA if self.resolution < self.native_resolution else cv2.INTER_LINEAR
        return cv2.resize(np.ascontiguousarray(array), (self.resolution, self.resolution), interpolation=interpolation)

    # ---- Dataset -----------------------------------------------------------------------------

    @property
    def num_raw_images(self) -> int:
        """Images listed in ``dataset.json`` (without the x-flipped copies)."""
        return len(self.image_names)

    @property
    def has_depth(self) -> bool:
        return self.depth_names is not None

    @property
    def labels(self) -> Tensor:
        """``[len(self), 25]`` float32 camera labels of every item (mirrored ones included)."""
        return self._labels

    @property
    def source(self) -> str:
        """The folder or zip read."""
        return str(Path(self.path).expanduser().resolve())

    def __len__(self) -> int:
        return self.num_raw_images * (2 if self.xflip else 1)

    def __getitem__(self, index: int) -> ImageSample | ImageDepthSample:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for a data set of {len(self)} items")
        index = index % len(self)
        raw_index, mirrored = index % self.num_raw_images, index >= self.num_raw_images
        image = self._decode_image(raw_index)
        if mirrored:
            image = image[:, ::-1]
        image = self._resize(image)
        image_t = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float() / 127.5 - 1.0
        label = self._labels[index].clone()
        if not self.load_depth:
            return ImageSample(image_t, label)
        depth = self._decode_depth(raw_index)
        if mirrored:
            depth = depth[:, ::-1]
        depth_t = torch.from_numpy(np.ascontiguousarray(self._resize(depth, nearest=True)))[None]
        return ImageDepthSample(image_t, label, depth_t)

    def close(self) -> None:
        """Close the zip handle of this process (it is reopened on the next read)."""
        self._archive.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: nothing left to release
            pass

    def __repr__(self) -> str:
        return (f"EG3DDataset({str(self.path)!r}, images={self.num_raw_images}, xflip={self.xflip}, "
                f"resolution={self.resolution} (stored {self.native_resolution}), depth={self.has_depth})")
