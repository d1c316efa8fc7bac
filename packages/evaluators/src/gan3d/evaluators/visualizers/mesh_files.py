"""Triangle meshes to and from PLY (binary little-endian) and Wavefront OBJ, written without clobbering."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from .output_paths import write_new_file

__all__ = ["encode_ply", "encode_obj", "write_ply", "write_obj", "read_ply", "read_obj"]

_FACE_RECORD = np.dtype([("count", "u1"), ("indices", "<i4", (3,))])


def _check(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    vertices = np.asarray(vertices)
    faces = np.asarray(faces)
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise ValueError(f"vertices must be [V, 3], got shape {vertices.shape}")
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"faces must be [T, 3] triangles, got shape {faces.shape}")
    if faces.size and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise ValueError(f"face indices must lie in [0, {len(vertices)}); got [{faces.min()}, {faces.max()}]")
    return vertices, faces


def encode_ply(vertices: np.ndarray, faces: np.ndarray) -> bytes:
    """``vertices [V, 3]``, ``faces [T, 3]`` (0-based) -> binary little-endian PLY bytes.

    Vertices are float32 ``x y z``; faces are ``list uchar int vertex_indices``, the layout MeshLab,
    Blender and trimesh read.
    """
    vertices, faces = _check(vertices, faces)
    header = (
        "ply\nformat binary_little_endian 1.0\ncomment written by gan3d\n"
        f"element vertex {len(vertices)}\nproperty float x\nproperty float y\nproperty float z\n"
        f"element face {len(faces)}\nproperty list uchar int vertex_indices\nend_header\n"
    ).encode("ascii")
    records = np.empty(len(faces), dtype=_FACE_RECORD)
    records["count"] = 3
    records["indices"] = faces
    return header + vertices.astype("<f4").tobytes() + records.tobytes()


def encode_obj(vertices: np.ndarray, faces: np.ndarray) -> bytes:
    """``vertices [V, 3]``, ``faces [T, 3]`` (0-based) -> Wavefront OBJ text (``v`` and 1-based ``f`` lines)."""
    vertices, faces = _check(vertices, faces)
    text = io.StringIO()
    text.write("# written by gan3d\n")
    np.savetxt(text, vertices, fmt="v %.6f %.6f %.6f")
    np.savetxt(text, faces + 1, fmt="f %d %d %d")
    return text.getvalue().encode("ascii")


def write_ply(path: Path | str, vertices: np.ndarray, faces: np.ndarray) -> Path:
    """Write a new binary PLY at ``path`` (refuses to overwrite)."""
    return write_new_file(path, encode_ply(vertices, faces))


def write_obj(path: Path | str, vertices: np.ndarray, faces: np.ndarray) -> Path:
    """Write a new OBJ at ``path`` (refuses to overwrite)."""
    return write_new_file(path, encode_obj(vertices, faces))


def read_ply(path: Path | str) -> tuple[np.ndarray, np.ndarray]:
    """Read a triangle PLY in the layout :func:`encode_ply` writes -> ``vertices [V, 3]``, ``faces [T, 3]``.

    Raises ``ValueError`` for other PLY layouts (ASCII, extra properties, non-triangles).
    """
    data = Path(path).read_bytes()
    end = data.find(b"end_header\n")
    if not data.startswith(b"ply\n") or end < 0:
        raise ValueError(f"{path} is not a PLY file")
    header = data[:end].decode("ascii").splitlines()
    if "format binary_little_endian 1.0" not in header:
        raise ValueError(f"{path}: only binary little-endian PLY is read here")
    counts = {line.split()[1]: int(line.split()[2]) for line in header if line.startswith("element ")}
    properties = [line for line in header if line.startswith("property ")]
    expected = ["property float x", "property float y", "property float z", "property list uchar int vertex_indices"]
    if properties != expected:
        raise ValueError(f"{path}: unsupported PLY properties {properties}; expected {expected}")
    body = data[end + len(b"end_header\n"):]
    num_vertices, num_faces = counts.get("vertex", 0), counts.get("face", 0)
    vertices = np.frombuffer(body, dtype="<f4", count=num_vertices * 3).reshape(num_vertices, 3)
    records = np.frombuffer(body, dtype=_FACE_RECORD, count=num_faces, offset=num_vertices * 12)
    if num_faces and not np.all(records["count"] == 3):
        raise ValueError(f"{path}: only triangle faces are read here")
    return vertices.copy(), records["indices"].astype(np.int64)


def read_obj(path: Path | str) -> tuple[np.ndarray, np.ndarray]:
    """Read the ``v`` and triangle ``f`` lines of an OBJ -> ``vertices [V, 3]``, 0-based ``faces [T, 3]``.

    Face entries may carry texture/normal indices (``f 1/1/1 ...``); only vertex indices are kept.
    """
    vertices, faces = [], []
    for line in Path(path).read_text().splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "v":
            vertices.append([float(x) for x in parts[1:4]])
        elif parts[0] == "f":
            if len(parts) != 4:
                raise ValueError(f"{path}: only triangle faces are read here, got {line!r}")
            faces.append([int(p.split("/")[0]) - 1 for p in parts[1:4]])
    return (np.asarray(vertices, dtype=np.float32).reshape(-1, 3), np.asarray(faces, dtype=np.int64).reshape(-1, 3))
