"""GRAF's patch discriminator: a DCGAN-style network of spectrally normalized strided convolutions with
instance normalization, scoring ``K x K`` patches (``K`` = 32 in every released configuration).

Source: autonomousvision/graf graf/models/discriminator.py ``Discriminator`` (built by graf/config.py
``build_models`` with ``nc=3``, ``ndf`` 64, ``imsize = sqrt(ray_sampler.N_samples) = 32``, ``hflip`` from
the config: False except for CUB). Layers, all ``Conv2d(kernel 4, stride 2, padding 1, bias=False)`` under
``torch.nn.utils.spectral_norm`` and followed by ``LeakyReLU(0.2)``; ``InstanceNorm2d`` (no affine
parameters) before the activation of every layer but the first of the 64 and 128 layouts:

====== ============================================================================================
imsize layers before the common tail
====== ============================================================================================
32     ``conv(3, 2 ndf)``, IN
64     ``conv(3, ndf)``; ``conv(ndf, 2 ndf)``, IN
128    ``conv(3, ndf / 2)``; ``conv(ndf / 2, ndf)``, IN; ``conv(ndf, 2 ndf)``, IN
====== ============================================================================================

then ``conv(2 ndf, 4 ndf)``, IN; ``conv(4 ndf, 8 ndf)``, IN; ``conv(8 ndf, 1, 4, stride 1, padding 0)``
-> one logit. The modules sit in one ``nn.Sequential`` called ``main`` at the official indices (the
LeakyReLUs and norms included), so GRAF checkpoints load with the prefix ``discriminator.`` renamed.
PyTorch's default initialisation (GRAF sets none).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gan3d.core.interfaces import Discriminator
from gan3d.core.types import DiscriminatorInput, DiscriminatorOutput

__all__ = ["GRAFPatchDiscriminator", "PATCH_SIZES"]

#: The patch sides graf/models/discriminator.py supports (it asserts them).
PATCH_SIZES = (32, 64, 128)


def _conv(in_channels: int, out_channels: int, stride: int = 2, padding: int = 1) -> nn.Module:
    return nn.utils.spectral_norm(nn.Conv2d(in_channels, out_channels, 4, stride, padding, bias=False))


class GRAFPatchDiscriminator(Discriminator):
    """``image [B, 3, K, K]`` patches in ``[-1, 1]`` -> logits ``[B, 1]``.

    Args:
        imsize: the patch side ``K`` (32, 64 or 128; GRAF's released configs: 32).
        ndf: the base width (GRAF 64).
        nc: image channels (3).
        hflip: flip each input left-right with probability 1/2, drawn from the global RNG as GRAF does
            (its CUB config only).

    Example:
        >>> d = GRAFPatchDiscriminator(imsize=32, ndf=8)
        >>> d(DiscriminatorInput(torch.randn(2, 3, 32, 32))).logits.shape
        torch.Size([2, 1])
    """

    def __init__(self, *, imsize: int = 32, ndf: int = 64, nc: int = 3, hflip: bool = False) -> None:
        super().__init__()
        if imsize not in PATCH_SIZES:
            raise ValueError(f"graf_patch discriminator: imsize must be one of {PATCH_SIZES} (GRAF's layouts), "
                             f"got {imsize}")
        if ndf < 2 or ndf % 2:
            raise ValueError(f"graf_patch discriminator: ndf must be an even number >= 2, got {ndf}")
        self.imsize = imsize
        self.nc = nc
        self.hflip = hflip

        def act() -> nn.Module:
            return nn.LeakyReLU(0.2)

        if imsize == 128:
            layers: list[nn.Module] = [_conv(nc, ndf // 2), act(), _conv(ndf // 2, ndf), nn.InstanceNorm2d(ndf), act(),
                                       _conv(ndf, ndf * 2), nn.InstanceNorm2d(ndf * 2), act()]
        elif imsize == 64:
            layers = [_conv(nc, ndf), act(), _conv(ndf, ndf * 2), nn.InstanceNorm2d(ndf * 2), act()]
        else:
            layers = [_conv(nc, ndf * 2), nn.InstanceNorm2d(ndf * 2), act()]
        layers += [_conv(ndf * 2, ndf * 4), nn.InstanceNorm2d(ndf * 4), act(),
                   _conv(ndf * 4, ndf * 8), nn.InstanceNorm2d(ndf * 8), act(),
                   _conv(ndf * 8, 1, stride=1, padding=0)]
        self.main = nn.Sequential(*layers)

    def forward(self, x: DiscriminatorInput) -> DiscriminatorOutput:
        """Score ``x.image [B, 3, imsize, imsize]``; GRAF's discriminator reads nothing else (unconditional,
        single resolution, blind to the patch's scale and position)."""
        image: Tensor = x.image
        if image.ndim != 4 or tuple(image.shape[1:]) != (self.nc, self.imsize, self.imsize):
            raise ValueError(f"graf_patch discriminator takes [B, {self.nc}, {self.imsize}, {self.imsize}] patches, "
                             f"got {tuple(image.shape)}; set discriminator.imsize to the patch size")
        if self.hflip:  # GRAF flips in every call (its D only runs in training)
            flip = torch.rand(image.shape[0], 1, 1, 1, device=image.device) < 0.5
            image = torch.where(flip, image.flip(3), image)
        return DiscriminatorOutput(logits=self.main(image).reshape(image.shape[0], 1))
