"""GIRAFFE's feature field (Niemeyer & Geiger, CVPR 2021, section 3.2; im2scene/giraffe/models/decoder.py
``Decoder``), registered as ``feature_decoder`` ``giraffe_field``.

Each object ``i`` is a feature field ``(sigma_i, f_i) = h(gamma(x_i), gamma(d_i), z_shape_i, z_app_i)``
evaluated in its own frame by ONE MLP shared by all objects (the field group ``main`` with one instance
per object), conditioned on the object's codes; the background is a second, smaller MLP (the group
``background``). The generator moves the samples into each instance's frame (the scene latent's object
frames) and the volume renderer composes the fields at the shared samples with the paper's operator
(eq. 4; generator.py ``composite_function``): ``sigma = sum_i sigma_i``, ``f = sum_i sigma_i f_i / sigma``,
after adding the training noise to each raw density, zeroing object densities outside the padded box and
the ReLU (generator.py ``volume_render_image``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from gan3d.core.interfaces import FeatureDecoder
from gan3d.core.types import Field

from ..positional_encoding import PositionalEncoding

__all__ = ["GiraffeFieldMLP", "GiraffeFieldDecoder"]


class GiraffeFieldMLP(nn.Module):
    """One GIRAFFE feature field (im2scene/giraffe/models/decoder.py ``Decoder``).

    ``x [..., 3]``, unit ``d [..., 3]``, ``z_shape [..., z_dim]``, ``z_app [..., z_dim]`` (broadcast
    against the points) -> ``(features [..., feature_dim], raw density [..., 1])``::

        g     = gamma(x / downscale)                      # sin, cos of 2^k pi x, k < num_frequencies
        h     = relu(fc_in(g) + fc_z(z_shape))
        h     = relu(block_j(h)), j < n_blocks - 1;       after block j with j + 1 in skips:
                h += fc_z_skip(z_shape) + fc_p_skip(g)
        sigma = sigma_out(h)
        h     = feat_view(h) + fc_z_view(z_app) [+ fc_view(gamma_v(d / downscale)), then relu]
        f     = feat_out(h)

    Args:
        hidden_dim: width (GIRAFFE objects 128, background 64).
        n_blocks: density layers, counting ``fc_in`` (objects 8, background 4).
        skips: block indices that re-inject the codes and the encoding (objects ``[4]``, background ``[]``).
        num_frequencies, num_view_frequencies: octaves of the point and direction encodings (10, 4).
        z_dim: code size; feature_dim: output features (``rgb_out_dim``: 128 at 64 px, 256 at 256 px).
        downscale: points and directions are divided by it before the encoding (objects 2, background 12).
        use_viewdirs: condition the features on the viewing direction (GIRAFFE: yes).

    GIRAFFE's ``n_blocks_view > 1`` layers are left out: decoder.py builds them for
    ``dim_view + hidden`` inputs but feeds them the hidden state alone, so only its default
    ``n_blocks_view = 1`` (every released config) can run.
    """

    def __init__(self, *, hidden_dim: int = 128, n_blocks: int = 8, skips: Sequence[int] = (4,),
                 num_frequencies: int = 10, num_view_frequencies: int = 4, z_dim: int = 256,
                 feature_dim: int = 128, downscale: float = 2.0, use_viewdirs: bool = True) -> None:
        super().__init__()
        if n_blocks < 1:
            raise ValueError(f"n_blocks must be >= 1, got {n_blocks}")
        if downscale <= 0:
            raise ValueError(f"downscale must be positive, got {downscale}")
        self.skips = [int(s) for s in skips]
        self.downscale = float(downscale)
        self.use_viewdirs = use_viewdirs
        self.encoding = PositionalEncoding(in_channels=3, num_frequencies=num_frequencies, include_input=False,
                                           multiply_by_pi=True)
        self.view_encoding = PositionalEncoding(in_channels=3, num_frequencies=num_view_frequencies,
                                                include_input=False, multiply_by_pi=True)
        dim_embed, dim_view = self.encoding.out_channels, self.view_encoding.out_channels
        self.fc_in = nn.Linear(dim_embed, hidden_dim)
        self.fc_z = nn.Linear(z_dim, hidden_dim)
        self.blocks = nn.ModuleList(nn.Linear(hidden_dim, hidden_dim) for _ in range(n_blocks - 1))
        # decoder.py counts the skips among range(n_blocks - 1) and applies them after block j when
        # j + 1 is a skip index and j is not the last block.
        n_skips = sum(i in self.skips for i in range(n_blocks - 1))
        self.fc_z_skips = nn.ModuleList(nn.Linear(z_dim, hidden_dim) for _ in range(n_skips))
        self.fc_p_skips = nn.ModuleList(nn.Linear(dim_embed, hidden_dim) for _ in range(n_skips))
        self.sigma_out = nn.Linear(hidden_dim, 1)
        self.fc_z_view = nn.Linear(z_dim, hidden_dim)
        self.feat_view = nn.Linear(hidden_dim, hidden_dim)
        self.fc_view = nn.Linear(dim_view, hidden_dim)
        self.feat_out = nn.Linear(hidden_dim, feature_dim)

    def forward(self, x: Tensor, d: Tensor, z_shape: Tensor, z_app: Tensor) -> tuple[Tensor, Tensor]:
        g = self.encoding(x / self.downscale)
        net = F.relu(self.fc_in(g) + self.fc_z(z_shape))
        skip = 0
        for j, layer in enumerate(self.blocks):
            net = F.relu(layer(net))
            if (j + 1) in self.skips and j < len(self.blocks) - 1:
                net = net + self.fc_z_skips[skip](z_shape) + self.fc_p_skips[skip](g)
                skip += 1
        sigma = self.sigma_out(net)
        net = self.feat_view(net) + self.fc_z_view(z_app)
        if self.use_viewdirs:
            net = F.relu(net + self.fc_view(self.view_encoding(d / self.downscale)))
        return self.feat_out(net), sigma


class GiraffeFieldDecoder(GiraffeFieldMLP, FeatureDecoder):
    """One GIRAFFE feature field as a decoder: ``features [B, R, S, 3]`` (points in the instance's frame, from
    the ``coordinate`` embedder with ``box_warp=2``: unscaled), unit ``directions [B, R, S, 3]`` in that
    frame, the instance's codes ``ws [B, 2, w_dim]`` (row 0 the shape code, row 1 the appearance code) ->
    ``Field(features [B, R, S, feature_dim], density = raw sigma [B, R, S, 1])``.

    Args:
        in_channels: wired from the embedder; must be 3 (the point itself).
        w_dim: wired: the code width of the field's group (objects 256, background 128).
        hidden_dim, n_blocks, skips, num_frequencies, num_view_frequencies, feature_dim, downscale,
        use_viewdirs: see :class:`GiraffeFieldMLP` (GIRAFFE objects: 128, 8, [4], 10, 4, 128, 2;
            background: 64, 4, [], 10, 4, 128, 12).

    It is a :class:`GiraffeFieldMLP`, so its parameters are named as GIRAFFE's ``Decoder`` (``fc_in``,
    ``blocks``, ``fc_z_skips``...) and an official state dict maps by a prefix rename.
    """

    num_ws = 2

    def __init__(self, *, in_channels: int = 3, w_dim: int = 256, hidden_dim: int = 128, n_blocks: int = 8,
                 skips: Sequence[int] = (4,), num_frequencies: int = 10, num_view_frequencies: int = 4,
                 feature_dim: int = 128, downscale: float = 2.0, use_viewdirs: bool = True) -> None:
        if in_channels != 3:
            raise ValueError(f"giraffe_field decoder reads the 3D point itself (in_channels 3), got {in_channels}; use "
                             "the coordinate embedder with box_warp=2.0 and no encoding (the field encodes itself)")
        super().__init__(hidden_dim=hidden_dim, n_blocks=n_blocks, skips=skips, num_frequencies=num_frequencies,
                         num_view_frequencies=num_view_frequencies, z_dim=w_dim, feature_dim=feature_dim,
                         downscale=downscale, use_viewdirs=use_viewdirs)
        self.in_channels = in_channels
        self.w_dim = w_dim
        self.out_channels = feature_dim

    def forward(self, features: Tensor, directions: Tensor, ws: Tensor) -> Field:
        if features.ndim != 4 or features.shape[-1] != 3:
            raise ValueError(f"giraffe_field decoder expects points [B, R, S, 3], got {tuple(features.shape)}")
        if ws is None or ws.ndim != 3 or ws.shape[1] != 2 or ws.shape[2] != self.w_dim:
            got = None if ws is None else tuple(ws.shape)
            raise ValueError(f"giraffe_field decoder reads its instance's shape and appearance codes [B, 2, "
                             f"{self.w_dim}] (a giraffe scene latent); got {got}")
        feature, sigma = GiraffeFieldMLP.forward(self, features, directions, ws[:, None, None, 0], ws[:, None, None, 1])
        return Field(features=feature, density=sigma)

    def extra_repr(self) -> str:
        return f"w_dim={self.w_dim}, feature_dim={self.out_channels}"
