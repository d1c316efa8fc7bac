"""StyleNeRF's NeRF MLP (Gu et al. 2022, section 3.1): the style-modulated foreground MLP, and the
plain MLP of its NeRF++ background.

Facts from facebookresearch/StyleNeRF ``training/stylenerf.py`` (``Style2Layer``, ``NeRFBlock``) and
``training/networks.py`` (``ToRGBLayer``, ``Conv2dLayer``, ``FullyConnectedLayer``), FFHQ settings from
``conf/model/stylenerf_ffhq.yaml`` (``foreground_kwargs``, ``background_kwargs``, ``z_dim: 0``,
``z_dim_bg: 32``, ``rgb_out_dim: 256``):

* ``NeRFBlock`` has ``fc_in`` (embedded point -> ``hidden_size``), ``n_blocks - 1`` hidden layers
  ``blocks``, a density head ``sigma_out`` (1 channel) and a feature head ``feat_out``
  (``rgb_out_dim``); with ``predict_rgb`` a linear 1x1 ``to_rgb`` (equalized ``Conv2dLayer``) turns the
  features into RGB and the block returns ``[rgb, feat]``. No final activation (``final_sigmoid_act``
  False), no skip connection (``use_skip`` False), no view directions (``use_viewdirs`` False).
* ``modulated=True`` (the foreground, ``z_dim = 0``): ``fc_in`` and ``blocks`` are StyleGAN2 modulated 1x1
  convolutions with demodulation (``Style2Layer``: style ``affine(w)``, equalized, bias initialised to 1;
  weight ``N(0, 1)``; zero bias; leaky ReLU 0.2 with gain ``sqrt(2)``; no clamp); ``sigma_out`` and
  ``feat_out`` are ``ToRGBLayer``s (modulated, NOT demodulated, styles times ``1 / sqrt(in)``, zero bias,
  linear). ``ws`` rows: ``fc_in`` 0, ``blocks[i]`` ``i + 1``, ``sigma_out`` ``depth``, ``feat_out``
  ``depth + 1`` (the last); ``num_ws = depth + 2``. FFHQ: 60 -> 128 x 8 -> (1, 256) + RGB, 779,072
  parameters, 10 rows.
* ``modulated=False`` (the background, ``z_dim_bg = 32 > 0``: ``NeRFBlock`` then sets ``w_dim = 0``): every
  layer is a plain ``nn.Linear`` with PyTorch's default initialisation (the official layers copy it:
  kaiming-uniform with ``a = sqrt(5)``, bias ``U(+-1/sqrt(fan_in))``), ``fc_in``/``blocks`` followed by a ReLU
  (``Style2Layer`` with ``w_dim = 0`` always uses ReLU), the heads linear; the latent enters as input
  channels instead (our ``inverted_sphere`` embedder appends it); ``num_ws = 0``. FFHQ: 112 -> 64 x 4 ->
  (1, 256) + RGB, 37,188 parameters.
* The positional encoding (``n_freq_posenc`` 10, ``sin/cos(2^k pi p)``, no raw input) is done by the
  embedder: ``coordinate`` (``num_frequencies=10, include_input=False, multiply_by_pi=True``: 60 channels)
  for the foreground, ``inverted_sphere`` for the background.
* StyleNeRF's input-magnitude EMA (``magnitude_ema_beta``) is a setting of its upsampler's layers; the NeRF
  blocks never receive it (``foreground_kwargs``/``background_kwargs`` do not carry it), so it is not here.

Parameter names follow ``NeRFBlock`` (``fc_in``, ``blocks.i``, ``sigma_out``, ``feat_out``, ``to_rgb``
with the same shapes), so an official ``synthesis.fg_nerf.`` / ``synthesis.bg_nerf.`` state dict loads by
renaming that prefix.

RGB range: raw and unbounded (StyleNeRF treats it as a ``[-1, 1]`` image): ``image_range='tanh'``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan3d.core.interfaces import FeatureDecoder
from gan3d.core.layers.bias_act import bias_act
from gan3d.core.layers.equalized import Conv2dLayer, FullyConnectedLayer
from gan3d.core.layers.modulated_conv import modulated_conv2d
from gan3d.core.types import Field

__all__ = ["ModulatedLinear", "StyleNeRFDecoder"]


class ModulatedLinear(nn.Module):
    """A style-modulated linear layer (a modulated 1x1 convolution) over points.

    ``x [B, I, N, 1]``, ``w [B, w_dim]`` -> ``[B, O, N, 1]``. ``demodulate=True`` with ``'lrelu'`` is
    StyleNeRF's ``Style2Layer``; ``demodulate=False`` with ``'linear'`` and styles scaled by
    ``1 / sqrt(I)`` is its ``ToRGBLayer``. Parameters ``affine`` (``w_dim -> I``, bias init 1),
    ``weight [O, I, 1, 1]``, ``bias [O]``, as in both official layers.
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
        in_channels: channels of the embedded points (60 for the foreground encoding; 80 + 32 for the
            background's 4D encoding and latent).
        hidden_dim: width of the hidden layers (StyleNeRF ``hidden_size``: 128 foreground, 64 background).
        depth: hidden layers, ``fc_in`` included (``n_blocks``: 8 foreground, 4 background).
        output_dim: feature channels (``rgb_out_dim`` 256).
        w_dim: latent width (512); unused when ``modulated`` is off.
        predict_rgb: prepend an RGB head's 3 channels to the features (StyleNeRF: yes).
        modulated: style-modulated layers reading ``ws`` (the foreground) or plain ReLU layers reading no
            latent row (the background, whose latent comes in with the features).

    Output: ``Field(features [B, R, S, 3 + output_dim] (``output_dim`` without ``predict_rgb``),
    density=raw sigma [B, R, S, 1])``.

    Example:
        >>> dec = StyleNeRFDecoder(in_channels=6, hidden_dim=8, depth=2, output_dim=4, w_dim=4)
        >>> dec(torch.zeros(1, 2, 3, 6), None, torch.zeros(1, dec.num_ws, 4)).features.shape
        torch.Size([1, 2, 3, 7])
    """

    def __init__(self, *, in_channels: int = 60, hidden_dim: int = 128, depth: int = 8, output_dim: int = 256,
                 w_dim: int = 512, predict_rgb: bool = True, modulated: bool = True) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("hidden_dim", hidden_dim), ("depth", depth),
                            ("output_dim", output_dim), ("w_dim", w_dim)):
            if value <= 0:
                raise ValueError(f"stylenerf_mlp decoder: {name} must be positive, got {value}")
        self.in_channels = in_channels
        self.depth = depth
        self.w_dim = w_dim
        self.modulated = modulated
        self.num_ws = depth + 2 if modulated else 0
        if modulated:
            def hidden(i: int, o: int) -> nn.Module:
                return ModulatedLinear(i, o, w_dim, demodulate=True, activation="lrelu")

            def head(i: int, o: int) -> nn.Module:
                return ModulatedLinear(i, o, w_dim, demodulate=False, activation="linear")
        else:
            hidden = head = nn.Linear  # the official plain layers reproduce nn.Linear's initialisation
        self.fc_in = hidden(in_channels, hidden_dim)
        self.blocks = nn.ModuleList(hidden(hidden_dim, hidden_dim) for _ in range(depth - 1))
        self.sigma_out = head(hidden_dim, 1)
        self.feat_out = head(hidden_dim, output_dim)
        self.to_rgb = Conv2dLayer(output_dim, 3, 1) if predict_rgb else None
        self.out_channels = output_dim + (3 if predict_rgb else 0)

    def forward(self, features: Tensor, directions: Tensor | None, ws: Tensor | None) -> Field:
        b, r, s, c = features.shape
        if c != self.in_channels:
            raise ValueError(
                f"stylenerf_mlp decoder: features have {c} channels, expected in_channels={self.in_channels}"
            )
        if self.modulated and (ws is None or ws.ndim != 3 or ws.shape[1] < self.num_ws or ws.shape[2] != self.w_dim):
            raise ValueError(
                f"stylenerf_mlp decoder needs ws [B, >={self.num_ws}, {self.w_dim}] (depth + 2 latents); "
                f"got {None if ws is None else tuple(ws.shape)}"
            )
        # Points become the rows of a one-pixel-wide image [B, C, N, 1], as the official block runs them.
        x = features.reshape(b, r * s, c).transpose(1, 2).unsqueeze(-1)
        if self.modulated:
            x = self.fc_in(x, ws[:, 0])
            for i, layer in enumerate(self.blocks):
                x = layer(x, ws[:, i + 1])
            sigma = self.sigma_out(x, ws[:, self.depth])
            feat = self.feat_out(x, ws[:, self.depth + 1])
        else:
            h = F.relu(self.fc_in(x.squeeze(-1).transpose(1, 2)))  # [B, N, hidden]
            for layer in self.blocks:
                h = F.relu(layer(h))
            sigma = self.sigma_out(h).transpose(1, 2).unsqueeze(-1)
            feat = self.feat_out(h).transpose(1, 2).unsqueeze(-1)
        if self.to_rgb is not None:
            feat = torch.cat([self.to_rgb(feat), feat], dim=1)

        def points_last(t: Tensor) -> Tensor:  # [B, F, N, 1] -> [B, R, S, F]
            return t.squeeze(-1).transpose(1, 2).reshape(b, r, s, t.shape[1])

        return Field(features=points_last(feat), density=points_last(sigma))
