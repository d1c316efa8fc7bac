"""2D convolution with filtered up- or downsampling (official file torch_utils/ops/conv2d_resample.py).

Upsampling: insert zeros, low-pass filter (gain ``up**2``), then convolve. Downsampling: low-pass
filter, then a strided convolution. Both pad once, before anything else, so the output of a
``k x k`` convolution with padding ``k // 2`` is exactly ``H * up`` or ``H / down``. The official
code reaches the same values through transposed convolutions; this is its generic reference order.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from .filtered_resampling import upfirdn2d
from .winograd import conv3x3_winograd, winograd_applies

__all__ = ["conv2d_resample"]


def conv2d_resample(
    x: Tensor,
    w: Tensor,
    f: Tensor | None = None,
    *,
    up: int = 1,
    down: int = 1,
    padding: int = 0,
    groups: int = 1,
    flip_weight: bool = True,
    bias: Tensor | None = None,
) -> Tensor:
    """Convolve ``x [B, I, H, W]`` with ``w [O, I // groups, k, k]``, optionally resampling by 2.

    Args:
        f: low-pass filter ``[fh, fw]`` from :func:`~.filtered_resampling.setup_filter`; needed when
            ``up > 1`` or ``down > 1``.
        padding: zero padding with respect to the upsampled image (``k // 2`` keeps the size).
        flip_weight: ``True`` correlates (as ``torch.nn.functional.conv2d``); ``False`` convolves.
            StyleGAN2 convolves in its upsampling layers (``flip_weight = (up == 1)``), which only
            matters when loading official weights.
        bias: ``[O]`` added to the output by the last operation (the convolution, or the low-pass
            filter after an upsampling one) rather than in a pass of its own.

    Returns:
        ``[B, O, H * up // down, W * up // down]`` when ``padding = k // 2``.
    """
    if up > 1 and down > 1:
        raise ValueError("conv2d_resample resamples in one direction at a time: give up > 1 or down > 1, not both")
    if (up > 1 or down > 1) and f is None:
        raise ValueError("conv2d_resample needs a low-pass filter f to up- or downsample; "
                         "use setup_filter([1, 3, 3, 1])")
    if bias is not None:
        bias = bias.to(x.dtype)

    if up > 1 and w.shape[-1] == 1 and w.shape[-2] == 1:
        fh, fw = f.shape
        pad = [padding + (fw + up - 1) // 2, padding + (fw - up) // 2,
               padding + (fh + up - 1) // 2, padding + (fh - up) // 2]
        # A 1x1 convolution commutes with the resampling: run it at the low resolution.
        return upfirdn2d(F.conv2d(x, w, groups=groups), f, up=up, padding=pad, gain=up * up, bias=bias)

    if up > 1:
        # Zero insertion, the low-pass filter and the convolution commute, so the convolution runs
        # as a strided transposed convolution on the low-resolution input (up**2 fewer multiply-adds
        # than convolving the upsampled image) and the filter comes last; the padding arithmetic
        # follows the official torch_utils/ops/conv2d_resample.py, so the values are the same.
        fh, fw = f.shape
        out_channels, in_per_group, kh, kw = w.shape
        px0 = padding + (fw + up - 1) // 2 - (kw - 1)
        px1 = padding + (fw - up) // 2 - (kw - up)
        py0 = padding + (fh + up - 1) // 2 - (kh - 1)
        py1 = padding + (fh - up) // 2 - (kh - up)
        pxt = max(min(-px0, -px1), 0)
        pyt = max(min(-py0, -py1), 0)
        # conv_transpose2d convolves (a correlation with w is a convolution with w flipped) and takes
        # its weight as [in, out / groups, k, k]; flip_weight=False (StyleGAN2's upsampling layers)
        # flips twice, which is no flip.
        wt = w.flip([2, 3]) if flip_weight else w
        wt = wt.reshape(groups, out_channels // groups, in_per_group, kh, kw).transpose(1, 2)
        wt = wt.reshape(groups * in_per_group, out_channels // groups, kh, kw)
        x = F.conv_transpose2d(x, wt, stride=up, padding=[pyt, pxt], groups=groups)
        return upfirdn2d(x, f, padding=[px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt], gain=up * up, bias=bias)

    if not flip_weight:
        w = w.flip([2, 3])
    if down > 1:
        fh, fw = f.shape
        pad = [padding + (fw - down + 1) // 2, padding + (fw - down) // 2,
               padding + (fh - down + 1) // 2, padding + (fh - down) // 2]
        x = upfirdn2d(x, f, padding=pad)
        return F.conv2d(x, w, bias, stride=down, groups=groups)

    if winograd_applies(x, w, padding=padding, groups=groups, bias=bias):
        # CPU inference of a large 3x3 convolution: 4x fewer multiply-adds (layers/winograd.py).
        return conv3x3_winograd(x, w, bias)
    return F.conv2d(x, w, bias, padding=padding, groups=groups)
