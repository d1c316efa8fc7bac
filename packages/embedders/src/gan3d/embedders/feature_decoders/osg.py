"""EG3D's OSG decoder: a small MLP from aggregated tri-plane features to density and features.

Facts from NVlabs/eg3d ``training/triplane.py`` (``OSGDecoder``, ``TriPlaneGenerator``):

* ``FullyConnectedLayer(32, 64) -> Softplus -> FullyConnectedLayer(64, 1 + 32)``, equalized learning
  rate with ``lr_multiplier = decoder_lr_mul`` (default 1);
* ``sigma = x[..., :1]`` raw (the MipNeRF ray marcher applies ``softplus(sigma - 1)``);
* ``features = sigmoid(x[..., 1:]) * (1 + 2 * 0.001) - 0.001`` (MipNeRF's widened sigmoid), so all 32
  channels, the first three being RGB, lie in ``(-0.001, 1.001)``. EG3D feeds the rendered RGB and
  feature image to its super-resolution network as they are; ``image_raw`` is those three channels.

The mean over the three planes, done inside EG3D's decoder, is the ``triplane`` embedder's job here, so
this decoder reads ``features [B, R, S, in_channels]`` already aggregated. Viewing directions and
``ws`` are unused (EG3D's decoder has no view dependence).

EpiGRAF's tri-plane MLP is the same two equalized layers with three differences, options here
(universome/epigraf src/training/networks_epigraf.py ``TriPlaneMLP`` with ``n_layers 2``, ``hid_dim 64``,
``out_dim = 3``): leaky ReLU (0.2, gain sqrt 2) instead of softplus (``hidden_activation='lrelu'``), the
colour left linear, no sigmoid (``feature_activation='linear'``: its rendered colour is the [-1, 1] image),
and the density as the LAST output channel (``density_channel='last'``; ``fancy_integration`` reads
``rgb_sigma[..., -1]``). Its layers are ``model.0`` and ``model.1``: they load as ``hidden`` and ``output``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gan3d.core.interfaces import FeatureDecoder
from gan3d.core.layers.equalized import FullyConnectedLayer
from gan3d.core.types import Field

__all__ = ["OSGDecoder", "HIDDEN_ACTIVATIONS", "FEATURE_ACTIVATIONS", "DENSITY_CHANNELS"]

#: MipNeRF's widened sigmoid margin used by EG3D: ``sigmoid(x) * (1 + 2 eps) - eps``.
SIGMOID_MARGIN = 0.001
#: EG3D ``softplus``; EpiGRAF ``lrelu`` (FullyConnectedLayer ``activation='lrelu'``: slope 0.2, gain sqrt 2).
HIDDEN_ACTIVATIONS = ("softplus", "lrelu")
#: EG3D ``widened_sigmoid`` on every feature channel; EpiGRAF ``linear``.
FEATURE_ACTIVATIONS = ("widened_sigmoid", "linear")
#: Where the raw density sits among the ``1 + output_dim`` outputs: EG3D ``first``, EpiGRAF ``last``.
DENSITY_CHANNELS = ("first", "last")


class OSGDecoder(FeatureDecoder):
    """``features [B, R, S, in_channels]`` -> ``Field(features [B, R, S, output_dim], density [B, R, S, 1])``.

    Args:
        in_channels: tri-plane channels (EG3D 32).
        hidden_dim: width of the hidden layer (EG3D 64).
        output_dim: feature channels, the first three RGB (EG3D ``decoder_output_dim`` 32).
        lr_multiplier: learning-rate multiplier of both layers (EG3D ``--decoder_lr_mul`` 1).
        hidden_activation: one of :data:`HIDDEN_ACTIVATIONS` (EG3D ``'softplus'``, EpiGRAF ``'lrelu'``).
        feature_activation: one of :data:`FEATURE_ACTIVATIONS` (EG3D ``'widened_sigmoid'``, EpiGRAF
            ``'linear'``).
        density_channel: one of :data:`DENSITY_CHANNELS` (EG3D ``'first'``, EpiGRAF ``'last'``).
    """

    num_ws = 0

    def __init__(self, *, in_channels: int = 32, hidden_dim: int = 64, output_dim: int = 32,
                 lr_multiplier: float = 1.0, hidden_activation: str = "softplus",
                 feature_activation: str = "widened_sigmoid", density_channel: str = "first") -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("hidden_dim", hidden_dim), ("output_dim", output_dim)):
            if value <= 0:
                raise ValueError(f"eg3d_osg decoder: {name} must be positive, got {value}")
        if output_dim < 3:
            raise ValueError(f"eg3d_osg decoder: output_dim must be >= 3 (the first three are RGB), got {output_dim}")
        if not lr_multiplier > 0:
            raise ValueError(f"eg3d_osg decoder: lr_multiplier must be positive, got {lr_multiplier}")
        for name, value, allowed in (("hidden_activation", hidden_activation, HIDDEN_ACTIVATIONS),
                                     ("feature_activation", feature_activation, FEATURE_ACTIVATIONS),
                                     ("density_channel", density_channel, DENSITY_CHANNELS)):
            if value not in allowed:
                raise ValueError(f"eg3d_osg decoder: {name} must be one of {', '.join(allowed)}, got {value!r}")
        self.hidden_activation = hidden_activation
        self.feature_activation = feature_activation
        self.density_channel = density_channel
        self.in_channels = in_channels
        self.out_channels = output_dim
        self.hidden = FullyConnectedLayer(in_channels, hidden_dim, activation=hidden_activation,
                                          lr_multiplier=lr_multiplier)
        self.output = FullyConnectedLayer(hidden_dim, 1 + output_dim, lr_multiplier=lr_multiplier)

    def forward(self, features: Tensor, directions: Tensor | None = None, ws: Tensor | None = None) -> Field:
        if features.shape[-1] != self.in_channels:
            raise ValueError(
                f"eg3d_osg decoder: features have {features.shape[-1]} channels, "
                f"expected in_channels={self.in_channels}"
            )
        x = self.output(self.hidden(features))
        if self.density_channel == "last":
            density, raw = x[..., -1:], x[..., :-1]
        else:
            density, raw = x[..., :1], x[..., 1:]
        if self.feature_activation == "linear":
            return Field(features=raw, density=density)
        rgb = torch.sigmoid(raw)
        if torch.is_grad_enabled():  # sigmoid's backward reads its output: no in-place change then
            rgb = rgb * (1 + 2 * SIGMOID_MARGIN) - SIGMOID_MARGIN
        else:
            rgb = rgb.mul_(1 + 2 * SIGMOID_MARGIN).sub_(SIGMOID_MARGIN)
        return Field(features=rgb, density=density)
