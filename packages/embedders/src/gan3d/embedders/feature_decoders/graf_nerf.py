"""GRAF's generator: NeRF's MLP conditioned on a shape code and an appearance code (Schwarz et al. 2020,
section 3.2, figure 3).

Facts from autonomousvision/graf (submodules/nerf_pytorch/run_nerf_helpers_mod.py ``NeRF``,
run_nerf_mod.py ``create_nerf`` and ``run_network``; configs/default.yaml):

* the latent ``z`` (256, Gaussian, no mapping network) splits into ``z_shape`` (the first
  ``256 - dim_appearance = 128``) and ``z_app`` (the last ``dim_appearance = 128``);
* ``input_pts = [gamma(x) (63: 10 octaves with the input), z_shape]`` (191 channels) feed 8 ReLU layers of
  256 (``pts_linears``); after layer 4 the input is concatenated again (``skips=[4]``: ``pts_linears.5``
  takes ``191 + 256``), the concatenation putting ``input_pts`` first;
* ``alpha_linear`` (256 -> 1) gives the raw density; ``feature_linear`` (256 -> 256, no activation) is
  concatenated with ``[gamma(d) (27: 4 octaves of the unit view direction), z_app]``, one ReLU layer
  ``views_linears.0`` (411 -> 128) and ``rgb_linear`` (128 -> 3) give the colour;
* raw2outputs applies ``sigmoid`` to the colour (per sample, so here) and ``relu(raw + noise)`` to the
  density (the ``volume`` renderer's ``relu`` activation, noise and annealing);
* ``nn.Linear`` layers with PyTorch's default initialisation, parameter names as the official module, so
  a GRAF checkpoint's ``generator`` entries load under the prefix ``decoder.`` (GRAF's z-up world is
  gan3d's ``(x, -z, y)``: its first-layer input columns would also need that permutation).

The point encoding ``gamma(x)`` is the ``coordinate`` embedder's (``num_frequencies=10``,
``include_input``, unscaled): its ``out_channels`` (63) is this decoder's ``in_channels``. The codes are
the decoder's one latent row: ``ws [B, 1, w_dim]`` with ``w_dim = shape + appearance``.
Concatenating a code with every sample's features and multiplying by a weight equals adding the code's
product once per sample (``W [x; z] = W_x x + W_z z``), which is how the code enters here: the same
weights, a fraction of the memory.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan3d.core.interfaces import FeatureDecoder
from gan3d.core.types import Field

from ..positional_encoding import PositionalEncoding

__all__ = ["GRAFNeRFDecoder"]


def _linear_of_concat(layer: nn.Linear, parts: Sequence[tuple[Tensor, bool]]) -> Tensor:
    """``layer(cat(parts, -1))`` without building the concatenation.

    ``parts`` are ``(tensor, per_batch)`` in concatenation order: per-sample tensors ``[B, ..., C]`` and
    per-batch codes ``[B, D]`` (``per_batch=True``), which enter once per batch element as a bias.
    """
    out: Tensor | None = None
    bias = layer.bias
    start = 0
    for tensor, per_batch in parts:
        weight = layer.weight[:, start:start + tensor.shape[-1]]
        start += tensor.shape[-1]
        if per_batch:
            bias = bias + F.linear(tensor, weight)  # [B, out]
        else:
            y = F.linear(tensor, weight)
            out = y if out is None else out + y
    if start != layer.in_features or out is None:
        raise ValueError(f"graf_nerf decoder: {start} input channels for a layer of {layer.in_features}")
    if bias.ndim == 2:
        bias = bias.view(bias.shape[0], *([1] * (out.ndim - 2)), bias.shape[-1])
    return out + bias


class GRAFNeRFDecoder(FeatureDecoder):
    """``features [B, R, S, in_channels]`` (encoded points), unit ``directions [B, R, S, 3]``,
    codes ``ws [B, >=1, w_dim]`` -> ``Field(features = sigmoid(rgb) [B, R, S, 3], density [B, R, S, 1])``.

    Args:
        in_channels: channels of the encoded point (GRAF 63; wired from the embedder in Generator v2).
        w_dim: size of the latent row, shape plus appearance code (GRAF ``z_dist.dim`` 256).
        appearance_dim: the last ``appearance_dim`` channels are the appearance code (GRAF
            ``z_dist.dim_appearance`` 128); the rest is the shape code.
        hidden_dim, num_layers, skips: the trunk (``netwidth`` 256, ``netdepth`` 8, ``[4]``).
        num_view_frequencies: octaves of the view-direction encoding (``multires_views`` 4).
        use_viewdirs: feed the encoded view direction to the colour branch (GRAF: True except for CUB).
            Without it and without an appearance code the official network has a single
            ``output_linear`` (256 -> 4) instead of the colour branch, as here.

    Example:
        >>> dec = GRAFNeRFDecoder(in_channels=63, w_dim=16, appearance_dim=8, hidden_dim=32)
        >>> field = dec(torch.randn(2, 5, 4, 63), F.normalize(torch.randn(2, 5, 4, 3), dim=-1), torch.randn(2, 1, 16))
        >>> field.features.shape, field.density.shape
        (torch.Size([2, 5, 4, 3]), torch.Size([2, 5, 4, 1]))
    """

    num_ws = 1

    def __init__(self, *, in_channels: int = 63, w_dim: int = 256, appearance_dim: int = 128, hidden_dim: int = 256,
                 num_layers: int = 8, skips: Sequence[int] = (4,), num_view_frequencies: int = 4,
                 use_viewdirs: bool = True) -> None:
        super().__init__()
        if in_channels <= 0 or hidden_dim <= 0 or num_layers < 1:
            raise ValueError(f"graf_nerf decoder: in_channels, hidden_dim must be positive and num_layers >= 1, got "
                             f"{in_channels}, {hidden_dim}, {num_layers}")
        if not 0 <= appearance_dim <= w_dim:
            raise ValueError(f"graf_nerf decoder: appearance_dim must be in [0, w_dim={w_dim}], got {appearance_dim}")
        skips = [int(s) for s in skips]
        if any(not 0 <= s < num_layers - 1 for s in skips):
            raise ValueError(f"graf_nerf decoder: skips must index layers 0..{num_layers - 2} (the input is "
                             f"concatenated after them), got {skips}")
        self.in_channels = in_channels
        self.w_dim = w_dim
        self.appearance_dim = appearance_dim
        self.shape_dim = w_dim - appearance_dim
        self.hidden_dim = hidden_dim
        self.skips = tuple(skips)
        self.use_viewdirs = use_viewdirs
        self.out_channels = 3
        point_inputs = in_channels + self.shape_dim  # NeRF's input_ch
        self.pts_linears = nn.ModuleList(
            [nn.Linear(point_inputs, hidden_dim)]
            + [nn.Linear(hidden_dim + (point_inputs if i in self.skips else 0), hidden_dim)
               for i in range(num_layers - 1)]
        )
        self.view_encoding = (PositionalEncoding(in_channels=3, num_frequencies=num_view_frequencies)
                              if use_viewdirs else None)
        view_inputs = (self.view_encoding.out_channels if use_viewdirs else 0) + appearance_dim  # input_ch_views
        # create_nerf: use_viewdirs=(use_viewdirs or feat_dim_appearance > 0) selects the colour branch.
        self.colour_branch = use_viewdirs or appearance_dim > 0
        if self.colour_branch:
            self.views_linears = nn.ModuleList([nn.Linear(view_inputs + hidden_dim, hidden_dim // 2)])
            self.feature_linear = nn.Linear(hidden_dim, hidden_dim)
            self.alpha_linear = nn.Linear(hidden_dim, 1)
            self.rgb_linear = nn.Linear(hidden_dim // 2, 3)
        else:
            self.output_linear = nn.Linear(hidden_dim, 4)

    def forward(self, features: Tensor, directions: Tensor, ws: Tensor) -> Field:
        if features.ndim != 4 or features.shape[-1] != self.in_channels:
            raise ValueError(f"graf_nerf decoder: features must be [B, R, S, {self.in_channels}] (the encoded points), "
                             f"got {tuple(features.shape)}")
        if ws.ndim != 3 or ws.shape[0] != features.shape[0] or ws.shape[1] < 1 or ws.shape[2] != self.w_dim:
            raise ValueError(f"graf_nerf decoder: ws must be [B, >=1, {self.w_dim}] (shape and appearance code), "
                             f"got {tuple(ws.shape)}")
        z = ws[:, 0].to(features.dtype)
        code = [(z[:, : self.shape_dim], True)] if self.shape_dim else []
        point_inputs = [(features, False), *code]  # NeRF's input_pts = [gamma(x), z_shape]
        h = F.relu(_linear_of_concat(self.pts_linears[0], point_inputs))
        for i, layer in enumerate(self.pts_linears[1:]):
            # NeRF concatenates [input_pts, h] after layer i in skips, read by layer i + 1.
            h = F.relu(_linear_of_concat(layer, [*point_inputs, (h, False)]) if i in self.skips else layer(h))
        if not self.colour_branch:
            out = self.output_linear(h)
            return Field(features=torch.sigmoid(out[..., :3]), density=out[..., 3:])
        density = self.alpha_linear(h)
        view_inputs = [(self.feature_linear(h), False)]
        if self.view_encoding is not None:
            view_inputs.append((self.view_encoding(directions.to(h.dtype)), False))
        if self.appearance_dim:
            view_inputs.append((z[:, self.shape_dim:], True))
        h = F.relu(_linear_of_concat(self.views_linears[0], view_inputs))
        return Field(features=torch.sigmoid(self.rgb_linear(h)), density=density)

    def extra_repr(self) -> str:
        return (f"in_channels={self.in_channels}, shape_dim={self.shape_dim}, appearance_dim={self.appearance_dim}, "
                f"hidden_dim={self.hidden_dim}, layers={len(self.pts_linears)}, skips={list(self.skips)}")
