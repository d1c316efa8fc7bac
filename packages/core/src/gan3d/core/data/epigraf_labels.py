"""EpiGRAF's data-set camera angles (``dataset.json`` ``"camera_angles"``) read as camera labels.

EpiGRAF (universome/epigraf, src/training/dataset.py ``_load_field``, ``_load_raw_camera_angles``;
README "How to pre-process the datasets") describes each image's camera by ``[yaw, pitch, roll]`` (roll
unused) in ``dataset.json``::

    {"camera_angles": {"<file name, any extension>": [yaw, pitch, roll], ...}, "labels": ...}

The keys are matched to the image files with their extensions removed and, when the archive's files sit
in a folder named like the archive, without that folder (``remove_root``); the ``dataset.json`` may lie
anywhere in the archive (the one file whose name ends with ``dataset.json``). The camera's radius and
field of view are not in the file: they are the data set's config (``configs/dataset/ffhq_posed.yaml``,
``cats_aligned.yaml``: radius 1, fov 12 degrees; Megascans: fov 30).

The camera (src/training/rendering.py ``compute_cam2world_matrix``, ``get_initial_rays_trig``): on a sphere
of radius ``r`` about the origin, looking at it with up ``+y``::

    origin_e = r (sin(pitch) cos(yaw), cos(pitch), sin(pitch) sin(yaw))

A frontal view is ``yaw = 0, pitch = pi / 2`` (src/training/inference_utils.py), so EpiGRAF's objects face
``+x``; x-flips map ``yaw -> -yaw`` (dataset.py ``get_camera_angles``). gan3d's world faces ``+z`` and
mirrors about ``x = 0`` (:meth:`~gan3d.core.types.Cameras.mirror_x`); a quarter turn about ``y`` maps one
onto the other::

    gan3d (x, y, z) = (-z_e, y_e, x_e),    gan3d yaw = pi / 2 - yaw_e,    gan3d polar = pitch_e

so :func:`gan3d.core.cameras.spherical_origin` gives the same camera centre and ``mirror_x`` of a label
is EpiGRAF's flip (the methods' tri-plane mode ``'epigraf'`` reads EpiGRAF's planes in this frame).

Intrinsics: EpiGRAF casts the rays of a ``W``-pixel image through ``linspace(-1, 1, W) * tan(fov / 2)``:
the corner pixel CENTRES span the field of view. Rendered through pixel centres, that is a pinhole with the
normalized focal ``(W - 1) / (2 W tan(fov / 2))`` at the data resolution ``W`` (:func:`epigraf_focal`), so
the label depends on the resolution the set is trained at (reader option ``resolution``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..cameras import focal_to_intrinsics, look_at, spherical_origin
from ..types import Cameras
from .archives import Archive, DatasetError
from .labels import LabelTable, normalize_name, register_label_reader

__all__ = ["POLE_MARGIN", "to_gan3d_angles", "epigraf_focal", "epigraf_cameras", "match_camera_angles",
           "read_epigraf_labels"]

#: rendering.py / networks_epigraf.py clamp the pitch to ``[1e-5, pi - 1e-5]``.
POLE_MARGIN = 1e-5


def to_gan3d_angles(angles: Tensor) -> Tensor:
    """EpiGRAF ``[B, 2 or 3]`` ``(yaw, pitch[, roll])`` -> gan3d ``[B, 2]`` ``(yaw, polar)`` (pitch clamped off
    the poles as EpiGRAF does).

    Example:
        >>> to_gan3d_angles(torch.tensor([[0.0, math.pi / 2, 0.0]]))    # EpiGRAF's front view
        tensor([[1.5708, 1.5708]])
    """
    if angles.ndim != 2 or angles.shape[1] not in (2, 3):
        raise ValueError("EpiGRAF camera angles must be [B, 2] or [B, 3] (yaw, pitch[, roll]), "
                         f"got {tuple(angles.shape)}")
    return torch.stack([math.pi / 2 - angles[:, 0], angles[:, 1].clamp(POLE_MARGIN, math.pi - POLE_MARGIN)], dim=-1)


def epigraf_focal(fov_degrees: float, image_resolution: int) -> float:
    """The normalized focal of EpiGRAF's camera at ``image_resolution``: ``(W - 1) / (2 W tan(fov / 2))``.

    Example:
        >>> round(epigraf_focal(12.0, 512), 4)
        4.7477
    """
    if not 0 < fov_degrees < 180:
        raise ValueError(f"fov must be in (0, 180) degrees, got {fov_degrees}")
    if image_resolution < 2:
        raise ValueError(f"image_resolution must be >= 2, got {image_resolution}")
    w = image_resolution
    return (w - 1) / (2 * w * math.tan(math.radians(fov_degrees) / 2))


def epigraf_cameras(angles: Tensor, *, radius: float = 1.0, fov: float = 12.0, image_resolution: int = 512) -> Cameras:
    """gan3d cameras of EpiGRAF camera angles ``[B, 2 or 3]`` (the module docstring gives the frame), with
    ``Cameras.angles`` the gan3d ``(yaw, polar)``."""
    if radius <= 0:
        raise ValueError(f"the camera radius must be positive, got {radius}")
    ours = to_gan3d_angles(angles.to(torch.float32))
    origins = spherical_origin(ours[:, 0], ours[:, 1], radius)
    intrinsics = focal_to_intrinsics(epigraf_focal(fov, image_resolution), angles.shape[0], angles.device)
    return Cameras(look_at(origins), intrinsics, ours)


def _stem(name: str) -> str:
    return os.path.splitext(normalize_name(name))[0]


def match_camera_angles(file_names: Sequence[str], camera_angles: Mapping[str, Iterable[float]], *,
                        root: str = "", where: str = "dataset.json") -> Tensor:
    """``[N, 3]`` angles of ``file_names`` from a ``dataset.json`` ``camera_angles`` mapping.

    As EpiGRAF's ``_load_field``: keys and file names are compared without their extensions (with ``/``
    separators), a file name loses a leading ``root + '/'`` first (``remove_root``: the folder named like
    the archive); two keys that differ only by the extension are an error, as is a file without angles.

    Example:
        >>> match_camera_angles(["a/1.png"], {"a/1.jpg": [0.1, 1.5, 0.0]})
        tensor([[0.1000, 1.5000, 0.0000]])
    """
    if not isinstance(camera_angles, Mapping):
        raise DatasetError(f"{where}: 'camera_angles' must map file names to [yaw, pitch, roll], "
                           f"got {type(camera_angles).__name__}")
    table: dict[str, list[float]] = {}
    for key, value in camera_angles.items():
        stem = _stem(str(key))
        if stem in table:
            raise DatasetError(f"{where}: camera_angles key {key!r} repeats {stem!r} with another extension")
        try:
            row = [float(v) for v in value]
        except (TypeError, ValueError) as error:
            raise DatasetError(f"{where}: camera_angles[{key!r}] must be three numbers [yaw, pitch, roll], "
                               f"got {value!r:.80}") from error
        if len(row) != 3 or not all(math.isfinite(v) for v in row):
            raise DatasetError(f"{where}: camera_angles[{key!r}] must be three finite numbers [yaw, pitch, roll], "
                               f"got {row}")
        table[stem] = row
    rows = []
    for name in file_names:
        name = normalize_name(name)
        if root and name.startswith(root + "/"):
            name = name[len(root) + 1:]
        stem = _stem(name)
        if stem not in table:
            raise DatasetError(f"{where}: camera_angles has no entry for image {name!r} (looked up as {stem!r}); "
                               "every image needs [yaw, pitch, roll]")
        rows.append(table[stem])
    return torch.tensor(rows, dtype=torch.float32).reshape(len(rows), 3)


def _find_dataset_json(archive: Archive) -> str | None:
    """The archive's one ``*dataset.json`` (EpiGRAF accepts it anywhere), ``None`` without one."""
    if archive.exists("dataset.json"):
        return "dataset.json"
    found = [n for n in archive.names() if normalize_name(n).endswith("dataset.json")]
    if len(found) > 1:
        raise DatasetError(f"{archive.path} holds {len(found)} files named like dataset.json ({', '.join(found[:4])}); "
                           "EpiGRAF reads exactly one")
    return found[0] if found else None


def read_epigraf_labels(archive: Archive, labels_file: Path | None = None, *, fov: float = 12.0,
                        radius: float = 1.0, resolution: int = 512) -> LabelTable | None:
    """Camera labels (kind ``'camera'``: x-flips mirror them as EpiGRAF does) from EpiGRAF's
    ``camera_angles``; ``None`` when there is no ``dataset.json`` or it has no ``camera_angles``.

    Args:
        archive: the data set.
        labels_file: a ``dataset.json`` outside the set (replaces the set's own).
        fov, radius: the data set's camera (``dataset.camera.fov`` and ``radius``: FFHQ and Cats 12 and 1).
        resolution: the image side the set is trained at (the focal of :func:`epigraf_focal`).
    """
    import json

    from .image_dataset import IMAGE_SUFFIXES, image_names

    if labels_file is not None:
        where = str(labels_file)
        if not labels_file.is_file():
            raise DatasetError(f"labels file {labels_file} does not exist")
        text = labels_file.read_bytes()
    else:
        member = _find_dataset_json(archive)
        if member is None:
            return None
        where = f"{archive.path}: {member}"
        text = archive.read(member)
    try:
        meta = json.loads(text)
    except (ValueError, UnicodeDecodeError) as error:
        raise DatasetError(f"{where} is not valid JSON ({error}); fix or re-create it") from error
    if not isinstance(meta, dict):
        raise DatasetError(f"{where} must be a JSON object with a 'camera_angles' key, got {type(meta).__name__}")
    angles = meta.get("camera_angles")
    if angles is None:
        return None
    names = image_names(archive)
    if not names:
        raise DatasetError(f"{archive.path} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    root = Path(str(archive.path)).name.split(".")[0]
    values = match_camera_angles(names, angles, root=root, where=where)
    yaw, pitch = values[:, 0], values[:, 1]
    if bool((yaw.abs() > math.pi + 1e-6).any() or (pitch < -1e-6).any() or (pitch > math.pi + 1e-6).any()):
        raise DatasetError(f"{where}: camera angles must have yaw in [-pi, pi] and pitch in [0, pi] (EpiGRAF's "
                           "src/train.py asserts it); are they in degrees?")
    cameras = epigraf_cameras(values, radius=radius, fov=fov, image_resolution=resolution)
    labels = cameras.label.numpy().astype(np.float32)
    return LabelTable(list(names), labels, "camera", where)


register_label_reader("epigraf", read_epigraf_labels)
