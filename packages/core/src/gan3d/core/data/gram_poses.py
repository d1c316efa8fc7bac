"""GRAM's Cats data set as published: aligned images plus one pose file per image.

Layout (microsoft/GRAM, commit 5a5ac8e, ``preprocess_dataset.py`` ``preprocess_cats`` writes it,
``datasets.py`` ``CATS`` reads it)::

    cats/000001.png                  # 256x256 RGB, aligned by preprocess_cats
    cats/poses/000001_pose.npy       # float64 [pitch, yaw]: np.save(..., np.array([pitch, yaw]))

``pitch`` and ``yaw`` come from fitting a 3D cat-head template to the CAT dataset's landmarks
(``POS``) and are already offset by ``pi/2``. ``datasets.py`` ``read_pose_npy`` turns them into GRAM's
camera angles ``phi = pitch + 0.14`` (polar angle from +y) and ``theta = yaw`` (azimuth), the camera
sitting at ``(sin phi cos theta, cos phi, sin phi sin theta)`` on the unit sphere and looking at the
origin (``generators.py`` ``get_camera_origins``), with the Cats config's field of view of 12 degrees
(``configs.py`` ``CATS_default['camera']``). Mirrored images get ``theta -> pi - theta``
(``read_pose_npy(flip=True)``), which is :meth:`Cameras.mirror_x` of the label built here.

Here each pose becomes an EG3D camera label (16 cam2world floats in gan3d's OpenCV convention, 9
normalized intrinsics), so the images train like any labelled set: gan3d's yaw is ``pi - theta`` and
its polar angle ``phi`` (:mod:`gan3d.core.cameras`), and pi-GAN's angles recovered from the label
(``gan3d.methods.pigan.pose_angles``) are GRAM's ``(theta, phi)`` again.
"""

from __future__ import annotations

import io
import math
from pathlib import PurePosixPath
from typing import Protocol

import numpy as np
import torch
from torch import Tensor

from ..cameras import fov_to_intrinsics, look_at, spherical_origin
from .eg3d_dataset import DatasetError, EG3DDataset

__all__ = [
    "GRAM_CATS_PITCH_OFFSET",
    "GRAM_CATS_FOV",
    "gram_camera_labels",
    "gram_cats_pose_name",
    "parse_gram_cats_pose",
    "read_gram_cats_labels",
    "GRAMCatsDataset",
]

#: datasets.py read_pose_npy: ``P_x = P[0] + 0.14``.
GRAM_CATS_PITCH_OFFSET = 0.14
#: configs.py CATS_default['camera']['fov'] (degrees).
GRAM_CATS_FOV = 12.0
#: generators.py: cameras on the unit sphere (``get_camera_origins(camera_pos, r=1)``).
GRAM_CAMERA_RADIUS = 1.0


class _Archive(Protocol):
    """What the reader needs of a data set's storage (a folder or a zip)."""

    def names(self) -> set[str] | list[str]: ...

    def exists(self, name: str) -> bool: ...

    def read(self, name: str) -> bytes: ...

    def where(self, name: str) -> str: ...


def gram_camera_labels(phi: Tensor, theta: Tensor, *, radius: float = GRAM_CAMERA_RADIUS,
                       fov: float = GRAM_CATS_FOV) -> Tensor:
    """``[N, 25]`` EG3D camera labels of GRAM cameras at polar angle ``phi [N]`` and azimuth ``theta [N]``
    (GRAM's convention), ``radius`` from the origin and looking at it, with a ``fov``-degree pinhole.

    Example:
        >>> label = gram_camera_labels(torch.tensor([math.pi / 2]), torch.tensor([math.pi / 2]))
        >>> label[0, 3:12:4]                    # the front camera sits on +z
        tensor([0., 0., 1.])
    """
    phi, theta = torch.as_tensor(phi, dtype=torch.float32), torch.as_tensor(theta, dtype=torch.float32)
    cam2world = look_at(spherical_origin(math.pi - theta, phi, radius))
    intrinsics = fov_to_intrinsics(fov, phi.shape[0])
    return torch.cat([cam2world.reshape(-1, 16), intrinsics.reshape(-1, 9)], dim=1)


def gram_cats_pose_name(image_name: str) -> str:
    """The pose file of an image: ``dir/x.png`` -> ``dir/poses/x_pose.npy`` (datasets.py ``CATS``)."""
    path = PurePosixPath(image_name)
    return str(path.parent / "poses" / f"{path.stem}_pose.npy")


def parse_gram_cats_pose(data: bytes, where: str) -> tuple[float, float]:
    """GRAM's ``(phi, theta)`` from the bytes of a ``*_pose.npy`` file: ``(P[0] + 0.14, P[1])``."""
    try:
        pose = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise DatasetError(f"{where} is not a readable .npy pose file ({error}); re-create it with GRAM's "
                           "preprocess_dataset.py --cate=cats") from error
    if pose.shape != (2,) or not np.issubdtype(pose.dtype, np.number):
        raise DatasetError(f"{where} holds a {pose.dtype} array of shape {pose.shape}; a GRAM Cats pose file "
                           "holds two numbers, [pitch, yaw]")
    pitch, yaw = (float(v) for v in pose)
    if not (math.isfinite(pitch) and math.isfinite(yaw)):
        raise DatasetError(f"{where} holds a non-finite pose {pose.tolist()}; re-create it")
    return pitch + GRAM_CATS_PITCH_OFFSET, yaw


def read_gram_cats_labels(archive: _Archive, *, fov: float = GRAM_CATS_FOV) -> tuple[list[str], np.ndarray]:
    """The images of a GRAM Cats folder (the ``*.png`` at its top, as GRAM's ``glob('*.png')``) and their
    ``[N, 25]`` float32 camera labels from ``poses/<stem>_pose.npy``, sorted by name.

    Raises :class:`DatasetError` naming the folder when it holds no image, and the missing or
    malformed pose file of any image.
    """
    images = sorted(n for n in archive.names() if "/" not in n and n.lower().endswith(".png"))
    if not images:
        raise DatasetError(f"{archive.where('*.png')}: no .png images at the top of the folder; a GRAM Cats set "
                           "holds the aligned images and a poses/ folder (GRAM's preprocess_dataset.py --cate=cats)")
    angles = []
    for name in images:
        pose_name = gram_cats_pose_name(name)
        if not archive.exists(pose_name):
            raise DatasetError(f"{archive.where(pose_name)} does not exist: every image of a GRAM Cats set needs its "
                               f"pose file (image {name})")
        angles.append(parse_gram_cats_pose(archive.read(pose_name), archive.where(pose_name)))
    phi, theta = torch.tensor(angles, dtype=torch.float64).T
    return images, gram_camera_labels(phi, theta, fov=fov).numpy()


class GRAMCatsDataset(EG3DDataset):
    """GRAM's Cats set (a folder or zip of ``*.png`` plus ``poses/*_pose.npy``) with camera labels.

    The same items, ``xflip`` (GRAM flips at random with p = 0.5; here the mirrored copies are
    items ``[N, 2N)``, their pose mirrored) and ``resolution`` as :class:`EG3DDataset`; GRAM resizes with
    PIL's Lanczos filter (``transforms.Resize(interpolation=1)``), here with pixel-area averaging, which
    matters only below the stored 256 px.

    Example:
        >>> data = GRAMCatsDataset("datasets/cats", xflip=True)     # doctest: +SKIP
        >>> image, label = data[0]                                  # [3, 256, 256], [25]
    """

    def __init__(self, path, xflip: bool = False, resolution: int | None = None, *, fov: float = GRAM_CATS_FOV) -> None:
        self.fov = fov
        super().__init__(path, xflip=xflip, resolution=resolution, load_depth=False)

    def _read_index(self) -> tuple[list[str], np.ndarray, None]:
        names, labels = read_gram_cats_labels(self._archive, fov=self.fov)
        return names, labels.astype(np.float32), None

    def __repr__(self) -> str:
        return (f"GRAMCatsDataset({str(self.path)!r}, images={self.num_raw_images}, xflip={self.xflip}, "
                f"resolution={self.resolution} (stored {self.native_resolution}))")
