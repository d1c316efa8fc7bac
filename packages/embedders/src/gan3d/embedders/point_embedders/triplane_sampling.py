"""Tri-plane projection and bilinear sampling (EG3D, Chan et al. 2022, section 3.2).

The math of NVlabs/eg3d ``training/volumetric_rendering/renderer.py`` (``generate_planes``,
``project_onto_planes``, ``sample_from_planes``): points are scaled by ``2 / box_warp`` so the cube
of side ``box_warp`` fills ``[-1, 1]^3``, projected onto three axis-aligned planes, and each plane is
sampled bilinearly with ``grid_sample(align_corners=False, padding_mode='zeros')``; the decoder then
takes the mean over the three planes.

Plane axes. EG3D's ``project_onto_planes`` multiplies points by the *inverse* of each 3x3 axis matrix
and keeps the first two components. For the official matrices this gives the coordinate pairs
``(x, y), (x, z), (z, x)`` -- the second and third planes both span the xz plane and the yz plane is
never seen (NVlabs/eg3d issues #30, #53, #67). The maintainers kept it so released checkpoints stay
valid. We offer both:

* ``'official'``: ``(x, y), (x, z), (z, x)`` -- loads EG3D checkpoints; our default.
* ``'corrected'``: ``(x, y), (y, z), (z, x)`` -- the three distinct planes the paper describes (the
  fix proposed in issue #53 changes the second plane only).
* ``'epigraf'``: EpiGRAF's planes (universome/epigraf src/training/networks_epigraf.py
  ``tri_plane_renderer``: ``(x_e, y_e), (x_e, z_e), (y_e, z_e)`` of its own world, whose faces look along
  +x) written in gan3d's world, which EpiGRAF's camera angles enter by a quarter turn about y
  (``x_e = z, y_e = y, z_e = -x``; see gan3d.methods.epigraf.camera_angles): ``(z, y), (z, -x), (y, -x)``,
  so EpiGRAF checkpoints sample the same features at the same scene points.

The first coordinate of a pair indexes the plane's width (``grid_sample``'s x), the second its height.
We select coordinates by index (and sign) rather than multiplying by an inverse matrix: the same numbers,
exact. EG3D samples with ``align_corners=False`` (a plane's texels tile the cube), EpiGRAF with
``align_corners=True`` (its corner texels sit on the cube's faces).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["PLANE_AXES", "PLANE_SIGNS", "project_onto_planes", "sample_from_planes"]

#: For each axis mode, the (width, height) world-axis indices of the three planes (0=x, 1=y, 2=z).
PLANE_AXES: dict[str, tuple[tuple[int, int], ...]] = {
    "official": ((0, 1), (0, 2), (2, 0)),
    "corrected": ((0, 1), (1, 2), (2, 0)),
    "epigraf": ((2, 1), (2, 0), (1, 0)),
}
#: Signs of those coordinates, for the modes that need any (the others read +1 everywhere).
PLANE_SIGNS: dict[str, tuple[tuple[float, float], ...]] = {
    "epigraf": ((1.0, 1.0), (1.0, -1.0), (1.0, -1.0)),
}


def _check_mode(plane_axes: str) -> tuple[tuple[int, int], ...]:
    try:
        return PLANE_AXES[plane_axes]
    except KeyError:
        raise ValueError(
            f"plane_axes must be one of {', '.join(repr(k) for k in PLANE_AXES)}, got {plane_axes!r}; "
            "'official' matches EG3D checkpoints, 'corrected' uses the xy, yz, zx planes"
        ) from None


def project_onto_planes(coordinates: Tensor, plane_axes: str = "official") -> Tensor:
    """Project normalized ``coordinates [N, M, 3]`` onto the three planes: ``[N, 3, M, 2]``.

    ``[..., 0]`` is the coordinate along the plane's width, ``[..., 1]`` along its height.
    """
    axes = _check_mode(plane_axes)
    projected = torch.stack([coordinates[..., list(pair)] for pair in axes], dim=1)
    if plane_axes in PLANE_SIGNS:
        signs = torch.tensor(PLANE_SIGNS[plane_axes], dtype=projected.dtype, device=projected.device)
        projected = projected * signs.view(1, 3, *([1] * (projected.ndim - 3)), 2)
    return projected


def sample_from_planes(planes: Tensor, points: Tensor, *, box_warp: float = 1.0,
                       plane_axes: str = "official", align_corners: bool = False,
                       reduce: str | None = None) -> Tensor:
    """Bilinearly sample tri-plane features at world ``points``.

    Args:
        planes: ``[N, 3, C, H, W]`` plane features.
        points: ``[N, M, 3]`` world coordinates; the cube of side ``box_warp`` centred at the origin
            maps onto the planes' extent, points outside it read zeros.
        box_warp: side of that cube (EG3D FFHQ: 1.0).
        plane_axes: ``'official'``, ``'corrected'`` or ``'epigraf'`` (see the module docstring).
        align_corners: ``grid_sample``'s convention (EG3D ``False``, EpiGRAF ``True``).
        reduce: ``None`` keeps the three planes apart; ``'mean'`` averages them (EG3D's decoder
            aggregation, ``sampled_features.mean(1)`` in triplane.py ``OSGDecoder.forward``).

    Returns:
        ``[N, 3, M, C]`` the features of each plane (``reduce=None``), or ``[N, M, C]`` their mean
        (a transposed view: the channels are the slow axis in memory).
    """
    if planes.ndim != 5 or planes.shape[1] != 3:
        raise ValueError(f"planes must be [N, 3, C, H, W], got {tuple(planes.shape)}")
    if points.ndim != 3 or points.shape[-1] != 3 or points.shape[0] != planes.shape[0]:
        raise ValueError(f"points must be [N, M, 3] with N={planes.shape[0]}, got {tuple(points.shape)}")
    if reduce not in (None, "mean"):
        raise ValueError(f"reduce must be None or 'mean', got {reduce!r}")
    n, _, c, h, w = planes.shape
    m = points.shape[1]
    projected = project_onto_planes(points * (2.0 / box_warp), plane_axes)  # [N, 3, M, 2]
    grid = projected.reshape(n * 3, 1, m, 2).to(planes.dtype)
    if planes.device.type == "cpu":
        # grid_sample reads the C features of each tap; with the planes channel-contiguous ([N*3, C, H, W]
        # in channels_last strides) those reads are one cache line instead of C strided ones: 94 -> 36 ms
        # per call at EG3D's sizes on 2 cores, same values. The triplane embedder's scene() stores its
        # planes so (then this is a view; a copy for planes from elsewhere). On CUDA the plain
        # layout measured faster (H200, EG3D 512, batch 4: 42.8 vs 47.2 ms per call of the generator).
        planes = planes.permute(0, 1, 3, 4, 2).reshape(n * 3, h, w, c).contiguous().permute(0, 3, 1, 2)
    else:
        planes = planes.reshape(n * 3, c, h, w)
    sampled = F.grid_sample(planes, grid, mode="bilinear", padding_mode="zeros",
                            align_corners=align_corners).view(n, 3, c, m)  # grid_sample's output is [N*3, C, 1, M]
    if reduce == "mean":
        # The mean in grid_sample's layout (three contiguous [C, M] slabs added), then a transposed view:
        # reducing the planes of the [N, 3, M, C] view instead strides through memory, and the decoder's
        # first layer takes the transposed view as it is (EG3D's 48 x 64^2 samples of one image, sampling
        # plus that layer, 1 thread: 337 -> 210 ms of CPU per call; identical values).
        return sampled.mean(1).transpose(1, 2)
    return sampled.transpose(2, 3)
