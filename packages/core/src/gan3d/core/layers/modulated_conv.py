"""Modulated convolution with weight demodulation (StyleGAN2, Karras et al. 2020, section 2.2,
equations 1-3; official file training/networks_stylegan2.py ``modulated_conv2d``).

Per sample ``n`` the weights are scaled by the style of their input channel,
``w'[n, o, i] = s[n, i] * w[o, i]`` (modulation), and, with demodulation, each output channel is
renormalised, ``w''[n, o] = w'[n, o] / sqrt(sum_{i,k} w'[n, o, i, k]^2 + 1e-8)``, so unit-variance
inputs give unit-variance outputs. The fused form runs all samples as one grouped convolution.
"""

from __future__ import annotations

from torch import Tensor

from .conv2d_resample import conv2d_resample

__all__ = ["modulated_conv2d"]


def modulated_conv2d(
    x: Tensor,
    weight: Tensor,
    styles: Tensor,
    *,
    noise: Tensor | None = None,
    up: int = 1,
    down: int = 1,
    padding: int = 0,
    resample_filter: Tensor | None = None,
    demodulate: bool = True,
    flip_weight: bool = True,
    fused: bool = True,
) -> Tensor:
    """Convolve each sample of ``x [B, I, H, W]`` with ``weight [O, I, k, k]`` modulated by its
    ``styles [B, I]``.

    Args:
        noise: added after (de)modulation, broadcastable to the output ``[B, O, H', W']``.
        up, down, padding, resample_filter, flip_weight: as in
            :func:`~.conv2d_resample.conv2d_resample`.
        demodulate: divide by the per-sample, per-output-channel weight norm (equation 3).
        fused: one grouped convolution with per-sample weights (``True``) or scale the activations
            before and after a shared convolution (``False``); both give the same values.

    Returns:
        ``[B, O, H * up / down, W * up / down]`` when ``padding = k // 2``.
    """
    batch, in_channels = x.shape[:2]
    out_channels, weight_in, kh, kw = weight.shape
    if weight_in != in_channels or styles.shape != (batch, in_channels):
        raise ValueError(
            f"modulated_conv2d: x {tuple(x.shape)}, weight {tuple(weight.shape)} and styles {tuple(styles.shape)} "
            f"disagree; expected weight [O, {in_channels}, k, k] and styles [{batch}, {in_channels}]"
        )

    # Per-sample modulated weights [B, O, I, k, k] and their demodulation coefficients [B, O].
    modulated = weight.unsqueeze(0) * styles.reshape(batch, 1, in_channels, 1, 1)
    dcoefs = (modulated.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt() if demodulate else None

    if not fused:
        x = x * styles.to(x.dtype).reshape(batch, in_channels, 1, 1)
        x = conv2d_resample(x, weight.to(x.dtype), resample_filter, up=up, down=down, padding=padding,
                            flip_weight=flip_weight)
        if dcoefs is not None:
            x = x * dcoefs.to(x.dtype).reshape(batch, out_channels, 1, 1)
        return x + noise.to(x.dtype) if noise is not None else x

    if dcoefs is not None:
        modulated = modulated * dcoefs.reshape(batch, out_channels, 1, 1, 1)
    # Samples become groups: x [1, B*I, H, W] convolved with weights [B*O, I, k, k], groups=B.
    x = x.reshape(1, batch * in_channels, *x.shape[2:])
    grouped = modulated.reshape(batch * out_channels, in_channels, kh, kw).to(x.dtype)
    x = conv2d_resample(x, grouped, resample_filter, up=up, down=down, padding=padding, groups=batch,
                        flip_weight=flip_weight)
    x = x.reshape(batch, out_channels, *x.shape[2:])
    return x + noise.to(x.dtype) if noise is not None else x
