"""Equalized-learning-rate layers (ProGAN, Karras et al. 2018, section 4.1; StyleGAN2-ADA official
file training/networks_stylegan2.py ``FullyConnectedLayer`` and ``Conv2dLayer``).

Weights are stored as unit-normal values and scaled at run time by ``1 / sqrt(fan_in)``, so Adam
sees every weight on the same scale. A learning-rate multiplier ``lr_multiplier`` divides the stored
weights and multiplies the run-time gain: same outputs, gradients scaled by ``lr_multiplier``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .bias_act import POSITIVELY_HOMOGENEOUS, activation_gain, bias_act
from .conv2d_resample import conv2d_resample
from .filtered_resampling import setup_filter

__all__ = ["FullyConnectedLayer", "Conv2dLayer"]


class FullyConnectedLayer(nn.Module):
    """Linear layer with equalized learning rate, bias and activation.

    Parameters: ``weight [out_features, in_features]`` drawn from ``N(0, 1) / lr_multiplier`` and
    scaled at run time by ``lr_multiplier / sqrt(in_features)``; ``bias [out_features]`` filled with
    ``bias_init`` and scaled at run time by ``lr_multiplier`` (as the official code does).

    Args:
        in_features, out_features: sizes of ``x [..., in_features]`` -> ``[..., out_features]``.
        bias: add a bias before the activation.
        activation: a name of :data:`~.bias_act.ACTIVATIONS` (``'lrelu'`` gets gain ``sqrt(2)``).
        lr_multiplier: learning-rate multiplier (0.01 in the StyleGAN mapping network).
        bias_init: initial bias value (1 for the style affines, so styles start at one).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        bias: bool = True,
        activation: str = "linear",
        lr_multiplier: float = 1.0,
        bias_init: float = 0.0,
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.activation = activation
        activation_gain(activation)  # fail early on an unknown name
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: Tensor) -> Tensor:
        """``x [..., in_features]`` -> ``[..., out_features]``."""
        w = self.weight.to(x.dtype) * self.weight_gain
        b = None if self.bias is None else self.bias.to(x.dtype) * self.bias_gain
        x = F.linear(x, w, b)  # the bias rides along with the matrix product (no pass of its own)
        return bias_act(x, dim=x.ndim - 1, activation=self.activation, may_overwrite=True)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, activation={self.activation}"


class Conv2dLayer(nn.Module):
    """Square convolution with equalized learning rate, optional filtered 2x up/downsampling,
    bias, activation (with its default gain) and output clamping.

    Parameters: ``weight [out_channels, in_channels, k, k]`` from ``N(0, 1)``, scaled at run time
    by ``1 / sqrt(in_channels * k * k)``; ``bias [out_channels]`` (zeros).

    Args:
        kernel_size: ``k`` (padding ``k // 2`` keeps the size before resampling).
        up, down: resampling factor (1 or 2), with low-pass filter ``resample_filter``.
        conv_clamp: clamp outputs to ``[-conv_clamp, conv_clamp]`` (``None``: no clamping).
        trainable: ``False`` stores weight and bias as buffers (Freeze-D).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        bias: bool = True,
        activation: str = "linear",
        up: int = 1,
        down: int = 1,
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: float | None = None,
        trainable: bool = True,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.activation = activation
        self.up = up
        self.down = down
        self.conv_clamp = conv_clamp
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)
        self.act_gain = activation_gain(activation)
        weight = torch.randn(out_channels, in_channels, kernel_size, kernel_size)
        bias_value = torch.zeros(out_channels) if bias else None
        if trainable:
            self.weight = nn.Parameter(weight)
            self.bias = nn.Parameter(bias_value) if bias_value is not None else None
        else:
            self.register_buffer("weight", weight)
            self.register_buffer("bias", bias_value)

    def forward(self, x: Tensor, gain: float = 1.0) -> Tensor:
        """``x [B, in_channels, H, W]`` -> ``[B, out_channels, H * up / down, W * up / down]``.

        ``gain`` scales the output (and the clamp), e.g. ``sqrt(0.5)`` in residual branches.
        """
        # The bias and, for rectifiers, the output gain go into the convolution (no passes of their own).
        total_gain = self.act_gain * gain
        fold = self.activation in POSITIVELY_HOMOGENEOUS and total_gain > 0
        w = (self.weight * (self.weight_gain * total_gain if fold else self.weight_gain)).to(x.dtype)
        b = None if self.bias is None else (self.bias * total_gain if fold else self.bias)
        # Official layers convolve (flip) when upsampling and correlate otherwise.
        x = conv2d_resample(x, w, self.resample_filter, up=self.up, down=self.down, padding=self.padding,
                            flip_weight=(self.up == 1), bias=b)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, activation=self.activation, gain=1.0 if fold else total_gain, clamp=clamp,
                        may_overwrite=True)

    def extra_repr(self) -> str:
        return (f"in_channels={self.in_channels}, out_channels={self.out_channels}, activation={self.activation}, "
                f"up={self.up}, down={self.down}")
