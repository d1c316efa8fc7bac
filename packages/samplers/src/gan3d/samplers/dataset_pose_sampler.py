"""Cameras drawn from the data set's own camera labels, as EG3D renders its generator's poses."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from gan3d.core import random_draws
from gan3d.core.cameras import rig_from_cameras
from gan3d.core.interfaces import PoseSampler
from gan3d.core.types import CameraRig, Cameras

from .camera_angles import spherical_angles

__all__ = ["DatasetPoseSampler"]

logger = logging.getLogger(__name__)


class DatasetPoseSampler(PoseSampler):
    """Draws whole ``[25]`` camera labels uniformly (with replacement) from the bound data set labels.

    EG3D renders (and, with generator pose conditioning, conditions) its generator on camera labels
    drawn from the training set (``training/training_loop.py``: ``all_gen_c`` from
    ``training_set.get_label``). The trainer binds the labels with :meth:`bind_dataset_poses`; they are
    a non-persistent buffer, so they follow ``.to(device)`` but stay out of checkpoints.

    ``Cameras.angles`` are the (yaw, polar) of each camera centre about ``orbit_center``
    (:func:`gan3d.samplers.camera_angles.spherical_angles`), for pose metrics and pose losses.

    Args:
        orbit_center: the point the cameras orbit (angles are measured about it).
        rig: the camera rig to declare when no labels are bound (a generator loaded for inference), as
            :class:`~gan3d.core.types.CameraRig` fields: ``pivot``, ``radius``, ``focal`` and optionally
            ``yaw``, ``polar``, ``yaw_range``, ``polar_range``; ``None``: EG3D's FFHQ mean camera.

    Example:
        >>> sampler = DatasetPoseSampler()
        >>> sampler.bind_dataset_poses(labels)                      # doctest: +SKIP
        >>> sampler(4, generator=torch.Generator().manual_seed(0))  # doctest: +SKIP
    """

    labels: Tensor | None
    needs_dataset_poses = True

    def __init__(self, *, orbit_center: Sequence[float] = (0.0, 0.0, 0.0), rig: dict[str, Any] | None = None) -> None:
        super().__init__()
        if len(orbit_center) != 3:
            raise ValueError(f"orbit_center is 3 floats, got {list(orbit_center)}")
        self.orbit_center = tuple(float(x) for x in orbit_center)
        self.rig = None
        if rig is not None:
            allowed = ("pivot", "radius", "focal", "yaw", "polar", "yaw_range", "polar_range")
            unknown = sorted(set(rig) - set(allowed))
            missing = [k for k in ("pivot", "radius", "focal") if k not in rig]
            if unknown or missing:
                raise ValueError("dataset pose sampler: rig needs pivot, radius and focal and may give "
                                 f"{allowed[3:]}; unknown {unknown}, missing {missing}")
            fields = {k: tuple(float(x) for x in v) if isinstance(v, list | tuple) else float(v)
                      for k, v in rig.items()}
            self.rig = CameraRig(orbit_center=self.orbit_center, **fields)  # checks the values
        self.register_buffer("labels", None, persistent=False)

    def bind_dataset_poses(self, labels: Tensor) -> None:
        """Keep the data set's ``labels [N, 25]`` (16 cam2world floats, 9 normalized intrinsics)."""
        labels = torch.as_tensor(labels)
        if labels.ndim != 2 or labels.shape[1] != 25 or labels.shape[0] == 0:
            raise ValueError(f"dataset pose labels must be [N, 25] with N >= 1, got {tuple(labels.shape)}")
        if not torch.isfinite(labels).all():
            raise ValueError("dataset pose labels contain NaN or infinite values")
        self.labels = labels.detach().to(torch.float32).clone()

    def camera_rig(self) -> CameraRig:
        """The mean camera of the bound labels (:func:`gan3d.core.cameras.rig_from_cameras` about
        ``orbit_center``: the pivot nearest to every optical axis, the mean radius and focal, the angle
        bands of the data).

        A generator loaded from a checkpoint has no labels (they are not saved); its rig is then the
        ``rig`` option, or without one EG3D's FFHQ mean camera (``gen_videos.py``: radius 2.7, pivot
        ``(0, 0, 0.2)``, focal 4.2647) about ``orbit_center``, with a warning in the log.
        """
        if self.labels is None and self.rig is not None:
            return self.rig
        if self.labels is None:
            logger.warning("the 'dataset' pose sampler has no labels bound; using EG3D's FFHQ mean camera "
                           "(radius 2.7, pivot (0, 0, 0.2), focal 4.2647) as its camera rig")
            return CameraRig(pivot=(0.0, 0.0, 0.2), radius=2.7, focal=4.2647, orbit_center=self.orbit_center,
                             yaw_range=(math.pi / 2 - 0.35, math.pi / 2 + 0.35),
                             polar_range=(math.pi / 2 - 0.25, math.pi / 2 + 0.25))
        return rig_from_cameras(Cameras.from_label(self.labels), self.orbit_center)

    def forward(
        self, batch_size: int, *, device: torch.device | str = "cpu", generator: torch.Generator | None = None
    ) -> Cameras:
        """``batch_size`` cameras whose labels are rows of the bound labels, on ``device``."""
        if self.labels is None:
            raise RuntimeError(
                "the 'dataset' pose sampler has no camera labels yet: call "
                "bind_dataset_poses(labels [N, 25]) with the data set's labels first (the trainer does this "
                "from its data set), or use the 'spherical' pose sampler"
            )
        index = random_draws.randint(self.labels.shape[0], (batch_size,), device=self.labels.device,
                                     generator=generator)
        label = self.labels[index].to(device)
        cameras = Cameras.from_label(label)
        cameras.angles = spherical_angles(cameras.origins, self.orbit_center)
        return cameras
