"""StyleNeRF's upsampler (registered as ``upsampler`` ``stylenerf``): StyleGAN2 'skip' blocks of modulated
1x1 convolutions that grow the volume-rendered feature image to the output resolution, progressively.

Facts from facebookresearch/StyleNeRF ``training/stylenerf.py`` (``Upsampler``,
``NeRFSynthesisNetwork.forward`` and ``get_current_resolution``) and ``training/networks.py``
(``SynthesisBlock``, ``SynthesisLayer``), FFHQ settings from ``conf/model/stylenerf_ffhq.yaml``
(``synthesis_kwargs``: ``channel_base 1``, ``channel_max 1024``, ``conv_clamp 256``, ``kernel_size 1``,
``architecture skip``, ``upsample_mode nn_cat``, ``use_noise False``, ``magnitude_ema_beta 0.999``,
``resolution_vol 32``, ``rgb_out_dim 256``; the AFHQ model uses ``upsample_mode pixelshuffle``):

* the input is the rendered ``[rgb (3), features (C)]`` image at ``in_resolution`` (32): ``features`` enter
  the first block, ``rgb`` is the skip image the blocks' ``torgb`` outputs are added to (``split_feat``);
* one block per doubling up to ``image_resolution``, ``b{res}`` with ``min(channel_base // res,
  channel_max)`` channels: ``conv0`` (upsamples), ``conv1``, ``torgb`` (StyleGAN2 'skip': the incoming
  image is upsampled by ``upfirdn2d.upsample2d`` with the ``[1, 3, 3, 1]`` filter and the block's
  ``torgb`` output added); ``num_ws = 2 * blocks + 1``, a block's ``torgb`` sharing the next block's first
  row (``Upsampler.forward_ws_split``);
* every convolution is a modulated, demodulated **1x1** convolution (``kernel_size: 1`` reaches the
  layers) with no noise, bias, leaky ReLU (gain ``sqrt(2)``) and output clamp 256; its input is first
  divided by the square root of a running mean of its squared magnitude (``magnitude_ema_beta``:
  ``w_avg <- lerp(mean(x^2), w_avg, 0.999)`` in training, buffer initialised to 1, ``x * rsqrt(w_avg)``);
* ``conv0`` upsamples after its convolution, ``'nn_cat'``: ``xa`` = nearest-neighbour 2x, ``xb`` = each
  sub-pixel the mean of the two 4-neighbours at its corner (top-left ``(left + up) / 2``, top-right
  ``(up + right) / 2``, bottom-left ``(left + down) / 2``, bottom-right ``(right + down) / 2``, zero outside),
  ``x = xa + adapter([xa, xb])`` with ``adapter = 1x1 conv (2C -> C/4, lrelu), 1x1 conv (C/4 -> C)``
  (equalized ``Conv2dLayer``s), then the ``[1, 3, 3, 1]`` low-pass ``filter2d``; ``'pixelshuffle'`` (AFHQ):
  ``x = nearest(x) + pixel_shuffle(adapter(x))`` with ``adapter = (C -> C/4, lrelu), (C/4 -> 4C)``, then
  the same filter;
* progressive growing: with ``n`` blocks and fade-in ``alpha`` (``StyleGAN2Loss.set_alpha``:
  ``clamp((kimg - 500) / (5000 - 500), 0, 1)`` for FFHQ, ``loss_kwargs.curriculum: [500, 5000]``),
  ``alpha = 0`` returns the rendered RGB itself at ``in_resolution``; ``0 < alpha < 1`` runs the first
  ``floor(alpha n) + 1`` blocks and returns ``(1 - a) * up(previous) + a * last`` with ``a = frac(alpha n)``,
  ``previous`` the image of the block before (or the rendered RGB), ``up`` bilinear 2x
  (``align_corners=False``, ``dnnlib/geometry.py upsample``); ``alpha = 1`` runs every block. As in the
  official generator, the fade-in is a buffer of the network (``NeRFSynthesisNetwork.alpha``), set from the
  images shown (:meth:`StyleNeRFUpsampler.set_training_step`) and copied to the EMA generator with the other
  buffers, so samples and evaluations of a checkpoint render at its current resolution.

:meth:`StyleNeRFUpsampler.pixelwise` is the per-pixel path of the NeRF path regularization
(``forward_network(..., skip_up=True)``): the same blocks with no upsampling (so, with 1x1 kernels, every
pixel independently: no adapter, no filter). It is NOT blended across levels during the fade-in: with no
upsampling, every block adds its ``torgb`` output to the incoming image in place (``img.add_(y)`` in
``SynthesisBlock.forward``), so all the per-level images the official forward keeps are one tensor and its
blend ``rand_imgs[-2] * (1 - a) + img_rand * a`` returns the sum over the active blocks unchanged.

Parameter names follow the official blocks (``b{res}.conv0.{affine,weight,bias,adapter.0,adapter.1}``,
``b{res}.conv1``, ``b{res}.torgb``, buffer ``w_avg``), so an official ``synthesis.b{res}.`` state dict loads
by renaming that prefix. FFHQ 256: 2,347,241 parameters (b64 1,249,667, b128 772,675, b256 324,899).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan3d.core.interfaces import Upsampler
from gan3d.core.layers import Conv2dLayer, FullyConnectedLayer, ToRGBLayer, bias_act, modulated_conv2d
from gan3d.core.layers.filtered_resampling import filter2d, setup_filter, upsample2d

__all__ = ["StyleNeRFUpsampler", "StyleNeRFSynthesisLayer", "StyleNeRFSynthesisBlock", "UPSAMPLE_MODES",
           "nn_cat_neighbours", "progressive_levels", "fade_in_alpha"]

#: ``conv0``'s learned upsampling: ``nn_cat`` (StyleNeRF FFHQ), ``pixelshuffle`` (AFHQ).
UPSAMPLE_MODES = ("nn_cat", "pixelshuffle")


def nn_cat_neighbours(x: Tensor) -> Tensor:
    """``x [B, C, H, W]`` -> ``[B, C, 2H, 2W]``: each output sub-pixel is the mean of the two 4-neighbours of
    its input pixel on its side (top-left ``(left + up) / 2``, top-right ``(up + right) / 2``, bottom-left
    ``(left + down) / 2``, bottom-right ``(right + down) / 2``), zero beyond the border (StyleNeRF
    ``SynthesisLayer`` ``'nn_cat'``, ``xb``)."""
    padded = F.pad(x, [1, 1, 1, 1])
    left, right = padded[..., 1:-1, :-2], padded[..., 1:-1, 2:]
    up, down = padded[..., :-2, 1:-1], padded[..., 2:, 1:-1]
    corners = torch.stack([left + up, up + right, left + down, right + down], dim=2) / 2  # [B, C, 4, H, W]
    return F.pixel_shuffle(corners.flatten(1, 2), 2)


def fade_in_alpha(kimg: float, start_kimg: float, end_kimg: float) -> float:
    """The fade-in after ``kimg`` thousand real images: ``clamp((kimg - start) / (end - start), 0, 1)``
    (``StyleGAN2Loss.set_alpha``: ``min(1, max(0, (steps / 1e3 - start) / (end - start)))``).

    Example:
        >>> fade_in_alpha(2750.0, 500.0, 5000.0)
        0.5
    """
    if not end_kimg > start_kimg:
        raise ValueError(f"fade-in needs end_kimg > start_kimg, got {start_kimg} and {end_kimg}")
    return min(1.0, max(0.0, (kimg - start_kimg) / (end_kimg - start_kimg)))


def progressive_levels(alpha: float, num_blocks: int) -> tuple[int, float | None]:
    """``(blocks to run, blend weight)`` at fade-in ``alpha`` (StyleNeRF ``get_current_resolution`` and the
    forward's ``rgb_interp``): ``(0, None)`` at ``alpha <= 0``, ``(n, None)`` at ``alpha >= 1``, else
    ``(floor(alpha n) + 1, frac(alpha n))``.

    Example:
        >>> progressive_levels(0.5, 3)
        (2, 0.5)
    """
    if alpha <= 0 or num_blocks == 0:
        return 0, None
    if alpha >= 1:
        return num_blocks, None
    frac, whole = math.modf(alpha * num_blocks)
    return int(whole) + 1, frac


class StyleNeRFSynthesisLayer(nn.Module):
    """Input-magnitude normalization, modulated 1x1 convolution, optional learned 2x upsampling, bias,
    leaky ReLU and clamp (StyleNeRF's ``SynthesisLayer`` with ``kernel_size=1``, ``use_noise=False``).

    Parameters: ``affine`` (``w_dim -> in_channels``, bias init 1), ``weight [O, I, 1, 1]``, ``bias [O]``,
    ``adapter`` (two 1x1 ``Conv2dLayer``s, when ``up == 2``); buffer ``w_avg`` (when
    ``magnitude_ema_beta > 0``).
    """

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, *, up: int = 1,
                 upsample_mode: str = "nn_cat", magnitude_ema_beta: float = 0.999,
                 conv_clamp: float | None = 256.0, resample_filter: Sequence[float] = (1, 3, 3, 1)) -> None:
        super().__init__()
        if up not in (1, 2):
            raise ValueError(f"up must be 1 or 2, got {up}")
        if upsample_mode not in UPSAMPLE_MODES:
            raise ValueError(f"upsample_mode must be one of {', '.join(UPSAMPLE_MODES)}, got {upsample_mode!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.up = up
        self.upsample_mode = upsample_mode
        self.magnitude_ema_beta = magnitude_ema_beta
        self.conv_clamp = conv_clamp
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        if up == 2 and upsample_mode == "nn_cat":
            self.adapter = nn.Sequential(Conv2dLayer(out_channels * 2, out_channels // 4, 1, activation="lrelu"),
                                         Conv2dLayer(out_channels // 4, out_channels, 1))
        elif up == 2:
            self.adapter = nn.Sequential(Conv2dLayer(out_channels, out_channels // 4, 1, activation="lrelu"),
                                         Conv2dLayer(out_channels // 4, out_channels * 4, 1))
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        if magnitude_ema_beta > 0:
            self.register_buffer("w_avg", torch.ones([]))

    def forward(self, x: Tensor, w: Tensor, *, skip_up: bool = False) -> Tensor:
        """``x [B, I, H, W]``, ``w [B, w_dim]`` -> ``[B, O, H * up, W * up]`` (``[B, O, H, W]`` with
        ``skip_up``)."""
        if self.magnitude_ema_beta > 0:
            if self.training:
                magnitude = x.detach().to(torch.float32).square().mean()
                self.w_avg.copy_(magnitude.lerp(self.w_avg, self.magnitude_ema_beta))
            x = x * self.w_avg.rsqrt()
        x = modulated_conv2d(x, self.weight, self.affine(w))
        if self.up == 2 and not skip_up:
            size = (x.shape[-2] * 2, x.shape[-1] * 2)
            nearest = F.interpolate(x, size=size, mode="nearest")
            if self.upsample_mode == "nn_cat":
                x = nearest + self.adapter(torch.cat([nearest, nn_cat_neighbours(x)], dim=1))
            else:
                x = nearest + F.pixel_shuffle(self.adapter(x), 2)
            x = filter2d(x, self.resample_filter)
        return bias_act(x, self.bias, activation="lrelu", clamp=self.conv_clamp)

    def extra_repr(self) -> str:
        return (f"in_channels={self.in_channels}, out_channels={self.out_channels}, up={self.up}, "
                f"upsample_mode={self.upsample_mode!r}, magnitude_ema_beta={self.magnitude_ema_beta}")


class StyleNeRFSynthesisBlock(nn.Module):
    """``conv0`` (2x), ``conv1`` and ``torgb`` at ``resolution``: ``(x, img, ws [B, 3, w_dim]) -> (x, img)``.

    ``skip_up`` keeps the resolution (the per-pixel path of the NeRF path regularization).
    """

    num_conv = 2
    num_torgb = 1

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, *, img_channels: int = 3,
                 upsample_mode: str = "nn_cat", magnitude_ema_beta: float = 0.999,
                 conv_clamp: float | None = 256.0, resample_filter: Sequence[float] = (1, 3, 3, 1)) -> None:
        super().__init__()
        self.resolution = resolution
        self.w_dim = w_dim
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        common = dict(magnitude_ema_beta=magnitude_ema_beta, conv_clamp=conv_clamp, resample_filter=resample_filter)
        self.conv0 = StyleNeRFSynthesisLayer(in_channels, out_channels, w_dim, up=2, upsample_mode=upsample_mode,
                                             **common)
        self.conv1 = StyleNeRFSynthesisLayer(out_channels, out_channels, w_dim, **common)
        self.torgb = ToRGBLayer(out_channels, img_channels, w_dim, conv_clamp=conv_clamp)

    def forward(self, x: Tensor, img: Tensor, ws: Tensor, *, skip_up: bool = False) -> tuple[Tensor, Tensor]:
        x = self.conv0(x, ws[:, 0], skip_up=skip_up)
        x = self.conv1(x, ws[:, 1])
        if not skip_up:
            img = upsample2d(img, self.resample_filter)
        return x, img + self.torgb(x, ws[:, 2]).to(torch.float32)

    def extra_repr(self) -> str:
        return f"resolution={self.resolution}"


class StyleNeRFUpsampler(Upsampler):
    """``features [B, 3 + C, h, h]``, ``ws [B, num_ws, w_dim]`` -> ``image [B, 3, R, R]`` (``R`` from ``alpha``).

    Args:
        in_channels: channels of the rendered image, RGB first (StyleNeRF: 3 + ``rgb_out_dim`` 256 = 259).
        in_resolution: render resolution ``h`` (``resolution_vol`` 32).
        image_resolution: output side at the end of the fade-in (256, 512, 1024).
        w_dim: latent width (512).
        channel_base, channel_max: ``min(channel_base // res, channel_max)`` channels per block (StyleNeRF's
            generator: ``channel_base 1`` = 32768, ``channel_max 1024``).
        upsample_mode: one of :data:`UPSAMPLE_MODES`.
        magnitude_ema_beta: decay of the input-magnitude running mean (0.999; 0 turns it off).
        conv_clamp: output clamp of every layer (256).
        fade_start_kimg, fade_end_kimg: the progressive fade-in runs from 0 to 1 between these many thousand
            real images (StyleNeRF ``curriculum``: 500, 5000); equal values (the default 0, 0) turn progressive
            growing off: the buffer ``alpha`` stays 1.

    ``num_ws = 2 * blocks + 1``. The fade-in is the buffer ``alpha`` (1 when built; set by
    :meth:`set_training_step`), or the ``alpha`` forward keyword when given; the output side is
    :meth:`resolution_at` ``(alpha)``, and :meth:`out_resolution` the side at the buffer's fade-in.

    Example:
        >>> up = StyleNeRFUpsampler(in_channels=11, in_resolution=8, image_resolution=32, w_dim=4,
        ...                         channel_base=256, channel_max=16)
        >>> up(torch.randn(2, 11, 8, 8), torch.randn(2, up.num_ws, 4)).shape
        torch.Size([2, 3, 32, 32])
    """

    def __init__(self, *, in_channels: int = 259, in_resolution: int = 32, image_resolution: int = 256,
                 w_dim: int = 512, channel_base: int = 32768, channel_max: int = 1024, upsample_mode: str = "nn_cat",
                 magnitude_ema_beta: float = 0.999, conv_clamp: float | None = 256.0, fade_start_kimg: float = 0.0,
                 fade_end_kimg: float = 0.0) -> None:
        super().__init__()
        if fade_end_kimg < fade_start_kimg:
            raise ValueError(f"stylenerf upsampler: fade_end_kimg ({fade_end_kimg}) must not precede "
                             f"fade_start_kimg ({fade_start_kimg})")
        for name, res in (("in_resolution", in_resolution), ("image_resolution", image_resolution)):
            if res < 4 or res & (res - 1):
                raise ValueError(f"stylenerf upsampler: {name} must be a power of two >= 4, got {res}")
        if image_resolution < in_resolution:
            raise ValueError(f"stylenerf upsampler: image_resolution ({image_resolution}) must be at least "
                             f"in_resolution ({in_resolution})")
        if in_channels <= 3:
            raise ValueError(f"stylenerf upsampler: in_channels must exceed 3 (RGB first, then features), "
                             f"got {in_channels}")
        if upsample_mode not in UPSAMPLE_MODES:
            raise ValueError(f"stylenerf upsampler: upsample_mode must be one of {', '.join(UPSAMPLE_MODES)}, "
                             f"got {upsample_mode!r}")
        self.in_channels = in_channels
        self.in_resolution = in_resolution
        self.image_resolution = image_resolution
        self.w_dim = w_dim
        self.block_resolutions = [2**i for i in range(int(math.log2(in_resolution)) + 1,
                                                      int(math.log2(image_resolution)) + 1)]
        channels = in_channels - 3
        for res in self.block_resolutions:
            out = min(channel_base // res, channel_max)
            setattr(self, f"b{res}", StyleNeRFSynthesisBlock(
                channels, out, w_dim, res, upsample_mode=upsample_mode, magnitude_ema_beta=magnitude_ema_beta,
                conv_clamp=conv_clamp))
            channels = out
        blocks = len(self.block_resolutions)
        self.num_ws = 2 * blocks + 1 if blocks else 0
        self.fade_start_kimg = float(fade_start_kimg)
        self.fade_end_kimg = float(fade_end_kimg)
        self.register_buffer("alpha", torch.ones([]))

    @property
    def progressive(self) -> bool:
        return self.fade_end_kimg > self.fade_start_kimg

    def set_training_step(self, step: int, kimg: float | None = None) -> None:
        """Follow the fade-in schedule: ``alpha = clamp((kimg - fade_start) / (fade_end - fade_start), 0, 1)``
        (a no-op without progressive growing or without ``kimg``)."""
        if self.progressive and kimg is not None:
            self.alpha.fill_(fade_in_alpha(kimg, self.fade_start_kimg, self.fade_end_kimg))

    @property
    def blocks(self) -> list[StyleNeRFSynthesisBlock]:
        return [getattr(self, f"b{res}") for res in self.block_resolutions]

    def out_resolution(self, render_resolution: int | None = None) -> int:
        """Output side at the current fade-in for a ``render_resolution`` feature image (default
        ``in_resolution``): :meth:`resolution_at` scaled by ``render_resolution / in_resolution``, what the
        trainer resizes the reals to (``image_resolution`` for the built size once fully grown, and for a
        module built on the meta device)."""
        side = self.image_resolution if self.alpha.is_meta else self.resolution_at()
        if render_resolution is None or render_resolution == self.in_resolution:
            return side
        return render_resolution * (side // self.in_resolution)

    def resolution_at(self, alpha: float | None = None) -> int:
        """Output side at fade-in ``alpha`` (default: the current one): ``in_resolution`` at 0, doubling per
        level (64 px as soon as ``alpha > 0`` with 32-px renders), ``image_resolution`` at 1."""
        end, _ = progressive_levels(self._alpha(alpha), len(self.block_resolutions))
        return self.block_resolutions[end - 1] if end else self.in_resolution

    def _check(self, features: Tensor, ws: Tensor) -> None:
        if features.ndim != 4 or features.shape[1] != self.in_channels:
            raise ValueError(f"stylenerf upsampler expects features [B, {self.in_channels}, h, w] (RGB first), "
                             f"got {tuple(features.shape)}")
        if ws.ndim != 3 or ws.shape[1] != self.num_ws or ws.shape[2] != self.w_dim:
            raise ValueError(f"stylenerf upsampler expects its ws rows [B, {self.num_ws}, {self.w_dim}], "
                             f"got {tuple(ws.shape)}")

    def _alpha(self, alpha: float | None) -> float:
        return float(self.alpha) if alpha is None else float(alpha)

    def _run(self, features: Tensor, ws: Tensor, alpha: float | None, skip_up: bool) -> Tensor:
        self._check(features, ws)
        ws = ws.to(torch.float32)
        img, x = features[:, :3].to(torch.float32), features[:, 3:]
        end, blend = progressive_levels(self._alpha(alpha), len(self.block_resolutions))
        images = [img]
        for i, block in enumerate(self.blocks[:end]):
            x, img = block(x, img, ws.narrow(1, 2 * i, 3), skip_up=skip_up)
            images.append(img)
        if blend is not None and not skip_up:  # the per-pixel path is not blended (module docstring)
            previous = images[-2]
            if previous.shape[-1] < img.shape[-1]:
                previous = F.interpolate(previous, size=img.shape[-2:], mode="bilinear", align_corners=False)
            img = previous * (1 - blend) + img * blend
        return img

    def forward(self, features: Tensor, ws: Tensor, *, alpha: float | None = None) -> Tensor:
        """``features [B, 3 + C, h, w]`` -> ``[B, 3, h * k, w * k]``, ``k = resolution_at(alpha) / in_resolution``
        (``R = resolution_at(alpha)`` for the ``in_resolution`` renders it is built and trained for); ``alpha``
        defaults to the buffer. The layers are 1x1 convolutions and 2x upsamplings, so another render side
        (the viewer's quick previews) goes through the same network."""
        return self._run(features, ws, alpha, skip_up=False)

    def pixelwise(self, features: Tensor, ws: Tensor, *, alpha: float | None = None) -> Tensor:
        """The per-pixel path: ``features [B, 3 + C, H, W]`` (any layout of points; each pixel is treated
        alone) -> ``[B, 3, H, W]``: the rendered RGB plus the ``torgb`` outputs of the blocks active at
        ``alpha``, with no upsampling and no blend between levels (as the official path runs)."""
        return self._run(features, ws, alpha, skip_up=True)

    def extra_repr(self) -> str:
        return (f"in_channels={self.in_channels}, in_resolution={self.in_resolution}, "
                f"image_resolution={self.image_resolution}, num_ws={self.num_ws}, "
                f"fade_kimg=({self.fade_start_kimg}, {self.fade_end_kimg})")
