"""GRAM's data sets as published: aligned images plus one pose file per image, read as camera labels.

Layouts (microsoft/GRAM, commit 5a5ac8e; ``preprocess_dataset.py`` writes them, ``datasets.py`` reads
them; ``poses/`` sits beside the images)::

    ffhq/00000.png   ffhq/poses/00000.mat                # Deep3DFaceRecon's 'angle' [1, 3] (pitch, yaw, roll)
    cats/00000.png   cats/poses/00000_pose.npy           # float64 [pitch, yaw] (preprocess_cats's POS fit)
    carla/0000.png   carla/poses/0000_extrinsics.npy     # GRAF's camera-to-world matrix (z-up world)

``datasets.py`` turns each into GRAM's camera angles ``(phi, theta)`` -- ``phi`` the polar angle from
+y, ``theta`` the azimuth, the camera at ``(sin phi cos theta, cos phi, sin phi sin theta)`` on the unit
sphere looking at the origin (``generators.py`` ``get_camera_origins``):

* FFHQ (``read_pose``): ``phi = -(angle[0] - 0.1) + pi/2``, ``theta = angle[1] + pi/2``;
* Cats (``read_pose_npy``): ``phi = pose[0] + 0.14``, ``theta = pose[1]``;
* CARLA (``transform_matrix_to_camera_pos``): the matrix's rows reordered ``[1, 2, 0]`` (GRAF's z-up
  world to GRAM's y-up one), ``t`` its last column, ``theta = atan2(-t_0, t_2) + pi/2``,
  ``phi = atan(-t_1 / |(t_0, t_2)|) + pi/2``.

A mirrored image gets ``theta -> pi - theta`` in all three (the ``flip`` branches), which is
:meth:`~gan3d.core.types.Cameras.mirror_x` of the labels built here. Each pose becomes an EG3D camera
label (16 cam2world floats in gan3d's OpenCV convention, 9 normalized intrinsics) of the camera GRAM
renders from -- radius 1, the config's field of view (12 degrees for FFHQ and Cats, 30 for CARLA,
``configs.py`` ``camera.fov``) -- so the sets train like any labelled set: gan3d's yaw is
``pi - theta`` and its polar angle ``phi`` (:mod:`gan3d.core.cameras`), and the pi-GAN angles the
objective recovers from a label (``gan3d.methods.pigan.pose_angles``) are GRAM's ``(theta, phi)``.

The readers are registered as the label formats ``gram_ffhq``, ``gram_cats`` and ``gram_carla``
(:func:`gan3d.core.data.register_label_reader`); a recipe names one in ``data.label_format``.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import numpy as np
import torch
from torch import Tensor

from gan3d.core.cameras import fov_to_intrinsics, look_at, spherical_origin
from gan3d.core.data.archives import Archive, DatasetError
from gan3d.core.data.labels import LabelTable, register_label_reader

__all__ = [
    "GRAM_FOV",
    "gram_camera_labels",
    "gram_pose_name",
    "parse_ffhq_pose",
    "parse_cats_pose",
    "parse_carla_pose",
    "read_gram_labels",
    "LABEL_FORMATS",
    "register_label_formats",
]

#: datasets.py read_pose_npy: ``P_x = P[0] + 0.14``.
CATS_PITCH_OFFSET = 0.14
#: datasets.py read_pose: ``P_x = -(P[0, 0] - 0.1) + pi / 2``.
FFHQ_PITCH_OFFSET = 0.1
#: configs.py ``camera.fov`` (degrees) of each data set.
GRAM_FOV = {"ffhq": 12.0, "cats": 12.0, "carla": 30.0}
#: generators.py: cameras on the unit sphere (``get_camera_origins(camera_pos, r=1)``).
GRAM_CAMERA_RADIUS = 1.0


def gram_camera_labels(phi: Tensor, theta: Tensor, *, radius: float = GRAM_CAMERA_RADIUS,
                       fov: float = GRAM_FOV["ffhq"]) -> Tensor:
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


#: The pose file of each image, by data set (datasets.py: ``poses/<stem>.mat``,
#: ``poses/<stem>_pose.npy``, ``poses/<stem>_extrinsics.npy``).
POSE_SUFFIX = {"ffhq": ".mat", "cats": "_pose.npy", "carla": "_extrinsics.npy"}


def gram_pose_name(image_name: str, kind: str) -> str:
    """The pose file of an image: ``dir/x.png`` -> ``dir/poses/x<suffix>`` (:data:`POSE_SUFFIX`)."""
    path = PurePosixPath(image_name)
    return str(path.parent / "poses" / f"{path.stem}{POSE_SUFFIX[kind]}")


def _load_npy(data: bytes, where: str, what: str) -> np.ndarray:
    try:
        return np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise DatasetError(f"{where} is not a readable .npy file ({error}); re-create it with GRAM's "
                           f"preprocess_dataset.py ({what})") from error


def _finite(values: tuple[float, float], where: str) -> tuple[float, float]:
    if not all(math.isfinite(v) for v in values):
        raise DatasetError(f"{where} holds a non-finite pose {list(values)}; re-create it")
    return values


def parse_cats_pose(data: bytes, where: str) -> tuple[float, float]:
    """GRAM's ``(phi, theta)`` from a Cats ``*_pose.npy`` file: ``(P[0] + 0.14, P[1])`` (``read_pose_npy``)."""
    pose = _load_npy(data, where, "--cate=cats")
    if pose.shape != (2,) or not np.issubdtype(pose.dtype, np.number):
        raise DatasetError(f"{where} holds a {pose.dtype} array of shape {pose.shape}; a GRAM Cats pose file "
                           "holds two numbers, [pitch, yaw]")
    pitch, yaw = (float(v) for v in pose)
    return _finite((pitch + CATS_PITCH_OFFSET, yaw), where)


def parse_ffhq_pose(data: bytes, where: str) -> tuple[float, float]:
    """GRAM's ``(phi, theta)`` from an FFHQ ``.mat`` file (Deep3DFaceRecon's ``angle`` ``[1, 3]``, radians):
    ``(-(angle[0] - 0.1) + pi/2, angle[1] + pi/2)`` (``read_pose``)."""
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    try:
        mat = loadmat(io.BytesIO(data))
    except (MatReadError, ValueError, OSError, TypeError) as error:
        raise DatasetError(f"{where} is not a readable .mat file ({error}); GRAM's FFHQ poses are "
                           "Deep3DFaceRecon's .mat files") from error
    angle = mat.get("angle")
    if not isinstance(angle, np.ndarray) or angle.ndim != 2 or angle.shape[0] != 1 or angle.shape[1] < 2 \
            or not np.issubdtype(angle.dtype, np.number):
        got = "no 'angle'" if angle is None else f"'angle' of shape {getattr(angle, 'shape', None)}"
        raise DatasetError(f"{where} holds {got}; a GRAM FFHQ pose file holds Deep3DFaceRecon's 'angle' "
                           "[1, 3] (pitch, yaw, roll in radians)")
    pitch, yaw = float(angle[0, 0]), float(angle[0, 1])
    return _finite((-(pitch - FFHQ_PITCH_OFFSET) + math.pi / 2, yaw + math.pi / 2), where)


def parse_carla_pose(data: bytes, where: str) -> tuple[float, float]:
    """GRAM's ``(phi, theta)`` from a CARLA ``*_extrinsics.npy`` camera-to-world matrix (``[3, 4]`` or
    ``[4, 4]``, GRAF's z-up world), as ``transform_matrix_to_camera_pos`` computes them."""
    c2w = _load_npy(data, where, "--cate=carla")
    if c2w.ndim != 2 or c2w.shape[0] not in (3, 4) or c2w.shape[1] != 4 or not np.issubdtype(c2w.dtype, np.number):
        raise DatasetError(f"{where} holds an array of shape {c2w.shape}; a CARLA pose file holds GRAF's "
                           "[4, 4] (or [3, 4]) camera-to-world matrix")
    t = c2w[[1, 2, 0], -1].astype(np.float64)  # rows [1, 2, 0]: z-up to y-up
    theta = math.atan2(-t[0], t[2]) + math.pi / 2
    horizontal = math.hypot(t[0], t[2])
    if horizontal == 0:
        raise DatasetError(f"{where}: the camera sits on the vertical axis, where GRAM's angles are undefined")
    phi = math.atan(-t[1] / horizontal) + math.pi / 2
    return _finite((phi, theta), where)


PARSERS: dict[str, Callable[[bytes, str], tuple[float, float]]] = {
    "ffhq": parse_ffhq_pose, "cats": parse_cats_pose, "carla": parse_carla_pose,
}


def _images(archive: Archive) -> list[str]:
    """The ``*.png`` of the set (datasets.py ``glob('*.png')``), not those under a ``poses`` folder, sorted."""
    return sorted(n for n in archive.names()
                  if n.lower().endswith(".png") and "poses" not in PurePosixPath(n).parent.parts)


def read_gram_labels(archive: Archive, kind: str, *, fov: float | None = None) -> LabelTable:
    """The images of a GRAM ``kind`` set (``'ffhq'``, ``'cats'``, ``'carla'``) and their ``[N, 25]`` float32
    camera labels from the pose file beside each (``poses/``), sorted by name.

    Raises :class:`DatasetError` naming the set when it holds no image, and the missing or malformed pose
    file of any image (GRAM's preprocessing writes one for every image it keeps).
    """
    if kind not in PARSERS:
        raise ValueError(f"GRAM data set kind must be one of {', '.join(PARSERS)}, got {kind!r}")
    images = _images(archive)
    if not images:
        raise DatasetError(f"{archive.where('*.png')}: no .png images; a GRAM {kind} set holds the aligned images "
                           f"and a poses/ folder (GRAM's preprocess_dataset.py --cate={kind})")
    angles = []
    for name in images:
        pose_name = gram_pose_name(name, kind)
        if not archive.exists(pose_name):
            raise DatasetError(f"{archive.where(pose_name)} does not exist: every image of a GRAM {kind} set needs its "
                               f"pose file (image {name})")
        angles.append(PARSERS[kind](archive.read(pose_name), archive.where(pose_name)))
    phi, theta = torch.tensor(angles, dtype=torch.float64).T
    labels = gram_camera_labels(phi, theta, fov=GRAM_FOV[kind] if fov is None else fov).numpy()
    return LabelTable(images, labels.astype(np.float32), "camera", f"{archive.path}: poses/*{POSE_SUFFIX[kind]}")


def _reader(kind: str):
    def read(archive: Archive, labels_file: Path | None = None) -> LabelTable:
        if labels_file is not None:
            raise DatasetError(f"label format gram_{kind} reads the pose files in the set's poses/ folder; "
                               f"--labels {labels_file} names a dataset.json, which this format has none of")
        return read_gram_labels(archive, kind)

    read.__name__ = f"read_gram_{kind}_labels"
    read.__doc__ = f"Label reader ``gram_{kind}``: :func:`read_gram_labels` of kind ``'{kind}'``."
    return read


#: The label formats by name (``data.label_format``), one reader object each.
LABEL_FORMATS = {f"gram_{kind}": _reader(kind) for kind in PARSERS}


def register_label_formats() -> None:
    """Add ``gram_ffhq``, ``gram_cats`` and ``gram_carla`` to :data:`gan3d.core.data.labels.LABEL_READERS`
    (idempotent: the same reader objects each time)."""
    for name, reader in LABEL_FORMATS.items():
        register_label_reader(name, reader)
