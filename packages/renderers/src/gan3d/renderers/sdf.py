"""The SDF volume renderer (registered as ``volume_renderer`` ``sdf``): StyleSDF's density.

StyleSDF (Or-El et al. 2022, section 3.1, eq. 2; royorel/StyleSDF volume_renderer.py
``sdf_activation``) turns a signed distance ``d`` (negative inside) into a volume density with a
learned sharpness ``beta``:

    sigma = sigmoid(-d / beta) / beta,

so the surface sharpens as ``beta`` shrinks. ``beta`` is a trainable scalar initialised to 0.1 and
not clamped (``self.sigmoid_beta = nn.Parameter(0.1 * torch.ones(1))``). Then the same quadrature
and compositing as the density renderer: StyleSDF uses per-sample intervals with a last interval of
1e10, no density noise in SDF mode, and ``force_background`` (``eval_last_back`` here) only when
generating images and videos.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gan3d.core.types import Field, RaySamples

from .compositing import AlphaCompositingRenderer, Intervals
from .quadrature import QUADRATURES, quadrature_intervals

__all__ = ["sdf_to_density", "SdfVolumeRenderer"]


def sdf_to_density(sdf: Tensor, beta: Tensor) -> Tensor:
    """StyleSDF's ``sigmoid(-sdf / beta) / beta``; ``sdf [..., 1]``, ``beta`` a scalar tensor.

    Example:
        >>> sdf_to_density(torch.tensor([0.0]), torch.tensor(0.1)).item()
        5.0
    """
    return torch.sigmoid(-sdf / beta) / beta


class SdfVolumeRenderer(AlphaCompositingRenderer):
    """Alpha compositing of a signed distance field through StyleSDF's learned SDF-to-density map.

    Args:
        beta_init: initial value of the learned sharpness :attr:`sigmoid_beta` (StyleSDF: 0.1).
        learn_beta: train ``sigmoid_beta`` (StyleSDF does); ``False`` freezes it at ``beta_init``.
        quadrature, last_delta: as for :class:`~gan3d.renderers.volume.DensityVolumeRenderer`
            (StyleSDF: ``'last_delta'``, 1e10).
        white_back, last_back, eval_last_back, depth_mode, unit_to_signed: see
            :class:`~gan3d.renderers.compositing.AlphaCompositingRenderer`.

    Attributes:
        sigmoid_beta: ``[1]`` the learned sharpness (same name as StyleSDF's parameter, so official
            weights load by name).
    """

    field_kind = "sdf"

    def __init__(
        self,
        *,
        beta_init: float = 0.1,
        learn_beta: bool = True,
        quadrature: str = "last_delta",
        last_delta: float = 1e10,
        white_back: bool = False,
        last_back: bool = False,
        eval_last_back: bool = False,
        depth_mode: str = "expected",
        unit_to_signed: bool = False,
    ) -> None:
        super().__init__(white_back=white_back, last_back=last_back, eval_last_back=eval_last_back,
                         depth_mode=depth_mode, unit_to_signed=unit_to_signed)
        if beta_init <= 0:
            raise ValueError(f"beta_init must be positive, got {beta_init}")
        if quadrature not in QUADRATURES:
            raise ValueError(f"quadrature must be one of {', '.join(QUADRATURES)}; got {quadrature!r}")
        if last_delta <= 0:
            raise ValueError(f"last_delta must be positive, got {last_delta}")
        self.sigmoid_beta = nn.Parameter(torch.full((1,), float(beta_init)), requires_grad=learn_beta)
        self.quadrature = quadrature
        self.last_delta = float(last_delta)

    def density(self, sdf: Tensor) -> Tensor:
        """Volume density of signed distances ``sdf [..., 1]`` under the current ``sigmoid_beta``."""
        return sdf_to_density(sdf, self.sigmoid_beta)

    def sigma(self, field: Field) -> Tensor:
        """Per-sample density of the SDF, for composing fields at shared samples."""
        return self.density(field.sdf)

    def intervals(self, field: Field, samples: RaySamples) -> Intervals:
        parts = quadrature_intervals(field.sdf, field.features, samples, self.quadrature, self.last_delta)
        alpha = 1.0 - torch.exp(-self.density(parts.geometry) * parts.deltas)
        return Intervals(alpha=alpha, features=parts.features, depths=parts.depths)

    def extra_repr(self) -> str:
        return f"quadrature={self.quadrature!r}, white_back={self.white_back}, depth_mode={self.depth_mode!r}"
