"""EpiGRAF's camera angles and gan3d's cameras.

EpiGRAF describes a camera by ``(yaw, pitch, roll)`` (roll unused) on a sphere of radius ``r`` about the
origin, looking at it with up ``+y`` (universome/epigraf src/training/rendering.py
``compute_camera_origins``, ``compute_cam2world_matrix``)::

    origin_e = r (sin(pitch) cos(yaw), cos(pitch), sin(pitch) sin(yaw))

A frontal view is ``yaw = 0, pitch = pi / 2`` (src/training/inference_utils.py ``generate_camera_angles``),
so EpiGRAF's objects face ``+x``; its data sets flip images with ``yaw -> -yaw`` (src/training/dataset.py
``get_camera_angles``). gan3d's world faces ``+z`` and mirrors about ``x = 0`` (:meth:`Cameras.mirror_x`).
A quarter turn about ``y`` maps one onto the other::

    gan3d (x, y, z) = (-z_e, y_e, x_e),    gan3d yaw = pi / 2 - yaw_e,    gan3d polar = pitch_e

(:func:`gan3d.core.cameras.spherical_origin` then gives the same camera centre, and ``yaw_e -> -yaw_e`` is
``mirror_x``). The tri-plane mode ``'epigraf'`` reads EpiGRAF's planes in this frame.

Intrinsics: EpiGRAF shoots the rays of a ``W``-pixel image through ``linspace(-1, 1, W)`` times
``tan(fov / 2)`` (rendering.py ``get_initial_rays_trig``): the corner pixel CENTRES span the field of
view, so its pinhole has the normalized focal ``(W - 1) / (2 W tan(fov / 2))`` at the data resolution
``W`` (1.6 % longer than the exact-pinhole focal at 64 px, 0.2 % at 512 px).

Data sets: ``dataset.json`` holds ``{"camera_angles": {"<file name>": [yaw, pitch, roll], ...}}``; the keys
are matched to the image files with their extensions removed (dataset.py ``_load_field``). ``r`` and the
field of view are not in the file: they are the data set's config (FFHQ and Cats: ``r = 1``, fov 12;
Megascans: fov 30).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence

import torch
from torch import Tensor

from gan3d.core.cameras import focal_to_intrinsics, look_at, spherical_origin
from gan3d.core.types import Cameras

__all__ = ["POLE_MARGIN", "to_gan3d_angles", "to_epigraf_angles", "epigraf_focal", "epigraf_cameras",
           "match_camera_angles"]

#: rendering.py / networks_epigraf.py clamp the pitch to ``[1e-5, pi - 1e-5]``.
POLE_MARGIN = 1e-5


def to_gan3d_angles(angles: Tensor) -> Tensor:
    """EpiGRAF ``[B, 2 or 3]`` ``(yaw, pitch[, roll])`` -> gan3d ``[B, 2]`` ``(yaw, polar)`` (pitch clamped off
    the poles as EpiGRAF does)."""
    if angles.ndim != 2 or angles.shape[1] not in (2, 3):
        raise ValueError("EpiGRAF camera angles must be [B, 2] or [B, 3] (yaw, pitch[, roll]), "
                         f"got {tuple(angles.shape)}")
    return torch.stack([math.pi / 2 - angles[:, 0], angles[:, 1].clamp(POLE_MARGIN, math.pi - POLE_MARGIN)], dim=-1)


def to_epigraf_angles(angles: Tensor) -> Tensor:
    """gan3d ``[B, 2]`` ``(yaw, polar)`` -> EpiGRAF ``[B, 3]`` ``(yaw, pitch, 0)`` with ``yaw`` wrapped into
    ``[-pi, pi)`` (the range EpiGRAF's data sets use; src/train.py ``init_dataset`` asserts it)."""
    if angles.ndim != 2 or angles.shape[1] != 2:
        raise ValueError(f"gan3d camera angles must be [B, 2] (yaw, polar), got {tuple(angles.shape)}")
    yaw = torch.remainder(math.pi / 2 - angles[:, 0] + math.pi, 2 * math.pi) - math.pi
    return torch.stack([yaw, angles[:, 1], torch.zeros_like(yaw)], dim=-1)


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
    """gan3d cameras of EpiGRAF camera angles ``[B, 2 or 3]`` (see the module docstring for the frame)."""
    ours = to_gan3d_angles(angles.to(torch.float32))
    origins = spherical_origin(ours[:, 0], ours[:, 1], radius)
    intrinsics = focal_to_intrinsics(epigraf_focal(fov, image_resolution), angles.shape[0], angles.device)
    return Cameras(look_at(origins), intrinsics, ours)


def match_camera_angles(file_names: Sequence[str], camera_angles: Mapping[str, Iterable[float]]) -> Tensor:
    """``[N, 3]`` angles of ``file_names`` from a ``dataset.json`` ``camera_angles`` mapping.

    As EpiGRAF's ``_load_field``: keys and file names are compared without their extensions (and with
    ``/`` separators); two keys that differ only by the extension are an error, as is a file without angles.

    Example:
        >>> match_camera_angles(["a/1.png"], {"a/1.jpg": [0.1, 1.5, 0.0]})
        tensor([[0.1000, 1.5000, 0.0000]])
    """
    table: dict[str, list[float]] = {}
    for key, value in camera_angles.items():
        stem = os.path.splitext(key.replace("\\", "/"))[0]
        if stem in table:
            raise ValueError(f"dataset.json camera_angles: {key!r} repeats {stem!r} with another extension")
        value = [float(v) for v in value]
        if len(value) != 3:
            raise ValueError(f"dataset.json camera_angles[{key!r}] must be [yaw, pitch, roll], got {value}")
        table[stem] = value
    rows = []
    for name in file_names:
        stem = os.path.splitext(name.replace("\\", "/"))[0]
        if stem not in table:
            raise ValueError(f"dataset.json camera_angles has no entry for image {name!r} (looked up as {stem!r})")
        rows.append(table[stem])
    return torch.tensor(rows, dtype=torch.float32).reshape(len(rows), 3)
