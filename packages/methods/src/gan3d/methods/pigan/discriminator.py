"""pi-GAN's progressive discriminator: residual (coordinate-)conv blocks, one ``fromRGB`` adapter per
resolution, a fade-in between resolutions, and heads for the logit, the latent and the pose.

Source: marcoamonteiro/pi-GAN, ``discriminators/sgdiscriminators.py`` (``CCSEncoderDiscriminator``,
the CelebA discriminator, and ``StridedDiscriminator``, the Cats one) and
``discriminators/discriminators.py`` (``ProgressiveEncoderDiscriminator``, the CARLA one); the
fade-in follows Karras et al. 2018 (progressive growing), as pi-GAN's paper, section 3.3, says.
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import nn

from gan3d.core.interfaces import Discriminator
from gan3d.core.types import DiscriminatorInput, DiscriminatorOutput

from .residual_blocks import BLOCK_LAYOUTS, DownsamplingResidualBlock

__all__ = ["PiGANProgressiveDiscriminator"]


class PiGANProgressiveDiscriminator(Discriminator):
    """Progressive residual discriminator with coordinate convolutions (pi-GAN).

    Block ``i`` maps ``channels[i]`` to ``channels[i + 1]`` channels and halves the resolution;
    ``fromRGB[i]`` (1x1 conv + LeakyReLU(0.2)) maps an image to ``channels[i]`` channels. An image of
    side ``H`` enters at block ``start = len(channels) - log2(H)``, so the last block ends at 2x2 and a
    2x2 convolution gives ``1 + latent_dim + pose_dim`` outputs. The largest accepted side is
    ``2 ** len(channels)`` (256 for the CelebA layout, 512 for CARLA's). While ``alpha < 1`` the
    output of the first block is blended with ``fromRGB[start + 1]`` of the image downsampled by 2
    (nearest neighbour, as pi-GAN does): ``alpha * block(fromRGB(x)) + (1 - alpha) * fromRGB'(down(x))``.

    Args:
        channels: feature channels at each entry point, highest resolution first (pi-GAN CelebA:
            ``[32, 64, 128, 256, 400, 400, 400, 400]``; CARLA: ``[16, 32, ..., 400]`` with 9 entries).
        block_layout: ``'strided'`` (pi-GAN ``ResidualCCBlock``) or ``'pooled'``
            (``ResidualCoordConvBlock``), see :mod:`.residual_blocks`.
        coord_conv: whether the blocks' 3x3 convs see coordinate channels (``False`` is pi-GAN's
            ``StridedDiscriminator``).
        kaiming_init: He init of the blocks' convs (pi-GAN: yes for strided, no for pooled).
        latent_dim: size of the predicted latent (pi-GAN: 256, the generator's ``z_dim``; 0: none).
        pose_dim: size of the predicted pose (pi-GAN: 2; 0: none).

    Example:
        >>> d = PiGANProgressiveDiscriminator()
        >>> out = d(torch.randn(2, 3, 64, 64), alpha=0.5)  # doctest: +SKIP
        >>> out.logits.shape, out.latent.shape, out.pose.shape  # [2, 1], [2, 256], [2, 2]
    """

    def __init__(
        self,
        *,
        channels: list[int] | tuple[int, ...] = (32, 64, 128, 256, 400, 400, 400, 400),
        block_layout: str = "strided",
        coord_conv: bool = True,
        kaiming_init: bool = True,
        latent_dim: int = 256,
        pose_dim: int = 2,
    ) -> None:
        super().__init__()
        channels = [int(c) for c in channels]
        if len(channels) < 2 or any(c <= 0 for c in channels):
            raise ValueError(f"channels must list at least two positive widths, got {channels}")
        if block_layout not in BLOCK_LAYOUTS:
            raise ValueError(f"block_layout must be one of {BLOCK_LAYOUTS}, got {block_layout!r}")
        if latent_dim < 0 or pose_dim < 0:
            raise ValueError(f"latent_dim and pose_dim must be >= 0, got {latent_dim}, {pose_dim}")
        self.channels = channels
        self.latent_dim = latent_dim
        self.pose_dim = pose_dim
        self.blocks = nn.ModuleList(
            DownsamplingResidualBlock(cin, cout, layout=block_layout, coord_conv=coord_conv, kaiming_init=kaiming_init)
            for cin, cout in zip(channels[:-1], channels[1:])
        )
        self.from_rgb = nn.ModuleList(nn.Sequential(nn.Conv2d(3, c, 1), nn.LeakyReLU(0.2)) for c in channels)
        self.head = nn.Conv2d(channels[-1], 1 + latent_dim + pose_dim, 2)

    @property
    def max_resolution(self) -> int:
        return 2 ** len(self.channels)

    def start_index(self, resolution: int) -> int:
        """The block (and ``fromRGB``) index an image of side ``resolution`` enters at."""
        if resolution < 2 or resolution > self.max_resolution or resolution & (resolution - 1):
            raise ValueError(
                f"the pi-GAN discriminator takes square images with a power-of-two side from 2 to "
                f"{self.max_resolution}, got {resolution}; add entries to `channels` for larger images"
            )
        return len(self.channels) - int(math.log2(resolution))

    def forward(self, x: DiscriminatorInput) -> DiscriminatorOutput:
        """Score ``x.image [B, 3, H, H]``; ``x.alpha`` in ``[0, 1]`` fades in the highest-resolution block.

        Returns logits ``[B, 1]``, latent ``[B, latent_dim]`` and pose ``[B, pose_dim]`` (``None``
        when the size is 0). The other inputs are not used (pi-GAN is unconditional and has no
        super-resolution).
        """
        image, alpha = x.image, x.alpha
        if image.ndim != 4 or image.shape[1] != 3 or image.shape[-1] != image.shape[-2]:
            raise ValueError(f"expected a square RGB batch [B, 3, H, H], got {tuple(image.shape)}")
        start = self.start_index(image.shape[-1])
        x = self.from_rgb[start](image)
        for i, block in enumerate(self.blocks[start:]):
            if i == 1 and alpha < 1:
                # pi-GAN blends after the first block; with alpha >= 1 the downsampled path is skipped
                # (sgdiscriminators.py), which gives the same value.
                down = F.interpolate(image, scale_factor=0.5, mode="nearest")
                x = alpha * x + (1 - alpha) * self.from_rgb[start + 1](down)
            x = block(x)
        out = self.head(x).flatten(1)
        latent = out[:, 1:1 + self.latent_dim] if self.latent_dim else None
        pose = out[:, 1 + self.latent_dim:] if self.pose_dim else None
        return DiscriminatorOutput(logits=out[:, :1], pose=pose, latent=latent)
