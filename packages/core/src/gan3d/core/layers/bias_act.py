"""Bias, activation, gain and clamp in one step: the reference math of StyleGAN2's ``bias_act``.

Each activation has a default gain that keeps the signal variance roughly unchanged for unit-normal
inputs (StyleGAN2-ADA, official file torch_utils/ops/bias_act.py ``activation_funcs``): ``sqrt(2)``
for the rectifiers (He et al. 2015), 1 for the others.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["Activation", "ACTIVATIONS", "POSITIVELY_HOMOGENEOUS", "activation_gain", "bias_act"]


@dataclass(frozen=True)
class Activation:
    """An activation function and its default gain."""

    func: Callable[[Tensor], Tensor]
    default_gain: float


#: Activation functions by name, with the default gains of bias_act.py ``activation_funcs``.
ACTIVATIONS: dict[str, Activation] = {
    "linear": Activation(lambda x: x, 1.0),
    "relu": Activation(F.relu, math.sqrt(2)),
    "lrelu": Activation(lambda x: F.leaky_relu(x, 0.2), math.sqrt(2)),  # slope 0.2 (StyleGAN)
    "tanh": Activation(torch.tanh, 1.0),
    "sigmoid": Activation(torch.sigmoid, 1.0),
    "elu": Activation(F.elu, 1.0),
    "selu": Activation(F.selu, 1.0),
    "softplus": Activation(F.softplus, 1.0),
    "swish": Activation(lambda x: x * torch.sigmoid(x), math.sqrt(2)),
}


def activation_gain(name: str) -> float:
    """The default gain of activation ``name``."""
    return _lookup(name).default_gain


def _lookup(name: str) -> Activation:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def bias_act(
    x: Tensor,
    bias: Tensor | None = None,
    *,
    dim: int = 1,
    activation: str = "linear",
    gain: float | None = None,
    clamp: float | None = None,
    may_overwrite: bool = False,
) -> Tensor:
    """``clamp(act(x + bias) * gain, -clamp, clamp)``.

    Args:
        x: any shape; ``bias [x.shape[dim]]`` is broadcast along ``dim``.
        activation: a key of :data:`ACTIVATIONS`.
        gain: output scale; ``None`` uses the activation's default gain.
        clamp: clamp the output to ``[-clamp, clamp]`` (``None``: no clamping). StyleGAN2-ADA clamps
            convolution outputs to 256 to keep mixed precision from overflowing.
        may_overwrite: ``x`` is a temporary the caller made for this call; without autograd every
            step may then write into it.
    """
    act = _lookup(activation)
    # Without autograd, every step after the first writes into the tensor the first one made: at
    # 512 px each pass is a fresh 128 MB buffer otherwise (allocation and page faults dominate).
    inplace = not torch.is_grad_enabled()
    owned = may_overwrite  # whether x may be written in place (this function or the caller made it)
    if bias is not None:
        shape = [1] * x.ndim
        shape[dim] = -1
        bias = bias.to(x.dtype).reshape(shape)
        x = x.add_(bias) if inplace and owned else x + bias
        owned = True
    if activation == "lrelu" and inplace and owned:
        x = F.leaky_relu_(x, 0.2)
    elif activation == "relu" and inplace and owned:
        x = F.relu_(x)
    else:
        y = act.func(x)
        owned = owned or y is not x
        x = y
    gain = act.default_gain if gain is None else float(gain)
    if gain != 1:
        x = x.mul_(gain) if inplace and owned else x * gain
        owned = True
    if clamp is not None and clamp >= 0:
        x = x.clamp_(-clamp, clamp) if inplace and owned else x.clamp(-clamp, clamp)
    return x


#: Activations with ``act(g * x) == g * act(x)`` for ``g > 0``: their gain can be folded into the
#: layer's weights and bias.
POSITIVELY_HOMOGENEOUS = frozenset({"linear", "relu", "lrelu"})
