"""GRAM's discriminator: pi-GAN's residual coordinate-conv blocks at ONE resolution, with a pose head.

Source: microsoft/GRAM (commit 5a5ac8e) ``discriminators/discriminators.py`` ``GramDiscriminator`` and
``discriminators/gram_discriminator.py`` (``ResidualCoordConvBlock``, ``AdapterBlock``, ``CoordConv``):

* one ``fromRGB`` adapter (``Conv2d(3, c_0, 1)`` + LeakyReLU(0.2)) at the training resolution -- GRAM
  trains at a fixed size, so unlike pi-GAN's discriminators there is no adapter per resolution and no
  fade-in;
* blocks ``ResidualCoordConvBlock(min(400, 2^i), min(400, 2^(i+1)), downsample=True)`` for
  ``i = 13 - log2(size) .. 11``: pi-GAN's "pooled" block
  (:class:`~gan3d.methods.pigan.residual_blocks.DownsamplingResidualBlock`), whose convs keep PyTorch's
  default init (GRAM's ``kaiming_leaky_init`` matches only ``Linear``);
* ``final_layer = Conv2d(400, 3, 2)`` on the 2x2 map: the logit and the camera pose.

The pose is returned as ``(theta, phi)`` (pi-GAN's azimuth then polar angle, see
:mod:`gan3d.methods.pigan.pose_angles`), the order the repository's pose losses use; GRAM's head emits
``(phi, theta)``: swap output channels 1 and 2 of ``final_layer`` to load its weights. The other
parameter names map by prefix: ``layers.`` -> ``blocks.``, ``.network.`` -> ``.residual.``, ``.proj.``
-> ``.skip.``, ``fromRGB.model.`` -> ``from_rgb.``, ``final_layer.`` -> ``head.``.
"""

from __future__ import annotations

import math

from torch import Tensor, nn

from gan3d.core.interfaces import Discriminator
from gan3d.core.types import DiscriminatorInput, DiscriminatorOutput

from ..pigan.residual_blocks import DownsamplingResidualBlock

__all__ = ["GRAMDiscriminator", "gram_channels"]

#: GramDiscriminator: ``min(400, 2 ** i)`` channels.
MAX_CHANNELS = 400


def gram_channels(resolution: int) -> list[int]:
    """GRAM's channel widths for images of side ``resolution``: ``[min(400, 2^i) for i in 13 - log2(res) .. 12]``.

    Example:
        >>> gram_channels(256)
        [32, 64, 128, 256, 400, 400, 400, 400]
        >>> gram_channels(128)
        [64, 128, 256, 400, 400, 400, 400]
    """
    if resolution < 4 or resolution & (resolution - 1):
        raise ValueError(f"GRAM's discriminator takes a power-of-two image side >= 4, got {resolution}")
    first = 13 - int(math.log2(resolution))
    return [min(MAX_CHANNELS, 2**i) for i in range(first, 13)]


class GRAMDiscriminator(Discriminator):
    """GRAM's fixed-resolution residual discriminator with a camera-pose head.

    Args:
        img_resolution: the image side (GramDiscriminator's ``img_size``: 256 for FFHQ and Cats, 128 for
            CARLA); the widths are :func:`gram_channels` of it.
        channels: feature widths, input first, instead of GRAM's (small test networks); the image side is
            ``2 ** len(channels)``, which must equal ``img_resolution`` when both are given.
        pose_dim: size of the predicted pose (GRAM: 2; 0: none).

    Example:
        >>> d = GRAMDiscriminator(channels=[8, 16, 16])
        >>> out = d(DiscriminatorInput(torch.randn(2, 3, 8, 8)))
        >>> out.logits.shape, out.pose.shape
        (torch.Size([2, 1]), torch.Size([2, 2]))
    """

    def __init__(self, *, img_resolution: int | None = None, channels: list[int] | tuple[int, ...] | None = None,
                 pose_dim: int = 2) -> None:
        super().__init__()
        if channels is None:
            channels = gram_channels(256 if img_resolution is None else int(img_resolution))
        channels = [int(c) for c in channels]
        if len(channels) < 2 or any(c <= 0 for c in channels):
            raise ValueError(f"gram discriminator: channels must list at least two positive widths, got {channels}")
        if img_resolution is not None and 2 ** len(channels) != img_resolution:
            raise ValueError(f"gram discriminator: {len(channels)} channel widths make a {2 ** len(channels)}-px "
                             f"discriminator, but img_resolution is {img_resolution}; give one of them, or "
                             f"log2(img_resolution) widths")
        if pose_dim < 0:
            raise ValueError(f"gram discriminator: pose_dim must be >= 0, got {pose_dim}")
        self.channels = channels
        self.pose_dim = pose_dim
        self.resolution = 2 ** len(channels)
        self.from_rgb = nn.Sequential(nn.Conv2d(3, channels[0], 1), nn.LeakyReLU(0.2))
        self.blocks = nn.ModuleList(
            DownsamplingResidualBlock(cin, cout, layout="pooled", coord_conv=True, kaiming_init=False)
            for cin, cout in zip(channels[:-1], channels[1:])
        )
        self.head = nn.Conv2d(channels[-1], 1 + pose_dim, 2)

    def score(self, image: Tensor) -> DiscriminatorOutput:
        """``image [B, 3, S, S]`` with ``S = self.resolution`` -> logits ``[B, 1]``, pose ``[B, pose_dim]``."""
        if image.ndim != 4 or image.shape[1] != 3 or tuple(image.shape[-2:]) != (self.resolution,) * 2:
            raise ValueError(
                f"gram discriminator: expected images [B, 3, {self.resolution}, {self.resolution}] (the side is "
                f"img_resolution), got {tuple(image.shape)}; set discriminator.img_resolution to the training size"
            )
        x = self.from_rgb(image)
        for block in self.blocks:
            x = block(x)
        out = self.head(x).flatten(1)
        return DiscriminatorOutput(logits=out[:, :1], pose=out[:, 1:] if self.pose_dim else None)

    def forward(self, x: DiscriminatorInput) -> DiscriminatorOutput:
        """Score ``x.image [B, 3, S, S]``; GRAM is unconditional, single-image and not progressive, so the
        other inputs (raw image, camera, fade-in) are not used."""
        return self.score(x.image)

    def extra_repr(self) -> str:
        return f"resolution={self.resolution}, channels={self.channels}, pose_dim={self.pose_dim}"
