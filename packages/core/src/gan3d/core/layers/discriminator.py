"""The StyleGAN2 discriminator, 'resnet' architecture, with label conditioning by projection
(StyleGAN2, Karras et al. 2020, section 4.1; StyleGAN2-ADA official file
training/networks_stylegan2.py ``DiscriminatorBlock``, ``MinibatchStdLayer``,
``DiscriminatorEpilogue``, ``Discriminator``; EG3D conditions on the 25 camera-label values,
official file training/dual_discriminator.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .equalized import Conv2dLayer, FullyConnectedLayer
from .filtered_resampling import downsample2d, setup_filter
from .mapping import MappingNetwork

__all__ = ["DiscriminatorBlock", "MinibatchStdLayer", "DiscriminatorEpilogue", "StyleGAN2Discriminator"]


class DiscriminatorBlock(nn.Module):
    """One resolution of the discriminator: ``(x, img) -> (x, img)`` at half the resolution.

    Layers: ``fromrgb`` (1x1, first block or ``architecture='skip'``), ``conv0`` (3x3),
    ``conv1`` (3x3, filtered 2x downsampling), ``skip`` (1x1 downsampling, no bias, ``'resnet'``).

    Args:
        in_channels: channels of ``x`` (0 for the first block, which reads the image).
        tmp_channels: channels inside the block; ``out_channels``: of its output.
        first_layer_idx, freeze_layers: layers with index below ``freeze_layers`` are frozen
            (Freeze-D); their weights become buffers.
    """

    def __init__(
        self,
        in_channels: int,
        tmp_channels: int,
        out_channels: int,
        resolution: int,
        img_channels: int,
        *,
        first_layer_idx: int = 0,
        architecture: str = "resnet",
        activation: str = "lrelu",
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: float | None = None,
        freeze_layers: int = 0,
    ) -> None:
        super().__init__()
        if in_channels not in (0, tmp_channels):
            raise ValueError(f"in_channels must be 0 (first block) or tmp_channels={tmp_channels}, got {in_channels}")
        if architecture not in ("orig", "skip", "resnet"):
            raise ValueError(f"architecture must be 'orig', 'skip' or 'resnet', got {architecture!r}")
        self.in_channels = in_channels
        self.resolution = resolution
        self.img_channels = img_channels
        self.architecture = architecture
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.num_layers = 0

        def trainable() -> bool:
            idx = first_layer_idx + self.num_layers
            self.num_layers += 1
            return idx >= freeze_layers

        common = dict(activation=activation, conv_clamp=conv_clamp)
        if in_channels == 0 or architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, 1, trainable=trainable(), **common)
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, 3, trainable=trainable(), **common)
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, 3, down=2, resample_filter=resample_filter,
                                 trainable=trainable(), **common)
        if architecture == "resnet":
            self.skip = Conv2dLayer(tmp_channels, out_channels, 1, bias=False, down=2,
                                    resample_filter=resample_filter, trainable=trainable())

    def forward(self, x: Tensor | None, img: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """``x [B, in_channels, res, res]`` (``None`` in the first block), ``img [B, img_channels,
        res, res]`` -> ``x [B, out_channels, res/2, res/2]``, ``img`` (downsampled for ``'skip'``,
        else ``None``)."""
        if self.in_channels == 0 or self.architecture == "skip":
            if img is None or img.shape[1:] != (self.img_channels, self.resolution, self.resolution):
                raise ValueError(f"DiscriminatorBlock at {self.resolution} expects img "
                                 f"[B, {self.img_channels}, {self.resolution}, {self.resolution}], "
                                 f"got {None if img is None else tuple(img.shape)}")
            y = self.fromrgb(img)
            x = x + y if x is not None else y
            img = downsample2d(img, self.resample_filter) if self.architecture == "skip" else None

        if self.architecture == "resnet":
            # Residual sum with gain sqrt(1/2) on both branches keeps the variance (StyleGAN2 sec. 4.1).
            y = self.skip(x, gain=math.sqrt(0.5))
            x = self.conv0(x)
            x = self.conv1(x, gain=math.sqrt(0.5))
            x = y + x
        else:
            x = self.conv1(self.conv0(x))
        return x, img

    def extra_repr(self) -> str:
        return f"resolution={self.resolution}, architecture={self.architecture}"


class MinibatchStdLayer(nn.Module):
    """Append the minibatch standard deviation as extra channels (ProGAN, Karras et al. 2018,
    section 3; official ``MinibatchStdLayer``).

    The batch is split into groups of ``group_size`` (consecutive samples ``i, i + n, i + 2n, ...``
    form a group, as in the official reshape), the channels into ``num_channels`` parts; each part
    contributes the mean over its channels and pixels of the per-group standard deviation.
    ``x [B, C, H, W]`` -> ``[B, C + num_channels, H, W]``; ``B`` must be divisible by the group size.
    """

    def __init__(self, group_size: int | None = 4, num_channels: int = 1) -> None:
        super().__init__()
        self.group_size = group_size
        self.num_channels = num_channels

    def forward(self, x: Tensor) -> Tensor:
        batch, channels, height, width = x.shape
        group = min(self.group_size, batch) if self.group_size is not None else batch
        if batch % group:
            raise ValueError(f"MinibatchStdLayer: batch size {batch} is not divisible by the group size {group}; "
                             "use a batch size that is a multiple of mbstd_group_size")
        parts = self.num_channels
        y = x.reshape(group, -1, parts, channels // parts, height, width)  # [G, n, F, c, H, W]
        y = y - y.mean(dim=0)
        y = (y.square().mean(dim=0) + 1e-8).sqrt()  # [n, F, c, H, W] std over each group
        y = y.mean(dim=[2, 3, 4]).reshape(-1, parts, 1, 1)  # [n, F, 1, 1]
        y = y.repeat(group, 1, height, width)  # [B, F, H, W]
        return torch.cat([x, y], dim=1)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, num_channels={self.num_channels}"


class DiscriminatorEpilogue(nn.Module):
    """The 4x4 head: minibatch std, 3x3 conv, fully connected, output.

    Layers: ``fromrgb`` (``'skip'`` only), ``mbstd``, ``conv`` (``C + mbstd_num_channels -> C``),
    ``fc`` (``C * res * res -> C``), ``out`` (``C -> 1``, or ``C -> cmap_dim`` when conditioned).
    With conditioning the logit is the projection ``sum(out * cmap) / sqrt(cmap_dim)`` (Miyato &
    Koyama 2018, as in the official epilogue).
    """

    def __init__(
        self,
        in_channels: int,
        cmap_dim: int,
        resolution: int,
        img_channels: int,
        *,
        architecture: str = "resnet",
        mbstd_group_size: int | None = 4,
        mbstd_num_channels: int = 1,
        activation: str = "lrelu",
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.cmap_dim = cmap_dim
        self.resolution = resolution
        self.img_channels = img_channels
        self.architecture = architecture
        if architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, in_channels, 1, activation=activation)
        self.mbstd = MinibatchStdLayer(mbstd_group_size, mbstd_num_channels) if mbstd_num_channels > 0 else None
        self.conv = Conv2dLayer(in_channels + mbstd_num_channels, in_channels, 3, activation=activation,
                                conv_clamp=conv_clamp)
        self.fc = FullyConnectedLayer(in_channels * resolution**2, in_channels, activation=activation)
        self.out = FullyConnectedLayer(in_channels, 1 if cmap_dim == 0 else cmap_dim)

    def forward(self, x: Tensor, img: Tensor | None, cmap: Tensor | None) -> Tensor:
        """``x [B, C, res, res]``, ``img`` (``'skip'`` only), ``cmap [B, cmap_dim]`` -> logits ``[B, 1]``."""
        if x.shape[1:] != (self.in_channels, self.resolution, self.resolution):
            raise ValueError(f"DiscriminatorEpilogue expects x [B, {self.in_channels}, {self.resolution}, "
                             f"{self.resolution}], got {tuple(x.shape)}")
        x = x.to(torch.float32)
        if self.architecture == "skip":
            x = x + self.fromrgb(img.to(torch.float32))
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.out(self.fc(self.conv(x).flatten(1)))
        if self.cmap_dim > 0:
            if cmap is None or cmap.shape[1:] != (self.cmap_dim,):
                raise ValueError(f"a conditional discriminator needs cmap [B, {self.cmap_dim}], "
                                 f"got {None if cmap is None else tuple(cmap.shape)}")
            x = (x * cmap).sum(dim=1, keepdim=True) / math.sqrt(self.cmap_dim)
        return x

    def extra_repr(self) -> str:
        return f"resolution={self.resolution}, architecture={self.architecture}"


class StyleGAN2Discriminator(nn.Module):
    """``img [B, img_channels, R, R]`` and label ``c [B, c_dim]`` -> logits ``[B, 1]``.

    Blocks ``b{R}, ..., b8`` (``DiscriminatorBlock``, channels ``min(channel_base // res,
    channel_max)``), ``mapping`` (a :class:`MappingNetwork` with ``z_dim=0``, ``num_ws=None``, no
    ``w_avg``, mapping the label to ``cmap [B, cmap_dim]``; only when ``c_dim > 0``) and ``b4``
    (:class:`DiscriminatorEpilogue`). EG3D's dual discriminator is this network with
    ``img_channels=6`` (image and upsampled raw image concatenated), ``c_dim=25`` and
    ``conv_clamp=256``.

    Args:
        cmap_dim: label-projection size (``None``: the 4x4 channel count).
        mapping_num_layers: depth of the label mapping network (8, the official default).
        mbstd_group_size, mbstd_num_channels: minibatch standard deviation (4 and 1).
        freeze_layers: Freeze-D, the number of leading layers whose weights are frozen.
        num_fp16_res: accepted for config compatibility and ignored (CPU float32).
    """

    def __init__(
        self,
        c_dim: int,
        img_resolution: int,
        img_channels: int,
        *,
        architecture: str = "resnet",
        channel_base: int = 32768,
        channel_max: int = 512,
        num_fp16_res: int = 0,
        conv_clamp: float | None = 256.0,
        cmap_dim: int | None = None,
        mapping_num_layers: int = 8,
        mbstd_group_size: int | None = 4,
        mbstd_num_channels: int = 1,
        freeze_layers: int = 0,
    ) -> None:
        super().__init__()
        if img_resolution < 8 or img_resolution & (img_resolution - 1):
            raise ValueError(f"img_resolution must be a power of two >= 8, got {img_resolution}")
        del num_fp16_res  # CUDA mixed precision only
        self.c_dim = c_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.block_resolutions = [2**i for i in range(int(math.log2(img_resolution)), 2, -1)]
        channels = {res: min(channel_base // res, channel_max) for res in [*self.block_resolutions, 4]}
        cmap_dim = (channels[4] if cmap_dim is None else cmap_dim) if c_dim > 0 else 0
        self.cmap_dim = cmap_dim

        layer_idx = 0
        for res in self.block_resolutions:
            block = DiscriminatorBlock(
                channels[res] if res < img_resolution else 0, channels[res], channels[res // 2], res, img_channels,
                first_layer_idx=layer_idx, architecture=architecture, conv_clamp=conv_clamp,
                freeze_layers=freeze_layers,
            )
            setattr(self, f"b{res}", block)
            layer_idx += block.num_layers
        if c_dim > 0:
            self.mapping = MappingNetwork(0, c_dim, cmap_dim, None, num_layers=mapping_num_layers, w_avg_beta=None)
        self.b4 = DiscriminatorEpilogue(channels[4], cmap_dim, 4, img_channels, architecture=architecture,
                                        mbstd_group_size=mbstd_group_size, mbstd_num_channels=mbstd_num_channels,
                                        conv_clamp=conv_clamp)

    def forward(self, img: Tensor, c: Tensor | None = None) -> Tensor:
        """``img [B, img_channels, R, R]``, ``c [B, c_dim]`` (conditional only) -> logits ``[B, 1]``."""
        if img.ndim != 4 or img.shape[1:] != (self.img_channels, self.img_resolution, self.img_resolution):
            raise ValueError(f"StyleGAN2Discriminator expects img [B, {self.img_channels}, {self.img_resolution}, "
                             f"{self.img_resolution}], got {tuple(img.shape)}")
        x = None
        for res in self.block_resolutions:
            x, img = getattr(self, f"b{res}")(x, img)
        cmap = self.mapping(None, c) if self.c_dim > 0 else None
        return self.b4(x, img, cmap)

    def extra_repr(self) -> str:
        return f"c_dim={self.c_dim}, img_resolution={self.img_resolution}, img_channels={self.img_channels}"
