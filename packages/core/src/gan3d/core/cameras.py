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


def pixel_rays(
    cam2world: Tensor, intrinsics: Tensor, resolution: tuple[int, int], *, align_corners: bool = False
) -> tuple[Tensor, Tensor]:
    """Origins and unit directions ``[B, h*w, 3]`` of rays through pixel centres, row-major.

    Pixel ``(i, j)`` (row, column) has normalized image coordinates ``u = (j + 0.5) / w``,
    ``v = (i + 0.5) / h``; its camera-space direction is ``((u - cx) / fx, (v - cy) / fy, 1)``.
    With ``align_corners`` the ``w`` rays of a row span the image from edge to edge instead,
    ``u = j / (w - 1)`` (and ``v = i / (h - 1)``): pi-GAN's ``get_initial_rays_trig`` (``linspace(-1,
    1, W)`` in NDC, so the outermost rays lie on the field of view's edges), GRAF's and EpiGRAF's patches.
    """
    h, w = resolution
    device, dtype = cam2world.device, cam2world.dtype

    def grid(n: int) -> Tensor:
        if align_corners:
            return torch.linspace(0.0, 1.0, n, device=device, dtype=dtype) if n > 1 else \
                torch.full((1,), 0.5, device=device, dtype=dtype)
        return (torch.arange(n, device=device, dtype=dtype) + 0.5) / n

    v, u = torch.meshgrid(grid(h), grid(w), indexing="ij")
    u = u.reshape(1, -1)
    v = v.reshape(1, -1)
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
