"""GIRAFFE's stochasticity mapper: noise ``z`` -> per-object codes and transforms in ``ws``.

GIRAFFE has no mapping network: its generator draws ``z_shape, z_app ~ N(0, I)`` per object and for
the background (im2scene/giraffe/models/generator.py ``get_latent_codes``) and, from its
``BoundingBoxGenerator`` (bounding_box_generator.py ``get_random_offset``), per object a scale
``s = s_min + u (s_max - s_min)`` (one ``u`` for all three axes when ``fix_scale_ratio``), a translation
``t = t_min + u (t_max - t_min)`` per axis and a rotation by ``2 pi (r_0 + u (r_1 - r_0))`` about the up
axis, every ``u ~ U(0, 1)``; the background rotates by ``backround_rotation_range`` the same way
(``get_random_bg_rotation``). Here every ``u`` is ``Phi(z_k)`` of its own entry of ``z`` (``Phi`` the
standard normal CDF, so ``u`` is exactly uniform), which makes the whole scene a deterministic function
of ``z``: controllable generation edits the ``ws`` entries (:meth:`GiraffeMapper.edit_objects`).

Layout of ``ws``: :mod:`gan3d.embedders.giraffe_scene`. Layout of ``z`` (``z_dim`` below is the
mapper's total): per object ``[shape (z), appearance (z), scale (3), translation (3), rotation (1)]``,
then ``[background shape (z_bg), background appearance (z_bg), background rotation (1)]``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from gan3d.core.interfaces import StochasticityMapper

from ..giraffe_scene import GiraffeLatentLayout

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
    """``z [B, z_dim]`` -> ``ws [B, n_objects + 1, 2 * object_z_dim + 7]``; no parameters.

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

    The defaults are GIRAFFE's cars 64 configuration (configs/64res/cars_64.yaml) in our axes.

    ``truncation_psi`` scales the shape and appearance codes (towards their mean 0, GIRAFFE's sampling
    temperature ``tmp``); transforms are never truncated.

    Example:
        >>> mapper = GiraffeMapper(n_objects=2, object_z_dim=4, background_z_dim=2)
        >>> mapper(torch.randn(3, mapper.z_dim)).shape
        torch.Size([3, 3, 15])
    """

    c_dim = 0

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
    ) -> None:
        super().__init__()
        self.layout = GiraffeLatentLayout(n_objects, object_z_dim, background_z_dim)
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
        self.num_ws = self.layout.num_ws
        self.w_dim = self.layout.w_dim
        self.object_noise_dim = 2 * object_z_dim + 7
        self.z_dim = n_objects * self.object_noise_dim + 2 * background_z_dim + 1

    def transform_ranges(self) -> dict[str, tuple]:
        """The configured priors: ``scale``/``translation`` as ``(min [3], max [3])`` and
        ``rotation``/``background_rotation`` as ``(low, high)`` in radians."""
        turn = 2 * math.pi
        return {
            "scale": (list(self.scale_min), list(self.scale_max)),
            "translation": (list(self.translation_min), list(self.translation_max)),
            "rotation": (turn * self.rotation_range[0], turn * self.rotation_range[1]),
            "background_rotation": (turn * self.background_rotation_range[0], turn * self.background_rotation_range[1]),
        }

    def forward(self, z: Tensor, c: Tensor | None = None, *, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, update_w_avg: bool = False) -> Tensor:
        """``z [B, z_dim]`` -> ``ws [B, num_ws, w_dim]`` (``c`` must be ``None``; GIRAFFE is unconditional)."""
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"the giraffe mapper takes z [B, {self.z_dim}], got {tuple(z.shape)}")
        lay = self.layout
        b, n, zd, zb = z.shape[0], lay.n_objects, lay.z_dim, lay.z_dim_bg
        ws = z.new_zeros(b, lay.num_ws, lay.w_dim)
        objects = z[:, :n * self.object_noise_dim].reshape(b, n, self.object_noise_dim)
        ws[:, :n, :2 * zd] = objects[..., :2 * zd]
        u = torch.special.ndtr(objects[..., 2 * zd:])  # [B, N, 7] uniform in (0, 1)
        u_scale = u[..., 0:1].expand(b, n, 3) if self.fix_scale_ratio else u[..., 0:3]
        s_min, s_max = z.new_tensor(self.scale_min), z.new_tensor(self.scale_max)
        t_min, t_max = z.new_tensor(self.translation_min), z.new_tensor(self.translation_max)
        ws[:, :n, lay.scale] = s_min + u_scale * (s_max - s_min)
        ws[:, :n, lay.translation] = t_min + u[..., 3:6] * (t_max - t_min)
        r0, r1 = self.rotation_range
        ws[:, :n, lay.rotation] = 2 * math.pi * (r0 + u[..., 6] * (r1 - r0))
        background = z[:, n * self.object_noise_dim:]
        ws[:, n, :zb] = background[:, :zb]
        ws[:, n, zd:zd + zb] = background[:, zb:2 * zb]
        ws[:, n, lay.scale] = 1.0
        b0, b1 = self.background_rotation_range
        ws[:, n, lay.rotation] = 2 * math.pi * (b0 + torch.special.ndtr(background[:, 2 * zb]) * (b1 - b0))
        if truncation_psi != 1.0:
            rows = lay.num_ws if truncation_cutoff is None else min(truncation_cutoff, lay.num_ws)
            codes = ws[:, :rows, :2 * zd] * truncation_psi
            ws = torch.cat([torch.cat([codes, ws[:, :rows, 2 * zd:]], dim=-1), ws[:, rows:]], dim=1)
        return ws

    def edit_objects(self, ws: Tensor, object_index: int, *, scale: Tensor | Sequence[float] | None = None,
                     translation: Tensor | Sequence[float] | None = None,
                     rotation: Tensor | float | None = None) -> Tensor:
        """A copy of ``ws [B, num_ws, w_dim]`` with object ``object_index``'s transform replaced.

        ``scale`` and ``translation`` are ``[3]`` or ``[B, 3]`` (y-up world), ``rotation`` a float or
        ``[B]`` in radians about +y; ``None`` keeps the current value. Values outside the configured
        priors are allowed (GIRAFFE's renders move objects beyond the training ranges too).
        """
        lay = self.layout
        lay.check(ws)
        if not 0 <= object_index < lay.n_objects:
            raise ValueError(f"object_index must be in [0, {lay.n_objects}), got {object_index}")
        out = ws.clone()
        if scale is not None:
            value = torch.as_tensor(scale, dtype=ws.dtype, device=ws.device)
            if bool((value <= 0).any()):
                raise ValueError("object scales must be positive")
            out[:, object_index, lay.scale] = value
        if translation is not None:
            out[:, object_index, lay.translation] = torch.as_tensor(translation, dtype=ws.dtype, device=ws.device)
        if rotation is not None:
            out[:, object_index, lay.rotation] = torch.as_tensor(rotation, dtype=ws.dtype, device=ws.device)
        return out

    def extra_repr(self) -> str:
        return (f"n_objects={self.layout.n_objects}, object_z_dim={self.layout.z_dim}, "
                f"background_z_dim={self.layout.z_dim_bg}, z_dim={self.z_dim}")
