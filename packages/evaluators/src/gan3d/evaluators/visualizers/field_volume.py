"""Sampling a generator's geometry field on a regular 3D grid, for marching cubes.

As EG3D's ``gen_samples.py`` extracts shapes: the per-batch scene is computed once from ``ws``, the
field is queried on a ``res^3`` grid over a cube of side ``box_warp`` centred at the origin, in
chunks of points, with every viewing direction ``(0, 0, -1)`` (looking from the front camera).
Only :class:`~gan3d.core.generator.Generator`'s interface is used (``embedder.scene``, ``field``),
so the same code serves density (NeRF-style), SDF (StyleSDF) and occupancy (GRAM) fields.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["FieldVolume", "DENSITY_ACTIVATIONS", "generator_cube", "activate_density", "sample_field_volume"]

logger = logging.getLogger(__name__)

#: How raw density becomes the value thresholded by marching cubes. ``renderer`` asks the
#: generator's volume renderer (``renderer.density(raw)``, gan3d.renderers' density renderer: its
#: configured relu/softplus/mipnerf without noise) and falls back to ``none``;
#: ``none`` keeps the raw decoder output, which is what EG3D thresholds (its ``G.sample`` returns the
#: pre-activation ``sigma``); ``mipnerf`` is ``softplus(raw - 1)`` (EG3D's ray marcher).
DENSITY_ACTIVATIONS = ("renderer", "none", "relu", "softplus", "mipnerf")

#: Attributes (of the point embedder, then the point sampler) that give the cube the scene lives in:
#: ``box_warp`` (EG3D's tri-plane: the side of a cube centred at the origin) or ``bounds``
#: (``[2, 3]`` min and max corners, VolumeGAN's feature volume; the cube that covers them).
CUBE_ATTRIBUTES = ("box_warp", "bounds")

#: Side of the cube used when neither an option nor the generator gives one: ``[-1, 1]^3``.
FALLBACK_CUBE_LENGTH = 2.0


@dataclass
class FieldVolume:
    """Field values on a regular grid.

    Attributes:
        values: ``float32 [N, N, N]`` on the CPU, indexed ``[ix, iy, iz]`` (x slowest); the raw
            SDF, the occupancy, or the (activated) density.
        kind: ``'density'``, ``'sdf'`` or ``'occupancy'``.
        origin: world position of voxel ``[0, 0, 0]`` (the cube's minimum corner).
        voxel_size: distance between neighbouring grid points.
    """

    values: Tensor
    kind: str
    origin: tuple[float, float, float]
    voxel_size: float


def generator_cube(generator: nn.Module) -> tuple[float, tuple[float, float, float]] | None:
    """``(side, centre)`` of the generator's scene cube from its modules' attributes, or ``None``."""
    for module_name in ("embedder", "point_sampler"):
        module = getattr(generator, module_name, None)
        box_warp = getattr(module, "box_warp", None)
        if isinstance(box_warp, (int, float)) and not isinstance(box_warp, bool) and box_warp > 0:
            return float(box_warp), (0.0, 0.0, 0.0)
        bounds = getattr(module, "bounds", None)
        if bounds is not None and not callable(bounds):
            box = torch.as_tensor(bounds, dtype=torch.float64).detach().cpu()
            if box.shape == (2, 3) and bool((box[1] > box[0]).all()):
                center = tuple(float(c) for c in (box[0] + box[1]) / 2)
                return float((box[1] - box[0]).max()), center  # type: ignore[return-value]
    return None


def activate_density(raw: Tensor, renderer: nn.Module | None, mode: str) -> Tensor:
    """Turn raw density ``[..., 1]`` into the thresholded value according to ``mode``
    (see :data:`DENSITY_ACTIVATIONS`)."""
    if mode == "renderer":
        method = getattr(renderer, "density", None)
        if callable(method):
            return method(raw)
        mode = "none"
    if mode == "none":
        return raw
    if mode == "relu":
        return F.relu(raw)
    if mode == "softplus":
        return F.softplus(raw)
    if mode == "mipnerf":
        return F.softplus(raw - 1.0)
    raise ValueError(f"unknown density activation {mode!r}; choose one of {', '.join(DENSITY_ACTIVATIONS)}")


def sample_field_volume(
    generator: nn.Module,
    ws: Tensor,
    *,
    resolution: int,
    cube_length: float,
    center: tuple[float, float, float] = (0.0, 0.0, 0.0),
    chunk: int = 262144,
    density_activation: str = "renderer",
) -> FieldVolume:
    """Query ``generator.field`` for one latent ``ws [1, num_ws, w_dim]`` on a ``resolution^3`` grid.

    Grid point ``[i, j, k]`` sits at ``center - cube_length/2 + (i, j, k) * cube_length / (res - 1)``
    (EG3D's ``create_samples``: the corners lie on the cube's faces). At most ``chunk`` points go
    through the field at once, as ``points [1, chunk, 1, 3]``, so memory stays bounded.
    """
    if ws.shape[0] != 1:
        raise ValueError(f"sample_field_volume takes one latent, ws [1, num_ws, w_dim]; got {tuple(ws.shape)}")
    if resolution < 2:
        raise ValueError(f"the grid resolution must be at least 2, got {resolution}")
    if cube_length <= 0 or chunk <= 0:
        raise ValueError(f"cube_length and chunk must be positive, got {cube_length} and {chunk}")
    if density_activation not in DENSITY_ACTIVATIONS:
        raise ValueError(f"unknown density activation {density_activation!r}; "
                         f"choose one of {', '.join(DENSITY_ACTIVATIONS)}")
    device = ws.device
    voxel_size = cube_length / (resolution - 1)
    origin = tuple(float(c) - cube_length / 2 for c in center)
    origin_t = torch.tensor(origin, device=device, dtype=torch.float32)
    total = resolution ** 3
    values = torch.empty(total, dtype=torch.float32)
    scene = generator.embedder.scene(ws)
    kind = None
    for start in range(0, total, chunk):
        index = torch.arange(start, min(start + chunk, total), device=device)
        ijk = torch.stack([index // (resolution * resolution), (index // resolution) % resolution,
                           index % resolution], dim=-1)
        points = (origin_t + ijk.to(torch.float32) * voxel_size).view(1, -1, 1, 3)
        directions = torch.zeros_like(points)
        directions[..., 2] = -1.0
        field = generator.field(points, directions, ws, scene)
        if kind is None:
            kind = field.kind
        geometry = field.geometry
        if kind == "density":
            geometry = activate_density(geometry, getattr(generator, "renderer", None), density_activation)
        values[start:start + index.shape[0]] = geometry.reshape(-1).float().cpu()
    if kind == "density" and density_activation == "renderer" and not callable(
            getattr(getattr(generator, "renderer", None), "density", None)):
        logger.info("the volume renderer has no density(raw) method; thresholding raw density as EG3D does")
    return FieldVolume(values.view(resolution, resolution, resolution), kind, origin, voxel_size)
