"""The coordinate embedder: the point itself, optionally rescaled and frequency-encoded.

pi-GAN feeds raw coordinates to its SIREN; its ``SPATIALSIRENBASELINE`` first applies
``UniformBoxWarp(0.24)``, i.e. multiplies points by ``2 / 0.24`` (marcoamonteiro/pi-GAN
siren/siren.py), which is ``box_warp=0.24`` here -- the same convention as EG3D's ``box_warp``
(a cube of side ``box_warp`` maps onto ``[-1, 1]^3``). NeRF-style MLPs (GRAF, GIRAFFE, StyleNeRF)
add a positional encoding (see :mod:`gan3d.embedders.positional_encoding`).
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from gan3d.core.interfaces import PointEmbedder

from ..positional_encoding import PositionalEncoding

__all__ = ["CoordinateEmbedder"]


class CoordinateEmbedder(PointEmbedder):
    """``points [B, R, S, 3]`` -> ``gamma(2 / box_warp * points)`` ``[B, R, S, out_channels]``.

    Args:
        box_warp: side of the cube mapped onto ``[-1, 1]^3`` (2.0: points pass unscaled;
            pi-GAN's CelebA/CARLA SIREN uses 0.24).
        num_frequencies: octaves of the positional encoding (0: no encoding; NeRF uses 10).
        include_input: keep the (scaled) point in front of the encoding.
        multiply_by_pi: encode ``sin(2^k pi p)`` (StyleNeRF) instead of ``sin(2^k p)`` (NeRF).
        scene_extent: half the side of the cube about the origin that holds the scene (``bounds``: what shape
            extraction and viewers sample); 0 (default): ``box_warp / 2``, the cube the encoding maps onto
            ``[-1, 1]^3``. For unscaled coordinates whose scene reaches beyond 1 (GRAF's CARLA cars, rendered
            from radius 10 between depths 7.5 and 12.5, reach 2.5 from the origin). It changes no output.

    ``out_channels = 3 * (include_input + 2 * num_frequencies)``; no per-batch scene
    (``scene(ws)`` returns ``None``) and no parameters.

    Example:
        >>> emb = CoordinateEmbedder(num_frequencies=4)
        >>> emb(torch.zeros(1, 2, 3, 3), None).shape
        torch.Size([1, 2, 3, 27])
    """

    num_ws = 0

    def __init__(self, *, box_warp: float = 2.0, num_frequencies: int = 0, include_input: bool = True,
                 multiply_by_pi: bool = False, scene_extent: float = 0.0) -> None:
        super().__init__()
        if not box_warp > 0:
            raise ValueError(f"box_warp must be positive (the side of the cube mapped to [-1, 1]), got {box_warp}")
        if scene_extent < 0:
            raise ValueError(f"scene_extent must be >= 0 (0: box_warp / 2), got {scene_extent}")
        self.box_warp = float(box_warp)
        self.scene_extent = float(scene_extent)
        self.encoding = PositionalEncoding(in_channels=3, num_frequencies=num_frequencies,
                                           include_input=include_input, multiply_by_pi=multiply_by_pi)
        self.out_channels = self.encoding.out_channels

    @property
    def bounds(self) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
        """The cube of half-side ``scene_extent`` about the origin, by default the one of side ``box_warp`` that
        the encoding maps onto ``[-1, 1]^3``."""
        h = self.scene_extent or self.box_warp / 2
        return ((-h, -h, -h), (h, h, h))

    def forward(self, points: Tensor, scene: Any = None) -> Tensor:
        if points.shape[-1] != 3:
            raise ValueError(f"points must be [B, R, S, 3], got {tuple(points.shape)}")
        return self.encoding(points * (2.0 / self.box_warp))

    def extra_repr(self) -> str:
        return f"box_warp={self.box_warp}, out_channels={self.out_channels}"
