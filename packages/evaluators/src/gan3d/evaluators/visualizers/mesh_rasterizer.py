"""Rasterizing a triangle mesh into a pinhole camera: which triangle each pixel sees.

Two back ends give the same :class:`Fragments`:

* ``torch``: a z-buffer rasterizer in plain tensor math, on any device. Each triangle is tested
  against the pixel centres of its bounding box (triangles are grouped by box size so the candidate
  arrays stay small); the nearest hit per pixel wins (``scatter_reduce`` of ``1/z``).
* ``nvdiffrast``: NVIDIA's hardware-style CUDA rasterizer, used when it is installed and the mesh
  is on a CUDA device (an optional import, never required).

Pixel ``(i, j)`` is the ray through normalized image point ``((j + 0.5) / w, (i + 0.5) / h)``,
exactly as :func:`gan3d.core.cameras.pixel_rays` casts rays, so a mesh extracted from a generator
lines up with the generator's images.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from gan3d.core.cameras import world_to_camera

__all__ = ["Fragments", "rasterize_mesh", "project_to_pixels", "camera_to_clip", "nvdiffrast_available", "BACKENDS"]

BACKENDS = ("auto", "torch", "nvdiffrast")

#: Largest number of (triangle, pixel) candidates handled at once by the torch back end.
_CANDIDATES_PER_CHUNK = 1 << 22


@dataclass
class Fragments:
    """What each pixel of an ``h x w`` image sees.

    Attributes:
        face: ``int64 [h, w]`` index of the visible triangle, ``-1`` where no triangle covers the pixel.
        depth: ``[h, w]`` camera-space depth ``z`` of the hit, ``inf`` on the background.
        attributes: ``[h, w, C]`` the vertex attributes interpolated (perspective-correct) at the
            hit, zeros on the background (``C = 0`` when none were given).
    """

    face: Tensor
    depth: Tensor
    attributes: Tensor

    @property
    def mask(self) -> Tensor:
        """``bool [h, w]``: pixels covered by the mesh."""
        return self.face >= 0


def nvdiffrast_available() -> bool:
    """Whether ``nvdiffrast.torch`` imports and CUDA is usable."""
    if not torch.cuda.is_available():
        return False
    try:
        import nvdiffrast.torch  # noqa: F401
    except ImportError:
        return False
    return True


def project_to_pixels(points_cam: Tensor, intrinsics: Tensor, resolution: tuple[int, int]) -> Tensor:
    """Camera-space ``points [N, 3]`` -> continuous pixel coordinates ``[N, 2]`` (column, row).

    Pixel centres sit on integers: normalized ``u = fx x/z + skew y/z + cx`` maps to column
    ``u * w - 0.5`` (the inverse of :func:`gan3d.core.cameras.pixel_rays`).
    """
    h, w = resolution
    x, y, z = points_cam.unbind(-1)
    u = intrinsics[0, 0] * x / z + intrinsics[0, 1] * y / z + intrinsics[0, 2]
    v = intrinsics[1, 1] * y / z + intrinsics[1, 2]
    return torch.stack([u * w - 0.5, v * h - 0.5], dim=-1)


def camera_to_clip(points_cam: Tensor, intrinsics: Tensor, near: float, far: float) -> Tensor:
    """Camera-space ``points [N, 3]`` -> homogeneous clip coordinates ``[N, 4]`` for nvdiffrast.

    ``ndc_x = 2u - 1`` and ``ndc_y = 2v - 1`` with ``u, v`` the normalized image coordinates of
    :func:`project_to_pixels`; nvdiffrast puts ``ndc_y = -1`` in image row 0, which is the top row
    here, so no flip is needed. Depth maps ``[near, far]`` to ``[-1, 1]`` (OpenGL's projection).
    """
    x, y, z = points_cam.unbind(-1)
    clip_x = 2 * intrinsics[0, 0] * x + 2 * intrinsics[0, 1] * y + (2 * intrinsics[0, 2] - 1) * z
    clip_y = 2 * intrinsics[1, 1] * y + (2 * intrinsics[1, 2] - 1) * z
    clip_z = ((far + near) * z - 2 * far * near) / (far - near)
    return torch.stack([clip_x, clip_y, clip_z, z], dim=-1)


def _rasterize_torch(points_cam: Tensor, faces: Tensor, attributes: Tensor, intrinsics: Tensor,
                     resolution: tuple[int, int], near: float) -> Fragments:
    h, w = resolution
    device = points_cam.device
    pixels = project_to_pixels(points_cam, intrinsics, resolution)
    inv_z = 1.0 / points_cam[:, 2]
    corners = pixels[faces]  # [T, 3, 2]
    visible = (points_cam[faces][..., 2] > near).all(dim=-1)
    x0, y0 = corners[:, 0, 0], corners[:, 0, 1]
    x1, y1 = corners[:, 1, 0], corners[:, 1, 1]
    x2, y2 = corners[:, 2, 0], corners[:, 2, 1]
    area = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)  # twice the signed screen area
    col_min = corners[..., 0].amin(-1).ceil().clamp(min=0)
    col_max = corners[..., 0].amax(-1).floor().clamp(max=w - 1)
    row_min = corners[..., 1].amin(-1).ceil().clamp(min=0)
    row_max = corners[..., 1].amax(-1).floor().clamp(max=h - 1)
    keep = visible & (area.abs() > 1e-12) & (col_min <= col_max) & (row_min <= row_max)
    keep &= torch.isfinite(corners).all(dim=-1).all(dim=-1)
    triangles = torch.nonzero(keep).squeeze(-1)
    box = torch.maximum(col_max - col_min, row_max - row_min)[triangles].long() + 1
    # Group triangles by the power of two that bounds their box side.
    bucket = torch.ceil(torch.log2(box.float())).long()

    def candidates(tri: Tensor, side: int):
        """Pixels of the ``side x side`` box of each triangle, with their barycentrics and 1/z."""
        offsets = torch.arange(side, device=device)
        dy, dx = torch.meshgrid(offsets, offsets, indexing="ij")
        cols = col_min[tri, None] + dx.reshape(1, -1)
        rows = row_min[tri, None] + dy.reshape(1, -1)
        inside_box = (cols <= col_max[tri, None]) & (rows <= row_max[tri, None])
        # Edge functions: barycentric weight of corner k is the area opposite it over the total.
        b0 = ((x1[tri, None] - cols) * (y2[tri, None] - rows) - (x2[tri, None] - cols) * (y1[tri, None] - rows))
        b1 = ((x2[tri, None] - cols) * (y0[tri, None] - rows) - (x0[tri, None] - cols) * (y2[tri, None] - rows))
        b2 = ((x0[tri, None] - cols) * (y1[tri, None] - rows) - (x1[tri, None] - cols) * (y0[tri, None] - rows))
        bary = torch.stack([b0, b1, b2], dim=-1) / area[tri, None, None]
        inside = inside_box & (bary >= 0).all(dim=-1)
        pixel_inv_z = (bary * inv_z[faces[tri]][:, None, :]).sum(-1)
        index = rows.long() * w + cols.long()
        return inside, index, bary, pixel_inv_z

    def chunks():
        for exponent in torch.unique(bucket).tolist():
            side = 1 << exponent
            members = triangles[bucket == exponent]
            step = max(1, _CANDIDATES_PER_CHUNK // (side * side))
            for start in range(0, members.shape[0], step):
                yield members[start:start + step], side

    nearest = torch.full((h * w,), float("-inf"), device=device, dtype=points_cam.dtype)
    for tri, side in chunks():  # pass 1: the largest 1/z (the nearest hit) per pixel
        inside, index, _bary, pixel_inv_z = candidates(tri, side)
        nearest.scatter_reduce_(0, index[inside], pixel_inv_z[inside], reduce="amax")
    face = torch.full((h * w,), -1, device=device, dtype=torch.long)
    barycentric = torch.zeros(h * w, 3, device=device, dtype=points_cam.dtype)
    for tri, side in chunks():  # pass 2: the triangle that produced that hit
        inside, index, bary, pixel_inv_z = candidates(tri, side)
        winner = inside & (pixel_inv_z == nearest[index.clamp(0, h * w - 1)])
        face[index[winner]] = tri[:, None].expand_as(index)[winner]
        barycentric[index[winner]] = bary[winner]
    covered = face >= 0
    # Screen-space weights -> perspective-correct weights: b_k / z_k renormalized.
    corner_faces = faces[face.clamp(min=0)]  # [h*w, 3]
    weighted = barycentric * inv_z[corner_faces]
    weights = weighted / weighted.sum(-1, keepdim=True).clamp_min(1e-12)
    values = (weights[..., None] * attributes[corner_faces]).sum(-2)
    values = torch.where(covered[:, None], values, torch.zeros_like(values))
    depth = torch.where(covered, 1.0 / nearest, torch.full_like(nearest, float("inf")))
    return Fragments(face.view(h, w), depth.view(h, w), values.view(h, w, -1))


def _rasterize_nvdiffrast(points_cam: Tensor, faces: Tensor, attributes: Tensor, intrinsics: Tensor,
                          resolution: tuple[int, int], near: float) -> Fragments:
    import nvdiffrast.torch as dr

    h, w = resolution
    far = float(points_cam[:, 2].max()) * 1.01 + near
    clip = camera_to_clip(points_cam, intrinsics, near, far)[None].contiguous()
    tri = faces.to(torch.int32).contiguous()
    raster, _ = dr.rasterize(dr.RasterizeCudaContext(device=points_cam.device), clip, tri, resolution=[h, w])
    face = raster[0, ..., 3].long() - 1  # nvdiffrast stores triangle index + 1, 0 where nothing was drawn
    # Interpolate camera z with the attributes: nvdiffrast's interpolation is perspective-correct.
    values = torch.cat([points_cam[:, 2:3], attributes], dim=-1).float()[None].contiguous()
    interpolated, _ = dr.interpolate(values, raster, tri)
    covered = face >= 0
    depth = torch.where(covered, interpolated[0, ..., 0], torch.full_like(interpolated[0, ..., 0], float("inf")))
    return Fragments(face, depth, interpolated[0, ..., 1:])


def rasterize_mesh(
    vertices: Tensor,
    faces: Tensor,
    cam2world: Tensor,
    intrinsics: Tensor,
    resolution: tuple[int, int],
    *,
    attributes: Tensor | None = None,
    near: float = 1e-3,
    backend: str = "auto",
) -> Fragments:
    """Rasterize a mesh seen by one camera.

    Args:
        vertices: ``[V, 3]`` world positions.
        faces: ``int [T, 3]`` vertex indices.
        cam2world: ``[4, 4]`` (OpenCV axes), intrinsics ``[3, 3]`` normalized (EG3D labels).
        resolution: ``(h, w)`` in pixels.
        attributes: optional ``[V, C]`` per-vertex values to interpolate (normals, colours).
        near: triangles with a corner closer than this (camera ``z``) are dropped.
        backend: ``'torch'``, ``'nvdiffrast'`` or ``'auto'`` (nvdiffrast when installed and the
            vertices are on CUDA, else torch).

    Returns:
        :class:`Fragments` of the ``h x w`` image.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown rasterizer backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if vertices.ndim != 2 or vertices.shape[-1] != 3 or faces.ndim != 2 or faces.shape[-1] != 3:
        raise ValueError(f"vertices must be [V, 3] and faces [T, 3]; got {tuple(vertices.shape)}, {tuple(faces.shape)}")
    vertices = vertices.float()
    if attributes is None:
        attributes = vertices.new_zeros(vertices.shape[0], 0)
    if attributes.ndim != 2 or attributes.shape[0] != vertices.shape[0]:
        raise ValueError(f"attributes must be [V, C] with V={vertices.shape[0]}, got {tuple(attributes.shape)}")
    attributes = attributes.to(vertices)
    faces = faces.to(device=vertices.device, dtype=torch.long)
    points_cam = world_to_camera(vertices[None], cam2world[None].to(vertices)).squeeze(0)
    intrinsics = intrinsics.to(vertices)
    if backend == "auto":
        backend = "nvdiffrast" if vertices.is_cuda and nvdiffrast_available() else "torch"
    if backend == "torch":
        return _rasterize_torch(points_cam, faces, attributes, intrinsics, resolution, near)
    if not vertices.is_cuda:
        raise ValueError("the nvdiffrast backend needs the mesh on a CUDA device; use backend='torch' on a CPU")
    kept = torch.nonzero((points_cam[faces][..., 2] > near).all(dim=-1)).squeeze(-1)
    fragments = _rasterize_nvdiffrast(points_cam, faces[kept], attributes, intrinsics, resolution, near)
    # Triangle indices of the kept subset -> indices into the caller's faces.
    fragments.face = torch.where(fragments.face >= 0, kept[fragments.face.clamp(min=0)], fragments.face)
    return fragments
