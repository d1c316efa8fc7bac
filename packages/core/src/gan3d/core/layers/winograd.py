"""3x3 convolutions by Winograd's minimal filtering F(4x4, 3x3) (Lavin & Gray, "Fast Algorithms for
Convolutional Neural Networks", CVPR 2016, section 4), for CPU inference.

A 3x3 correlation of a 6x6 input tile gives a 4x4 output tile; written as
``Y = A^T [(G g G^T) * (B^T d B)] A`` it takes 36 multiplies per input channel and output channel
instead of 144, so the convolution's multiply-adds become 36 batched matrix products
``[tiles, C] x [C, O]`` (4x fewer than the direct convolution) plus the small transforms ``B``, ``G``
and ``A``. PyTorch's CPU convolutions (oneDNN) run fp32 3x3 convolutions directly, at near the
CPU's peak, and EG3D at 512 px spends about half its time in its largest ones (docs/benchmarks.md):
fewer multiply-adds is the lever left, which is why this exists.

It is the same function up to float rounding, but not the same rounding: with the interpolation points
0, +-1, +-2 and infinity the error of fp32 output is ~10x that of the direct convolution (max abs
~6e-5 on outputs of magnitude ~8; the tests bound it against float64). It therefore runs only where
nothing needs bit-level agreement and where it is faster: CPU, float32, no autograd (inference), no
autocast, ``torch.compile`` not tracing, stride 1, padding 1, one group, ``channels_last`` input, at
least 128 x 128 output pixels and channel counts where the matrix products dominate. Turn it off for
the process with ``GAN3D_WINOGRAD=0`` or :func:`set_winograd_enabled`; :func:`winograd_enabled` says
which is in force.

Layout of the work: the image is processed in bands of tile rows (~64K tile-channels per band, so the
temporaries stay in cache); each band is copied into a zero-bordered buffer (the padding), transformed
along rows by one batched product with ``B^T`` over overlapping row windows, gathered into tiles,
transformed along columns by one product, multiplied by the transformed weights, and transformed back
by two products with ``A^T`` into the output rows. The bias rides on the (1, 1) tile position: column
1 of ``A^T`` is all ones, so a constant added there reaches every output pixel once.
"""

from __future__ import annotations

import os

import torch
from torch import Tensor

__all__ = ["conv3x3_winograd", "winograd_applies", "winograd_enabled", "set_winograd_enabled"]

# Lavin & Gray's F(4x4, 3x3) with the points 0, 1, -1, 2, -2 and infinity.
_BT = ((4, 0, -5, 0, 1, 0),
       (0, -4, -4, 1, 1, 0),
       (0, 4, -4, -1, 1, 0),
       (0, -2, -1, 2, 1, 0),
       (0, 2, -1, -2, 1, 0),
       (0, 4, 0, -5, 0, 1))
_G = ((1 / 4, 0, 0),
      (-1 / 6, -1 / 6, -1 / 6),
      (-1 / 6, 1 / 6, -1 / 6),
      (1 / 24, 1 / 12, 1 / 6),
      (1 / 24, -1 / 12, 1 / 6),
      (0, 0, 1))
_AT = ((1, 1, 1, 1, 1, 0),
       (0, 1, -1, 2, -2, 0),
       (0, 1, 1, 4, 4, 0),
       (0, 1, -1, 8, -8, 1))

# Where it pays (2 cores, fp32, medians; docs/benchmarks.md): 128 ch at 512 px 1.4-1.7x, 256 ch at
# 256 px 1.3-1.9x, 256 ch at 128 px 1.4-1.8x, 128 ch at 256 px 1.3-1.6x; 64 channels or fewer, or
# 512 ch at 64 px, are slower (0.6-0.9x).
_MIN_PIXELS = 128 * 128
_MIN_CHANNELS = 128
_TILE_CHANNELS_PER_BAND = 64 * 1024

_enabled = os.environ.get("GAN3D_WINOGRAD", "1").strip().lower() not in ("0", "false", "no", "off")


def winograd_enabled() -> bool:
    """Whether eligible CPU inference convolutions take the Winograd path (``GAN3D_WINOGRAD``)."""
    return _enabled


def set_winograd_enabled(enabled: bool) -> bool:
    """Turn the Winograd path on or off for this process; returns the previous setting."""
    global _enabled
    previous, _enabled = _enabled, bool(enabled)
    return previous


def winograd_applies(x: Tensor, w: Tensor, *, padding, groups: int = 1, bias: Tensor | None = None) -> bool:
    """Whether ``conv2d(x, w, bias, padding=padding, groups=groups)`` should run as
    :func:`conv3x3_winograd` (see the module docstring for the conditions)."""
    if not _enabled or groups != 1 or x.device.type != "cpu" or x.ndim != 4:
        return False
    if x.dtype != torch.float32 or w.dtype != torch.float32 or tuple(w.shape[2:]) != (3, 3):
        return False
    if padding not in (1, (1, 1), [1, 1]):
        return False
    batch, channels, height, width = x.shape
    if height % 4 or width % 4 or height * width < _MIN_PIXELS:
        return False
    if channels < _MIN_CHANNELS or w.shape[0] < _MIN_CHANNELS or w.shape[1] != channels:
        return False
    if not (x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()):
        return False
    if torch.is_grad_enabled() and (x.requires_grad or w.requires_grad
                                    or (bias is not None and bias.requires_grad)):
        return False
    if torch.is_autocast_enabled("cpu") or torch.compiler.is_compiling():
        return False
    return True


def conv3x3_winograd(x: Tensor, w: Tensor, bias: Tensor | None = None) -> Tensor:
    """``torch.nn.functional.conv2d(x, w, bias, padding=1)`` for ``x [B, C, H, W]`` (H and W multiples
    of 4) and ``w [O, C, 3, 3]`` by F(4x4, 3x3); returns ``[B, O, H, W]`` in channels_last layout.

    No autograd (callers check :func:`winograd_applies`); any float dtype, any memory format of ``x``.
    """
    batch, channels, height, width = x.shape
    out_channels = w.shape[0]
    if tuple(w.shape[1:]) != (channels, 3, 3):
        raise ValueError(f"conv3x3_winograd: weight {tuple(w.shape)} does not fit x {tuple(x.shape)}; "
                         f"expected [O, {channels}, 3, 3]")
    if height % 4 or width % 4:
        raise ValueError(f"conv3x3_winograd: height and width must be multiples of 4, got {height} x {width}")
    dtype = x.dtype
    bt = torch.tensor(_BT, dtype=dtype, device=x.device)
    at = torch.tensor(_AT, dtype=dtype, device=x.device)
    g = torch.tensor(_G, dtype=dtype, device=x.device)
    # U[b * 6 + a] = (G w G^T)[a, b] as [C, O]: the row index a of the tile pairs with the row transform.
    u = (g @ w.detach().to(dtype).reshape(out_channels * channels, 3, 3) @ g.t())
    u = u.reshape(out_channels, channels, 6, 6).permute(3, 2, 1, 0).reshape(36, channels, out_channels)

    tiles_h, tiles_w = height // 4, width // 4
    padded_w = width + 2
    rows = max(1, min(tiles_h, _TILE_CHANNELS_PER_BAND // (tiles_w * channels)))
    per_band = rows * tiles_w
    xh = x.detach().permute(0, 2, 3, 1)  # [B, H, W, C] (a view for channels_last x)
    out = torch.empty(batch, height, width, out_channels, dtype=dtype, device=x.device)
    band = x.new_zeros(4 * rows + 2, padded_w, channels)  # columns 0 and W + 1 stay zero (the padding)
    # Flat buffers, viewed per band at the band's size (a short last band keeps them contiguous).
    row_tf = x.new_empty(rows * 6 * padded_w * channels)
    gathered = x.new_empty(36 * per_band * channels)
    tiles = x.new_empty(36 * per_band * channels)
    products = x.new_empty(36 * per_band * out_channels)
    half = x.new_empty(24 * per_band * out_channels)
    done = x.new_empty(16 * per_band * out_channels)
    bt_rows = bt.expand(rows, 6, 6)
    bias = None if bias is None else bias.detach().to(dtype)

    for n in range(batch):
        for r0 in range(0, tiles_h, rows):
            nr = min(rows, tiles_h - r0)
            count = nr * tiles_w
            lo, hi = 4 * r0 - 1, 4 * (r0 + nr) + 1  # image rows the band covers (one row of halo)
            in_lo, in_hi = max(lo, 0), min(hi, height)
            slab = band[: hi - lo]
            if in_lo > lo:
                slab[: in_lo - lo].zero_()
            if in_hi < hi:
                slab[in_hi - lo:].zero_()
            slab[in_lo - lo: in_hi - lo, 1: width + 1].copy_(xh[n, in_lo:in_hi])
            # Rows: R[r, a] = sum_i BT[a, i] slab[4 r + i] (overlapping windows, one batched product).
            windows = slab.as_strided((nr, 6, padded_w * channels), (4 * padded_w * channels, padded_w * channels, 1))
            r = row_tf[: nr * 6 * padded_w * channels].view(nr, 6, padded_w, channels)
            torch.bmm(bt_rows[:nr], windows, out=r.view(nr, 6, padded_w * channels))
            # Tiles: D[j, a, r, t] = R[r, a, 4 t + j]; columns: V[b, a] = sum_j BT[b, j] D[j, a].
            sr, sa, sw, sc = r.stride()
            d = gathered[: 36 * count * channels].view(6, 6 * count * channels)
            d.view(6, 6, nr, tiles_w, channels).copy_(r.as_strided((6, 6, nr, tiles_w, channels),
                                                                   (sw, sa, sr, 4 * sw, sc)))
            v = tiles[: 36 * count * channels]
            torch.mm(bt, d, out=v.view(6, 6 * count * channels))
            m = products[: 36 * count * out_channels].view(36, count, out_channels)
            torch.bmm(v.view(36, count, channels), u, out=m)
            if bias is not None:
                m[7].add_(bias)  # tile position (a, b) = (1, 1)
            # Back: columns (b -> q) then rows (a -> p); done[q, p, r, t] is output pixel (4 r + p, 4 t + q).
            h = half[: 24 * count * out_channels].view(4, 6 * count * out_channels)
            torch.mm(at, m.view(6, 6 * count * out_channels), out=h)
            y = done[: 16 * count * out_channels].view(4, 4, count * out_channels)
            torch.matmul(at, h.view(4, 6, count * out_channels), out=y)
            y = y.view(4, 4, nr, tiles_w, out_channels).permute(2, 1, 3, 0, 4)
            out[n, 4 * r0: 4 * (r0 + nr)].view(nr, 4, tiles_w, 4, out_channels).copy_(y)
    return out.permute(0, 3, 1, 2)
