"""VolumeGAN's point MLP: style-modulated layers over the feature-volume features and the positional
encoding of each point, with plain linear density and feature heads (Xu et al. 2022, section 3.1,
"feature field"; registered as feature decoder ``volumegan_mlp``).

Source: genforce/volumegan ``models/volumegan_generator.py`` ``NeRFSynthesisNetwork`` (``build_mlp``,
``forward``) with ``models/stylegan2_generator.py`` ``ModulateConvLayer`` and ``DenseLayer``; FFHQ
settings from ``configs/volumegan_ffhq_config.py`` (``fg_cfg``: 4 layers of 256, lrelu; ``out_dim`` 512):

* the input per point is what the ``volume`` point embedder gives, ``[volume features (32),
  (p, sin 2^k p, cos 2^k p) for k < 10 (63)]`` = 95 channels;
* ``num_layers`` modulated layers (a 1x1 ``ModulateConvLayer`` over the points: style
  ``affine(w)`` (equalized linear, bias 1), weight ``N(0, 1)``, demodulation, zero bias, leaky ReLU 0.2
  with gain sqrt(2), no noise), width ``hidden_dim``; layer ``i`` reads latent row ``i``;
* ``density_head`` ``hidden_dim -> 1`` and ``feature_head`` ``hidden_dim -> output_dim``: equalized
  linear layers (``DenseLayer``, zero bias), not modulated; the density is raw (the renderer applies
  ReLU) and the features are unbounded, their first three channels the low-resolution RGB image.

Latent rows: the feature volume reads row 0 and the MLP rows 0..num_layers-1 (official
``nerf_w[:, 0]`` and ``nerf_w[:, i]``), so under the generator's row allocation this decoder declares
``num_ws = num_layers`` with ``ws_from_previous = 1`` (its first row is the embedder's).
Official names: ``fg_mlps.{i}`` (``style`` is our ``affine``), ``fg_density``, ``fg_color``.
"""

from __future__ import annotations

from torch import Tensor, nn

from gan3d.core.interfaces import FeatureDecoder
from gan3d.core.layers.equalized import FullyConnectedLayer
from gan3d.core.types import Field

from .stylenerf_mlp import ModulatedLinear

__all__ = ["VolumeGANDecoder"]


class VolumeGANDecoder(FeatureDecoder):
    """``features [B, R, S, in_channels]``, ``ws [B, num_ws, w_dim]`` -> ``Field``.

    Args:
        in_channels: channels of the embedded points (wired from the embedder; VolumeGAN 95).
        hidden_dim: width of the modulated layers (256).
        num_layers: modulated layers (4).
        output_dim: feature channels (``out_dim`` 512, the neural renderer's input).
        w_dim: latent width (512).

    Output: ``Field(features [B, R, S, output_dim], density=raw sigma [B, R, S, 1])``.

    Example:
        >>> dec = VolumeGANDecoder(in_channels=95, hidden_dim=16, num_layers=2, output_dim=8, w_dim=4)
        >>> field = dec(torch.randn(1, 5, 3, 95), None, torch.randn(1, 2, 4))
        >>> field.features.shape, field.density.shape
        (torch.Size([1, 5, 3, 8]), torch.Size([1, 5, 3, 1]))
    """

    #: the first row is the point embedder's last (the feature volume and layer 0 share ``w[:, 0]``).
    ws_from_previous = 1
    field_kind = "density"

    def __init__(self, *, in_channels: int = 95, hidden_dim: int = 256, num_layers: int = 4, output_dim: int = 512,
                 w_dim: int = 512) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("hidden_dim", hidden_dim), ("num_layers", num_layers),
                            ("output_dim", output_dim), ("w_dim", w_dim)):
            if value <= 0:
                raise ValueError(f"volumegan_mlp decoder: {name} must be positive, got {value}")
        if output_dim < 3:
            raise ValueError(f"volumegan_mlp decoder: output_dim must be >= 3 (the first three channels are the "
                             f"low-resolution RGB image), got {output_dim}")
        self.in_channels = in_channels
        self.w_dim = w_dim
        self.num_ws = num_layers
        self.out_channels = output_dim
        self.layers = nn.ModuleList(
            ModulatedLinear(hidden_dim if i else in_channels, hidden_dim, w_dim, demodulate=True, activation="lrelu")
            for i in range(num_layers)
        )
        self.density_head = FullyConnectedLayer(hidden_dim, 1)
        self.feature_head = FullyConnectedLayer(hidden_dim, output_dim)

    def forward(self, features: Tensor, directions: Tensor | None, ws: Tensor) -> Field:
        b, r, s, c = features.shape
        if c != self.in_channels:
            raise ValueError(f"volumegan_mlp decoder: features have {c} channels, expected in_channels="
                             f"{self.in_channels} (the point embedder's out_channels)")
        if ws.ndim != 3 or ws.shape != (b, self.num_ws, self.w_dim):
            raise ValueError(f"volumegan_mlp decoder reads exactly its {self.num_ws} latent rows: ws must be "
                             f"[{b}, {self.num_ws}, {self.w_dim}], got {tuple(ws.shape)}")
        # Points become the rows of a one-pixel-wide image: each layer is a modulated 1x1 convolution.
        x = features.reshape(b, r * s, c).transpose(1, 2).unsqueeze(-1)  # [B, C, N, 1]
        for i, layer in enumerate(self.layers):
            x = layer(x, ws[:, i])
        x = x.squeeze(-1).transpose(1, 2)  # [B, N, hidden]
        density = self.density_head(x).reshape(b, r, s, 1)
        feats = self.feature_head(x).reshape(b, r, s, self.out_channels)
        return Field(features=feats, density=density)

