"""A point embedder that puts a positional encoding of the point in front of another embedder's
features, as Carver's point-embedder ablation does (qiuyu96/Carver ``models/ablation3d_generator.py``:
``torch.cat([position_encoder(points), point_representer(points, ref)], -1)``).

Carver's encoder (``models/rendering/utils.py`` ``PositionEncoder`` with ``factor=pi``,
``num_freqs=10``, ``include_input=False``) encodes the raw world point:
``sin(2^k pi p), cos(2^k pi p)`` for ``k = 0..9``, 60 channels, in the layout of
:class:`gan3d.embedders.positional_encoding.PositionalEncoding` (``multiply_by_pi=True``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from gan3d.core.interfaces import PointEmbedder

from ..positional_encoding import PositionalEncoding

__all__ = ["PositionEncodedEmbedder"]


class PositionEncodedEmbedder(PointEmbedder):
    """``points [B, R, S, 3]`` -> ``[PE(points), base(points)]`` ``[B, R, S, pe + base channels]``.

    Args:
        base: the registered point embedder whose features follow the encoding (``'triplane'``,
            ``'volume'``, ...); built from the process registry.
        base_options: that embedder's options.
        num_frequencies: octaves of the encoding (Carver 10).
        include_input: put the raw point first (Carver ``pe_include_input`` False).
        multiply_by_pi: ``sin(2^k pi p)`` (Carver ``factor=pi``).

    ``scene(ws)`` is the base embedder's; ``num_ws`` its ``num_ws``.
    """

    def __init__(self, *, base: str = "triplane", base_options: dict | None = None, num_frequencies: int = 10,
                 include_input: bool = False, multiply_by_pi: bool = True) -> None:
        super().__init__()
        from gan3d.core.registry import get_registry

        self.base = get_registry().build("point_embedder", base, **(base_options or {}))
        self.encoding = PositionalEncoding(in_channels=3, num_frequencies=num_frequencies,
                                           include_input=include_input, multiply_by_pi=multiply_by_pi)
        self.num_ws = getattr(self.base, "num_ws", 0) or 0
        self.out_channels = self.encoding.out_channels + self.base.out_channels

    def scene(self, ws: Tensor) -> Any:
        return self.base.scene(ws)

    def forward(self, points: Tensor, scene: Any) -> Tensor:
        if points.ndim != 4 or points.shape[-1] != 3:
            raise ValueError(f"points must be [B, R, S, 3], got {tuple(points.shape)}")
        return torch.cat([self.encoding(points), self.base(points, scene)], dim=-1)
