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
from torch import Tensor, nn

from gan3d.core.interfaces import FeatureDecoder
from gan3d.core.types import Field

from ..positional_encoding import PositionalEncoding

__all__ = ["GRAFNeRFDecoder"]


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
        batch, rays, samples = features.shape[:3]
        z = ws[:, 0].to(features.dtype)
        points = features.reshape(batch, rays * samples, self.in_channels)
        views = directions.reshape(batch, rays * samples, 3)
        count = rays * samples
        # At inference the points go through in chunks: every activation stays a few MB (in cache, and
        # under glibc's mmap threshold, so no fresh pages to fault in) instead of [B, R, S, 256].
        chunk = count if torch.is_grad_enabled() else self.inference_chunk
        if chunk >= count:
            colour, density = zip(*(self._points(points[b], views[b], self._biases(z[b])) for b in range(batch)),
                                  strict=True)
            colour, density = torch.stack(colour), torch.stack(density)
        else:
            colour = features.new_empty(batch, count, 3)
            density = features.new_empty(batch, count, 1)
            for b in range(batch):
                biases = self._biases(z[b])
                for start in range(0, count, chunk):
                    c, d = self._points(points[b, start:start + chunk], views[b, start:start + chunk], biases)
                    colour[b, start:start + chunk] = c
                    density[b, start:start + chunk] = d
        return Field(features=colour.view(batch, rays, samples, 3), density=density.view(batch, rays, samples, 1))

    #: points per chunk at inference (activations of 16384 x 256 floats, 16 MB)
    inference_chunk = 16384

    def _biases(self, z: Tensor) -> dict[str, Tensor]:
        """The layers that read a code, their bias with the code's product added: ``W [x; z] + b =
        W_x x + (W_z z + b)`` (one sample's ``z [w_dim]``)."""
        shape, appearance = z[: self.shape_dim], z[self.shape_dim:]
        first = self.pts_linears[0]
        codes = {"0": first.bias + first.weight[:, self.in_channels:] @ shape if self.shape_dim else first.bias}
        for i in self.skips:  # the skip layer reads [gamma(x), z_shape, h]
            layer = self.pts_linears[i + 1]
            codes[str(i + 1)] = (layer.bias + layer.weight[:, self.in_channels:self.in_channels + self.shape_dim]
                                 @ shape) if self.shape_dim else layer.bias
        if self.colour_branch:
            layer = self.views_linears[0]
            codes["views"] = (layer.bias + layer.weight[:, layer.in_features - self.appearance_dim:] @ appearance
                              if self.appearance_dim else layer.bias)
        return codes

    def _points(self, x: Tensor, directions: Tensor, biases: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """The MLP on ``x [N, in_channels]`` encoded points with view ``directions [N, 3]``: ``(sigmoid
        colour [N, 3], raw density [N, 1])``. Every product is one ``addmm`` with its bias, the ReLUs and
        the skip layer's second product in place (none of them needs the tensor it overwrites for
        autograd)."""
        cin = self.in_channels
        first = self.pts_linears[0]
        h = torch.addmm(biases["0"], x, first.weight[:, :cin].t()).relu_()
        for i, layer in enumerate(self.pts_linears[1:]):
            if i in self.skips:  # NeRF's cat([input_pts, h]) read by layer i + 1, as two products
                h = torch.addmm(biases[str(i + 1)], x, layer.weight[:, :cin].t()).addmm_(
                    h, layer.weight[:, cin + self.shape_dim:].t())
            else:
                h = torch.addmm(layer.bias, h, layer.weight.t())
            h = h.relu_()
        if not self.colour_branch:
            out = torch.addmm(self.output_linear.bias, h, self.output_linear.weight.t())
            return torch.sigmoid(out[:, :3]), out[:, 3:]
        density = torch.addmm(self.alpha_linear.bias, h, self.alpha_linear.weight.t())
        feature = torch.addmm(self.feature_linear.bias, h, self.feature_linear.weight.t())
        layer = self.views_linears[0]
        v = torch.addmm(biases["views"], feature, layer.weight[:, :self.hidden_dim].t())
        if self.view_encoding is not None:
            encoded = self.view_encoding(directions.to(h.dtype))
            v = v.addmm_(encoded, layer.weight[:, self.hidden_dim:self.hidden_dim + encoded.shape[-1]].t())
        v = v.relu_()
        return torch.addmm(self.rgb_linear.bias, v, self.rgb_linear.weight.t()).sigmoid_(), density

    def extra_repr(self) -> str:
        return (f"in_channels={self.in_channels}, shape_dim={self.shape_dim}, appearance_dim={self.appearance_dim}, "
                f"hidden_dim={self.hidden_dim}, layers={len(self.pts_linears)}, skips={list(self.skips)}")
