"""Patch geometry of patch-wise GAN training (GRAF, EpiGRAF): where a ``K x K`` patch lies in the image,
how a real patch is cut from a full-resolution real image, and the camera that renders the same patch.

The official codes describe a patch in the normalized device coordinates of ``grid_sample``; Generator v2
describes it as :class:`~gan3d.core.types.PatchParams` (normalized image coordinates, ``align_corners=True``
for a corner-aligned ``K x K`` grid). :func:`ndc_patch_params` converts the first into the second, so that
``PatchParams.cameras`` renders the official rays and ``PatchParams.cut`` cuts the official real patch.

A patch is given by its ``scale`` ``s`` in ``(0, 1]`` (its side as a fraction of the image side) and its
``centre`` ``c = (c_x, c_y)`` in the image's normalized device coordinates: ``x`` to the right, ``y``
DOWN (image rows), and ``-1`` / ``+1`` the centres of the corner pixels of the full-resolution image --
the coordinates of ``grid_sample(align_corners=True)``. The patch samples the corner-aligned grid

    x_j = c_x + s * (-1 + 2 j / (K - 1)),    y_i = c_y + s * (-1 + 2 i / (K - 1)),

row ``i``, column ``j``, so it lies inside the image when ``|c| <= 1 - s``. Both official codes build
patches this way (GRAF graf/transforms.py ``FlexGridRaySampler``: ``linspace(-1, 1, K) * scale + offset``
through ``grid_sample(..., align_corners=True)`` on the rays and on the real image; EpiGRAF
src/training/training_utils.py ``compute_patch_coords`` and rendering.py ``get_initial_rays_trig``:
``(linspace(-1, 1, K) + 1) * s - 1 + 2 * offset``, the real patch through the same ``grid_sample``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from gan3d.core.types import Cameras, PatchParams

__all__ = ["check_patches", "patch_grid", "cut_patches", "ndc_to_image", "ndc_patch_params", "crop_cameras"]

#: Slack when checking that a patch lies inside the image (float32 rounding of sampled offsets).
_INSIDE_TOLERANCE = 1e-5


def check_patches(scales: Tensor, centres: Tensor) -> None:
    """Raise ``ValueError`` unless ``scales [B]`` lie in ``(0, 1]`` and ``centres [B, 2]`` keep every patch
    inside the image (``|c| <= 1 - s``)."""
    if scales.ndim != 1 or centres.shape != (scales.shape[0], 2):
        raise ValueError(f"patch scales must be [B] and centres [B, 2]; got {tuple(scales.shape)} and "
                         f"{tuple(centres.shape)}")
    if not bool(((scales > 0) & (scales <= 1 + _INSIDE_TOLERANCE)).all()):
        raise ValueError(f"patch scales must lie in (0, 1], got min {float(scales.min()):.4g}, "
                         f"max {float(scales.max()):.4g}")
    reach = centres.abs() + scales.unsqueeze(-1)
    if not bool((reach <= 1 + _INSIDE_TOLERANCE).all()):
        raise ValueError("a patch reaches outside the image: every centre needs |c| <= 1 - scale "
                         f"(largest |c| + scale is {float(reach.max()):.4g})")


def patch_grid(scales: Tensor, centres: Tensor, resolution: int) -> Tensor:
    """The ``grid_sample`` grid ``[B, K, K, 2]`` (``x`` then ``y``, ``K = resolution``) of each patch.

    Example:
        >>> patch_grid(torch.tensor([0.5]), torch.zeros(1, 2), 3)[0, 0]   # first row: y = -0.5
        tensor([[-0.5000, -0.5000],
                [ 0.0000, -0.5000],
                [ 0.5000, -0.5000]])
    """
    if resolution < 2:
        raise ValueError(f"a patch needs at least 2 x 2 samples for its corner-aligned grid, got {resolution}")
    check_patches(scales, centres)
    line = torch.linspace(-1.0, 1.0, resolution, device=scales.device, dtype=scales.dtype)
    s = scales.view(-1, 1, 1)
    x = centres[:, 0].view(-1, 1, 1) + s * line.view(1, 1, -1)  # varies along the columns
    y = centres[:, 1].view(-1, 1, 1) + s * line.view(1, -1, 1)  # varies along the rows
    batch = scales.shape[0]
    return torch.stack([x.expand(batch, resolution, resolution), y.expand(batch, resolution, resolution)], dim=-1)


def cut_patches(images: Tensor, scales: Tensor, centres: Tensor, resolution: int) -> Tensor:
    """Real patches ``[B, C, K, K]`` from full-resolution ``images [B, C, H, W]``: bilinear samples on the
    corner-aligned patch grid (``grid_sample(align_corners=True)``, as GRAF's ``ImgToPatch`` and
    EpiGRAF's ``extract_patches``).

    Example:
        >>> image = torch.arange(5.0).expand(1, 1, 5, 5)          # pixel value = its column
        >>> cut_patches(image, torch.tensor([0.5]), torch.zeros(1, 2), 3)[0, 0, 0]
        tensor([1., 2., 3.])
    """
    if images.ndim != 4 or images.shape[0] != scales.shape[0]:
        raise ValueError(f"images must be [B, C, H, W] with B = {scales.shape[0]} (one patch each), "
                         f"got {tuple(images.shape)}")
    grid = patch_grid(scales.to(images.dtype), centres.to(images.dtype), resolution)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


def ndc_to_image(x: Tensor, image_resolution: int | None) -> Tensor:
    """Normalized image coordinates ``u`` of NDC positions ``x`` (either axis).

    With ``image_resolution`` ``W``, NDC ``-1`` / ``+1`` are the centres of the corner pixels of a ``W``-pixel
    image rendered through pixel centres (the pixel centre of column ``j`` is ``(j + 0.5) / W``):
    ``u = ((x + 1) / 2 (W - 1) + 0.5) / W``. That is where GRAF's ``grid_sample(align_corners=True)`` reads
    the full-resolution image and its ray grid (graf/transforms.py ``FlexGridRaySampler``, ``ImgToPatch``).
    With ``None``, NDC ``+-1`` are the image's edges (``u = (x + 1) / 2``): the full image itself is rendered
    on the corner-aligned grid (``Cameras.align_corners``), as EpiGRAF's ``linspace(-1, 1, W)`` rays are.

    Example:
        >>> ndc_to_image(torch.tensor([-1.0, 1.0]), 4)       # corner pixel centres of a 4-pixel image
        tensor([0.1250, 0.8750])
    """
    if image_resolution is None:
        return (x + 1) / 2
    if image_resolution < 2:
        raise ValueError(f"image_resolution must be >= 2 (or None), got {image_resolution}")
    w = float(image_resolution)
    return ((x + 1) / 2 * (w - 1) + 0.5) / w


def ndc_patch_params(scales: Tensor, centres: Tensor, *, image_resolution: int | None) -> PatchParams:
    """The :class:`PatchParams` (``align_corners=True``) of NDC patches ``scales [B]``, ``centres [B, 2]``.

    The patch's grid points ``x_j = c + s (2 j / (K - 1) - 1)`` map to ``u_j = ndc_to_image(x_j)``, an
    affine function of ``j`` whatever ``K``: ``offset = u_0``, ``scale = u_{K-1} - u_0`` (``s (W - 1) / W``
    with ``image_resolution`` ``W``, else ``s``). ``PatchParams.cameras`` then casts the ``K x K`` rays
    through exactly the official ray grid (a pinhole's rays are affine in the image point, so
    ``grid_sample`` of the full-image rays at ``x_j`` is the ray at ``u_j``), and ``PatchParams.cut``
    samples the real image bilinearly at ``u_j``, i.e. ``grid_sample(align_corners=True)`` at ``x_j``
    (:func:`cut_patches`) for patches inside the image.
    """
    check_patches(scales, centres)
    first = ndc_to_image(centres - scales.unsqueeze(-1), image_resolution)  # [B, 2]
    last = ndc_to_image(centres + scales.unsqueeze(-1), image_resolution)
    return PatchParams(scales=last[:, 0] - first[:, 0], offsets=first, align_corners=True)


def crop_cameras(cameras: Cameras, scales: Tensor, centres: Tensor, *, image_resolution: int,
                 patch_resolution: int) -> Cameras:
    """The cameras that render each patch as a ``patch_resolution``-pixel image through pixel centres.

    Phase-A helper, kept only while EpiGRAF's objective still calls it: ``ndc_patch_params(...).cameras``
    gives the same rays through Generator v2's ``Cameras.crop`` (GRAF uses that); delete this function when
    nothing imports it. A patch of a pinhole camera is a pinhole
    camera: only the intrinsics change. Pixel ``j`` of the patch (normalized image coordinate
    ``u' = (j + 0.5) / K``) must see the full-image position ``u = alpha + beta u'`` of the grid point
    ``x_j``, where a full-image NDC ``x`` sits at ``u = ((x + 1) (W - 1) / 2 + 0.5) / W`` (NDC +-1 = corner
    pixel centres of the ``W``-pixel image). Hence ``beta = s K (W - 1) / ((K - 1) W)``,
    ``alpha = (c - s - s / (K - 1) + 1) (W - 1) / (2 W) + 0.5 / W``, and ``f' = f / beta``,
    ``c' = (c_principal - alpha) / beta`` (skew ``/ beta``). Poses and angles are unchanged.

    Args:
        cameras: the full-image cameras (normalized intrinsics).
        scales, centres: ``[B]`` and ``[B, 2]`` patches (see the module docstring).
        image_resolution: ``W``, the side of the full image whose corner pixel centres are NDC +-1.
        patch_resolution: ``K``, the side of the rendered patch.
    """
    if image_resolution < 2 or patch_resolution < 2:
        raise ValueError(f"image and patch resolutions must be >= 2, got {image_resolution} and {patch_resolution}")
    check_patches(scales, centres)
    if scales.shape[0] != cameras.batch_size:
        raise ValueError(f"{scales.shape[0]} patches for {cameras.batch_size} cameras: give one patch per camera")
    k = cameras.intrinsics
    w, kp = float(image_resolution), float(patch_resolution)
    s = scales.to(k.dtype)
    c = centres.to(k.dtype)
    beta = s * kp * (w - 1) / ((kp - 1) * w)  # [B]
    alpha = (c - (s + s / (kp - 1)).unsqueeze(-1) + 1) * (w - 1) / (2 * w) + 0.5 / w  # [B, 2]
    out = k.clone()
    out[:, 0, 0] = k[:, 0, 0] / beta
    out[:, 1, 1] = k[:, 1, 1] / beta
    out[:, 0, 1] = k[:, 0, 1] / beta
    out[:, 0, 2] = (k[:, 0, 2] - alpha[:, 0]) / beta
    out[:, 1, 2] = (k[:, 1, 2] - alpha[:, 1]) / beta
    return Cameras(cameras.cam2world, out, cameras.angles)
