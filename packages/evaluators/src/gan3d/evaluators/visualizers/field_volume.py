"""Sampling a generator's geometry field on a regular 3D grid, for marching cubes.

As EG3D's ``gen_samples.py`` extracts shapes: the per-batch scene is computed once from ``ws``, the
field is queried on a ``res^3`` grid over a cube of side ``box_warp`` centred at the origin, in
chunks of points, with every viewing direction ``(0, 0, -1)`` (looking from the front camera).
Only :class:`~gan3d.core.generator.Generator`'s interface is used (``scenes``, ``query_field``, the main
embedder's declared ``bounds``, the renderer's ``density``), so the same code serves density (NeRF-style),
SDF (StyleSDF) and occupancy (GRAM) fields.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan3d.core import latents as latent_ops
from gan3d.core.types import SceneLatent

__all__ = ["FieldVolume", "DENSITY_ACTIVATIONS", "FALLBACK_CUBE_LENGTH", "generator_cube", "activate_density",
           "sample_field_volume"]

logger = logging.getLogger(__name__)

#: How raw density becomes the value thresholded by marching cubes. ``renderer`` asks the
#: generator's volume renderer (:meth:`gan3d.core.interfaces.VolumeRenderer.density`: its configured
#: relu/softplus/mipnerf without noise); ``none`` keeps the raw decoder output, which is what EG3D
#: thresholds (its ``G.sample`` returns the pre-activation ``sigma``); ``mipnerf`` is ``softplus(raw - 1)``
#: (EG3D's ray marcher).
DENSITY_ACTIVATIONS = ("renderer", "none", "relu", "softplus", "mipnerf")

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
    """``(side, centre)`` of the cube that covers the main point embedder's declared ``bounds``, or
    ``None`` when it declares none."""
    bounds = generator.embedder.bounds
    if bounds is None:
        return None
    box = torch.as_tensor(bounds, dtype=torch.float64)
    if box.shape != (2, 3) or not bool((box[1] > box[0]).all()):
        raise ValueError(f"point embedder {type(generator.embedder).__name__} declares malformed bounds {bounds}")
    center = tuple(float(c) for c in (box[0] + box[1]) / 2)
    return float((box[1] - box[0]).max()), center  # type: ignore[return-value]


def activate_density(raw: Tensor, renderer: nn.Module, mode: str) -> Tensor:
    """Turn raw density ``[..., 1]`` into the thresholded value according to ``mode``
    (see :data:`DENSITY_ACTIVATIONS`)."""
    if mode == "renderer":
        return renderer.density(raw)
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
    ws,
    *,
    resolution: int,
    cube_length: float,
    center: tuple[float, float, float] = (0.0, 0.0, 0.0),
    chunk: int = 262144,
    density_activation: str = "renderer",
) -> FieldVolume:
    """Query the generator's main field group for one latent on a ``resolution^3`` grid.

    Grid point ``[i, j, k]`` sits at ``center - cube_length/2 + (i, j, k) * cube_length / (res - 1)``
    (EG3D's ``create_samples``: the corners lie on the cube's faces). At most ``chunk`` points go
    through the field at once, as ``points [1, chunk, 1, 3]``, so memory stays bounded. Several instances
    of the group (GIRAFFE's objects) are composed (:meth:`gan3d.core.generator.Generator.query_field`).
    """
    if latent_ops.batch_size(ws) != 1:
        raise ValueError(f"sample_field_volume takes one latent, got a batch of {latent_ops.batch_size(ws)}")
    if resolution < 2:
        raise ValueError(f"the grid resolution must be at least 2, got {resolution}")
    if cube_length <= 0 or chunk <= 0:
        raise ValueError(f"cube_length and chunk must be positive, got {cube_length} and {chunk}")
    if density_activation not in DENSITY_ACTIVATIONS:
        raise ValueError(f"unknown density activation {density_activation!r}; "
                         f"choose one of {', '.join(DENSITY_ACTIVATIONS)}")
    voxel_size = cube_length / (resolution - 1)
    origin = tuple(float(c) - cube_length / 2 for c in center)
    scenes = generator.scenes(ws)
    device = next((t.device for t in (ws.codes.values() if isinstance(ws, SceneLatent) else [ws])), "cpu")
    origin_t = torch.tensor(origin, device=device, dtype=torch.float32)
    total = resolution ** 3
    values = torch.empty(total, dtype=torch.float32)
    kind = None
    for start in range(0, total, chunk):
        index = torch.arange(start, min(start + chunk, total), device=device)
        ijk = torch.stack([index // (resolution * resolution), (index // resolution) % resolution,
                           index % resolution], dim=-1)
        points = (origin_t + ijk.to(torch.float32) * voxel_size).view(1, -1, 1, 3)
        directions = torch.zeros_like(points)
        directions[..., 2] = -1.0
        field, activated = generator.query_field(points, directions, ws, scenes)
        if kind is None:
            kind = field.kind
        geometry = field.geometry
        if kind == "density" and not activated:
            geometry = activate_density(geometry, generator.renderer, density_activation)
        values[start:start + index.shape[0]] = geometry.reshape(-1).float().cpu()
    return FieldVolume(values.view(resolution, resolution, resolution), kind, origin, voxel_size)
