"""GIRAFFE's discriminator: the DCGAN-style ``DCDiscriminator`` every released config uses.

Source: autonomousvision/giraffe im2scene/discriminator/conv.py ``DCDiscriminator`` (configs/default.yaml
``discriminator: dc``; no config overrides it, so the 256-pixel models use it too; the
``DiscriminatorResnet`` of the same file is never selected). ``n = log2(img_size) - 2`` convolutions
``4x4, stride 2, padding 1, no bias``, each followed by LeakyReLU(0.2), widen the channels to ``n_feat``
at ``4 x 4``; a ``4x4`` convolution without bias gives the logit.
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import nn

from gan3d.core.interfaces import Discriminator
from gan3d.core.types import DiscriminatorInput, DiscriminatorOutput

__all__ = ["GiraffeDCDiscriminator"]


class GiraffeDCDiscriminator(Discriminator):
    """``image [B, 3, img_size, img_size]`` in ``[-1, 1]`` -> logits ``[B, 1]``.

    Args:
        img_size: the side of the images it scores (a power of two >= 8).
        n_feat: channels of the last hidden layer (GIRAFFE: 512); layer ``k`` of ``n`` has
            ``n_feat / 2^(n - 1 - k)`` channels.
        input_range: ``'unit'`` maps gan3d's ``[-1, 1]`` images to GIRAFFE's ``[0, 1]`` before the first
            convolution (GIRAFFE trains on ``[0, 1]`` images: ``use_tanh_range: False``, a sigmoid at the
            neural renderer; the convolutions have no bias, so the shift is not absorbed otherwise);
            ``'signed'`` feeds the images as they are.

    Example:
        >>> d = GiraffeDCDiscriminator(img_size=64)
        >>> d(torch.randn(2, 3, 64, 64)).logits.shape
        torch.Size([2, 1])
    """

    def __init__(self, *, img_size: int = 64, n_feat: int = 512, input_range: str = "unit") -> None:
        super().__init__()
        if img_size < 8 or img_size & (img_size - 1):
            raise ValueError(f"img_size must be a power of two >= 8, got {img_size}")
        if input_range not in ("unit", "signed"):
            raise ValueError(f"input_range must be 'unit' or 'signed', got {input_range!r}")
        n_layers = int(math.log2(img_size)) - 2
        widths = [n_feat // 2 ** (n_layers - 1 - k) for k in range(n_layers)]
        if min(widths) < 1:
            raise ValueError(f"n_feat={n_feat} is too small for {n_layers} halvings; "
                             f"use at least {2 ** (n_layers - 1)}")
        self.img_size = img_size
        self.input_range = input_range
        self.blocks = nn.ModuleList(
            nn.Conv2d(cin, cout, 4, stride=2, padding=1, bias=False) for cin, cout in zip([3] + widths[:-1], widths)
        )
        self.conv_out = nn.Conv2d(widths[-1], 1, 4, bias=False)

    def forward(self, x: DiscriminatorInput) -> DiscriminatorOutput:
        """Score ``image [B, 3, img_size, img_size]``; the other inputs are not used (GIRAFFE's D is
        unconditional and single-resolution)."""
        image = x.image
        if image.ndim != 4 or image.shape[1] != 3 or tuple(image.shape[-2:]) != (self.img_size, self.img_size):
            raise ValueError(f"the GIRAFFE discriminator takes [B, 3, {self.img_size}, {self.img_size}] images, got "
                             f"{tuple(image.shape)}; set discriminator.img_size to the output resolution")
        h = (image + 1) / 2 if self.input_range == "unit" else image
        for conv in self.blocks:
            h = F.leaky_relu(conv(h), 0.2)
        return DiscriminatorOutput(logits=self.conv_out(h).reshape(image.shape[0], 1))
