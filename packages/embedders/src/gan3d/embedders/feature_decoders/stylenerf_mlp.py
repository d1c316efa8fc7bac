"""StyleNeRF's style-modulated NeRF MLP (Gu et al. 2022, section 3.1).

Facts from facebookresearch/StyleNeRF ``training/stylenerf.py`` (``Style2Layer``, ``NeRFBlock``) and
``training/networks.py`` (``ToRGBLayer``, ``FullyConnectedLayer``), FFHQ settings from
``conf/model/stylenerf_ffhq.yaml``:

* every hidden layer is a StyleGAN2 modulated 1x1 convolution with demodulation: style
  ``s = affine(w)`` (equalized linear, bias initialised to 1), weight ``N(0, 1)``, zero bias,
  leaky ReLU 0.2 with gain ``sqrt(2)``; ``depth`` (``n_blocks`` 8) such layers of width
  ``hidden_dim`` (``hidden_size`` 128), the first taking the embedded point;
* density and features come from ``ToRGBLayer``s (modulated, *not* demodulated, styles scaled by
  ``1 / sqrt(in)``, zero bias, linear): ``sigma [1]`` raw, ``feat [output_dim]`` (``rgb_out_dim``
  256);
* with ``predict_rgb`` an equalized linear ``output_dim -> 3`` turns the features into RGB, with no
  final activation (``final_sigmoid_act`` False), and the decoder returns ``[rgb, feat]``;
* ``ws`` index: layer ``i`` reads ``ws[:, i]``, density ``ws[:, depth]``, features ``ws[:, depth + 1]``;
  ``num_ws = depth + 2``;
* the positional encoding (``n_freq_posenc`` 10, ``sin/cos(2^k pi p)``, no raw input) lives in our
  ``coordinate`` embedder (``num_frequencies=10, include_input=False, multiply_by_pi=True``: 60 channels).

Not carried over: StyleNeRF's optional input-magnitude EMA (``magnitude_ema_beta``), skip
connections, view-direction branch and SDF mode, all off in the default configuration except the
magnitude EMA.

RGB range: raw and unbounded (StyleNeRF treats it as a ``[-1, 1]`` image): ``image_range='tanh'``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from gan3d.core.interfaces import FeatureDecoder
from gan3d.core.layers.bias_act import bias_act
from gan3d.core.layers.equalized import FullyConnectedLayer
from gan3d.core.layers.modulated_conv import modulated_conv2d
from gan3d.core.types import Field

__all__ = ["ModulatedLinear", "StyleNeRFDecoder"]


class ModulatedLinear(nn.Module):
    """A style-modulated linear layer (a modulated 1x1 convolution) over points.

    ``x [B, I, N, 1]``, ``w [B, w_dim]`` -> ``[B, O, N, 1]``. ``demodulate=True`` with ``'lrelu'`` is
    StyleNeRF's ``Style2Layer``; ``demodulate=False`` with ``'linear'`` and styles scaled by
    ``1 / sqrt(I)`` is its ``ToRGBLayer``.
    """

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, *, demodulate: bool, activation: str) -> None:
        super().__init__()
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.demodulate = demodulate
        self.activation = activation
        # ToRGBLayer scales the styles instead of demodulating (networks.py ``weight_gain``).
        self.style_gain = 1.0 if demodulate else 1.0 / math.sqrt(in_channels)

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        styles = self.affine(w) * self.style_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=self.demodulate)
        return bias_act(x, self.bias, activation=self.activation)


class StyleNeRFDecoder(FeatureDecoder):
    """``features [B, R, S, in_channels]``, ``ws [B, >= num_ws, w_dim]`` -> ``Field``.

    Args:
        in_channels: channels of the embedded points (60 for StyleNeRF's encoding).
        hidden_dim: width of the modulated layers (StyleNeRF 128).
        depth: modulated hidden layers (StyleNeRF ``n_blocks`` 8).
        output_dim: feature channels (StyleNeRF ``rgb_out_dim`` 256).
        w_dim: latent width (512).
        predict_rgb: prepend an RGB head's 3 channels to the features (StyleNeRF: yes).

    Output: ``Field(features [B, R, S, 3 + output_dim] (or ``output_dim`` without ``predict_rgb``),
    density=raw sigma [B, R, S, 1])``.
    """

    def __init__(self, *, in_channels: int = 60, hidden_dim: int = 128, depth: int = 8, output_dim: int = 256,
                 w_dim: int = 512, predict_rgb: bool = True) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("hidden_dim", hidden_dim), ("depth", depth),
                            ("output_dim", output_dim), ("w_dim", w_dim)):
            if value <= 0:
                raise ValueError(f"stylenerf_mlp decoder: {name} must be positive, got {value}")
        self.in_channels = in_channels
        self.depth = depth
        self.w_dim = w_dim
        self.num_ws = depth + 2
        self.layers = nn.ModuleList(
            ModulatedLinear(hidden_dim if i else in_channels, hidden_dim, w_dim, demodulate=True, activation="lrelu")
            for i in range(depth)
        )
        self.density_head = ModulatedLinear(hidden_dim, 1, w_dim, demodulate=False, activation="linear")
        self.feature_head = ModulatedLinear(hidden_dim, output_dim, w_dim, demodulate=False, activation="linear")
        self.rgb_head = FullyConnectedLayer(output_dim, 3) if predict_rgb else None
        self.out_channels = output_dim + (3 if predict_rgb else 0)

    def forward(self, features: Tensor, directions: Tensor | None, ws: Tensor) -> Field:
        b, r, s, c = features.shape
        if c != self.in_channels:
            raise ValueError(
                f"stylenerf_mlp decoder: features have {c} channels, expected in_channels={self.in_channels}"
            )
        if ws.ndim != 3 or ws.shape[1] < self.num_ws or ws.shape[2] != self.w_dim:
            raise ValueError(
                f"stylenerf_mlp decoder needs ws [B, >={self.num_ws}, {self.w_dim}] (depth + 2 latents); "
                f"got {tuple(ws.shape)}"
            )
        # Points become the rows of a one-pixel-wide image so each layer is a modulated 1x1 convolution.
        x = features.reshape(b, r * s, c).transpose(1, 2).unsqueeze(-1)  # [B, C, N, 1]
        for i, layer in enumerate(self.layers):
            x = layer(x, ws[:, i])
        sigma = self.density_head(x, ws[:, self.depth])
        feat = self.feature_head(x, ws[:, self.depth + 1])

        def points_last(t: Tensor) -> Tensor:  # [B, F, N, 1] -> [B, R, S, F]
            return t.squeeze(-1).transpose(1, 2).reshape(b, r, s, t.shape[1])

        feat = points_last(feat)
        if self.rgb_head is not None:
            feat = torch.cat([self.rgb_head(feat), feat], dim=-1)
        return Field(features=feat, density=points_last(sigma))
