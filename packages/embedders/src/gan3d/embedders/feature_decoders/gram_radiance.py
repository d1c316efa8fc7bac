"""GRAM's radiance generator: a FiLM-SIREN whose every layer adds to the density and the colour.

Facts from microsoft/GRAM (commit 5a5ac8e) ``generators/representations/gram.py`` ``GramRF``:

* ``num_layers`` (8) FiLM layers ``sin(freq * (W x + b) + phase)`` of width ``hidden_dim`` (256),
  ``freq = 15 f + 30`` -- pi-GAN's (:class:`~gan3d.embedders.feature_decoders.siren_film.FiLMLayer`);
* unlike pi-GAN's single density and colour head on the last layer, every layer ``i >= 1`` has its own
  density head ``Linear(hidden_dim, 1)`` (``output_sigma[i-1]``) and colour head
  ``Linear(hidden_dim, 3)`` (``output_color[i-1]``), and the outputs are summed:
  ``sigma = sum_i output_sigma[i-1](x_i)``, ``rgb = sum_i output_color[i-1](f_i)``, with ``f_i = x_i``
  except for the last layer, where ``f = color_layer(cat[direction, x])`` is a FiLM layer on the ray
  direction and the features (``FiLMLayer(hidden_dim + 3, hidden_dim)``, driven by the last latent row);
* ``rgb = sigmoid(rgb) * (1 + 2 eps) - eps`` with ``eps = 1e-3`` (``rgb_clamp_mode='widen_sigmoid'``,
  every config); density returned raw here, ``softplus`` in the renderer (``sigma_clamp_mode``);
* init ``frequency_init(25)`` on every linear weight, ``U(-1/n, 1/n)`` on the first layer's; biases keep
  PyTorch's default -- as pi-GAN's.

GRAM scales points by ``2 / normalize`` (0.24 FFHQ/Cats, 2 CARLA) before the first layer: here that is
the coordinate embedder's ``box_warp``. The frequencies and phase shifts come from the ``pigan`` mapper,
whose network is GRAM's ``CustomMappingNetwork`` unchanged (``ws[:, i]``: FiLM layer ``i``, then the
colour layer).

GRAM's ``partial_grad`` (``manifold_renderer.py`` ``ManifoldRenderer.render``): with ``grad_ray_fraction``
below 1, in training with autograd on, a random ``floor(R * fraction)`` of the rays are decoded with
gradient and the rest without (GRAM: a quarter). Pair it with the manifold sampler's
``detach_intersections``, as GRAM's flag does both. The released configs leave it off.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from gan3d.core.interfaces import FeatureDecoder
from gan3d.core.types import Field

from .siren_film import FREQUENCY_BIAS, FREQUENCY_GAIN, FiLMLayer, film_wiring

__all__ = ["GRAMRadianceDecoder", "RGB_ACTIVATIONS"]

#: ``rgb_clamp_mode`` of GramRF: 'sigmoid', or 'widen_sigmoid' (every released config).
RGB_ACTIVATIONS = ("sigmoid", "widen_sigmoid")
#: GramRF.forward_with_frequencies_phase_shifts ``eps`` of the widened sigmoid.
WIDEN_SIGMOID_EPS = 1e-3


def _uniform_(weight: Tensor, bound: float) -> None:
    with torch.no_grad():
        weight.uniform_(-bound, bound)


class GRAMRadianceDecoder(FeatureDecoder):
    """GRAM's radiance generator (``GramRF`` without its mapping network, which is the ``pigan`` mapper).

    Args:
        in_channels: channels of the embedded points (3 for the ``coordinate`` embedder).
        hidden_dim: width of every FiLM layer (GRAM 256); ``ws`` has ``w_dim = 2 * hidden_dim``.
        num_layers: FiLM layers (GRAM 8); ``num_ws = num_layers + 1``; ``num_layers - 1`` density and
            colour heads.
        rgb_activation: one of :data:`RGB_ACTIVATIONS`.
        grad_ray_fraction: fraction of the rays decoded with gradient in training (1: all; GRAM's
            ``partial_grad``: 0.25).

    Shapes: ``features [B, R, S, in_channels]``, ``directions [B, R, S, 3]``,
    ``ws [B, >= num_ws, 2 * hidden_dim]`` -> ``Field(features=rgb [B, R, S, 3] in [-eps, 1 + eps],
    density=raw sigma [B, R, S, 1])``.

    Parameter names follow GramRF's with these prefix renames: ``network.`` -> ``film_layers.``,
    ``color_layer.0.`` -> ``color_film.``, ``output_sigma.`` -> ``density_heads.``, ``output_color.`` ->
    ``color_heads.``.
    """

    out_channels = 3

    @classmethod
    def wire(cls, options: dict, upstream: dict) -> dict:
        """``in_channels`` from the embedder; ``hidden_dim`` from the latent width, as for pi-GAN's SIREN
        (:meth:`~gan3d.embedders.feature_decoders.siren_film.SirenFiLMDecoder.wire`): each latent row is a
        FiLM layer's frequencies and phase shifts (GramRF's ``CustomMappingNetwork`` output), so
        ``w_dim = 2 * hidden_dim``."""
        return film_wiring(upstream, "gram_radiance")

    def __init__(self, *, in_channels: int = 3, hidden_dim: int = 256, num_layers: int = 8,
                 rgb_activation: str = "widen_sigmoid", grad_ray_fraction: float = 1.0) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("hidden_dim", hidden_dim)):
            if value <= 0:
                raise ValueError(f"gram_radiance decoder: {name} must be positive, got {value}")
        if num_layers < 2:
            raise ValueError(f"gram_radiance decoder: num_layers must be >= 2 (the heads start at the second "
                             f"layer), got {num_layers}")
        if rgb_activation not in RGB_ACTIVATIONS:
            raise ValueError(f"gram_radiance decoder: rgb_activation must be one of {', '.join(RGB_ACTIVATIONS)}, "
                             f"got {rgb_activation!r}")
        if not 0.0 < grad_ray_fraction <= 1.0:
            raise ValueError(f"gram_radiance decoder: grad_ray_fraction must be in (0, 1], got {grad_ray_fraction}")
        self.in_channels = in_channels
        self.hidden_dim = hidden_dim
        self.num_layers = num_layers
        self.num_ws = num_layers + 1
        self.w_dim = 2 * hidden_dim
        self.rgb_activation = rgb_activation
        self.grad_ray_fraction = float(grad_ray_fraction)
        self.film_layers = nn.ModuleList(
            [FiLMLayer(in_channels if i == 0 else hidden_dim, hidden_dim) for i in range(num_layers)]
        )
        self.color_film = FiLMLayer(hidden_dim + 3, hidden_dim)
        self.density_heads = nn.ModuleList(nn.Linear(hidden_dim, 1) for _ in range(num_layers - 1))
        self.color_heads = nn.ModuleList(nn.Linear(hidden_dim, 3) for _ in range(num_layers - 1))
        linears = ([f.layer for f in self.film_layers] + [self.color_film.layer] + list(self.density_heads)
                   + list(self.color_heads))
        for linear in linears:  # frequency_init(25)
            _uniform_(linear.weight, math.sqrt(6.0 / linear.in_features) / 25.0)
        _uniform_(self.film_layers[0].layer.weight, 1.0 / in_channels)  # first_layer_film_sine_init

    def forward(self, features: Tensor, directions: Tensor, ws: Tensor) -> Field:
        b, r, s, c = features.shape
        if c != self.in_channels:
            raise ValueError(f"gram_radiance decoder: features have {c} channels, expected in_channels="
                             f"{self.in_channels}")
        if directions.shape != (b, r, s, 3):
            raise ValueError(f"gram_radiance decoder: directions must be [B, R, S, 3] = {(b, r, s, 3)}, "
                             f"got {tuple(directions.shape)}")
        if ws.ndim != 3 or ws.shape[0] != b or ws.shape[1] < self.num_ws or ws.shape[2] != self.w_dim:
            raise ValueError(
                f"gram_radiance decoder needs ws [{b}, >={self.num_ws}, {self.w_dim}] (frequencies | phase shifts "
                f"of each FiLM layer, as the 'pigan' mapper gives with film_dim={self.hidden_dim}); got "
                f"{tuple(ws.shape)}"
            )
        partial = self.training and torch.is_grad_enabled() and self.grad_ray_fraction < 1.0
        if not partial:
            rgb, sigma = self._decode(features, directions, ws)
        else:
            # GRAM partial_grad: a random subset of rays with gradient, the others without.
            order = torch.randperm(r, device=features.device)
            keep = order[: int(r * self.grad_ray_fraction)]
            rest = order[len(keep):]
            rgb_grad, sigma_grad = self._decode(features[:, keep], directions[:, keep], ws)
            with torch.no_grad():
                rgb_rest, sigma_rest = self._decode(features[:, rest], directions[:, rest], ws)
            rgb = rgb_grad.new_empty(b, r, s, 3)
            sigma = sigma_grad.new_empty(b, r, s, 1)
            rgb[:, keep], rgb[:, rest] = rgb_grad, rgb_rest
            sigma[:, keep], sigma[:, rest] = sigma_grad, sigma_rest
        return Field(features=rgb, density=sigma)

    def _decode(self, features: Tensor, directions: Tensor, ws: Tensor) -> tuple[Tensor, Tensor]:
        """``features [B, R, S, C]`` -> ``rgb [B, R, S, 3]``, raw ``sigma [B, R, S, 1]``."""
        b, r, s, c = features.shape
        frequencies = ws[..., : self.hidden_dim] * FREQUENCY_GAIN + FREQUENCY_BIAS
        phases = ws[..., self.hidden_dim:]
        x = features.reshape(b, r * s, c)
        last = self.num_layers - 1
        sigma: Tensor | None = None
        rgb: Tensor | None = None
        for i, layer in enumerate(self.film_layers):
            x = torch.sin(layer.modulated_linear(x, frequencies[:, i], phases[:, i]))
            if i == 0:
                continue
            if i == last:
                # The colour layer reads [direction, x]; its weight is split instead of concatenating.
                feature = torch.sin(self.color_film.modulated_linear(
                    x, frequencies[:, self.num_layers], phases[:, self.num_layers],
                    extra=(directions.reshape(b, r * s, 3), 3)))
            else:
                feature = x
            layer_sigma, layer_rgb = self.density_heads[i - 1](x), self.color_heads[i - 1](feature)
            sigma = layer_sigma if sigma is None else sigma + layer_sigma
            rgb = layer_rgb if rgb is None else rgb + layer_rgb
        assert sigma is not None and rgb is not None  # num_layers >= 2
        rgb = torch.sigmoid(rgb)
        if self.rgb_activation == "widen_sigmoid":
            rgb = rgb * (1 + 2 * WIDEN_SIGMOID_EPS) - WIDEN_SIGMOID_EPS
        return rgb.reshape(b, r, s, 3), sigma.reshape(b, r, s, 1)

    def extra_repr(self) -> str:
        return (f"in_channels={self.in_channels}, hidden_dim={self.hidden_dim}, num_layers={self.num_layers}, "
                f"rgb_activation={self.rgb_activation!r}, grad_ray_fraction={self.grad_ray_fraction}")
