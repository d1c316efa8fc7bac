"""EpiGRAF's patches as gan3d's :class:`~gan3d.core.types.PatchParams`.

EpiGRAF places a ``K x K`` patch of a ``W``-pixel image by its scale ``s`` and its offsets ``(o_x, o_y)`` from
the left and BOTTOM edges, in ``[0, 1]`` image units. Its points are, in the full image's NDC whose +-1 are
the corner pixels' CENTRES (src/training/rendering.py ``get_initial_rays_trig`` for the fake patch's rays,
training_utils.py ``compute_patch_coords`` + ``grid_sample(align_corners=True)`` for the real patch)::

    x_j = (t_j + 1) s - 1 + 2 o_x,     y_i = (t_i' + 1) s - 1 + 2 o_y     (y up; t = linspace(-1, 1, K),
                                                                           t' = linspace(1, -1, K): row 0 on top)

In gan3d's normalized image coordinates (pixel ``j`` of ``W`` has its centre at ``(j + 0.5) / W``, ``v``
down) an NDC ``x`` sits at ``u = ((x + 1) / 2 (W - 1) + 0.5) / W``, affine in ``j``, so the patch is

    PatchParams(scales = s (W - 1) / W,
                offsets = ((o_x (W - 1) + 0.5) / W, ((1 - s - o_y) (W - 1) + 0.5) / W),
                align_corners = True)

whose :meth:`~gan3d.core.types.PatchParams.cameras` crop the full-image camera (a pinhole with EpiGRAF's
focal ``(W - 1) / (2 W tan(fov / 2))``, :func:`gan3d.core.data.epigraf_labels.epigraf_focal`) to exactly those
rays and whose :meth:`~gan3d.core.types.PatchParams.cut` samples the real image at exactly those points.
:func:`epigraf_patch_params` reads ``(s, o_x, o_y)`` back for the discriminator.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gan3d.core.types import PatchParams

__all__ = ["to_patch_params", "epigraf_patch_params"]


def _check_resolution(image_resolution: int) -> float:
    if image_resolution < 2:
        raise ValueError(f"image_resolution must be >= 2, got {image_resolution}")
    return float(image_resolution)


def to_patch_params(params: Tensor, image_resolution: int) -> PatchParams:
    """gan3d patches of EpiGRAF's ``params [B, 3]`` ``(s, o_x, o_y)`` in a ``image_resolution``-pixel image
    (float64, so the discriminator reads the drawn values back exactly).

    Example:
        >>> p = to_patch_params(torch.tensor([[1.0, 0.0, 0.0]]), 4)     # the whole image
        >>> p.scales, p.offsets                                         # corner pixel centres: 1/8 .. 7/8
        (tensor([0.7500], dtype=torch.float64), tensor([[0.1250, 0.1250]], dtype=torch.float64))
    """
    w = _check_resolution(image_resolution)
    if params.ndim != 2 or params.shape[1] != 3:
        raise ValueError(f"EpiGRAF patch parameters are [B, 3] (scale, offset x, offset y), got {tuple(params.shape)}")
    p = params.double()
    s, o_x, o_y = p[:, 0], p[:, 1], p[:, 2]
    if bool(((s <= 0) | (s > 1 + 1e-6)).any()):
        raise ValueError(f"EpiGRAF patch scales must lie in (0, 1], got min {float(s.min()):.4g}, "
                         f"max {float(s.max()):.4g}")
    if bool((p[:, 1:] < -1e-6).any() or (p[:, 1:] > (1 - s + 1e-6).unsqueeze(-1)).any()):
        raise ValueError("EpiGRAF patch offsets must lie in [0, 1 - scale] (the patch inside the image)")
    offsets = torch.stack([(o_x * (w - 1) + 0.5) / w, ((1 - s - o_y) * (w - 1) + 0.5) / w], dim=-1)
    return PatchParams(s * (w - 1) / w, offsets, align_corners=True)


def epigraf_patch_params(patch: PatchParams, image_resolution: int) -> Tensor:
    """``[B, 3]`` ``(s, o_x, o_y)`` in EpiGRAF's units (offsets from the left and bottom edge) of corner-aligned
    ``patch`` of a ``image_resolution``-pixel image: what EpiGRAF's discriminator is conditioned on
    (networks_discriminator.py ``forward``). The inverse of :func:`to_patch_params`.

    Example:
        >>> epigraf_patch_params(to_patch_params(torch.tensor([[0.5, 0.0, 0.5]]), 64), 64)   # top-left quarter
        tensor([[0.5000, 0.0000, 0.5000]], dtype=torch.float64)
    """
    w = _check_resolution(image_resolution)
    if not patch.align_corners:
        raise ValueError("EpiGRAF's patches are corner-aligned grids: the patch must have align_corners=True")
    scales, offsets = patch.scales.double(), patch.offsets.double()
    s = scales * w / (w - 1)
    o_x = (offsets[:, 0] * w - 0.5) / (w - 1)
    o_y = 1 - s - (offsets[:, 1] * w - 0.5) / (w - 1)
    return torch.stack([s, o_x, o_y], dim=-1)
