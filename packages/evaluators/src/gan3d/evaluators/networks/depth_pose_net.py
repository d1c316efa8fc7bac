"""The small CNN behind the ``trained`` estimator: one image -> a depth map and the camera's angles.

An encoder of strided 3x3 convolutions, a pose head on the globally pooled code, and a decoder of
upsampling convolutions with skip connections (a miniature U-Net, Ronneberger et al. 2015) that
predicts the depth map standardized per image (zero mean, unit standard deviation), because DE
compares depths after that same standardization.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["DepthPoseNet"]


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1), nn.GroupNorm(1, cout), nn.SiLU())


class DepthPoseNet(nn.Module):
    """``images [B, 3, H, W]`` in ``[-1, 1]`` -> ``(depth [B, 1, r, r], angles [B, 2])``.

    The image is resized to ``resolution`` (a multiple of 8). ``angles`` are (yaw, polar) in radians in
    gan3d's convention (:mod:`gan3d.core.cameras`), predicted as offsets from the front view
    ``(pi/2, pi/2)``.

    Args:
        resolution: working resolution of the network.
        channels: channels of the first stage (doubled at each of the three downsamplings).
    """

    def __init__(self, resolution: int = 64, channels: int = 32) -> None:
        super().__init__()
        if resolution % 8:
            raise ValueError(f"resolution must be a multiple of 8, got {resolution}")
        self.resolution = resolution
        self.channels = channels
        c = channels
        self.stem = _conv(3, c)
        self.down1 = _conv(c, 2 * c, 2)
        self.down2 = _conv(2 * c, 4 * c, 2)
        self.down3 = _conv(4 * c, 4 * c, 2)
        self.pose_head = nn.Sequential(nn.Linear(4 * c, 4 * c), nn.SiLU(), nn.Linear(4 * c, 2))
        self.up3 = _conv(8 * c, 2 * c)
        self.up2 = _conv(4 * c, c)
        self.up1 = _conv(2 * c, c)
        self.depth_head = nn.Conv2d(c, 1, 3, padding=1)

    @property
    def config(self) -> dict[str, int]:
        """The constructor arguments, saved with the weights."""
        return {"resolution": self.resolution, "channels": self.channels}

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        x = F.interpolate(images.float(), size=(self.resolution, self.resolution), mode="bilinear",
                          align_corners=False, antialias=True)
        s0 = self.stem(x)
        s1 = self.down1(s0)
        s2 = self.down2(s1)
        s3 = self.down3(s2)
        angles = self.pose_head(s3.mean(dim=(2, 3))) + math.pi / 2

        def up(t: Tensor, skip: Tensor, layer: nn.Module) -> Tensor:
            return layer(torch.cat([F.interpolate(t, size=skip.shape[-2:], mode="nearest"), skip], dim=1))

        d = up(s3, s2, self.up3)
        d = up(d, s1, self.up2)
        d = up(d, s0, self.up1)
        return self.depth_head(d), angles
