"""Modulated convolution with weight demodulation (StyleGAN2, Karras et al. 2020, section 2.2,
equations 1-3; official file training/networks_stylegan2.py ``modulated_conv2d``).

Per sample ``n`` the weights are scaled by the style of their input channel,
``w'[n, o, i] = s[n, i] * w[o, i]`` (modulation), and, with demodulation, each output channel is
renormalised, ``w''[n, o] = w'[n, o] / sqrt(sum_{i,k} w'[n, o, i, k]^2 + 1e-8)``, so unit-variance
inputs give unit-variance outputs. The fused form runs all samples as one grouped convolution.

Speed (CPU, measured with ``tools/bench.py``; see docs/benchmarks.md): the layer's bias and output
gain ride along with the convolution instead of taking passes of their own over the activations,
and ``channels_last`` activations keep their layout (oneDNN's transposed convolution is ~3x faster
in it), which is why a batch of channels_last samples takes the unfused form: grouping samples
would reshape them into a copy.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .conv2d_resample import conv2d_resample

__all__ = ["modulated_conv2d", "is_channels_last"]


def is_channels_last(x: Tensor) -> bool:
    """Whether ``x [B, C, H, W]`` is stored channels-last (and not also plain contiguous, as when C or
    H * W is 1)."""
    return x.ndim == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


def modulated_conv2d(
    x: Tensor,
    weight: Tensor,
    styles: Tensor,
    *,
    noise: Tensor | None = None,
    bias: Tensor | None = None,
    gain: float = 1.0,
    up: int = 1,
    down: int = 1,
    padding: int = 0,
    resample_filter: Tensor | None = None,
    demodulate: bool = True,
    flip_weight: bool = True,
    fused: bool = True,
) -> Tensor:
    """Convolve each sample of ``x [B, I, H, W]`` with ``weight [O, I, k, k]`` modulated by its
    ``styles [B, I]``; returns ``gain * (conv + noise + bias)``.

    Args:
        noise: added after (de)modulation, broadcastable to the output ``[B, O, H', W']``.
        bias: ``[O]``, added with the noise (before any activation the caller applies).
        gain: scales the whole output; callers fold a positively homogeneous activation's gain in
            here (``lrelu(x) * g == lrelu(g * x)`` for ``g > 0``) so it costs no extra pass.
        up, down, padding, resample_filter, flip_weight: as in
            :func:`~.conv2d_resample.conv2d_resample`.
        demodulate: divide by the per-sample, per-output-channel weight norm (equation 3).
        fused: one grouped convolution with per-sample weights (``True``) or scale the activations
            before and after a shared convolution (``False``); both give the same values.

    Returns:
        ``[B, O, H * up / down, W * up / down]`` when ``padding = k // 2``, in ``x``'s memory format.
    """
    batch, in_channels = x.shape[:2]
    out_channels, weight_in, kh, kw = weight.shape
    if weight_in != in_channels or styles.shape != (batch, in_channels):
        raise ValueError(
            f"modulated_conv2d: x {tuple(x.shape)}, weight {tuple(weight.shape)} and styles {tuple(styles.shape)} "
            f"disagree; expected weight [O, {in_channels}, k, k] and styles [{batch}, {in_channels}]"
        )
    if bias is not None and bias.shape != (out_channels,):
        raise ValueError(f"modulated_conv2d: bias must be [{out_channels}], got {tuple(bias.shape)}")
    gain = float(gain)
    if bias is not None:
        bias = bias.to(x.dtype) * gain if gain != 1 else bias.to(x.dtype)
    if noise is not None and gain != 1:
        noise = noise * gain
    # The demodulation coefficients [B, O]: sum_{i,k} (s[n, i] w[o, i, k])^2 = sum_i s[n, i]^2 sum_k w[o, i, k]^2,
    # a matrix product of [B, I] and [I, O] instead of squaring and summing the per-sample weights
    # [B, O, I, k, k] (the official code's order; same values up to float rounding). The weight work of
    # EG3D 512's 21 modulated 3x3 layers at batch 1 (products, squares, sums), 1 thread: 159 -> 94 ms of
    # CPU per call (medians of 9, interleaved; a busy machine).
    dcoefs = None
    if demodulate:
        # In the precision the product of weight and styles had (the promoted dtype), never autocast's.
        dtype = torch.promote_types(weight.dtype, styles.dtype)
        flat = weight.flatten(2).to(dtype)
        with torch.autocast(x.device.type, enabled=False):
            dcoefs = (styles.to(dtype).square() @ torch.einsum("oik,oik->oi", flat, flat).t() + 1e-8).rsqrt()
    if fused and batch > 1 and is_channels_last(x):
        fused = False

    if not fused:
        x = x * styles.to(x.dtype).reshape(batch, in_channels, 1, 1)
        x = conv2d_resample(x, weight.to(x.dtype), resample_filter, up=up, down=down, padding=padding,
                            flip_weight=flip_weight)
        scale = dcoefs * gain if dcoefs is not None else None
        if scale is not None:
            scale = scale.to(x.dtype).reshape(batch, out_channels, 1, 1)
            x = torch.addcmul(bias.reshape(1, -1, 1, 1), x, scale) if bias is not None else x * scale
        else:
            if gain != 1:
                x = x * gain
            if bias is not None:
                x = x + bias.reshape(1, -1, 1, 1)
        return x.add_(noise.to(x.dtype)) if noise is not None else x

    # Per-sample weights [B, O, I, k, k] in one product: the styles, demodulation and gain folded into
    # a [B, O, I] scale first.
    scale = styles.reshape(batch, 1, in_channels)
    if dcoefs is not None:
        scale = scale * (dcoefs * gain).reshape(batch, out_channels, 1)
    elif gain != 1:
        scale = scale * gain
    modulated = weight.unsqueeze(0) * scale.reshape(batch, -1, in_channels, 1, 1)
    grouped = modulated.reshape(batch * out_channels, in_channels, kh, kw).to(x.dtype)
    if batch == 1:  # one group: no reshape (it would give channels_last input strides conv2d misreads)
        x = conv2d_resample(x, grouped, resample_filter, up=up, down=down, padding=padding,
                            flip_weight=flip_weight, bias=bias)
    else:
        # Samples become groups: x [1, B*I, H, W] convolved with weights [B*O, I, k, k], groups=B.
        x = x.reshape(1, batch * in_channels, *x.shape[2:])
        x = conv2d_resample(x, grouped, resample_filter, up=up, down=down, padding=padding, groups=batch,
                            flip_weight=flip_weight, bias=None if bias is None else bias.repeat(batch))
        x = x.reshape(batch, out_channels, *x.shape[2:])
    return x.add_(noise.to(x.dtype)) if noise is not None else x
