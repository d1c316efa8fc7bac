"""GIRAFFE's compositional point embedder: every sample point seen in each object's frame and in the
background's.

GIRAFFE evaluates object ``i``'s feature field at ``R_i (p - t_i) / s_i`` and the background's at
``R_bg p`` (im2scene/giraffe/models/generator.py ``transform_points_to_box``,
``get_evaluation_points_bg``); the transforms come from ``ws`` (:mod:`gan3d.embedders.giraffe_scene`).
The positional encoding belongs to each field's MLP (GIRAFFE's ``Decoder.transform_points``), so it is
applied by the ``giraffe_composite`` decoder.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gan3d.core.interfaces import PointEmbedder

from ..giraffe_scene import GiraffeLatentLayout, SceneTransforms, scene_transforms

__all__ = ["GiraffeCompositeEmbedder"]


class GiraffeCompositeEmbedder(PointEmbedder):
    """``points [B, R, S, 3]`` -> ``[B, R, S, 3 (n_objects + 1)]``: the point in object ``0..N-1``'s frame,
    then in the background's frame, three channels each. No parameters.

    Args:
        n_objects, object_z_dim, background_z_dim: the ``ws`` layout; equal to the ``giraffe`` mapper's.

    ``scene(ws)`` returns the batch's :class:`~gan3d.embedders.giraffe_scene.SceneTransforms`.

    Example:
        >>> emb = GiraffeCompositeEmbedder(n_objects=2, object_z_dim=4, background_z_dim=2)
        >>> ws = GiraffeMapper(n_objects=2, object_z_dim=4, background_z_dim=2)(torch.randn(1, 23))  # doctest: +SKIP
        >>> emb(torch.zeros(1, 5, 7, 3), emb.scene(ws)).shape                                         # doctest: +SKIP
        torch.Size([1, 5, 7, 9])
    """

    def __init__(self, *, n_objects: int = 1, object_z_dim: int = 256, background_z_dim: int = 128) -> None:
        super().__init__()
        self.layout = GiraffeLatentLayout(n_objects, object_z_dim, background_z_dim)
        self.num_ws = self.layout.num_ws
        self.w_dim = self.layout.w_dim
        self.out_channels = 3 * (n_objects + 1)

    def scene(self, ws: Tensor) -> SceneTransforms:
        """The transforms in ``ws [B, n_objects + 1, w_dim]``."""
        return scene_transforms(ws, self.layout)

    def forward(self, points: Tensor, scene: SceneTransforms) -> Tensor:
        if points.ndim != 4 or points.shape[-1] != 3:
            raise ValueError(f"points must be [B, R, S, 3], got {tuple(points.shape)}")
        if not isinstance(scene, SceneTransforms):
            raise TypeError("the giraffe_composite embedder needs scene(ws) from the same embedder")
        objects = scene.object_points(points)  # [B, N, R, S, 3]
        b, n, r, s, _ = objects.shape
        per_object = objects.permute(0, 2, 3, 1, 4).reshape(b, r, s, 3 * n)
        return torch.cat([per_object, scene.background_points(points)], dim=-1)

    def extra_repr(self) -> str:
        return f"n_objects={self.layout.n_objects}, out_channels={self.out_channels}"

