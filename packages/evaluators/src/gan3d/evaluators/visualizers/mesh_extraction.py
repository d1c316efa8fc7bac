"""Marching cubes on a sampled field: the level set that is the generated object's surface."""

from __future__ import annotations

import numpy as np
from skimage.measure import marching_cubes

from .field_volume import FieldVolume

__all__ = ["NoSurfaceError", "extract_mesh", "DEFAULT_LEVELS"]

#: Iso-levels by field kind. SDF: the zero level set is the surface. Density: EG3D's
#: ``gen_samples.py``/``shape_utils.py`` threshold sigma at 10. Occupancy: probability one half.
DEFAULT_LEVELS = {"sdf": 0.0, "density": 10.0, "occupancy": 0.5}


class NoSurfaceError(ValueError):
    """The field never crosses the iso-level inside the sampled cube."""


def extract_mesh(volume: FieldVolume, level: float, *, border_trim: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """The ``level`` surface of ``volume`` as a triangle mesh in world coordinates.

    Args:
        volume: the sampled field; inside is where density/occupancy exceed ``level`` or where the
            SDF is below it.
        level: the iso-level (see :data:`DEFAULT_LEVELS`).
        border_trim: fraction of the cube side, on every face, forced to "outside" before marching
            (EG3D's ``gen_samples.py`` trims ``30/256`` to drop floaters at the tri-plane box walls);
            it also closes surfaces cut by the cube.

    Returns:
        ``vertices float32 [V, 3]`` and ``faces int64 [T, 3]``, wound counter-clockwise seen from
        outside (normals by the right-hand rule point out of the object).

    Raises:
        NoSurfaceError: the field does not cross ``level``; the message gives the field's range.
    """
    values = volume.values.numpy().astype(np.float32, copy=False)
    if volume.kind == "sdf":
        inside_score, threshold = -values, -level  # one convention below: inside is above the threshold
    elif volume.kind in ("density", "occupancy"):
        inside_score, threshold = values, level
    else:
        raise ValueError(f"unknown field kind {volume.kind!r}; expected density, sdf or occupancy")
    if not 0.0 <= border_trim < 0.5:
        raise ValueError(f"border_trim is a fraction of the cube side in [0, 0.5), got {border_trim}")
    pad = int(border_trim * values.shape[0])
    if pad:
        inside_score = inside_score.copy()
        outside = min(float(inside_score.min()), threshold) - 1.0
        for axis in range(3):
            index = [slice(None)] * 3
            index[axis] = slice(0, pad)
            inside_score[tuple(index)] = outside
            index[axis] = slice(values.shape[axis] - pad, None)
            inside_score[tuple(index)] = outside
    low, high = float(np.nanmin(inside_score)), float(np.nanmax(inside_score))
    if not low < threshold < high:
        shown = (-high, -low) if volume.kind == "sdf" else (low, high)
        raise NoSurfaceError(
            f"the {volume.kind} field never crosses level {level} inside the sampled cube (its values lie in "
            f"[{shown[0]:.4g}, {shown[1]:.4g}]); choose a level inside that range or a larger cube"
        )
    # For an inside-positive volume 'ascent' winds faces so the right-hand normals point outwards.
    vertices, faces, _normals, _values = marching_cubes(
        inside_score, level=threshold, spacing=(volume.voxel_size,) * 3, gradient_direction="ascent",
        allow_degenerate=False,
    )
    vertices = vertices.astype(np.float32) + np.asarray(volume.origin, dtype=np.float32)
    return vertices, faces.astype(np.int64)
