"""pi-GAN's FiLM-conditioned SIREN (``TALLSIREN``): features -> RGB and raw density.

Facts from marcoamonteiro/pi-GAN ``siren/siren.py``:

* ``num_layers`` (8) FiLM layers ``sin(freq * (W x + b) + phase)`` of width ``hidden_dim`` (256); the
  mapper's raw frequencies are turned into ``freq = 15 * f + 30``;
* density ``sigma = Linear(hidden_dim, 1)`` of the last FiLM output, returned raw (the renderer
  applies pi-GAN's ``clamp_mode``: relu);
* colour: a FiLM layer on ``[ray_direction, x]`` (direction first) driven by the last frequencies
  and phase shifts, then ``sigmoid(Linear(hidden_dim, 3))`` -- RGB in ``[0, 1]`` (pi-GAN maps
  the rendered pixels with ``* 2 - 1``; set the generator's ``image_range='unit'``);
* init: every linear weight ``U(-sqrt(6/n)/25, sqrt(6/n)/25)`` (``frequency_init(25)``), the first
  FiLM layer's ``U(-1/n, 1/n)`` (``first_layer_film_sine_init``); biases keep PyTorch's default.

pi-GAN's ``SPATIALSIRENBASELINE`` is the same network with input points scaled by ``2 / 0.24``:
here that scaling is the coordinate embedder's ``box_warp=0.24``.

It reads ``ws [B, num_ws, 2 * hidden_dim]`` from the ``pigan`` mapper: ``ws[:, i]`` drives FiLM layer
``i`` (``num_layers`` SIREN layers then the colour layer), frequencies first, phase shifts second.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from gan3d.core.interfaces import FeatureDecoder
from gan3d.core.types import Field

__all__ = ["FiLMLayer", "SirenFiLMDecoder"]

#: pi-GAN's map from raw mapper output to SIREN frequencies: ``freq = 15 * f + 30``.
FREQUENCY_GAIN = 15.0
FREQUENCY_BIAS = 30.0


def film_wiring(upstream: dict, decoder: str) -> dict:
    """Build-time wiring of a FiLM-SIREN decoder: ``in_channels`` from the embedder, ``hidden_dim`` from the
    latent width (each latent row is a layer's frequencies | phase shifts, so ``w_dim = 2 * hidden_dim``);
    an odd ``w_dim`` is a :class:`~gan3d.core.recipe.RecipeError` naming ``decoder``."""
    out = {}
    if upstream.get("in_channels") is not None:
        out["in_channels"] = upstream["in_channels"]
    w_dim = upstream.get("w_dim")
    if w_dim is not None:
        if w_dim % 2:
            from gan3d.core.recipe import RecipeError

            raise RecipeError(f"{decoder} decoder: the latent width w_dim={w_dim} must be even (FiLM "
                              "frequencies | phase shifts)")
        out["hidden_dim"] = w_dim // 2
    return out


class FiLMLayer(nn.Module):
    """``x [B, N, in_dim]`` -> ``sin(freq * (W x + b) + phase)`` ``[B, N, out_dim]``;
    ``freq``, ``phase`` ``[B, out_dim]``."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.layer = nn.Linear(in_dim, out_dim)

    def forward(self, x: Tensor, freq: Tensor, phase: Tensor) -> Tensor:
        return torch.sin(self.modulated_linear(x, freq, phase))

    def modulated_linear(self, x: Tensor, freq: Tensor, phase: Tensor,
                         extra: tuple[Tensor, int] | None = None, out: Tensor | None = None) -> Tensor:
        """``freq * (W x + b) + phase`` as one batched matmul: the frequencies are folded into the
        weight (``x (W^T freq) + (b freq + phase)``, ``[B, in, out]``), which saves the two
        elementwise passes over the ``[B, N, out]`` activations that dominate pi-GAN's profile.
        ``extra = (y [B, N, k], W_y [out, k])`` adds ``W_y y`` without concatenating ``y`` to ``x``.
        ``out``: a ``[B, N, out]`` buffer to write into (not under autograd)."""
        weight, bias = self.layer.weight, self.layer.bias
        if extra is not None:
            weight = weight[:, extra[1]:]
        w = weight.t().unsqueeze(0) * freq.unsqueeze(1)            # [B, in, out]
        b = (bias.unsqueeze(0) * freq + phase).unsqueeze(1)        # [B, 1, out]
        if extra is not None:
            y, k = extra
            wy = self.layer.weight[:, :k].t().unsqueeze(0) * freq.unsqueeze(1)  # [B, k, out]
        if out is None:
            out = torch.baddbmm(b, x, w)
            return out if extra is None else torch.baddbmm(out, y, wy)
        torch.baddbmm(b, x, w, out=out)
        return out if extra is None else out.baddbmm_(y, wy)


def _uniform_(weight: Tensor, bound: float) -> None:
    with torch.no_grad():
        weight.uniform_(-bound, bound)


class SirenFiLMDecoder(FeatureDecoder):
    """pi-GAN's SIREN with FiLM conditioning.

    Args:
        in_channels: channels of the embedded points (3 for the ``coordinate`` embedder).
        hidden_dim: width of every FiLM layer (pi-GAN 256); ``ws`` must have ``w_dim = 2 * hidden_dim``.
        num_layers: FiLM layers before the density head (pi-GAN 8); ``num_ws = num_layers + 1``.

    Shapes: ``features [B, R, S, in_channels]``, ``directions [B, R, S, 3]``,
    ``ws [B, >= num_ws, 2 * hidden_dim]`` -> ``Field(features=rgb [B, R, S, 3] in [0, 1],
    density=raw sigma [B, R, S, 1])``.
    """

    out_channels = 3

    @classmethod
    def wire(cls, options: dict, upstream: dict) -> dict:
        """``in_channels`` from the embedder; ``hidden_dim`` from the latent width: the FiLM frequencies and
        phase shifts of a layer are its latent row (pi-GAN's mapping network outputs them directly,
        siren.py ``SPATIALSIRENBASELINE``), so ``w_dim = 2 * hidden_dim``."""
        return film_wiring(upstream, "siren_film")

    def __init__(self, *, in_channels: int = 3, hidden_dim: int = 256, num_layers: int = 8) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("hidden_dim", hidden_dim), ("num_layers", num_layers)):
            if value <= 0:
                raise ValueError(f"siren_film decoder: {name} must be positive, got {value}")
        self.in_channels = in_channels
        self.hidden_dim = hidden_dim
        self.num_layers = num_layers
        self.num_ws = num_layers + 1
        self.w_dim = 2 * hidden_dim
        self.film_layers = nn.ModuleList(
            [FiLMLayer(in_channels if i == 0 else hidden_dim, hidden_dim) for i in range(num_layers)]
        )
        self.density_head = nn.Linear(hidden_dim, 1)
        self.color_film = FiLMLayer(hidden_dim + 3, hidden_dim)
        self.color_head = nn.Linear(hidden_dim, 3)
        # pi-GAN: frequency_init(25) on every linear weight, then the first layer's U(-1/n, 1/n).
        for linear in [f.layer for f in self.film_layers] + [self.density_head, self.color_film.layer, self.color_head]:
            _uniform_(linear.weight, math.sqrt(6.0 / linear.in_features) / 25.0)
        _uniform_(self.film_layers[0].layer.weight, 1.0 / in_channels)

    def forward(self, features: Tensor, directions: Tensor, ws: Tensor) -> Field:
        b, r, s, c = features.shape
        if c != self.in_channels:
            raise ValueError(f"siren_film decoder: features have {c} channels, expected in_channels={self.in_channels}")
        if ws.ndim != 3 or ws.shape[1] != self.num_ws or ws.shape[2] != self.w_dim:
            raise ValueError(
                f"siren_film decoder needs ws [B, {self.num_ws}, {self.w_dim}] (frequencies | phase shifts of "
                f"each FiLM layer, as the 'pigan' mapper gives with num_ws={self.num_ws}, "
                f"film_dim={self.hidden_dim}); got {tuple(ws.shape)}"
            )
        frequencies = ws[..., : self.hidden_dim] * FREQUENCY_GAIN + FREQUENCY_BIAS
        phases = ws[..., self.hidden_dim:]
        x = features.reshape(b, r * s, c)
        # Inference: sin in place, and the layers take turns writing into two buffers (on a CPU a fresh
        # [B, N, 256] tensor per layer costs as much in page faults as its matmul; see docs/benchmarks.md).
        # Autograd keeps every activation, so training allocates per layer.
        inference = not (torch.is_grad_enabled() or torch.is_autocast_enabled(x.device.type)
                         or torch.compiler.is_compiling())
        sin = torch.sin if torch.is_grad_enabled() else torch.sin_
        buffers = [x.new_empty(b, r * s, self.hidden_dim) for _ in range(2)] if inference else [None, None]
        for i, layer in enumerate(self.film_layers):
            x = sin(layer.modulated_linear(x, frequencies[:, i], phases[:, i], out=buffers[i % 2]))
        sigma = self.density_head(x)
        last = self.num_ws - 1
        # The colour layer reads [direction, x]: its weight is split instead of concatenating the inputs.
        color = sin(self.color_film.modulated_linear(x, frequencies[:, last], phases[:, last],
                                                     extra=(directions.reshape(b, r * s, 3), 3),
                                                     out=buffers[self.num_layers % 2]))
        rgb = torch.sigmoid(self.color_head(color))
        return Field(features=rgb.reshape(b, r, s, 3), density=sigma.reshape(b, r, s, 1))

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, hidden_dim={self.hidden_dim}, num_layers={self.num_layers}"
