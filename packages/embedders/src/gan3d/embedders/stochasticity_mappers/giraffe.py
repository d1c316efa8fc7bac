"""GIRAFFE's stochasticity mapper: noise ``z`` -> a scene latent of per-object codes and transforms.

GIRAFFE has no mapping network: its generator draws ``z_shape, z_app ~ N(0, I)`` per object and for
the background (im2scene/giraffe/models/generator.py ``get_latent_codes``) and, from its
``BoundingBoxGenerator`` (bounding_box_generator.py ``get_random_offset``), per object a scale
``s = s_min + u (s_max - s_min)`` (one ``u`` for all three axes when ``fix_scale_ratio``), a translation
``t = t_min + u (t_max - t_min)`` per axis and a rotation by ``2 pi (r_0 + u (r_1 - r_0))`` about the up
axis, every ``u ~ U(0, 1)``; the background rotates by ``backround_rotation_range`` the same way
(``get_random_bg_rotation``). Here every ``u`` is ``Phi(z_k)`` of its own entry of ``z`` (``Phi`` the
standard normal CDF, so ``u`` is exactly uniform), which makes the whole scene a deterministic function
of ``z``: controllable generation edits the latent's frames
(:meth:`gan3d.core.types.SceneLatent.with_frame`).

The output is a :class:`~gan3d.core.types.SceneLatent`: field group ``main`` holds the objects (codes
``[B, N, 2, z_dim]``: shape then appearance; frames: scale, translation and rotation about the up axis,
with GIRAFFE's padded unit box ``|x| <= 1 + box_padding`` outside which an object has no density), group
``background`` the background (codes ``[B, 1, 2, z_dim_bg]``; a frame that only rotates).

Axes: GIRAFFE's world is z-up; ours is y-up (:mod:`gan3d.core.cameras`). The proper rotation
``(x, y, z)_giraffe -> (x, z, -y)_ours`` maps GIRAFFE's cameras onto ours (see the ``spherical`` pose
sampler) and its rotations about z (``Rot.from_euler('z', 2 pi r)``) onto rotations by the same angle
about our y axis; :func:`gan3d.embedders.giraffe_scene.giraffe_box_ranges` converts its box ranges.

Layout of ``z`` (``z_dim`` below is the mapper's total): per object ``[shape (z), appearance (z), scale
(3), translation (3), rotation (1)]``, then ``[background shape (z_bg), background appearance (z_bg),
background rotation (1)]``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from gan3d.core.interfaces import StochasticityMapper
from gan3d.core.types import ObjectFrames, SceneLatent

from ..giraffe_scene import rotation_about_y

__all__ = ["GiraffeMapper"]


def _pair(name: str, value: Sequence[float]) -> tuple[float, float]:
    if len(value) != 2 or not value[0] <= value[1]:
        raise ValueError(f"{name} must be [low, high] with low <= high, got {list(value)}")
    return float(value[0]), float(value[1])


def _triple(name: str, value: Sequence[float]) -> list[float]:
    if len(value) != 3:
        raise ValueError(f"{name} must have three values (x, y, z), got {list(value)}")
    return [float(v) for v in value]


class GiraffeMapper(StochasticityMapper):
    """``z [B, z_dim]`` -> :class:`~gan3d.core.types.SceneLatent` (see the module docstring); no parameters.

    Args:
        n_objects: objects per scene ``N`` (GIRAFFE ``n_boxes``; 1 for faces and cars, 2 for CLEVR-2).
        object_z_dim: size of each object's shape and appearance code (GIRAFFE ``z_dim``, 256).
        background_z_dim: size of the background codes (GIRAFFE ``z_dim_bg``, 128).
        scale_min, scale_max: per-axis scale range in our y-up world (see
            :func:`gan3d.embedders.giraffe_scene.giraffe_box_ranges` for GIRAFFE's z-up configs).
        translation_min, translation_max: per-axis translation range, y-up world.
        rotation_range: object rotation about +y as fractions of a full turn (GIRAFFE ``rotation_range``).
        background_rotation_range: the background's (GIRAFFE ``backround_rotation_range``).
        fix_scale_ratio: one uniform draw scales all three axes (GIRAFFE default ``True``).
        box_padding: an object's density is zero outside ``|x| <= 1 + box_padding`` in its frame (GIRAFFE
            generator.py ``volume_render_image``: 0.1).

    The defaults are GIRAFFE's cars 64 configuration (configs/64res/cars_64.yaml) in our axes.

    ``truncation_psi`` scales the shape and appearance codes (towards their mean 0, GIRAFFE's sampling
    temperature ``tmp``); transforms are never truncated.

    Example:
        >>> mapper = GiraffeMapper(n_objects=2, object_z_dim=4, background_z_dim=2)
        >>> latent = mapper(torch.randn(3, mapper.z_dim))
        >>> latent.codes["main"].shape, latent.codes["background"].shape, latent.frames["main"].rotation.shape
        (torch.Size([3, 2, 2, 4]), torch.Size([3, 1, 2, 2]), torch.Size([3, 2, 3, 3]))
    """

    c_dim = 0
    latent_kind = "scene"
    WIRED = {}

    def __init__(
        self,
        *,
        n_objects: int = 1,
        object_z_dim: int = 256,
        background_z_dim: int = 128,
        scale_min: Sequence[float] = (0.2, 0.16, 0.16),
        scale_max: Sequence[float] = (0.25, 0.2, 0.2),
        translation_min: Sequence[float] = (-0.22, 0.0, -0.12),
        translation_max: Sequence[float] = (0.22, 0.0, 0.12),
        rotation_range: Sequence[float] = (0.0, 1.0),
        background_rotation_range: Sequence[float] = (0.0, 0.0),
        fix_scale_ratio: bool = True,
        box_padding: float = 0.1,
    ) -> None:
        super().__init__()
        if n_objects < 1:
            raise ValueError(f"n_objects must be >= 1, got {n_objects}")
        if object_z_dim < 1 or background_z_dim < 1:
            raise ValueError(f"object_z_dim and background_z_dim must be positive, got {object_z_dim}, "
                             f"{background_z_dim}")
        if box_padding < 0:
            raise ValueError(f"box_padding must be >= 0, got {box_padding}")
        self.n_objects = n_objects
        self.object_z_dim = object_z_dim
        self.background_z_dim = background_z_dim
        self.box_padding = float(box_padding)
        self.scale_min = _triple("scale_min", scale_min)
        self.scale_max = _triple("scale_max", scale_max)
        if any(lo <= 0 or lo > hi for lo, hi in zip(self.scale_min, self.scale_max)):
            raise ValueError(f"scales must satisfy 0 < scale_min <= scale_max per axis, got {self.scale_min} "
                             f"and {self.scale_max}")
        self.translation_min = _triple("translation_min", translation_min)
        self.translation_max = _triple("translation_max", translation_max)
        if any(lo > hi for lo, hi in zip(self.translation_min, self.translation_max)):
            raise ValueError(f"translation_min must be <= translation_max per axis, got {self.translation_min} "
                             f"and {self.translation_max}")
        self.rotation_range = _pair("rotation_range", rotation_range)
        self.background_rotation_range = _pair("background_rotation_range", background_rotation_range)
        self.fix_scale_ratio = fix_scale_ratio
        self.num_ws = 0
        self.w_dim = object_z_dim
        self.object_noise_dim = 2 * object_z_dim + 7
        self.z_dim = n_objects * self.object_noise_dim + 2 * background_z_dim + 1

    def code_dim(self, group: str) -> int | None:
        """The code width of ``group``: ``object_z_dim`` for the objects (``main``), ``background_z_dim`` for
        the ``background``; ``None`` for anything else (the neural renderer reads no latent)."""
        return {"main": self.object_z_dim, "background": self.background_z_dim}.get(group)

    def frame_priors(self) -> dict[str, tuple]:
        """The configured priors: ``scale``/``translation`` as ``(min [3], max [3])`` and
        ``rotation``/``background_rotation`` as ``(low, high)`` in radians about the up axis."""
        turn = 2 * math.pi
        return {
            "scale": (list(self.scale_min), list(self.scale_max)),
            "translation": (list(self.translation_min), list(self.translation_max)),
            "rotation": (turn * self.rotation_range[0], turn * self.rotation_range[1]),
            "background_rotation": (turn * self.background_rotation_range[0], turn * self.background_rotation_range[1]),
        }

    def forward(self, z: Tensor, c: Tensor | None = None, *, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, update_w_avg: bool = False) -> SceneLatent:
        """``z [B, z_dim]`` -> the scene latent (``c`` must be ``None``; GIRAFFE is unconditional).

        ``truncation_psi`` scales the shape and appearance codes towards their mean 0 (GIRAFFE's sampling
        temperature); ``truncation_cutoff``, when given, limits that to the first objects (the background
        counts as the last row). Transforms are never truncated.
        """
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"the giraffe mapper takes z [B, {self.z_dim}], got {tuple(z.shape)}")
        b, n, zd, zb = z.shape[0], self.n_objects, self.object_z_dim, self.background_z_dim
        objects = z[:, :n * self.object_noise_dim].reshape(b, n, self.object_noise_dim)
        codes = objects[..., :2 * zd].reshape(b, n, 2, zd)
        u = torch.special.ndtr(objects[..., 2 * zd:])  # [B, N, 7] uniform in (0, 1)
        u_scale = u[..., 0:1].expand(b, n, 3) if self.fix_scale_ratio else u[..., 0:3]
        s_min, s_max = z.new_tensor(self.scale_min), z.new_tensor(self.scale_max)
        t_min, t_max = z.new_tensor(self.translation_min), z.new_tensor(self.translation_max)
        scale = s_min + u_scale * (s_max - s_min)
        translation = t_min + u[..., 3:6] * (t_max - t_min)
        r0, r1 = self.rotation_range
        angle = 2 * math.pi * (r0 + u[..., 6] * (r1 - r0))
        background = z[:, n * self.object_noise_dim:]
        bg_codes = torch.stack([background[:, :zb], background[:, zb:2 * zb]], dim=1).unsqueeze(1)  # [B, 1, 2, zb]
        b0, b1 = self.background_rotation_range
        bg_angle = 2 * math.pi * (b0 + torch.special.ndtr(background[:, 2 * zb:2 * zb + 1]) * (b1 - b0))  # [B, 1]
        if truncation_psi != 1.0:
            rows = n + 1 if truncation_cutoff is None else min(truncation_cutoff, n + 1)
            factor = z.new_ones(n + 1)
            factor[:rows] = truncation_psi
            codes = codes * factor[:n, None, None]
            bg_codes = bg_codes * factor[n]
        frames = {
            "main": ObjectFrames(scale, translation, rotation_about_y(angle), self.box_padding),
            "background": ObjectFrames(z.new_ones(b, 1, 3), z.new_zeros(b, 1, 3), rotation_about_y(bg_angle)),
        }
        return SceneLatent({"main": codes, "background": bg_codes}, frames)

    def extra_repr(self) -> str:
        return (f"n_objects={self.n_objects}, object_z_dim={self.object_z_dim}, "
                f"background_z_dim={self.background_z_dim}, z_dim={self.z_dim}")
