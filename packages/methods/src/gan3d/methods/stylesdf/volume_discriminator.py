"""StyleSDF's volume-renderer discriminator (``discriminator`` ``stylesdf_volume``): residual
coordinate-conv blocks on the 64x64 rendered image, predicting real/fake and the viewpoint.

Facts from royorel/StyleSDF ``model.py`` (``VolumeRenderDiscriminator``, ``VolumeRenderResBlock``,
``CoordConvLayer``): ``fromRGB`` a 1x1 conv + LeakyReLU(0.2) to ``channels[64] = 128``; one block per
halving down to 2x2 with channels ``{32: 256, 16: 400, 8: 400, 4: 400, 2: 400}``, each two 3x3
coordinate convs with LeakyReLU(0.2), a 2x2 average pool, and a skip that is average-pooled (and
1x1-projected when the width changes), summed with the branch and divided by ``sqrt(2)``; a final
2x2 conv gives ``1 + 2`` outputs: the logit and the viewpoint (azimuth, elevation). These are
pi-GAN's ``pooled`` residual blocks (:mod:`gan3d.methods.pigan.residual_blocks`), reused here
(default PyTorch init, as StyleSDF's).
"""

from __future__ import annotations

import math

from torch import nn

from gan3d.core.interfaces import Discriminator
from gan3d.core.types import DiscriminatorInput, DiscriminatorOutput

from ..pigan.residual_blocks import DownsamplingResidualBlock

__all__ = ["StyleSDFVolumeDiscriminator"]


class StyleSDFVolumeDiscriminator(Discriminator):
    """``image [B, 3, H, H]`` with ``H = 2 ** len(channels)`` -> logits ``[B, 1]``, pose ``[B, pose_dim]``.

    Args:
        channels: widths from the input resolution down to 2x2 (StyleSDF at 64 px:
            ``[128, 256, 400, 400, 400, 400]``).
        pose_dim: predicted viewpoint size (2: azimuth, elevation; 0 when ``view_lambda`` is 0).

    Example:
        >>> d = StyleSDFVolumeDiscriminator(channels=[8, 8, 8, 8])
        >>> out = d(torch.randn(2, 3, 16, 16))
        >>> out.logits.shape, out.pose.shape
        (torch.Size([2, 1]), torch.Size([2, 2]))
    """

    def __init__(self, *, channels: list[int] | tuple[int, ...] = (128, 256, 400, 400, 400, 400),
                 pose_dim: int = 2) -> None:
        super().__init__()
        channels = [int(c) for c in channels]
        if len(channels) < 2 or any(c <= 0 for c in channels):
            raise ValueError(f"channels must list at least two positive widths, got {channels}")
        if pose_dim < 0:
            raise ValueError(f"pose_dim must be >= 0, got {pose_dim}")
        self.channels = channels
        self.pose_dim = pose_dim
        self.resolution = 2 ** len(channels)
        self.from_rgb = nn.Sequential(nn.Conv2d(3, channels[0], 1), nn.LeakyReLU(0.2))
        self.blocks = nn.Sequential(*(
            DownsamplingResidualBlock(cin, cout, layout="pooled", coord_conv=True, kaiming_init=False)
            for cin, cout in zip(channels[:-1], channels[1:])
        ))
        self.head = nn.Conv2d(channels[-1], 1 + pose_dim, 2)

    def forward(self, x: DiscriminatorInput) -> DiscriminatorOutput:
        """Score ``image [B, 3, H, H]``; the other inputs are unused (unconditional, single image)."""
        image = x.image
        if image.ndim != 4 or image.shape[1] != 3 or image.shape[-2:] != (self.resolution, self.resolution):
            raise ValueError(f"stylesdf_volume discriminator takes [B, 3, {self.resolution}, {self.resolution}] "
                             f"images (2 ** len(channels)); got {tuple(image.shape)}")
        out = self.head(self.blocks(self.from_rgb(image))).flatten(1)
        return DiscriminatorOutput(logits=out[:, :1], pose=out[:, 1:] if self.pose_dim else None)

    def extra_repr(self) -> str:
        return f"resolution={self.resolution}, pose_dim={self.pose_dim}, log2={int(math.log2(self.resolution))}"
