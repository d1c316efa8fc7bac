"""EG3D's super-resolution upsampler (registered as ``upsampler`` ``eg3d_superres``).

EG3D (Chan et al. 2022, section 4.2 and appendix; official file training/superresolution.py)
renders a low-resolution feature image whose first three channels are RGB, then refines it with two
StyleGAN2 synthesis blocks ('skip' architecture) that see only the last latent ``w``:

1. resize the features and the raw RGB to the input resolution of the blocks (bilinear,
   ``align_corners=False``, antialiased when ``antialias``);
2. ``block0`` and ``block1`` each add their toRGB output to the (upsampled) running image, which
   starts as the raw RGB.

The official configuration per output resolution (train.py picks the class by resolution):

=========  ==========================  ===============  =======================================
output     official class              input res.       blocks (channels, upsampling)
=========  ==========================  ===============  =======================================
128        SuperresolutionHybrid2X     64               F->128 at 64 (no up), 128->64 at 128
256        SuperresolutionHybrid4X     128              F->128 at 128 (no up), 128->64 at 256
512        SuperresolutionHybrid8XDC   128              F->256 at 256, 256->128 at 512
=========  ==========================  ===============  =======================================

The official modules clamp convolution outputs to 256 because EG3D trains them with mixed precision
(``sr_num_fp16_res=4``, so ``conv_clamp=256``); the clamp is kept here, so the values match.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from gan3d.core.interfaces import Upsampler
from gan3d.core.layers import NOISE_MODES, SynthesisBlock
from gan3d.core.layers.synthesis import check_memory_format, infer_sample_by_sample, use_channels_last
from gan3d.core.types import UpsampledImages

__all__ = ["EG3DSuperResolution", "OFFICIAL_CONFIGS"]

#: output resolution -> (input resolution, block0 channels, block1 channels, block0 upsamples)
OFFICIAL_CONFIGS: dict[int, tuple[int, int, int, bool]] = {
    128: (64, 128, 64, False),   # SuperresolutionHybrid2X
    256: (128, 128, 64, False),  # SuperresolutionHybrid4X
    512: (128, 256, 128, True),  # SuperresolutionHybrid8XDC
}


class EG3DSuperResolution(Upsampler):
    """``features [B, F, h, w]`` (RGB in the first three channels), ``ws [B, N, w_dim]`` ->
    ``image [B, 3, image_resolution, image_resolution]``.

    It reads one latent row, the last row of the tri-plane backbone's (``num_ws = 1``,
    ``ws_from_previous = 1``: EG3D's ``superresolution.py`` takes ``ws[:, -1:]`` of the whole ``ws``), repeated
    for the 3 latents each block takes.

    Args:
        image_resolution: output side, 128, 256 or 512; picks the official block configuration.
        in_channels: ``F``, the channels of the rendered feature image (32 in EG3D).
        w_dim: latent size (512 in EG3D).
        block0_channels, block1_channels: channels of the two blocks; 0 keeps the official value.
        antialias: antialiased bilinear resizing of the inputs (EG3D's ``sr_antialias=True``).
        noise_mode: per-pixel noise of the synthesis layers, ``'none'`` (EG3D's default
            ``--sr_noise_mode``), ``'random'`` or ``'const'``.
        conv_clamp: clamp of the convolution outputs (256, see above); 0 or less disables it.
        memory_format: ``'auto'`` (channels_last activations on a CPU, contiguous on CUDA),
            ``'channels_last'`` or ``'contiguous'``; same values (see ``SynthesisNetwork``).
        raw_in_place: reproduce the official 128- and 256-px modules' in-place add: their first block
            does not upsample, so ``img.add_(y)`` adds its ToRGB output into ``rgb_image``, a view of the raw
            feature image, whenever the render arrives at the blocks' input resolution (not after a
            resize, which copies). The official ``image_raw`` (what its dual discriminator sees) is then
            the raw render plus that output; with True this module returns
            :class:`~gan3d.core.types.UpsampledImages` carrying it. No effect at 512 px (docs/fidelity.md).

    Example:
        >>> up = EG3DSuperResolution(image_resolution=128)                          # doctest: +SKIP
        >>> up(torch.randn(2, 32, 64, 64), torch.randn(2, 14, 512)).shape           # doctest: +SKIP
        torch.Size([2, 3, 128, 128])
    """

    num_ws: int = 1
    ws_from_previous: int = 1

    def __init__(
        self,
        *,
        image_resolution: int = 512,
        in_channels: int = 32,
        w_dim: int = 512,
        block0_channels: int = 0,
        block1_channels: int = 0,
        antialias: bool = True,
        noise_mode: str = "none",
        conv_clamp: float = 256.0,
        memory_format: str = "auto",
        raw_in_place: bool = True,
    ) -> None:
        super().__init__()
        if image_resolution not in OFFICIAL_CONFIGS:
            raise ValueError(f"upsampler 'eg3d_superres' supports image_resolution "
                             f"{', '.join(map(str, OFFICIAL_CONFIGS))}; got {image_resolution}")
        if in_channels < 3:
            raise ValueError(f"in_channels must be >= 3 (RGB comes first), got {in_channels}")
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {', '.join(NOISE_MODES)}, got {noise_mode!r}")
        input_res, official0, official1, block0_up = OFFICIAL_CONFIGS[image_resolution]
        channels0 = block0_channels or official0
        channels1 = block1_channels or official1
        clamp = conv_clamp if conv_clamp > 0 else None

        self.image_resolution = image_resolution
        self.input_resolution = input_res
        self.in_channels = in_channels
        self.w_dim = w_dim
        self.antialias = antialias
        self.noise_mode = noise_mode
        self.memory_format = check_memory_format(memory_format)
        self.block0_up = block0_up
        self.raw_in_place = raw_in_place
        self.largest_activation = channels1 * image_resolution**2  # values per sample, last layer
        block0_res = input_res * 2 if block0_up else input_res
        self.block0 = SynthesisBlock(in_channels, channels0, w_dim, block0_res, 3, False,
                                     up=2 if block0_up else 1, conv_clamp=clamp)
        self.block1 = SynthesisBlock(channels0, channels1, w_dim, image_resolution, 3, True, up=2, conv_clamp=clamp)

    def out_resolution(self, render_resolution: int) -> int:
        """The side of the output image, whatever the render resolution."""
        return self.image_resolution

    def resize(self, x: Tensor) -> Tensor:
        """Bilinear resize of ``x [B, C, h, w]`` to the blocks' input resolution (no-op if equal)."""
        if x.shape[-2:] == (self.input_resolution, self.input_resolution):
            return x
        return F.interpolate(x, size=(self.input_resolution, self.input_resolution), mode="bilinear",
                             align_corners=False, antialias=self.antialias)

    def forward(self, features: Tensor, ws: Tensor, *, alpha: float = 1.0) -> Tensor | UpsampledImages:
        """``features [B, F, h, w]``, ``ws [B, 1, w_dim]`` (its row) -> ``image [B, 3, H, H]``, or
        :class:`UpsampledImages` with the raw image the official module leaves (see ``raw_in_place``)."""
        if features.ndim != 4 or features.shape[1] != self.in_channels:
            raise ValueError(f"upsampler 'eg3d_superres' expects features [B, {self.in_channels}, h, w], got "
                             f"{tuple(features.shape)}; set its in_channels to the decoder's output channels")
        if ws.ndim != 3 or ws.shape[0] != features.shape[0] or ws.shape[2] != self.w_dim:
            raise ValueError(f"upsampler 'eg3d_superres' expects ws [{features.shape[0]}, N, {self.w_dim}], "
                             f"got {tuple(ws.shape)}")
        channels_last = use_channels_last(self.memory_format, features.device)
        if infer_sample_by_sample(channels_last, ws.shape[0], self.largest_activation):
            # Inference: one sample at a time (see PER_SAMPLE_MIN_ACTIVATIONS; same values).
            outs = [self(f, w) for f, w in zip(features.split(1), ws.split(1))]
            if isinstance(outs[0], UpsampledImages):
                return UpsampledImages(torch.cat([o.image for o in outs]), torch.cat([o.image_raw for o in outs]))
            return torch.cat(outs)
        # Both blocks take three latents (two convolutions and a toRGB), all the last w (official forward).
        block_ws = ws[:, -1:].repeat(1, 3, 1)
        # Both inputs in the layout memory_format asks for. The generator's feature image is a
        # channels_last view (feature_image) and the resize keeps that layout: on CUDA, where 'auto' means
        # contiguous (as the official code makes its feature image), the blocks took it as it came, ran
        # unfused at batch > 1, and cuDNN spent 12.4 ms on each 513-px depthwise low-pass filter (H100,
        # EG3D 512, batch 4: super-resolution 26.2 -> 14.1 ms, generator 47.2 -> 33.6 ms per call).
        layout = torch.channels_last if channels_last else torch.contiguous_format
        at_input = features.shape[-2:] == (self.input_resolution, self.input_resolution)
        x = self.resize(features).contiguous(memory_format=layout)
        rgb = self.resize(features[:, :3]).contiguous(memory_format=layout)
        # EG3D trains with grouped (fused) modulated convolutions only at inference ('inference_only').
        kwargs = dict(noise_mode=self.noise_mode, fused_modconv=not self.training)
        x, rgb = self.block0(x, rgb, block_ws, **kwargs)
        raw = rgb if (self.raw_in_place and not self.block0_up and at_input) else None
        _, rgb = self.block1(x, rgb, block_ws, **kwargs)
        if raw is None:
            return rgb
        return UpsampledImages(rgb, raw.contiguous())
