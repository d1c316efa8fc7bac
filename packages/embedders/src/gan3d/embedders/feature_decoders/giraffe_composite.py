"""GIRAFFE's feature fields and their composition (Niemeyer & Geiger, CVPR 2021, section 3.2).

Each object ``i`` is a feature field ``(sigma_i, f_i) = h(gamma(x_i), gamma(d_i), z_shape_i, z_app_i)``
evaluated in its own frame by ONE MLP shared by all objects, conditioned on the object's codes; the
background is a second, smaller MLP. The fields are combined by the paper's composition operator
(eq. 4; im2scene/giraffe/models/generator.py ``composite_function``)::

    sigma = sum_i sigma_i,        f = sum_i sigma_i f_i / sigma   (f = 0 where sigma = 0)

Per field, before composing (generator.py ``volume_render_image``): Gaussian noise of std 1 is added to
the raw density in training ("as done in NeRF"), object densities are zeroed outside the padded unit
box ``|x_i| <= 1 + 0.1``, and ``sigma_i = relu(.)``. This decoder therefore returns the composed,
already non-negative density; the volume renderer's ``relu`` then changes nothing (set its
``noise_std`` to 0: the noise is added here, per field, as GIRAFFE does).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan3d.core.interfaces import FeatureDecoder
from gan3d.core.types import Field

from ..giraffe_scene import GiraffeLatentLayout, scene_transforms
from ..positional_encoding import PositionalEncoding

__all__ = ["GiraffeFieldMLP", "GiraffeCompositeDecoder", "compose_fields"]


def compose_fields(densities: Tensor, features: Tensor) -> tuple[Tensor, Tensor]:
    """GIRAFFE's composition operator over ``K`` fields.

    Args:
        densities: ``[K, ..., 1]`` non-negative densities ``sigma_k``.
        features: ``[K, ..., F]`` features ``f_k``.

    Returns ``(sigma [..., 1], f [..., F])`` with ``sigma = sum_k sigma_k`` and
    ``f = sum_k sigma_k f_k / sigma``; where ``sigma = 0`` every weight is 0 (GIRAFFE replaces a zero
    denominator by 1e-4, which gives the same zero feature).
    """
    total = densities.sum(0)
    denominator = torch.where(total == 0, torch.full_like(total, 1e-4), total)
    return total, (features * (densities / denominator.unsqueeze(0))).sum(0)


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


class GiraffeCompositeDecoder(FeatureDecoder):
    """The object fields (one shared MLP) and the background field, composed into one :class:`Field`.

    Input: ``features [B, R, S, 3 (N + 1)]`` from the ``giraffe_composite`` embedder (points in each
    object's frame, then the background's), world ``directions [B, R, S, 3]`` and ``ws [B, N + 1, w_dim]``
    (codes and transforms, :mod:`gan3d.embedders.giraffe_scene`). Output: ``Field(features
    [B, R, S, feature_dim], density [B, R, S, 1] >= 0, extras={'field_densities': [B, R, S, N + 1]})``,
    the per-field densities (objects, then background) for alpha maps.

    Args:
        n_objects, object_z_dim, background_z_dim: the ``ws`` layout (as the mapper's).
        feature_dim: feature channels of both fields (GIRAFFE ``rgb_out_dim``).
        object_hidden_dim, object_blocks, object_skips, object_downscale: the object MLP
            (decoder.py defaults 128, 8, ``[4]``, 2).
        background_hidden_dim, background_blocks, background_skips, background_downscale: the background
            MLP (configs/default.yaml ``background_generator_kwargs``: 64, 4, ``[]``, 12).
        num_frequencies, num_view_frequencies: encodings of both MLPs (10, 4).
        noise_std: std of the noise on raw densities in training mode (generator.py: 1, not annealed).
        box_padding: object densities vanish outside ``[-1 - pad, 1 + pad]^3`` (generator.py: 0.1).
    """

    def __init__(
        self,
        *,
        n_objects: int = 1,
        object_z_dim: int = 256,
        background_z_dim: int = 128,
        feature_dim: int = 128,
        object_hidden_dim: int = 128,
        object_blocks: int = 8,
        object_skips: Sequence[int] = (4,),
        object_downscale: float = 2.0,
        background_hidden_dim: int = 64,
        background_blocks: int = 4,
        background_skips: Sequence[int] = (),
        background_downscale: float = 12.0,
        num_frequencies: int = 10,
        num_view_frequencies: int = 4,
        noise_std: float = 1.0,
        box_padding: float = 0.1,
    ) -> None:
        super().__init__()
        if noise_std < 0 or box_padding < 0:
            raise ValueError(f"noise_std and box_padding must be >= 0, got {noise_std}, {box_padding}")
        self.layout = GiraffeLatentLayout(n_objects, object_z_dim, background_z_dim)
        self.num_ws = self.layout.num_ws
        self.w_dim = self.layout.w_dim
        self.in_channels = 3 * (n_objects + 1)
        self.out_channels = feature_dim
        self.noise_std = float(noise_std)
        self.box_padding = float(box_padding)
        common = {"num_frequencies": num_frequencies, "num_view_frequencies": num_view_frequencies,
                  "feature_dim": feature_dim}
        self.object_field = GiraffeFieldMLP(hidden_dim=object_hidden_dim, n_blocks=object_blocks, skips=object_skips,
                                            z_dim=object_z_dim, downscale=object_downscale, **common)
        self.background_field = GiraffeFieldMLP(hidden_dim=background_hidden_dim, n_blocks=background_blocks,
                                                skips=background_skips, z_dim=background_z_dim,
                                                downscale=background_downscale, **common)

    def forward(self, features: Tensor, directions: Tensor, ws: Tensor) -> Field:
        n = self.layout.n_objects
        if features.ndim != 4 or features.shape[-1] != self.in_channels:
            raise ValueError(f"giraffe_composite expects features [B, R, S, {self.in_channels}] from the "
                             f"giraffe_composite embedder with n_objects={n}; got {tuple(features.shape)}")
        b, r, s, _ = features.shape
        transforms = scene_transforms(ws, self.layout)
        z_shape, z_app, z_shape_bg, z_app_bg = self.layout.codes(ws)
        points = features[..., :3 * n].reshape(b, r, s, n, 3).permute(0, 3, 1, 2, 4)  # [B, N, R, S, 3]
        object_dirs = transforms.object_directions(directions)  # [B, N, R, S, 3]
        obj_features, obj_sigma = self.object_field(points, object_dirs, z_shape[:, :, None, None],
                                                    z_app[:, :, None, None])
        bg_dirs = torch.einsum("bij,brsj->brsi", transforms.background_rotation, directions)
        bg_features, bg_sigma = self.background_field(features[..., 3 * n:], bg_dirs, z_shape_bg[:, None, None],
                                                      z_app_bg[:, None, None])
        if self.training and self.noise_std > 0:
            obj_sigma = obj_sigma + torch.randn_like(obj_sigma) * self.noise_std
            bg_sigma = bg_sigma + torch.randn_like(bg_sigma) * self.noise_std
        limit = 1.0 + self.box_padding
        inside = (points.abs() <= limit).all(dim=-1, keepdim=True)
        obj_sigma = torch.where(inside, obj_sigma, torch.zeros_like(obj_sigma))
        densities = F.relu(torch.cat([obj_sigma.permute(1, 0, 2, 3, 4), bg_sigma.unsqueeze(0)], dim=0))
        all_features = torch.cat([obj_features.permute(1, 0, 2, 3, 4), bg_features.unsqueeze(0)], dim=0)
        sigma, feature = compose_fields(densities, all_features)
        per_field = densities.squeeze(-1).permute(1, 2, 3, 0)  # [B, R, S, N + 1]
        return Field(features=feature, density=sigma, extras={"field_densities": per_field})

    def extra_repr(self) -> str:
        return (f"n_objects={self.layout.n_objects}, feature_dim={self.out_channels}, noise_std={self.noise_std}, "
                f"box_padding={self.box_padding}")
