"""Coordinate convolution (Liu et al. 2018, "An intriguing failing of convolutional neural networks
and the CoordConv solution"), as pi-GAN's discriminators use it.

pi-GAN (``discriminators/sgdiscriminators.py``, ``AddCoords``/``CoordConv``) appends two channels to
the input of every 3x3 convolution of its residual blocks: the row coordinate and the column
coordinate of each pixel, each spanning ``[-1, 1]`` (in that order: the first channel varies along
the height, the second along the width).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["add_coordinates", "CoordConv2d"]


def add_coordinates(x: Tensor) -> Tensor:
    """``x [B, C, H, W]`` -> ``[B, C + 2, H, W]`` with the row then the column coordinate in ``[-1, 1]``.

    ``linspace(-1, 1, n)`` equals pi-GAN's ``arange(n) / (n - 1) * 2 - 1``; for ``n = 1`` it gives
    ``-1`` where pi-GAN's formula divides by zero (its blocks never see a 1-pixel map).
    """
    b, _, h, w = x.shape
    rows = torch.linspace(-1.0, 1.0, h, device=x.device, dtype=x.dtype).view(1, 1, h, 1).expand(b, 1, h, w)
    cols = torch.linspace(-1.0, 1.0, w, device=x.device, dtype=x.dtype).view(1, 1, 1, w).expand(b, 1, h, w)
    return torch.cat([x, rows, cols], dim=1)


class CoordConv2d(nn.Module):
    """A ``Conv2d`` that sees two extra coordinate channels (see :func:`add_coordinates`).

    Args:
        in_channels, out_channels, kernel_size, stride, padding: as for :class:`torch.nn.Conv2d`;
            ``in_channels`` counts the feature channels only (the conv takes ``in_channels + 2``).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 padding: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels + 2, out_channels, kernel_size, stride=stride, padding=padding)

    def forward(self, x: Tensor) -> Tensor:
        """``x [B, in_channels, H, W]`` -> ``[B, out_channels, H', W']``."""
        return self.conv(add_coordinates(x))
