"""Filtered up/downsampling of images: the reference math of StyleGAN2's ``upfirdn2d``.

``upfirdn2d`` = upsample (insert zeros), pad, FIR-filter, downsample (keep every n-th pixel). With a
low-pass filter such as the binomial ``[1, 3, 3, 1]`` this gives alias-reduced 2x resampling
(StyleGAN2, Karras et al. 2020, section 2 and appendix B; official file torch_utils/ops/upfirdn2d.py,
function ``_upfirdn2d_ref``). This file is a plain PyTorch version of that reference path; the
official CUDA kernel computes the same values faster.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["setup_filter", "upfirdn2d", "upsample2d", "downsample2d", "filter2d", "parse_padding"]


def setup_filter(taps: Sequence[float] | Tensor = (1, 3, 3, 1), *, normalize: bool = True, gain: float = 1.0) -> Tensor:
    """Turn 1D filter taps into the 2D FIR filter ``[fh, fw]`` used by :func:`upfirdn2d`.

    The 2D filter is the outer product of the taps with themselves, normalised to sum to one so
    that a constant image keeps its value (upfirdn2d.py ``setup_filter``; the official code keeps
    filters with 8 or more taps separable, which only changes speed, not the values).

    Example:
        >>> setup_filter([1, 3, 3, 1]).shape   # [[1,3,3,1],[3,9,9,3],...] / 64
        torch.Size([4, 4])
    """
    f = torch.as_tensor(taps, dtype=torch.float32)
    if f.ndim == 0:
        f = f.reshape(1)
    if f.ndim == 1:
        f = torch.outer(f, f)
    if f.ndim != 2 or f.numel() == 0:
        raise ValueError(f"filter taps must be a non-empty 1D or 2D sequence, got shape {tuple(f.shape)}")
    if normalize:
        f = f / f.sum()
    return f * gain


def parse_padding(padding: int | Sequence[int]) -> tuple[int, int, int, int]:
    """``p``, ``[px, py]`` or ``[x_before, x_after, y_before, y_after]`` -> the four-tuple."""
    if isinstance(padding, int):
        return padding, padding, padding, padding
    padding = [int(p) for p in padding]
    if len(padding) == 2:
        px, py = padding
        return px, px, py, py
    if len(padding) == 4:
        return padding[0], padding[1], padding[2], padding[3]
    raise ValueError(f"padding must be an int, [x, y] or [x0, x1, y0, y1], got {padding}")


def upfirdn2d(
    x: Tensor,
    f: Tensor | None,
    *,
    up: int = 1,
    down: int = 1,
    padding: int | Sequence[int] = 0,
    flip_filter: bool = False,
    gain: float = 1.0,
    bias: Tensor | None = None,
) -> Tensor:
    """Upsample, pad, filter and downsample every channel of ``x [B, C, H, W]``.

    1. insert ``up - 1`` zeros after each pixel (size ``H * up``);
    2. pad with zeros (negative padding crops);
    3. convolve with ``f [fh, fw]`` times ``gain`` ("valid" convolution: the output shrinks by
       ``f - 1``); ``flip_filter=True`` correlates instead;
    4. keep every ``down``-th pixel.

    ``bias [C]``, if given, is added to the filtered output inside the same convolution (the callers'
    bias of the layer that ends with this filter: no separate pass over the image).

    Returns ``[B, C, H', W']`` with ``W' = (W * up + px0 + px1 - fw + down) // down``.
    """
    if x.ndim != 4:
        raise ValueError(f"upfirdn2d expects x of shape [B, C, H, W], got {tuple(x.shape)}")
    if f is None:
        f = torch.ones(1, 1, dtype=torch.float32, device=x.device)
    batch, channels, height, width = x.shape
    px0, px1, py0, py1 = parse_padding(padding)

    if up > 1 and down == 1:
        out = _upfirdn2d_transposed(x, f, up, (px0, px1, py0, py1), flip_filter, gain, bias)
        if out is not None:
            return out
    if up > 1:  # zero insertion: [B, C, H, 1, W, 1] padded to [B, C, H, up, W, up]
        x = x.reshape(batch, channels, height, 1, width, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(batch, channels, height * up, width * up)

    # Equal, non-negative padding goes to conv2d itself (no padded copy of x); otherwise F.pad pads
    # with zeros for positive values and crops for negative ones, as upfirdn2d does.
    conv_padding: int | tuple[int, int] = 0
    if px0 == px1 >= 0 and py0 == py1 >= 0:
        conv_padding = (py0, px0)
    else:
        x = F.pad(x, [px0, px1, py0, py1])

    # A true convolution flips the filter (conv2d itself is a correlation).
    f = (f * gain).to(x.dtype)
    if not flip_filter:
        f = f.flip([0, 1])
    kernel = f[None, None].repeat(channels, 1, 1, 1)  # depthwise: one copy per channel
    x = F.conv2d(x, kernel, None if bias is None else bias.to(x.dtype), groups=channels, padding=conv_padding)

    if down > 1:
        x = x[:, :, ::down, ::down]
    return x


def _upfirdn2d_transposed(x: Tensor, f: Tensor, up: int, padding: tuple[int, int, int, int], flip_filter: bool,
                          gain: float, bias: Tensor | None) -> Tensor | None:
    """:func:`upfirdn2d` with ``up > 1``, ``down = 1`` as one depthwise transposed convolution of stride
    ``up``, or ``None`` when its padding is out of this form's reach (the caller then zero-inserts).

    Zero insertion followed by the filter reads ``up**2 - 1`` zeros for every input pixel; the transposed
    convolution multiplies only the input pixels, and builds no zero-inserted copy. Output ``j`` of
    upfirdn2d is ``sum_i x[i] fc[up * i + p0 - j]`` (``fc`` the convolved, i.e. flipped, filter), which is
    a transposed convolution with the kernel ``fc`` flipped back and padding ``k - 1 - p0``; the far
    end is matched by ``output_padding`` or a crop. Same values up to float rounding: EG3D's image
    upsampling, ``[1, 96, 128, 128]`` channels_last, 1 thread: 68 -> 16 ms of CPU.
    """
    px0, px1, py0, py1 = padding
    fh, fw = f.shape
    pad_y, pad_x = fh - 1 - py0, fw - 1 - px0
    if pad_y < 0 or pad_x < 0:
        return None
    height, width = x.shape[2:]
    # transposed-convolution length minus upfirdn2d's, per axis (negative: output_padding, < up)
    extra_y = (height - 1) * up - 2 * pad_y + fh - (height * up + py0 + py1 - fh + 1)
    extra_x = (width - 1) * up - 2 * pad_x + fw - (width * up + px0 + px1 - fw + 1)
    if extra_y <= -up or extra_x <= -up:
        return None
    kernel = (f * gain).to(x.dtype)
    if flip_filter:  # upfirdn2d correlates: its taps are f itself, the kernel f flipped
        kernel = kernel.flip([0, 1])
    channels = x.shape[1]
    kernel = kernel[None, None].repeat(channels, 1, 1, 1)  # [C, 1, fh, fw]: one filter per channel
    out = F.conv_transpose2d(x, kernel, None if bias is None else bias.to(x.dtype), stride=up,
                             padding=(pad_y, pad_x), output_padding=(max(-extra_y, 0), max(-extra_x, 0)),
                             groups=channels)
    if extra_y > 0 or extra_x > 0:
        out = out[:, :, : out.shape[2] - max(extra_y, 0), : out.shape[3] - max(extra_x, 0)]
    return out


def upsample2d(x: Tensor, f: Tensor, *, up: int = 2, padding: int | Sequence[int] = 0, gain: float = 1.0) -> Tensor:
    """Upsample ``x [B, C, H, W]`` by ``up`` with filter ``f``: ``[B, C, H * up, W * up]``.

    The padding centres the filter on the upsampled grid and the gain ``up**2`` restores the signal
    energy lost to zero insertion (upfirdn2d.py ``upsample2d``).
    """
    fh, fw = f.shape
    px0, px1, py0, py1 = parse_padding(padding)
    pad = [px0 + (fw + up - 1) // 2, px1 + (fw - up) // 2, py0 + (fh + up - 1) // 2, py1 + (fh - up) // 2]
    return upfirdn2d(x, f, up=up, padding=pad, gain=gain * up * up)


def downsample2d(
    x: Tensor, f: Tensor, *, down: int = 2, padding: int | Sequence[int] = 0, gain: float = 1.0
) -> Tensor:
    """Low-pass filter ``x [B, C, H, W]`` with ``f`` and keep every ``down``-th pixel:
    ``[B, C, H // down, W // down]`` (upfirdn2d.py ``downsample2d``)."""
    fh, fw = f.shape
    px0, px1, py0, py1 = parse_padding(padding)
    pad = [px0 + (fw - down + 1) // 2, px1 + (fw - down) // 2, py0 + (fh - down + 1) // 2, py1 + (fh - down) // 2]
    return upfirdn2d(x, f, down=down, padding=pad, gain=gain)


def filter2d(x: Tensor, f: Tensor, *, padding: int | Sequence[int] = 0, gain: float = 1.0) -> Tensor:
    """Filter ``x [B, C, H, W]`` with ``f`` keeping its size (upfirdn2d.py ``filter2d``)."""
    fh, fw = f.shape
    px0, px1, py0, py1 = parse_padding(padding)
    pad = [px0 + fw // 2, px1 + (fw - 1) // 2, py0 + fh // 2, py1 + (fh - 1) // 2]
    return upfirdn2d(x, f, padding=pad, gain=gain)
