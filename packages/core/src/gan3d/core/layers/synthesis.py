"""The StyleGAN2 synthesis network, 'skip' architecture (StyleGAN2, Karras et al. 2020, sections 2
and 4.1, figure 7; StyleGAN2-ADA official file training/networks_stylegan2.py ``SynthesisLayer``,
``ToRGBLayer``, ``SynthesisBlock``, ``SynthesisNetwork``).

A block doubles the resolution with a modulated 3x3 convolution (filtered upsampling), adds a
second modulated 3x3 convolution, and adds its ``toRGB`` output to the upsampled image of the
previous block. Mixed precision (``num_fp16_res``) is a CUDA speed option and is ignored here: all
layers run in float32, as the official code does on CPU.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .bias_act import POSITIVELY_HOMOGENEOUS, activation_gain, bias_act
from .equalized import Conv2dLayer, FullyConnectedLayer
from .filtered_resampling import setup_filter, upsample2d
from .modulated_conv import is_channels_last, modulated_conv2d

__all__ = [
    "SynthesisLayer", "ToRGBLayer", "SynthesisBlock", "SynthesisNetwork", "NOISE_MODES", "PER_SAMPLE_MIN_ACTIVATIONS",
    "MEMORY_FORMATS", "check_memory_format", "use_channels_last", "infer_sample_by_sample",
]

logger = logging.getLogger(__name__)

#: Inference with channels_last activations runs a batch sample by sample when a sample's largest
#: activation has at least this many values: the fused (per-sample weight) convolution then keeps the
#: layout, where a batch takes the unfused form, whose two extra passes over the activations cost more
#: than batching saves once they leave the caches. Measured on 2 cores (docs/benchmarks.md): EG3D at
#: 512 px (33M values in the last super-resolution layer) 1.58 s/img sample by sample vs 1.89 s/img
#: batched at batch 4; the synthetic configuration (0.5M) 10.1 vs 6.7 ms/img, the other way round.
PER_SAMPLE_MIN_ACTIVATIONS = 1 << 22

#: Activation layouts of the synthesis networks (see :func:`use_channels_last`).
MEMORY_FORMATS = ("auto", "channels_last", "contiguous")


def infer_sample_by_sample(channels_last: bool, batch: int, largest_activation: int) -> bool:
    """Whether a channels_last network runs this batch one sample at a time: at inference, batch > 1,
    and a sample's largest activation of at least :data:`PER_SAMPLE_MIN_ACTIVATIONS` values."""
    return (channels_last and batch > 1 and not torch.is_grad_enabled()
            and largest_activation >= PER_SAMPLE_MIN_ACTIVATIONS)


def check_memory_format(memory_format: str) -> str:
    if memory_format not in MEMORY_FORMATS:
        raise ValueError(f"memory_format must be one of {', '.join(MEMORY_FORMATS)}, got {memory_format!r}")
    return memory_format


def use_channels_last(memory_format: str, device: torch.device) -> bool:
    """Whether ``memory_format`` means channels_last activations on ``device``: ``'auto'`` picks them on
    a CPU only (EG3D 512 on 2 CPU cores: 2.55 -> 1.92 s/img; on an H200, batch 4, contiguous ran 88 img/s
    and channels_last 56)."""
    return memory_format == "channels_last" or (memory_format == "auto" and device.type == "cpu")


#: ``random``: fresh noise per call; ``const``: the layer's fixed ``noise_const`` buffer; ``none``.
NOISE_MODES = ("random", "const", "none")


class SynthesisLayer(nn.Module):
    """Modulated 3x3 convolution + per-pixel noise + bias + leaky ReLU.

    Parameters: ``affine`` (``w_dim -> in_channels``, bias init 1), ``weight [O, I, k, k]``,
    ``noise_strength []`` (zero init, only with ``use_noise``), ``bias [O]``; buffer
    ``noise_const [resolution, resolution]``.

    Args:
        resolution: output resolution (input is ``resolution // up``).
        up: 1, or 2 for filtered upsampling.
        conv_clamp: clamp the output to ``[-conv_clamp, conv_clamp]`` (``None``: off).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        *,
        kernel_size: int = 3,
        up: int = 1,
        use_noise: bool = True,
        activation: str = "lrelu",
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.w_dim = w_dim
        self.resolution = resolution
        self.up = up
        self.use_noise = use_noise
        self.activation = activation
        self.conv_clamp = conv_clamp
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.act_gain = activation_gain(activation)

        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        if use_noise:
            self.register_buffer("noise_const", torch.randn(resolution, resolution))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: Tensor, w: Tensor, *, noise_mode: str = "random", fused_modconv: bool = True,
                gain: float = 1.0) -> Tensor:
        """``x [B, I, res/up, res/up]``, ``w [B, w_dim]`` -> ``[B, O, res, res]``."""
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        in_res = self.resolution // self.up
        if x.ndim != 4 or x.shape[1] != self.in_channels or x.shape[2:] != (in_res, in_res):
            raise ValueError(f"SynthesisLayer expects x [B, {self.in_channels}, {in_res}, {in_res}], "
                             f"got {tuple(x.shape)}")
        styles = self.affine(w)

        noise = None
        if self.use_noise and noise_mode == "random":
            noise = torch.randn(x.shape[0], 1, self.resolution, self.resolution, device=x.device,
                                dtype=x.dtype) * self.noise_strength
        elif self.use_noise and noise_mode == "const":
            noise = self.noise_const * self.noise_strength

        # The bias and, for rectifiers, the output gain go into the convolution (no passes of their own).
        total_gain = self.act_gain * gain
        fold = self.activation in POSITIVELY_HOMOGENEOUS and total_gain > 0
        x = modulated_conv2d(x, self.weight, styles, noise=noise, bias=self.bias, gain=total_gain if fold else 1.0,
                             up=self.up, padding=self.padding, resample_filter=self.resample_filter,
                             flip_weight=(self.up == 1), fused=fused_modconv)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, activation=self.activation, gain=1.0 if fold else total_gain, clamp=clamp,
                        may_overwrite=True)

    def extra_repr(self) -> str:
        return (f"in_channels={self.in_channels}, out_channels={self.out_channels}, w_dim={self.w_dim}, "
                f"resolution={self.resolution}, up={self.up}, activation={self.activation}")


class ToRGBLayer(nn.Module):
    """Modulated 1x1 convolution to ``out_channels`` image channels, no demodulation, linear.

    Parameters: ``affine`` (``w_dim -> in_channels``, bias init 1), ``weight [O, I, k, k]``,
    ``bias [O]``. The style carries the equalized-lr gain ``1 / sqrt(I * k * k)``.
    """

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, *, kernel_size: int = 1,
                 conv_clamp: float | None = None) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.w_dim = w_dim
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)

    def forward(self, x: Tensor, w: Tensor, *, fused_modconv: bool = True) -> Tensor:
        """``x [B, I, H, W]``, ``w [B, w_dim]`` -> ``[B, O, H, W]``."""
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, bias=self.bias, demodulate=False, fused=fused_modconv)
        return bias_act(x, clamp=self.conv_clamp, may_overwrite=True)

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, out_channels={self.out_channels}, w_dim={self.w_dim}"


class SynthesisBlock(nn.Module):
    """One resolution of the synthesis network: ``(x, img) -> (x, img)`` at ``resolution``.

    Layers: ``const [O, res, res]`` (first block, ``in_channels == 0``), ``conv0`` (upsampling,
    not in the first block), ``conv1``, ``torgb`` (with ``architecture='skip'`` or in the last
    block), ``skip`` (1x1 upsampling convolution, ``architecture='resnet'``).

    ``up=1`` keeps the resolution: the block then matches EG3D's ``SynthesisBlockNoUp`` (official
    file training/superresolution.py), whose ``conv0`` does not upsample and whose incoming image
    is not upsampled either.

    It consumes ``num_conv + num_torgb`` latents: ``ws [B, num_conv + num_torgb, w_dim]``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        img_channels: int,
        is_last: bool,
        *,
        architecture: str = "skip",
        up: int = 2,
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: float | None = 256.0,
        use_noise: bool = True,
        activation: str = "lrelu",
    ) -> None:
        super().__init__()
        if architecture not in ("orig", "skip", "resnet"):
            raise ValueError(f"architecture must be 'orig', 'skip' or 'resnet', got {architecture!r}")
        if up not in (1, 2):
            raise ValueError(f"up must be 1 or 2, got {up}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.w_dim = w_dim
        self.resolution = resolution
        self.img_channels = img_channels
        self.is_last = is_last
        self.architecture = architecture
        self.up = up
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.num_conv = 0
        self.num_torgb = 0
        layer_kwargs = dict(resample_filter=resample_filter, conv_clamp=conv_clamp, use_noise=use_noise,
                            activation=activation)

        if in_channels == 0:
            self.const = nn.Parameter(torch.randn(out_channels, resolution, resolution))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim, resolution, up=up, **layer_kwargs)
            self.num_conv += 1
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution, **layer_kwargs)
        self.num_conv += 1
        if is_last or architecture == "skip":
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim, conv_clamp=conv_clamp)
            self.num_torgb += 1
        if in_channels != 0 and architecture == "resnet":
            self.skip = Conv2dLayer(in_channels, out_channels, 1, bias=False, up=up, resample_filter=resample_filter)

    def forward(
        self,
        x: Tensor | None,
        img: Tensor | None,
        ws: Tensor,
        *,
        noise_mode: str = "random",
        fused_modconv: bool = True,
    ) -> tuple[Tensor, Tensor | None]:
        """``x [B, in_channels, res/up, res/up]`` (``None`` for the first block), ``img
        [B, img_channels, res/up, res/up]`` or ``None``, ``ws [B, num_conv + num_torgb, w_dim]``
        -> ``x [B, out_channels, res, res]``, ``img [B, img_channels, res, res]`` (or ``None``)."""
        num_ws = self.num_conv + self.num_torgb
        if ws.ndim != 3 or ws.shape[1] != num_ws or ws.shape[2] != self.w_dim:
            raise ValueError(f"SynthesisBlock at {self.resolution} expects ws [B, {num_ws}, {self.w_dim}], "
                             f"got {tuple(ws.shape)}")
        w_iter = iter(ws.unbind(dim=1))
        layer_kwargs = dict(noise_mode=noise_mode, fused_modconv=fused_modconv)

        if self.in_channels == 0:
            x = self.const.unsqueeze(0).repeat(ws.shape[0], 1, 1, 1)
            x = self.conv1(x, next(w_iter), **layer_kwargs)
        elif self.architecture == "resnet":
            # Residual branches are summed with gain sqrt(1/2) to keep the variance (StyleGAN2 sec. 4.1).
            y = self.skip(x, gain=math.sqrt(0.5))
            x = self.conv0(x, next(w_iter), **layer_kwargs)
            x = self.conv1(x, next(w_iter), gain=math.sqrt(0.5), **layer_kwargs)
            x = y + x
        else:
            x = self.conv0(x, next(w_iter), **layer_kwargs)
            x = self.conv1(x, next(w_iter), **layer_kwargs)

        if img is not None and self.up > 1:
            img = upsample2d(img, self.resample_filter, up=self.up)
        if self.is_last or self.architecture == "skip":
            y = self.torgb(x, next(w_iter), fused_modconv=fused_modconv).to(torch.float32)
            img = y + img if img is not None else y  # y first: the sum keeps y's (channels_last) layout
        return x, img

    def extra_repr(self) -> str:
        return f"resolution={self.resolution}, architecture={self.architecture}, up={self.up}"


class SynthesisNetwork(nn.Module):
    """``ws [B, num_ws, w_dim]`` -> ``img [B, img_channels, img_resolution, img_resolution]``.

    Blocks ``b4, b8, ..., b{img_resolution}`` with ``min(channel_base // res, channel_max)``
    channels. ``num_ws`` = one per convolution plus the last toRGB (the other toRGBs share the
    latent of the next block's first convolution, as in the official code).

    EG3D's tri-plane backbone is ``SynthesisNetwork(w_dim=512, img_resolution=256,
    img_channels=96)``, with ``conv_clamp=None`` (its generator runs with no fp16 layers).

    Args:
        channel_base, channel_max: channel schedule (32768 and 512 in StyleGAN2 at 1024 px and EG3D).
        num_fp16_res: accepted for config compatibility and ignored (CPU float32).
        architecture, conv_clamp, use_noise, activation, resample_filter: passed to every block.
        memory_format: layout of the activations, ``'channels_last'``, ``'contiguous'`` or ``'auto'``
            (channels_last on a CPU, where oneDNN's transposed convolutions run ~3x faster in it;
            contiguous on CUDA, where it measured faster; see docs/benchmarks.md). Same values.
    """

    def __init__(
        self,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        *,
        channel_base: int = 32768,
        channel_max: int = 512,
        num_fp16_res: int = 0,
        architecture: str = "skip",
        conv_clamp: float | None = 256.0,
        use_noise: bool = True,
        activation: str = "lrelu",
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        memory_format: str = "auto",
    ) -> None:
        super().__init__()
        if img_resolution < 4 or img_resolution & (img_resolution - 1):
            raise ValueError(f"img_resolution must be a power of two >= 4, got {img_resolution}")
        if num_fp16_res:
            logger.debug("SynthesisNetwork ignores num_fp16_res=%d: all layers run in float32", num_fp16_res)
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.memory_format = check_memory_format(memory_format)
        self.block_resolutions = [2**i for i in range(2, int(math.log2(img_resolution)) + 1)]
        channels = {res: min(channel_base // res, channel_max) for res in self.block_resolutions}

        self.largest_activation = channels[img_resolution] * img_resolution**2  # values per sample
        self.num_ws = 0
        for res in self.block_resolutions:
            is_last = res == img_resolution
            block = SynthesisBlock(
                channels[res // 2] if res > 4 else 0, channels[res], w_dim, res, img_channels, is_last,
                architecture=architecture, conv_clamp=conv_clamp, use_noise=use_noise, activation=activation,
                resample_filter=resample_filter,
            )
            self.num_ws += block.num_conv + (block.num_torgb if is_last else 0)
            setattr(self, f"b{res}", block)

    def forward(self, ws: Tensor, *, noise_mode: str = "random", fused_modconv: bool = True) -> Tensor:
        """``ws [B, num_ws, w_dim]`` -> ``[B, img_channels, img_resolution, img_resolution]``."""
        if ws.ndim != 3 or ws.shape[1] != self.num_ws or ws.shape[2] != self.w_dim:
            raise ValueError(f"SynthesisNetwork expects ws [B, {self.num_ws}, {self.w_dim}], got {tuple(ws.shape)}")
        ws = ws.to(torch.float32)
        channels_last = use_channels_last(self.memory_format, ws.device)
        if infer_sample_by_sample(channels_last, ws.shape[0], self.largest_activation):
            return torch.cat([self(w, noise_mode=noise_mode, fused_modconv=fused_modconv) for w in ws.split(1)])
        x = img = None
        w_idx = 0
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            # Consecutive blocks overlap by one latent: a block's toRGB uses the next block's first.
            block_ws = ws.narrow(1, w_idx, block.num_conv + block.num_torgb)
            w_idx += block.num_conv
            x, img = block(x, img, block_ws, noise_mode=noise_mode, fused_modconv=fused_modconv)
            if channels_last and not is_channels_last(x):  # once, after the first block
                x = x.contiguous(memory_format=torch.channels_last)
        return img

    def extra_repr(self) -> str:
        return (f"w_dim={self.w_dim}, num_ws={self.num_ws}, img_resolution={self.img_resolution}, "
                f"img_channels={self.img_channels}")
