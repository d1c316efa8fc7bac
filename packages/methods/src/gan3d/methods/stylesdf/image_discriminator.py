"""StyleSDF's full-pipeline discriminator (``discriminator`` ``stylesdf_image``): the StyleGAN2
residual discriminator on the high-resolution image, with no viewpoint head.

Facts from royorel/StyleSDF ``model.py`` (``Discriminator``, rosinality's StyleGAN2): ``fromRGB`` 1x1,
residual blocks from ``size`` down to 8 (3x3 conv, 3x3 downsampling conv, 1x1 downsampling skip
without bias, summed over ``sqrt(2)``), channels ``{4..64: 512, 128: 256, 256: 128, 512: 64,
1024: 32}`` (``channel_multiplier`` 2), minibatch standard deviation (group 4, 1 channel), a 3x3 conv,
a 4x4 -> 512 linear layer and a linear logit. This is core's
:class:`~gan3d.core.layers.StyleGAN2Discriminator` with ``channel_base = 32768`` and no conv clamp.
"""

from __future__ import annotations

from gan3d.core.interfaces import Discriminator
from gan3d.core.layers import StyleGAN2Discriminator
from gan3d.core.types import DiscriminatorInput, DiscriminatorOutput

__all__ = ["StyleSDFImageDiscriminator"]


class StyleSDFImageDiscriminator(Discriminator):
    """``image [B, 3, R, R]`` -> logits ``[B, 1]``.

    Args:
        resolution: image size ``R`` (FFHQ 1024, AFHQ 512).
        channel_base, channel_max: widths ``min(channel_base // res, channel_max)`` (32768, 512).
        mbstd_group_size: minibatch-std group (4).
    """

    def __init__(self, *, resolution: int = 1024, channel_base: int = 32768, channel_max: int = 512,
                 mbstd_group_size: int = 4) -> None:
        super().__init__()
        self.resolution = resolution
        self.network = StyleGAN2Discriminator(0, resolution, 3, architecture="resnet", channel_base=channel_base,
                                              channel_max=channel_max, conv_clamp=None,
                                              mbstd_group_size=mbstd_group_size)

    def forward(self, x: DiscriminatorInput) -> DiscriminatorOutput:
        """Score ``image [B, 3, R, R]``; the other inputs are unused."""
        return DiscriminatorOutput(logits=self.network(x.image))
