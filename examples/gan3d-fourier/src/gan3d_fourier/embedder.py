"""Gaussian Fourier features (Tancik et al. 2020, section 4) as a gan3d point embedder."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from gan3d.core.interfaces import PointEmbedder


class FourierFeatureEmbedder(PointEmbedder):
    """``points [B, R, S, 3]`` -> ``[cos(2 pi B x), sin(2 pi B x)]`` of ``2 * num_frequencies`` channels
    (plus the raw coordinates with ``include_input``).

    Args:
        num_frequencies: rows of the random matrix ``B``.
        scale: standard deviation of ``B``'s entries (the paper's sigma; larger is higher frequency).
        include_input: append ``x`` itself.
        seed: seeds ``B`` so that a recipe rebuilds the same embedder.
    """

    def __init__(self, num_frequencies: int = 64, scale: float = 10.0, include_input: bool = True,
                 seed: int = 0) -> None:
        super().__init__()
        if num_frequencies <= 0:
            raise ValueError(f"num_frequencies must be positive, got {num_frequencies}")
        if scale <= 0:
            raise ValueError(f"scale must be positive, got {scale}")
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("B", torch.randn(num_frequencies, 3, generator=g) * scale)
        self.include_input = include_input
        self.out_channels = 2 * num_frequencies + (3 if include_input else 0)

    def forward(self, points: Tensor, scene) -> Tensor:
        proj = 2 * math.pi * points @ self.B.T
        parts = [torch.cos(proj), torch.sin(proj)]
        if self.include_input:
            parts.append(points)
        return torch.cat(parts, dim=-1)
