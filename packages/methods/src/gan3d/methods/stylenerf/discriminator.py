"""StyleNeRF's discriminator (``discriminator`` ``stylenerf``): the StyleGAN2 'skip' discriminator that
reads the generator's image at whatever resolution progressive growing has reached.

Facts from facebookresearch/StyleNeRF ``training/stylenerf.py`` (``Discriminator``) and
``training/networks.py`` (``DiscriminatorBlock``, ``DiscriminatorEpilogue``), settings from
``conf/model/stylenerf_ffhq.yaml`` (``D_kwargs``) and ``conf/spec/paper*.yaml``:

* blocks ``b{res}`` from the full resolution down to 8, then the 4x4 epilogue ``b4``; channels
  ``min(channel_base // res, channel_max)`` with ``channel_base = spec.fmaps * 32768`` (paper256: 16384;
  paper512/1024: 32768) and ``channel_max 512``; **architecture 'skip'** (every block reads the
  downsampled image through its own ``fromrgb``), ``conv_clamp 256``, minibatch standard deviation with
  group ``spec.mbstd`` (8, 8, 4) and 1 channel; unconditional (the FFHQ runs have ``cond=False``:
  ``c_dim = 0``, no camera prediction).
* ``progressive: True, lowres_head: 32``. As the official code runs, the discriminator never fades between
  resolutions: ``StyleGAN2Loss.set_alpha`` hands it an integer where ``get_block_resolutions`` unpacks a
  4-tuple inside a ``try``, and the fallback sets the fade weight to 0 (qiuyu96/Carver's port runs the
  same fallback). So the discriminator simply starts at the block of its input's resolution (``lowres_head``
  32 before the fade-in, the generator's current resolution during it, the full one after). Below full
  resolution the official forward first sets ``x = b{res}.fromrgb(img)`` and the skip block then adds its
  ``fromrgb(img)`` again: the first block sees ``2 * fromrgb(img)``; at full resolution ``x`` starts empty and
  ``fromrgb`` counts once. That is reproduced here.

Parameter names are the official ones (``b{res}.fromrgb``, ``conv0``, ``conv1``; ``b4.fromrgb``, ``conv``,
``fc``, ``out``): an official ``D`` state dict loads as it is. paper256: 23,052,353 parameters; paper512:
27,774,017; paper1024: 27,801,889.
"""

from __future__ import annotations

import math

from torch import Tensor

from gan3d.core.interfaces import Discriminator
from gan3d.core.layers import DiscriminatorBlock, DiscriminatorEpilogue
from gan3d.core.types import DiscriminatorInput, DiscriminatorOutput

__all__ = ["StyleNeRFDiscriminator"]


class StyleNeRFDiscriminator(Discriminator):
    """``image [B, 3, r, r]`` with ``lowres_head <= r <= img_resolution`` -> logits ``[B, 1]``.

    Args:
        img_resolution: full image size (256, 512, 1024).
        lowres_head: the smallest input (the render resolution, 32).
        channel_base, channel_max: widths ``min(channel_base // res, channel_max)``.
        conv_clamp: output clamp of the convolutions (256).
        mbstd_group_size, mbstd_num_channels: minibatch standard deviation (``spec.mbstd``, 1).
        img_channels: image channels (3).

    Example:
        >>> D = StyleNeRFDiscriminator(img_resolution=32, lowres_head=8, channel_base=256, channel_max=16)
        >>> D(DiscriminatorInput(torch.randn(4, 3, 16, 16))).logits.shape
        torch.Size([4, 1])
    """

    def __init__(self, *, img_resolution: int = 256, lowres_head: int = 32, channel_base: int = 16384,
                 channel_max: int = 512, conv_clamp: float | None = 256.0, mbstd_group_size: int = 8,
                 mbstd_num_channels: int = 1, img_channels: int = 3) -> None:
        super().__init__()
        for name, res in (("img_resolution", img_resolution), ("lowres_head", lowres_head)):
            if res < 8 or res & (res - 1):
                raise ValueError(f"stylenerf discriminator: {name} must be a power of two >= 8, got {res}")
        if lowres_head > img_resolution:
            raise ValueError(f"stylenerf discriminator: lowres_head ({lowres_head}) must not exceed "
                             f"img_resolution ({img_resolution})")
        self.img_resolution = img_resolution
        self.lowres_head = lowres_head
        self.img_channels = img_channels
        self.block_resolutions = [2**i for i in range(int(math.log2(img_resolution)), 2, -1)]
        channels = {res: min(channel_base // res, channel_max) for res in [*self.block_resolutions, 4]}
        layer_idx = 0
        for res in self.block_resolutions:
            block = DiscriminatorBlock(channels[res] if res < img_resolution else 0, channels[res],
                                       channels[res // 2], res, img_channels, first_layer_idx=layer_idx,
                                       architecture="skip", conv_clamp=conv_clamp)
            setattr(self, f"b{res}", block)
            layer_idx += block.num_layers
        self.b4 = DiscriminatorEpilogue(channels[4], 0, 4, img_channels, architecture="skip",
                                        mbstd_group_size=mbstd_group_size, mbstd_num_channels=mbstd_num_channels,
                                        conv_clamp=conv_clamp)

    def forward(self, x: DiscriminatorInput) -> DiscriminatorOutput:
        """Score ``x.image [B, 3, r, r]`` (:meth:`score`); the other inputs are unused (unconditional, and the
        official discriminator's fade-in never takes effect, see the module docstring)."""
        return DiscriminatorOutput(logits=self.score(x.image))

    def score(self, image: Tensor) -> Tensor:
        """Logits ``[B, 1]`` of ``image [B, 3, r, r]``, starting at block ``b{r}``."""
        r = image.shape[-1]
        if (image.ndim != 4 or image.shape[1] != self.img_channels or image.shape[-2] != r
                or r not in self.block_resolutions or r < self.lowres_head):
            raise ValueError(f"stylenerf discriminator expects images [B, {self.img_channels}, r, r] with r a power "
                             f"of two from {self.lowres_head} to {self.img_resolution}; got {tuple(image.shape)}")
        first = getattr(self, f"b{r}")
        x = None if r == self.img_resolution else first.fromrgb(image)
        img = image
        for res in self.block_resolutions:
            if res <= r:
                x, img = getattr(self, f"b{res}")(x, img)
        return self.b4(x, img, None)

    def extra_repr(self) -> str:
        return f"img_resolution={self.img_resolution}, lowres_head={self.lowres_head}"
