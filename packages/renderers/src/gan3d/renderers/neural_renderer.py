"""GIRAFFE's 2D neural renderer (Niemeyer & Geiger, CVPR 2021, section 3.4; registered as upsampler
``giraffe_neural_renderer``).

Source: autonomousvision/giraffe im2scene/giraffe/models/neural_renderer.py ``NeuralRenderer`` and
im2scene/layers.py ``Blur``. From a ``16 x 16`` feature image, ``n_blocks = log2(out / in)`` blocks each
upsample the features (nearest neighbour) and apply ``conv3x3 -> LeakyReLU(0.2)``, halving the channels
down to ``min_feat``; with the RGB skip, an RGB image is predicted from the input (``conv3x3``) and
after every block, and the running RGB is upsampled (bilinear then a [1, 2, 1] blur) and summed::

    rgb = up_rgb(conv_rgb_0(x));  net = conv_in(x)
    for k in blocks:
        net = lrelu(conv_k(up_feat(net)));  rgb += conv_rgb_{k+1}(net)
        rgb = up_rgb(rgb)                   # not after the last block
    image = sigmoid(rgb)

GIRAFFE's images lie in ``[0, 1]``; gan3d's in ``[-1, 1]``, so the sigmoid output is mapped by ``2 x - 1``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan3d.core.interfaces import Upsampler

__all__ = ["GiraffeNeuralRenderer", "BinomialBlur"]

UPSAMPLE_MODES = ("nn", "bilinear")


class BinomialBlur(nn.Module):
    """The normalized 3x3 ``[1, 2, 1]^T [1, 2, 1] / 16`` blur per channel with reflected borders
    (im2scene/layers.py ``Blur``: kornia ``filter2D(x, f, normalized=True)``, whose border is 'reflect')."""

    def __init__(self) -> None:
        super().__init__()
        taps = torch.tensor([1.0, 2.0, 1.0])
        kernel = taps[:, None] * taps[None, :]
        self.register_buffer("kernel", (kernel / kernel.sum()).view(1, 1, 3, 3), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        """``x [B, C, H, W]`` -> blurred ``[B, C, H, W]``."""
        c = x.shape[1]
        padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
        return F.conv2d(padded, self.kernel.to(x.dtype).expand(c, 1, 3, 3), groups=c)


class _Upsample2x(nn.Module):
    """``'nn'``: nearest neighbour; ``'bilinear'``: bilinear (``align_corners=False``) then the blur."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode
        self.blur = BinomialBlur() if mode == "bilinear" else None

    def forward(self, x: Tensor) -> Tensor:
        if self.blur is None:
            return F.interpolate(x, scale_factor=2.0, mode="nearest")
        return self.blur(F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False))


class GiraffeNeuralRenderer(Upsampler):
    """GIRAFFE's neural renderer: ``features [B, in_channels, h, w]`` -> ``image [B, 3, h * 2^n, w * 2^n]``.

    Args:
        in_channels: feature channels of the volume render (GIRAFFE ``input_dim``: 128 at 64 px, 256 at 256 px).
        n_feat: width after the input projection (``n_feat``; a 1x1 conv maps ``in_channels`` to it when
            they differ, else none).
        min_feat: the smallest block width (32).
        out_resolution: output side (GIRAFFE ``img_size``); with ``in_resolution`` it sets the number of
            blocks ``n = log2(out_resolution / in_resolution)`` (GIRAFFE: ``log2(img_size) - 4``, i.e.
            ``in_resolution = 16``).
        in_resolution: side of the feature image the recipe renders.
        use_rgb_skip: the RGB skip connections (GIRAFFE: on).
        upsample_feat, upsample_rgb: ``'nn'`` or ``'bilinear'`` (GIRAFFE: ``'nn'`` and ``'bilinear'``).
        use_norm: instance norm after each block's conv (GIRAFFE: off).
        final_sigmoid: sigmoid on the output (GIRAFFE ``final_actvn``: on); the result is mapped to
            ``[-1, 1]``. Off, the raw output is returned as it is.

    The trainer reads ``out_resolution`` to size the real images.

    Example:
        >>> up = GiraffeNeuralRenderer(in_channels=128, out_resolution=64)
        >>> up(torch.randn(2, 128, 16, 16), None).shape
        torch.Size([2, 3, 64, 64])
    """

    def __init__(
        self,
        *,
        in_channels: int = 128,
        n_feat: int = 128,
        min_feat: int = 32,
        out_resolution: int = 64,
        in_resolution: int = 16,
        use_rgb_skip: bool = True,
        upsample_feat: str = "nn",
        upsample_rgb: str = "bilinear",
        use_norm: bool = False,
        final_sigmoid: bool = True,
    ) -> None:
        super().__init__()
        if upsample_feat not in UPSAMPLE_MODES or upsample_rgb not in UPSAMPLE_MODES:
            raise ValueError(f"upsample_feat and upsample_rgb must be one of {UPSAMPLE_MODES}, got "
                             f"{upsample_feat!r} and {upsample_rgb!r}")
        ratio = out_resolution / in_resolution if in_resolution > 0 else 0
        if ratio < 2 or not float(math.log2(ratio)).is_integer():
            raise ValueError(f"out_resolution / in_resolution must be a power of two >= 2 (GIRAFFE: 64 / 16, "
                             f"256 / 16); got {out_resolution} / {in_resolution}")
        if min(in_channels, n_feat, min_feat) <= 0:
            raise ValueError(f"in_channels, n_feat and min_feat must be positive, got {in_channels}, {n_feat}, "
                             f"{min_feat}")
        if n_feat // 2 < min_feat:
            # The first block outputs n_feat // 2 channels while the next layers expect max(n_feat // 2, min_feat).
            raise ValueError(f"n_feat // 2 must be >= min_feat (neural_renderer.py's first block has no floor); "
                             f"got n_feat={n_feat}, min_feat={min_feat}")
        n_blocks = int(math.log2(ratio))
        self.in_channels = in_channels
        self.image_resolution = out_resolution
        self.in_resolution = in_resolution
        self.scale_factor = 2 ** n_blocks
        self.use_rgb_skip = use_rgb_skip
        self.final_sigmoid = final_sigmoid
        self.upsample_feat = _Upsample2x(upsample_feat)
        self.upsample_rgb = _Upsample2x(upsample_rgb)
        self.conv_in = nn.Conv2d(in_channels, n_feat, 1) if in_channels != n_feat else nn.Identity()

        def width(k: int) -> int:  # channels after block k - 1 (neural_renderer.py: max(n_feat // 2^k, min_feat))
            return max(n_feat // 2 ** k, min_feat)

        # The first block halves n_feat without the min_feat floor, as neural_renderer.py does.
        self.conv_layers = nn.ModuleList(
            [nn.Conv2d(n_feat, n_feat // 2, 3, padding=1)]
            + [nn.Conv2d(width(k + 1), width(k + 2), 3, padding=1) for k in range(n_blocks - 1)]
        )
        if use_rgb_skip:
            self.conv_rgb = nn.ModuleList(
                [nn.Conv2d(in_channels, 3, 3, padding=1)]
                + [nn.Conv2d(width(k + 1), 3, 3, padding=1) for k in range(n_blocks)]
            )
        else:
            # neural_renderer.py: nn.Conv2d(max(n_feat // 2^n_blocks, min_feat), 3, 1, 1): kernel 1, stride 1.
            self.conv_rgb = nn.Conv2d(width(n_blocks), 3, 1)
        self.norms = nn.ModuleList(nn.InstanceNorm2d(width(k + 1)) for k in range(n_blocks)) if use_norm else None

    def out_resolution(self, render_resolution: int) -> int:
        """``render_resolution * scale_factor`` (GIRAFFE: 16 -> 64 or 256)."""
        return render_resolution * self.scale_factor

    def forward(self, features: Tensor, ws: Tensor | None = None, *, alpha: float = 1.0) -> Tensor:
        """``features [B, in_channels, h, w]`` -> ``image [B, 3, h * scale_factor, w * scale_factor]``."""
        if features.ndim != 4 or features.shape[1] != self.in_channels:
            raise ValueError(f"the neural renderer takes [B, {self.in_channels}, h, w] features, got "
                             f"{tuple(features.shape)}; set upsampler.in_channels to the decoder's feature_dim")
        net = self.conv_in(features)
        rgb = self.upsample_rgb(self.conv_rgb[0](features)) if self.use_rgb_skip else None
        last = len(self.conv_layers) - 1
        for k, layer in enumerate(self.conv_layers):
            hidden = layer(self.upsample_feat(net))
            if self.norms is not None:
                hidden = self.norms[k](hidden)
            net = F.leaky_relu(hidden, 0.2)
            if rgb is not None:
                rgb = rgb + self.conv_rgb[k + 1](net)
                if k < last:
                    rgb = self.upsample_rgb(rgb)
        if rgb is None:
            rgb = self.conv_rgb(net)
        if self.final_sigmoid:
            return torch.sigmoid(rgb) * 2 - 1
        return rgb

    def extra_repr(self) -> str:
        return (f"in_channels={self.in_channels}, in_resolution={self.in_resolution}, "
                f"out_resolution={self.image_resolution}, use_rgb_skip={self.use_rgb_skip}")
