"""The residual blocks of pi-GAN's progressive discriminators; each halves the resolution.

Two layouts exist in the official code (marcoamonteiro/pi-GAN):

* ``strided`` (``ResidualCCBlock`` of ``CCSEncoderDiscriminator``, the CelebA discriminator, and
  ``StridedResidualConvBlock`` without coordinates, the Cats one): conv 3x3 -> LeakyReLU(0.2) ->
  conv 3x3 stride 2 -> LeakyReLU(0.2); the skip is a 1x1 conv with stride 2.
* ``pooled`` (``ResidualCoordConvBlock`` with ``downsample=True`` of
  ``ProgressiveEncoderDiscriminator``, the CARLA one): conv 3x3 -> LeakyReLU -> conv 3x3 -> LeakyReLU
  -> 2x2 average pool; the skip is average-pooled and projected by a 1x1 conv only when the channel
  count changes.

Both add the branches and divide by ``sqrt(2)``.
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn

from .coord_conv import CoordConv2d

__all__ = ["DownsamplingResidualBlock", "BLOCK_LAYOUTS", "kaiming_leaky_init_"]

BLOCK_LAYOUTS = ("strided", "pooled")


def kaiming_leaky_init_(module: nn.Module) -> None:
    """He-normal init for LeakyReLU(0.2), fan-in (pi-GAN's ``kaiming_leaky_init``), on every conv
    weight inside ``module``; biases keep PyTorch's default."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, a=0.2, mode="fan_in", nonlinearity="leaky_relu")


class DownsamplingResidualBlock(nn.Module):
    """One discriminator block: ``[B, in_channels, H, W]`` -> ``[B, out_channels, H/2, W/2]``.

    Args:
        in_channels, out_channels: feature channels in and out.
        layout: ``'strided'`` or ``'pooled'`` (see the module docstring).
        coord_conv: whether the two 3x3 convs see coordinate channels.
        kaiming_init: He init of the residual branch's convs. pi-GAN's ``sgdiscriminators.py`` (strided
            blocks) applies it; its ``discriminators.py`` (pooled blocks) matches only ``Linear``
            layers, so those convs keep PyTorch's default init.
    """

    def __init__(self, in_channels: int, out_channels: int, *, layout: str = "strided", coord_conv: bool = True,
                 kaiming_init: bool = True) -> None:
        super().__init__()
        if layout not in BLOCK_LAYOUTS:
            raise ValueError(f"layout must be one of {BLOCK_LAYOUTS}, got {layout!r}")
        self.layout = layout

        def conv(cin: int, cout: int, stride: int) -> nn.Module:
            if coord_conv:
                return CoordConv2d(cin, cout, 3, stride=stride, padding=1)
            return nn.Conv2d(cin, cout, 3, stride=stride, padding=1)

        second_stride = 2 if layout == "strided" else 1
        self.residual = nn.Sequential(
            conv(in_channels, out_channels, 1),
            nn.LeakyReLU(0.2),
            conv(out_channels, out_channels, second_stride),
            nn.LeakyReLU(0.2),
        )
        if kaiming_init:
            kaiming_leaky_init_(self.residual)
        if layout == "strided":
            self.skip: nn.Module | None = nn.Conv2d(in_channels, out_channels, 1, stride=2)
        else:
            self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else None

    def forward(self, x: Tensor) -> Tensor:
        """``x [B, in_channels, H, W]`` -> ``[B, out_channels, H/2, W/2]``."""
        y = self.residual(x)
        if self.layout == "pooled":
            y = F.avg_pool2d(y, 2)
            x = F.avg_pool2d(x, 2)
        identity = x if self.skip is None else self.skip(x)
        return (y + identity) / math.sqrt(2)
