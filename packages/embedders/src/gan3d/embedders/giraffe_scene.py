"""GIRAFFE's scene geometry: object rotations about the up axis and its box ranges in our axes.

GIRAFFE (Niemeyer & Geiger, CVPR 2021, section 3.1-3.2) draws, per object ``i``, a shape code, an
appearance code and an affine transform ``T_i = (s_i, t_i, R_i)``, and per scene a background with its
own two codes; the ``giraffe`` mapper returns them as a :class:`~gan3d.core.types.SceneLatent`. A world
point ``p`` seen in object ``i``'s frame is ``R_y(angle_i) (p - t_i) / s_i``
(im2scene/giraffe/models/generator.py ``transform_points_to_box``: ``R (p - t) / s``), and in the
background's frame ``R_y(angle_bg) p`` (``get_evaluation_points_bg``).

Axes: GIRAFFE's world is z-up; ours is y-up (:mod:`gan3d.core.cameras`). The proper rotation
``(x, y, z)_giraffe -> (x, z, -y)_ours`` maps GIRAFFE's cameras onto ours (see the ``spherical`` pose
sampler) and its rotations about z (``Rot.from_euler('z', 2 pi r)``) onto rotations by the same angle
about our y axis; :func:`giraffe_box_ranges` converts its box ranges.
"""

from __future__ import annotations

from collections.abc import Sequence

from gan3d.core.cameras import rotation_about_y

__all__ = ["rotation_about_y", "giraffe_box_ranges"]


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
