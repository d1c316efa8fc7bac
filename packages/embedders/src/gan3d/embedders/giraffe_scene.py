"""GIRAFFE's scene latents: where each object's codes and transform sit inside ``ws``.

GIRAFFE (Niemeyer & Geiger, CVPR 2021, section 3.1-3.2) draws, per object ``i``, a shape code, an
appearance code and an affine transform ``T_i = (s_i, t_i, R_i)``, and per scene a background with its
own two codes. gan3d's ``giraffe`` mapper writes all of them into ``ws [B, N + 1, w_dim]`` so that the
whole scene is a function of ``ws`` and controllable generation is editing ``ws`` entries. Row ``i < N``
is object ``i``, row ``N`` the background; each row is laid out as

==========================  ===========================================================
columns                     holds
==========================  ===========================================================
``[0, z_dim)``              shape code (background: first ``z_dim_bg`` columns, rest 0)
``[z_dim, 2 z_dim)``        appearance code (background: first ``z_dim_bg`` columns)
``[2 z_dim, 2 z_dim + 3)``  scale ``s`` per axis (background: 1)
``[+3, +6)``                translation ``t`` (background: 0)
``2 z_dim + 6``             rotation angle about the world up axis, radians
==========================  ===========================================================

so ``w_dim = 2 z_dim + 7``. A world point ``p`` seen in object ``i``'s frame is
``R_y(angle_i) (p - t_i) / s_i`` (im2scene/giraffe/models/generator.py ``transform_points_to_box``:
``R (p - t) / s``), and in the background's frame ``R_y(angle_bg) p`` (``get_evaluation_points_bg``).

Axes: GIRAFFE's world is z-up; ours is y-up (:mod:`gan3d.core.cameras`). The proper rotation
``(x, y, z)_giraffe -> (x, z, -y)_ours`` maps GIRAFFE's cameras onto ours (see the ``spherical`` pose
sampler) and its rotations about z (``Rot.from_euler('z', 2 pi r)``) onto rotations by the same angle
about our y axis; :func:`giraffe_box_ranges` converts its box ranges.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["GiraffeLatentLayout", "SceneTransforms", "rotation_about_y", "giraffe_box_ranges", "scene_transforms"]


@dataclass(frozen=True)
class GiraffeLatentLayout:
    """Column layout of GIRAFFE's ``ws [B, n_objects + 1, w_dim]`` (see the module docstring)."""

    n_objects: int
    z_dim: int
    z_dim_bg: int

    def __post_init__(self) -> None:
        if self.n_objects < 1:
            raise ValueError(f"n_objects must be >= 1, got {self.n_objects}")
        if self.z_dim < 1 or self.z_dim_bg < 1:
            raise ValueError(f"z_dim and z_dim_bg must be positive, got {self.z_dim}, {self.z_dim_bg}")
        if self.z_dim_bg > self.z_dim:
            raise ValueError(f"z_dim_bg ({self.z_dim_bg}) must not exceed z_dim ({self.z_dim}): the background "
                             "codes share the object rows' columns")

    @property
    def num_ws(self) -> int:
        return self.n_objects + 1

    @property
    def w_dim(self) -> int:
        return 2 * self.z_dim + 7

    @property
    def shape(self) -> slice:
        return slice(0, self.z_dim)

    @property
    def appearance(self) -> slice:
        return slice(self.z_dim, 2 * self.z_dim)

    @property
    def scale(self) -> slice:
        return slice(2 * self.z_dim, 2 * self.z_dim + 3)

    @property
    def translation(self) -> slice:
        return slice(2 * self.z_dim + 3, 2 * self.z_dim + 6)

    @property
    def rotation(self) -> int:
        return 2 * self.z_dim + 6

    def check(self, ws: Tensor) -> None:
        """Raise a clear error unless ``ws`` is ``[B, num_ws, w_dim]``."""
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(
                f"GIRAFFE ws must be [B, {self.num_ws}, {self.w_dim}] for n_objects={self.n_objects}, "
                f"z_dim={self.z_dim}; got {tuple(ws.shape)}. Give the mapper, embedder and decoder the same "
                "n_objects and z_dim"
            )

    def codes(self, ws: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(z_shape [B, N, z_dim], z_app [B, N, z_dim], z_shape_bg [B, z_dim_bg], z_app_bg [B, z_dim_bg])``."""
        self.check(ws)
        n, zb = self.n_objects, self.z_dim_bg
        return (ws[:, :n, self.shape], ws[:, :n, self.appearance], ws[:, n, :zb],
                ws[:, n, self.z_dim:self.z_dim + zb])


@dataclass
class SceneTransforms:
    """The affine transforms of one batch of scenes.

    Attributes:
        scale: ``[B, N, 3]`` per-axis object scales ``s_i``.
        translation: ``[B, N, 3]`` object centres ``t_i`` in world coordinates.
        rotation: ``[B, N, 3, 3]`` world-to-object rotations ``R_i``.
        background_rotation: ``[B, 3, 3]`` world-to-background rotation.
    """

    scale: Tensor
    translation: Tensor
    rotation: Tensor
    background_rotation: Tensor

    def object_points(self, points: Tensor) -> Tensor:
        """World ``points [B, R, S, 3]`` -> ``[B, N, R, S, 3]`` in each object's frame, ``R_i (p - t_i) / s_i``."""
        p = points.unsqueeze(1) - self.translation[:, :, None, None, :]
        p = torch.einsum("bnij,bnrsj->bnrsi", self.rotation, p)
        return p / self.scale[:, :, None, None, :]

    def object_directions(self, directions: Tensor) -> Tensor:
        """World ``directions [B, R, S, 3]`` -> unit ``[B, N, R, S, 3]`` in each object's frame.

        GIRAFFE transforms the pixel and the camera centre into the box and subtracts them
        (``get_evaluation_points``), i.e. ``R_i d / s_i``; its decoder then normalizes the direction.
        """
        d = torch.einsum("bnij,brsj->bnrsi", self.rotation, directions) / self.scale[:, :, None, None, :]
        return d / d.norm(dim=-1, keepdim=True).clamp_min(1e-12)

    def background_points(self, points: Tensor) -> Tensor:
        """World ``points [B, R, S, 3]`` -> ``[B, R, S, 3]`` in the background's (rotated) frame."""
        return torch.einsum("bij,brsj->brsi", self.background_rotation, points)


def rotation_about_y(angle: Tensor) -> Tensor:
    """``[..., 3, 3]`` rotation matrices by ``angle [...]`` radians about the +y axis (right-handed).

    This is GIRAFFE's ``Rot.from_euler('z', angle)`` expressed in our y-up world.
    """
    c, s = torch.cos(angle), torch.sin(angle)
    one, zero = torch.ones_like(angle), torch.zeros_like(angle)
    rows = [torch.stack([c, zero, s], -1), torch.stack([zero, one, zero], -1), torch.stack([-s, zero, c], -1)]
    return torch.stack(rows, dim=-2)


def scene_transforms(ws: Tensor, layout: GiraffeLatentLayout) -> SceneTransforms:
    """Read the transforms of ``ws [B, N + 1, w_dim]`` (see the module docstring)."""
    layout.check(ws)
    n = layout.n_objects
    objects = ws[:, :n]
    return SceneTransforms(
        scale=objects[..., layout.scale],
        translation=objects[..., layout.translation],
        rotation=rotation_about_y(objects[..., layout.rotation]),
        background_rotation=rotation_about_y(ws[:, n, layout.rotation]),
    )


def giraffe_box_ranges(scale_min: Sequence[float], scale_max: Sequence[float], translation_min: Sequence[float],
                       translation_max: Sequence[float]) -> dict[str, list[float]]:
    """GIRAFFE's ``bounding_box_generator_kwargs`` (z-up ``[x, y, z]``) as ranges in our y-up world.

    ``(x, y, z)_giraffe -> (x, z, -y)_ours``: scales swap y and z; translations swap them and negate
    the new z (so its bounds swap too).
    """
    def as3(v: Sequence[float]) -> list[float]:
        if len(v) != 3:
            raise ValueError(f"box ranges have three values (x, y, z), got {list(v)}")
        return [float(x) for x in v]

    s0, s1, t0, t1 = as3(scale_min), as3(scale_max), as3(translation_min), as3(translation_max)
    return {
        "scale_min": [s0[0], s0[2], s0[1]],
        "scale_max": [s1[0], s1[2], s1[1]],
        "translation_min": [t0[0], t0[2], -t1[1]],
        "translation_max": [t1[0], t1[2], -t0[1]],
    }
