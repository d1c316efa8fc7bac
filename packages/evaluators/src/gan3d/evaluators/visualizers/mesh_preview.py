"""A shaded picture of a mesh: Lambert shading of smooth vertex normals, seen by one camera."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .mesh_rasterizer import rasterize_mesh

__all__ = ["vertex_normals", "render_mesh_preview"]

#: Direction towards the light in camera coordinates (OpenCV axes: -y is up, -z towards the viewer):
#: a light above and left of the camera, so curvature reads as shading.
LIGHT_FROM_CAMERA = (-0.3, -0.5, -1.0)


def vertex_normals(vertices: Tensor, faces: Tensor) -> Tensor:
    """Unit normals ``[V, 3]``: the area-weighted sum of the right-hand normals of adjacent faces."""
    corners = vertices[faces]  # [T, 3, 3]
    face_normals = torch.linalg.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0], dim=-1)
    normals = torch.zeros_like(vertices)
    normals.index_add_(0, faces.reshape(-1), face_normals.repeat_interleave(3, dim=0))
    return normals / normals.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def render_mesh_preview(
    vertices: Tensor,
    faces: Tensor,
    cam2world: Tensor,
    intrinsics: Tensor,
    resolution: tuple[int, int],
    *,
    backend: str = "auto",
    albedo: float = 0.85,
    ambient: float = 0.25,
    background: tuple[int, int, int] = (255, 255, 255),
) -> np.ndarray:
    """Render ``vertices [V, 3]``, ``faces [T, 3]`` as ``uint8 [h, w, 3]`` grey Lambert shading.

    ``shade = albedo * (ambient + (1 - ambient) * max(0, n . l))`` with ``n`` the interpolated
    vertex normal turned towards the viewer (meshes are shaded two-sided, so either winding looks
    right) and ``l`` the light direction; uncovered pixels get ``background``.

    Args:
        cam2world: ``[4, 4]`` (OpenCV axes); intrinsics ``[3, 3]`` normalized.
        backend: the rasterizer (:func:`.mesh_rasterizer.rasterize_mesh`): nvdiffrast on CUDA when
            installed, else the torch z-buffer.
    """
    vertices = vertices.float()
    faces = faces.to(device=vertices.device, dtype=torch.long)
    normals = vertex_normals(vertices, faces)
    fragments = rasterize_mesh(vertices, faces, cam2world, intrinsics, resolution, attributes=normals,
                               backend=backend)
    rotation = cam2world[:3, :3].to(vertices)
    normal = fragments.attributes
    normal = normal / normal.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    normal_cam = normal @ rotation  # world -> camera axes (rotation is orthonormal)
    # Two-sided: a normal facing away from the camera (positive z, the viewing direction) is flipped.
    normal_cam = torch.where(normal_cam[..., 2:3] > 0, -normal_cam, normal_cam)
    light = torch.tensor(LIGHT_FROM_CAMERA, dtype=vertices.dtype, device=vertices.device)
    light = light / light.norm()
    diffuse = (normal_cam @ light).clamp_min(0.0)
    shade = albedo * (ambient + (1.0 - ambient) * diffuse)
    grey = (shade * 255.0).round().clamp(0, 255).to(torch.uint8).cpu().numpy()
    image = np.empty((*grey.shape, 3), dtype=np.uint8)
    image[:] = np.asarray(background, dtype=np.uint8)
    mask = fragments.mask.cpu().numpy()
    image[mask] = grey[mask][:, None]
    return image
