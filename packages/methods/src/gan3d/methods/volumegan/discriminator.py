"""VolumeGAN's discriminator: StyleGAN2's residual discriminator with a fromRGB layer at every
resolution, grown progressively with the generator (registered as discriminator ``volumegan``).

Source: genforce/volumegan ``models/volumegan_discriminator.py`` ``VolumeGANDiscriminator`` (identical
in qiuyu96/Carver), FFHQ settings from ``configs/volumegan_ffhq_config.py`` (``init_res`` 4,
``architecture`` resnet, ``fmaps_base`` 32768, ``fmaps_max`` 512, ``mbstd_groups`` 4, no label)::

    x = fromrgb_R(image)
    for res = R, R/2, ..., 8  (level cur = log2(R / res)):
        if cur <= lod < cur + 1:      x = fromrgb_res(image)                         (enter here)
        elif cur - 1 < lod < cur:     x = a * fromrgb_res(image) + (1 - a) * x,  a = lod - floor(lod)
        if lod < cur + 1:             x = block_res(x)                               (resnet block)
        if lod > cur:                 image = avg_pool2d(image, 2)
    logits = epilogue(x)              (minibatch std, 3x3 conv, fc, out)

The input is always the full ``img_resolution`` image (the generator's low-resolution phases are
nearest-upsampled to it); the level of detail ``lod`` (buffer) box-downsamples it to the resolution
in training. Blocks are gan3d's StyleGAN2 :class:`~gan3d.core.layers.DiscriminatorBlock` (``conv0``
3x3, ``conv1`` 3x3 with filtered 2x downsampling, ``skip`` 1x1, both branches times sqrt(1/2)) and
:class:`~gan3d.core.layers.DiscriminatorEpilogue`; official names ``input{i}`` -> ``fromrgb{res}``,
``layer{2i}``/``layer{2i+1}``/``residual{i}`` -> ``b{res}.conv0``/``conv1``/``skip``, ``layer{2n}``,
``layer{2n+1}``, ``output`` -> ``b4.conv``, ``b4.fc``, ``b4.out``.

The official network also builds a fromRGB layer at 4 px (``input{n}``) that its forward never
reads; it is kept (``fromrgb4``) so that parameter totals and state dicts match, and it gets no
gradient.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from gan3d.core.interfaces import Discriminator
from gan3d.core.layers import Conv2dLayer, DiscriminatorBlock, DiscriminatorEpilogue
from gan3d.core.types import DiscriminatorInput, DiscriminatorOutput
from gan3d.renderers.level_of_detail import LevelOfDetailSchedule

__all__ = ["VolumeGANDiscriminator"]


class VolumeGANDiscriminator(Discriminator):
    """``image [B, 3, img_resolution, img_resolution]`` -> logits ``[B, 1]`` at level of detail ``lod``.

    Args:
        img_resolution: side of the input images (256).
        img_channels: 3.
        channel_base, channel_max: ``nf(res) = min(channel_base // res, channel_max)`` (32768, 512).
        conv_clamp: output clamp of the convolutions (the FFHQ demo's mixed precision sets 256).
        mbstd_group_size, mbstd_num_channels: minibatch standard deviation (4, 1).
        progressive, init_lod, lod_training_kimg, lod_transition_kimg, minibatch_repeats: the level
            of detail schedule, which must equal the generator's (VolumeGAN: on, 3 (32 -> 256 px), 750,
            750, 4; the runner writes one ``lod`` into both networks).
        resample_filter: low-pass filter of the strided convolutions ([1, 3, 3, 1]).
    """

    def __init__(
        self,
        *,
        img_resolution: int = 256,
        img_channels: int = 3,
        channel_base: int = 32768,
        channel_max: int = 512,
        conv_clamp: float | None = None,
        mbstd_group_size: int = 4,
        mbstd_num_channels: int = 1,
        progressive: bool = True,
        init_lod: float = 3.0,
        lod_training_kimg: float = 750.0,
        lod_transition_kimg: float = 750.0,
        minibatch_repeats: int = 4,
        resample_filter: Sequence[float] = (1, 3, 3, 1),
    ) -> None:
        super().__init__()
        what = "discriminator 'volumegan'"
        if img_resolution < 8 or img_resolution & (img_resolution - 1):
            raise ValueError(f"{what}: img_resolution must be a power of two >= 8, got {img_resolution}")
        if init_lod > math.log2(img_resolution) - 3:
            raise ValueError(f"{what}: init_lod={init_lod} would start below 8 px at img_resolution {img_resolution}")
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.block_resolutions = [2**i for i in range(int(math.log2(img_resolution)), 2, -1)]
        nf = {res: min(channel_base // res, channel_max) for res in [*self.block_resolutions, 4]}
        self.schedule = LevelOfDetailSchedule(init_lod=init_lod, training_kimg=lod_training_kimg,
                                              transition_kimg=lod_transition_kimg,
                                              minibatch_repeats=minibatch_repeats, enabled=progressive)
        self.register_buffer("lod", torch.tensor(self.schedule.initial()))
        for res in [*self.block_resolutions, 4]:
            setattr(self, f"fromrgb{res}", Conv2dLayer(img_channels, nf[res], 1, activation="lrelu",
                                                       conv_clamp=conv_clamp))
        for res in self.block_resolutions:
            setattr(self, f"b{res}", DiscriminatorBlock(nf[res], nf[res], nf[res // 2], res, img_channels,
                                                        architecture="resnet", conv_clamp=conv_clamp,
                                                        resample_filter=resample_filter))
        self.b4 = DiscriminatorEpilogue(nf[4], 0, 4, img_channels, architecture="resnet",
                                        mbstd_group_size=mbstd_group_size, mbstd_num_channels=mbstd_num_channels,
                                        conv_clamp=conv_clamp)

    def set_training_step(self, step: int, kimg: float) -> None:
        """Move the level of detail along the schedule (VolumeGAN ``ProgressScheduler``)."""
        self.lod.fill_(self.schedule.update(step, kimg, float(self.lod)))

    def score(self, image: Tensor, *, lod: float | None = None) -> Tensor:
        """Logits ``[B, 1]`` of ``image [B, 3, R, R]`` at ``lod`` (default: the ``lod`` buffer)."""
        side = self.img_resolution
        if image.ndim != 4 or image.shape[1:] != (self.img_channels, side, side):
            raise ValueError(f"discriminator 'volumegan' expects images [B, {self.img_channels}, {side}, {side}] "
                             f"(always the full resolution; the level of detail downsamples), got "
                             f"{tuple(image.shape)}")
        lod = float(self.lod) if lod is None else float(lod)
        if not 0.0 <= lod <= len(self.block_resolutions) - 1:
            raise ValueError(f"discriminator 'volumegan': lod must lie in [0, {len(self.block_resolutions) - 1}], "
                             f"got {lod}")
        image = image.to(torch.float32)
        x = None
        for level, res in enumerate(self.block_resolutions):
            if level <= lod < level + 1:
                x = getattr(self, f"fromrgb{res}")(image)
            elif level - 1 < lod < level:
                fade = lod - math.floor(lod)
                x = getattr(self, f"fromrgb{res}")(image) * fade + x * (1 - fade)
            if lod < level + 1:
                x, _ = getattr(self, f"b{res}")(x, None)
            if lod > level:
                image = F.avg_pool2d(image, kernel_size=2, stride=2)
        return self.b4(x, None, None)

    def forward(self, x: DiscriminatorInput) -> DiscriminatorOutput:
        """Logits of ``x.image`` at the current level of detail. Unconditional: the raw image and the
        camera are not read; ``x.alpha`` (a stage fade) must be 1, since this network fades by its level
        of detail."""
        if not isinstance(x, DiscriminatorInput):
            raise TypeError(f"discriminator 'volumegan' takes a DiscriminatorInput, got {type(x).__name__}")
        if x.alpha != 1.0:
            raise ValueError(f"discriminator 'volumegan' fades resolutions in by its level of detail (lod), not by "
                             f"a stage alpha; got alpha={x.alpha}: remove fade_steps from the training stages")
        return DiscriminatorOutput(logits=self.score(x.image))
