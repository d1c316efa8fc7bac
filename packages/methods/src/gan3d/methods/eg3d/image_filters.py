"""The two image filters of EG3D's training loss: the resize that makes a real image's "raw" twin,
and the discriminator blur that fades out over the first kimg.

Sources: NVlabs/eg3d ``training/dual_discriminator.py`` (``filtered_resizing``) and
``training/loss.py`` (``StyleGAN2Loss.run_D`` and ``accumulate_gradients``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from gan3d.core.layers.filtered_resampling import upfirdn2d

__all__ = ["FILTER_MODES", "filtered_resize", "blur_sigma", "blur_images"]

#: ``'antialiased'``: bilinear with PyTorch's antialiasing (EG3D's default, train.py ``filter_mode``);
#: ``'none'``: plain bilinear.
FILTER_MODES = ("antialiased", "none")


def filtered_resize(images: Tensor, size: int, filter_mode: str = "antialiased") -> Tensor:
    """Resize ``images [B, C, H, W]`` to ``[B, C, size, size]`` (bilinear, ``align_corners=False``).

    EG3D uses this both to make the real ``image_raw`` (downsampling the real image to the neural
    rendering resolution) and, inside the dual discriminator, to bring ``image_raw`` up to the
    resolution of ``image``.
    """
    if filter_mode not in FILTER_MODES:
        raise ValueError(f"filter_mode must be one of {', '.join(FILTER_MODES)}, got {filter_mode!r}")
    if images.shape[-2:] == (size, size):
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False,
                         antialias=filter_mode == "antialiased")


def blur_sigma(kimg: float, blur_init_sigma: float, blur_fade_kimg: float) -> float:
    """EG3D's blur schedule: ``max(1 - kimg / blur_fade_kimg, 0) * blur_init_sigma`` (0 when the fade
    length is 0).

    Example:
        >>> blur_sigma(50.0, 10.0, 200.0)
        7.5
    """
    if blur_fade_kimg <= 0:
        return 0.0
    return max(1.0 - kimg / blur_fade_kimg, 0.0) * blur_init_sigma


def blur_images(images: Tensor, sigma: float) -> Tensor:
    """Blur ``images [B, C, H, W]`` with EG3D's separable kernel, keeping the size.

    The taps are ``2 ** -(x / sigma) ** 2`` for ``x`` in ``[-floor(3 sigma), floor(3 sigma)]``,
    normalised to sum 1 (``run_D``: ``exp2`` of ``-(x / sigma)^2``, i.e. a Gaussian of standard
    deviation ``sigma / sqrt(2 ln 2)``), zero padding at the border. No-op when the support is empty.

    Applied as the official ``upfirdn2d.filter2d`` applies a 1-D filter: a horizontal pass, then a
    vertical one (2 x 55 taps per pixel at EG3D's initial sigma 10, instead of the 55 x 55 of the outer
    product: during the blur fade the discriminator's calls, and R1's double backward through them,
    cost 27x less in the filter).
    """
    size = math.floor(sigma * 3)
    if size <= 0:
        return images
    x = torch.arange(-size, size + 1, device=images.device, dtype=images.dtype)
    taps = torch.exp2(-(x / sigma).square())
    taps = taps / taps.sum()
    images = upfirdn2d(images, taps.unsqueeze(0), padding=(size, size, 0, 0))  # along x
    return upfirdn2d(images, taps.unsqueeze(1), padding=(0, 0, size, size))  # along y
