"""Camera math shared by pose samplers, the synthetic data set and the evaluators.

The convention is EG3D's (``eg3d/camera_utils.py``): a y-up world; a camera on a sphere is placed
by its yaw ``h`` (azimuth about the y axis) and its polar angle ``v`` (from the +y axis) with

    origin = pivot + r * (sin v * cos(pi - h), cos v, sin v * sin(pi - h))

so ``h = v = pi/2`` puts the camera on the +z axis looking at the pivot. ``cam2world`` has OpenCV
axes: camera +x is image right, +y image down, +z the viewing direction.

Example:
    >>> c2w = look_at(spherical_origin(torch.tensor([math.pi / 2]), torch.tensor([math.pi / 2]), 2.7))
    >>> c2w[0, :3, 3]                     # camera centre on +z
    tensor([...0.0000, 0.0000, 2.7000])
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = [
    "look_at",
    "spherical_origin",
    "focal_to_intrinsics",
    "fov_to_intrinsics",
    "intrinsics_to_fov",
    "EG3D_FFHQ_FOCAL",
    "pixel_rays",
    "world_to_camera",
    "rig_from_cameras",
    "rotation_about_y",
]

#: EG3D's normalized focal length for FFHQ/AFHQ labels (``4.2647``); EG3D's scripts call it a
#: "field of view of 18.837 degrees" through ``FOV_to_intrinsics``, whose formula carries an extra
#: factor of 1.414, so the true horizontal field of view is ``intrinsics_to_fov(4.2647) = 13.37``.
EG3D_FFHQ_FOCAL = 4.2647


def _normalize(v: Tensor) -> Tensor:
    return v / v.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def spherical_origin(yaw: Tensor, polar: Tensor, radius: Tensor | float, pivot: Tensor | None = None) -> Tensor:
    """Camera centres ``[B, 3]`` on a sphere about ``pivot`` (EG3D's convention, see module doc).

    Args:
        yaw: ``[B]`` azimuth ``h`` in radians (``pi/2`` faces the front, +z).
        polar: ``[B]`` angle from the +y axis in radians (``pi/2`` is level).
        radius: ``[B]`` or scalar distance from the pivot.
        pivot: ``[3]`` or ``[B, 3]`` point the sphere is centred on (default the origin).
    """
    radius = torch.as_tensor(radius, dtype=yaw.dtype, device=yaw.device)
    origin = torch.stack(
        [
            radius * torch.sin(polar) * torch.cos(math.pi - yaw),
            radius * torch.cos(polar),
            radius * torch.sin(polar) * torch.sin(math.pi - yaw),
        ],
        dim=-1,
    )
    if pivot is not None:
        origin = origin + torch.as_tensor(pivot, dtype=origin.dtype, device=origin.device)
    return origin


def rotation_about_y(angle: Tensor) -> Tensor:
    """``[..., 3, 3]`` rotation matrices by ``angle [...]`` radians about the +y (up) axis, right-handed.

    Example:
        >>> rotation_about_y(torch.tensor(math.pi / 2)) @ torch.tensor([0.0, 0.0, 1.0])   # +z -> +x
        tensor([ 1.0000e+00,  0.0000e+00, -4.3711e-08])
    """
    c, s = torch.cos(angle), torch.sin(angle)
    one, zero = torch.ones_like(angle), torch.zeros_like(angle)
    rows = [torch.stack([c, zero, s], -1), torch.stack([zero, one, zero], -1), torch.stack([-s, zero, c], -1)]
    return torch.stack(rows, dim=-2)


def look_at(origin: Tensor, target: Tensor | None = None, up: tuple[float, float, float] = (0.0, 1.0, 0.0)) -> Tensor:
    """``[B, 4, 4]`` cam2world matrices of cameras at ``origin [B, 3]`` looking at ``target``.

    OpenCV axes, no roll: right = forward x up, down = forward x right (EG3D's
    ``create_cam2world_matrix``).
    """
    if target is None:
        target = torch.zeros(3, dtype=origin.dtype, device=origin.device)
    forward = _normalize(torch.as_tensor(target, dtype=origin.dtype, device=origin.device) - origin)
    up_vec = torch.tensor(up, dtype=origin.dtype, device=origin.device).expand_as(forward)
    right = _normalize(torch.linalg.cross(forward, up_vec, dim=-1))
    down = _normalize(torch.linalg.cross(forward, right, dim=-1))
    c2w = torch.eye(4, dtype=origin.dtype, device=origin.device).repeat(origin.shape[0], 1, 1)
    c2w[:, :3, :3] = torch.stack([right, down, forward], dim=-1)
    c2w[:, :3, 3] = origin
    return c2w


def focal_to_intrinsics(focal: float, batch_size: int = 1, device: torch.device | str = "cpu") -> Tensor:
    """``[B, 3, 3]`` normalized intrinsics with focal ``focal`` (in image widths), centred."""
    k = torch.tensor([[focal, 0.0, 0.5], [0.0, focal, 0.5], [0.0, 0.0, 1.0]], device=device)
    return k.expand(batch_size, 3, 3).clone()


def fov_to_intrinsics(fov_degrees: float, batch_size: int = 1, device: torch.device | str = "cpu") -> Tensor:
    """Normalized intrinsics of a pinhole with horizontal field of view ``fov_degrees``.

    ``focal = 1 / (2 tan(fov / 2))``: the exact pinhole relation (pi-GAN's and GRAF's ``fov``).
    EG3D's ``FOV_to_intrinsics`` differs by a factor 2/1.414; use :data:`EG3D_FFHQ_FOCAL` for its
    labels.
    """
    if not 0 < fov_degrees < 180:
        raise ValueError(f"fov_degrees must be in (0, 180), got {fov_degrees}")
    return focal_to_intrinsics(1.0 / (2.0 * math.tan(math.radians(fov_degrees) / 2)), batch_size, device)


def intrinsics_to_fov(focal: float | Tensor) -> float | Tensor:
    """Horizontal field of view in degrees of a normalized focal length."""
    if isinstance(focal, Tensor):
        return torch.rad2deg(2 * torch.atan(0.5 / focal))
    return math.degrees(2 * math.atan(0.5 / focal))


def pixel_grid(resolution: tuple[int, int], *, align_corners: bool = False, device: torch.device | str = "cpu",
               dtype: torch.dtype = torch.float32) -> Tensor:
    """``[h * w, 2]`` normalized image coordinates ``(u, v)`` of an ``(h, w)`` render, row-major.

    Through pixel centres, ``u = (j + 0.5) / w``, ``v = (i + 0.5) / h``; with ``align_corners`` on the grid
    that spans the image from edge to edge, ``u = j / (w - 1)``, computed as ``linspace(0, 1, w)``: pi-GAN's
    ``get_initial_rays_trig`` (``linspace(-1, 1, W)`` in NDC, so the outermost rays lie on the field of
    view's edges), GRAM's, GRAF's and EpiGRAF's patch grids.
    """
    h, w = resolution

    def axis(n: int) -> Tensor:
        if align_corners:
            if n > 1:
                return torch.linspace(0.0, 1.0, n, device=device, dtype=dtype)
            return torch.full((1,), 0.5, device=device, dtype=dtype)
        return (torch.arange(n, device=device, dtype=dtype) + 0.5) / n

    v, u = torch.meshgrid(axis(h), axis(w), indexing="ij")
    return torch.stack([u.reshape(-1), v.reshape(-1)], dim=-1)


def pixel_rays(cam2world: Tensor, intrinsics: Tensor, resolution: tuple[int, int] | None = None, *,
               pixels: Tensor | None = None, align_corners: bool = False) -> tuple[Tensor, Tensor]:
    """Origins and unit directions ``[B, R, 3]`` of rays through image points.

    The points are the ``R = h * w`` pixels of an ``(h, w)`` render in row-major order (see
    :func:`pixel_grid`), or ``pixels [B, R, 2]``, normalized image coordinates ``(u, v)``. A point at
    ``(u, v)`` has the camera-space direction ``((u - cx - skew y) / fx, y = (v - cy) / fy, 1)``.
    """
    device, dtype = cam2world.device, cam2world.dtype
    if pixels is None:
        if resolution is None:
            raise ValueError("pixel_rays needs a resolution (h, w) or pixels [B, R, 2]")
        grid = pixel_grid(resolution, align_corners=align_corners, device=device, dtype=dtype)
        u, v = grid[None, :, 0], grid[None, :, 1]
    else:
        if pixels.ndim != 3 or pixels.shape[-1] != 2 or pixels.shape[0] != cam2world.shape[0]:
            raise ValueError(f"pixels must be [B, R, 2] with B = {cam2world.shape[0]}, got {tuple(pixels.shape)}")
        u, v = pixels[..., 0].to(dtype), pixels[..., 1].to(dtype)
    fx, fy = intrinsics[:, 0, 0:1], intrinsics[:, 1, 1:2]
    cx, cy = intrinsics[:, 0, 2:3], intrinsics[:, 1, 2:3]
    skew = intrinsics[:, 0, 1:2]
    y_cam = (v - cy) / fy
    x_cam = (u - cx - skew * y_cam) / fx
    dirs_cam = torch.stack([x_cam, y_cam, torch.ones_like(x_cam)], dim=-1)  # [B, R, 3]
    dirs = _normalize(dirs_cam @ cam2world[:, :3, :3].transpose(1, 2))
    origins = cam2world[:, None, :3, 3].expand_as(dirs)
    return origins, dirs


def world_to_camera(points: Tensor, cam2world: Tensor) -> Tensor:
    """Points ``[B, N, 3]`` in world coordinates -> camera coordinates (``z`` is the depth)."""
    rot = cam2world[:, :3, :3]
    return (points - cam2world[:, None, :3, 3]) @ rot


def rig_from_cameras(cameras, orbit_center: tuple[float, float, float] | None = None):
    """The mean camera of a set of cameras (:class:`~gan3d.core.types.CameraRig`).

    The pivot is the point nearest to every optical axis (least squares,
    ``sum_i (I - d_i d_i^T) p = sum_i (I - d_i d_i^T) o_i``), the orbit centre ``orbit_center`` (default:
    the origin), the radius the mean distance of the centres from it, the focal the mean ``fx``; yaw and
    polar are the angles of the mean direction from the orbit centre, their ranges the 2.5 and 97.5
    percentiles of the cameras' angles.
    """
    from .types import CameraRig

    cam2world = cameras.cam2world.detach().double().cpu()
    origins, forward = cam2world[:, :3, 3], cam2world[:, :3, 2]
    forward = forward / forward.norm(dim=-1, keepdim=True)
    center = torch.tensor(list(orbit_center or (0.0, 0.0, 0.0)), dtype=torch.float64)
    projector = torch.eye(3, dtype=torch.float64) - forward[:, :, None] * forward[:, None, :]
    distance = (origins - center).norm(dim=-1, keepdim=True)
    system, target = projector.sum(0), (projector @ origins[:, :, None]).sum(0)
    if torch.linalg.matrix_rank(system) < 3:  # all axes parallel: the point as far along as the centre
        pivot = (origins + forward * distance).mean(0)
    else:
        pivot = torch.linalg.solve(system, target)[:, 0]
    offsets = (origins - center) / distance
    polar = torch.arccos(offsets[:, 1].clamp(-1, 1))
    yaw = math.pi - torch.atan2(offsets[:, 2], offsets[:, 0])  # spherical_origin: x = cos(pi - yaw), z = sin(pi - yaw)
    yaw = torch.remainder(yaw, 2 * math.pi)
    mean_dir = offsets.mean(0)
    mean_polar = float(torch.arccos((mean_dir[1] / mean_dir.norm().clamp_min(1e-12)).clamp(-1, 1)))
    mean_yaw = float(torch.remainder(math.pi - torch.atan2(mean_dir[2], mean_dir[0]), 2 * math.pi))

    def band(x: Tensor) -> tuple[float, float]:
        return float(torch.quantile(x, 0.025)), float(torch.quantile(x, 0.975))

    return CameraRig(pivot=tuple(float(x) for x in pivot), radius=float(distance.mean()),
                     focal=float(cameras.intrinsics[:, 0, 0].double().mean()),
                     orbit_center=tuple(float(x) for x in center), yaw=mean_yaw, polar=mean_polar,
                     yaw_range=band(yaw), polar_range=band(polar))
