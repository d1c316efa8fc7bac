"""StyleSDF's SDF network (``stylesdf_siren``): a FiLM-conditioned SIREN with an SDF head, a
view-dependent colour head and a per-point feature vector for the 2D upsampler.

Facts from royorel/StyleSDF ``volume_renderer.py`` (``LinearLayer``, ``FiLMSiren``,
``SirenGenerator``) and ``options.py`` (``--depth 8``, ``--width 256``, ``--style_dim 256``):

* ``depth`` (8) FiLM-SIREN layers of width ``width`` (256): ``sin(gamma(w) * (W x + b) + beta(w))``,
  where every layer owns its style projections ``gamma(w) = 15 * (A_g w + a_g) + 30`` and
  ``beta(w) = 0.25 * (A_b w + a_b)`` of the one latent ``w`` (``style_dim`` 256);
* ``sdf = Linear(width, 1)`` of the last SIREN output, in the units of the world points (the
  official eikonal gradient is taken w.r.t. the unnormalised points);
* view dependence: one more FiLM layer on ``[x, view_direction]`` (features first) whose output is
  the 256-d feature vector the renderer composites for the upsampler, and
  ``rgb = Linear(width, 3)`` of it; the renderer composites ``sigmoid(rgb)`` and maps it to
  ``[-1, 1]``: here the field holds ``sigmoid(rgb)`` in ``[0, 1]`` (generator ``image_range='unit'``);
* init: SIREN weights ``U(-sqrt(6/n)/25, sqrt(6/n)/25)``, the first layer ``U(-1/n, 1/n)`` (n = 3),
  every bias ``U(-sqrt(1/n), sqrt(1/n))``; the style projections ``0.25 * kaiming_normal(a=0.2)``;
  the heads the SIREN init.

The network is made a sphere at the start of training by fitting it to ``|p| - r`` (the official
``mlp_init_pass``; see the ``stylesdf`` objective's ``initialize_generator``), not by an analytic
initialisation: SIREN has no geometric init.

The input points come from the ``coordinate`` embedder with ``box_warp = far - near`` (StyleSDF's
``z_normalize``: ``p * 2 / (far - near)``). When the objective requests ``'sdf_gradients'`` the
generator adds ``extras['sdf_gradients']`` ``[B, R, S, 3]`` (d sdf / d world points) for the eikonal
loss (:meth:`gan3d.core.generator.Generator.field`).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from gan3d.core.interfaces import FeatureDecoder
from gan3d.core.types import Field

__all__ = ["StyleProjection", "StyleSDFFiLMLayer", "StyleSDFSirenDecoder"]

#: ``FiLMSiren``: ``gamma = LinearLayer(bias_init=30, std_init=15)``, ``beta = LinearLayer(std_init=0.25)``.
FREQUENCY_GAIN = 15.0
FREQUENCY_BIAS = 30.0
PHASE_GAIN = 0.25


def _siren_uniform_(weight: Tensor, bound: float) -> None:
    with torch.no_grad():
        weight.uniform_(-bound, bound)


class StyleProjection(nn.Module):
    """StyleSDF's ``LinearLayer``: ``gain * (W w + b) + offset``, ``w [B, in_dim]`` -> ``[B, out_dim]``.

    ``W = 0.25 * kaiming_normal(a=0.2, fan_in)``, ``b ~ U(-sqrt(1/in), sqrt(1/in))``.
    """

    def __init__(self, in_dim: int, out_dim: int, *, gain: float = 1.0, offset: float = 0.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(0.25 * nn.init.kaiming_normal_(torch.empty(out_dim, in_dim), a=0.2,
                                                                   mode="fan_in", nonlinearity="leaky_relu"))
        self.bias = nn.Parameter(torch.empty(out_dim).uniform_(-math.sqrt(1 / in_dim), math.sqrt(1 / in_dim)))
        self.gain = gain
        self.offset = offset

    def forward(self, w: Tensor) -> Tensor:
        return self.gain * nn.functional.linear(w, self.weight, self.bias) + self.offset


class StyleSDFFiLMLayer(nn.Module):
    """``x [B, N, in_dim]``, ``w [B, style_dim]`` -> ``sin(gamma(w) * (W x + b) + beta(w))`` ``[B, N, out_dim]``."""

    def __init__(self, in_dim: int, out_dim: int, style_dim: int, *, first: bool = False) -> None:
        super().__init__()
        self.linear = nn.Linear(in_dim, out_dim)
        _siren_uniform_(self.linear.weight, 1.0 / in_dim if first else math.sqrt(6.0 / in_dim) / 25.0)
        _siren_uniform_(self.linear.bias, math.sqrt(1.0 / in_dim))
        self.gamma = StyleProjection(style_dim, out_dim, gain=FREQUENCY_GAIN, offset=FREQUENCY_BIAS)
        self.beta = StyleProjection(style_dim, out_dim, gain=PHASE_GAIN)

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        return torch.sin(self.gamma(w).unsqueeze(1) * self.linear(x) + self.beta(w).unsqueeze(1))


class StyleSDFSirenDecoder(FeatureDecoder):
    """StyleSDF's SIREN SDF network (see the module docstring).

    Args:
        in_channels: channels of the embedded points (3: ``coordinate`` embedder, no encoding).
        width: SIREN width (StyleSDF 256); also the size of the output feature vector.
        depth: FiLM-SIREN layers before the SDF head (StyleSDF 8).
        style_dim: size of the latent ``w`` (StyleSDF 256); ``ws[:, 0]`` drives every layer.
        output_features: put the ``width``-d view-dependent features after the RGB (the full
            pipeline); ``False`` gives RGB only (the volume-renderer stage, ``no_features_output``).

    The eikonal loss's SDF gradients are asked for by the objective (``requests={'sdf_gradients'}``).

    Shapes: ``features [B, R, S, in_channels]``, ``directions [B, R, S, 3]``,
    ``ws [B, >= 1, style_dim]`` -> ``Field(features [B, R, S, 3 (+ width)], sdf [B, R, S, 1])`` with
    RGB in ``[0, 1]``.

    Example:
        >>> dec = StyleSDFSirenDecoder(width=32, depth=2, style_dim=16)
        >>> f = dec(torch.rand(1, 4, 5, 3), torch.rand(1, 4, 5, 3), torch.randn(1, 1, 16))
        >>> f.features.shape, f.sdf.shape
        (torch.Size([1, 4, 5, 35]), torch.Size([1, 4, 5, 1]))
    """

    num_ws = 1
    field_kind = "sdf"
    WIRED = {"in_channels": "in_channels", "style_dim": "w_dim"}

    def __init__(self, *, in_channels: int = 3, width: int = 256, depth: int = 8, style_dim: int = 256,
                 output_features: bool = True) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("width", width), ("depth", depth),
                            ("style_dim", style_dim)):
            if value <= 0:
                raise ValueError(f"stylesdf_siren decoder: {name} must be positive, got {value}")
        self.in_channels = in_channels
        self.width = width
        self.depth = depth
        self.style_dim = style_dim
        self.w_dim = style_dim
        self.output_features = output_features
        self.out_channels = 3 + (width if output_features else 0)
        self.layers = nn.ModuleList(
            StyleSDFFiLMLayer(in_channels if i == 0 else width, width, style_dim, first=i == 0) for i in range(depth)
        )
        self.sdf_head = nn.Linear(width, 1)
        self.view_layer = StyleSDFFiLMLayer(width + 3, width, style_dim)
        self.rgb_head = nn.Linear(width, 3)
        for head in (self.sdf_head, self.rgb_head):  # LinearLayer(freq_init=True)
            _siren_uniform_(head.weight, math.sqrt(6.0 / width) / 25.0)
            _siren_uniform_(head.bias, math.sqrt(1.0 / width))

    def forward(self, features: Tensor, directions: Tensor, ws: Tensor) -> Field:
        b, r, s, c = features.shape
        if c != self.in_channels:
            raise ValueError(f"stylesdf_siren decoder: features have {c} channels, expected "
                             f"in_channels={self.in_channels} (use the coordinate embedder without encoding)")
        if ws.ndim != 3 or ws.shape[2] != self.style_dim:
            raise ValueError(f"stylesdf_siren decoder needs ws [B, num_ws, {self.style_dim}] (the stylesdf "
                             f"mapper's w); got {tuple(ws.shape)}")
        w = ws[:, 0]
        x = features.reshape(b, r * s, c)
        for layer in self.layers:
            x = layer(x, w)
        sdf = self.sdf_head(x)
        h = self.view_layer(torch.cat([x, directions.reshape(b, r * s, 3)], dim=-1), w)
        rgb = torch.sigmoid(self.rgb_head(h))
        out = torch.cat([rgb, h], dim=-1) if self.output_features else rgb
        return Field(features=out.reshape(b, r, s, self.out_channels), sdf=sdf.reshape(b, r, s, 1))

    def extra_repr(self) -> str:
        return (f"in_channels={self.in_channels}, width={self.width}, depth={self.depth}, "
                f"style_dim={self.style_dim}, output_features={self.output_features}")
