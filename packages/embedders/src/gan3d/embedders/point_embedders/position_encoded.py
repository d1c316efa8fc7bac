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
        self.num_ws = self.base.num_ws
        self.w_dim = self.base.w_dim
        self.out_channels = self.encoding.out_channels + self.base.out_channels

    @classmethod
    def wire(cls, options: dict, upstream: dict) -> dict:
        """The base embedder is wired as it would be in the slot (its ``w_dim`` is the mapper's)."""
        from gan3d.core.registry import get_registry

        base_cls = get_registry().get("point_embedder", options.get("base", "triplane"))
        base_options = dict(options.get("base_options") or {})
        wired = base_cls.wire(base_options, upstream)
        return {"base_options": {**base_options, **wired}} if wired else {}

    @property
    def bounds(self):
        """The base embedder's."""
        return self.base.bounds

    def scene(self, ws: Tensor, *, generator: torch.Generator | None = None) -> Any:
        return self.base.scene(ws, generator=generator)

    def forward(self, points: Tensor, scene: Any) -> Tensor:
        if points.ndim != 4 or points.shape[-1] != 3:
            raise ValueError(f"points must be [B, R, S, 3], got {tuple(points.shape)}")
        return torch.cat([self.encoding(points), self.base(points, scene)], dim=-1)
