"""The distribution of one camera parameter (yaw, polar angle or radius) and how to draw it.

Strategies (the names of Carver's ``sample_tensor`` plus pi-GAN's spherical-uniform mode):

``fix``
    always ``mean``.
``uniform``
    ``U[low, high]`` over ``value_range``.
``normal``
    ``N(mean, stddev^2)``.
``hybrid``
    a fair coin, tossed once per batch, picks ``uniform`` over ``value_range`` or ``normal``
    (pi-GAN ``volumetric_rendering.py`` ``sample_camera_positions`` mode ``'hybrid'``; Carver
    ``sample_tensor``). pi-GAN's uniform branch spans ``mean +- 2 stddev``: give that range.
``truncated_normal``
    ``N(mean, stddev^2)`` conditioned on ``value_range`` (an exact truncated normal, drawn by
    inverse CDF). pi-GAN's ``'truncated_gaussian'`` truncates at ``mean +- 2 stddev``; Carver clamps
    instead of truncating, which piles mass on the bounds.
``spherical_uniform``
    polar angle only: cameras uniform in area on the zone of the sphere between the polar angles
    ``value_range``, via ``polar = arccos(1 - 2u)`` with ``u`` uniform (GRAF ``utils.to_sphere``,
    pi-GAN's ``'spherical_uniform'``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from gan3d.core import random_draws

__all__ = ["STRATEGIES", "ParameterDistribution"]

#: Every strategy name; ``spherical_uniform`` is accepted for the polar angle only.
STRATEGIES = ("fix", "uniform", "normal", "hybrid", "truncated_normal", "spherical_uniform")
_NEEDS_RANGE = ("uniform", "hybrid", "truncated_normal", "spherical_uniform")


@dataclass(frozen=True)
class ParameterDistribution:
    """How one camera parameter is drawn.

    Args:
        name: the option prefix (``'yaw'``, ``'polar'``, ``'radius'``), used in error messages.
        strategy: one of ``allowed``.
        mean: value of ``fix`` and mean of ``normal``/``hybrid``/``truncated_normal``.
        stddev: standard deviation of the normal strategies.
        value_range: ``(low, high)`` for the strategies that need bounds; empty otherwise.
        allowed: the strategies this parameter accepts.

    Example:
        >>> yaw = ParameterDistribution("yaw", "normal", math.pi / 2, 0.3, ())
        >>> yaw.draw(4).shape
        torch.Size([4])
    """

    name: str
    strategy: str
    mean: float
    stddev: float
    value_range: Sequence[float]
    allowed: tuple[str, ...] = STRATEGIES

    def __post_init__(self) -> None:
        if self.strategy not in self.allowed:
            hint = ""
            if self.strategy == "spherical_uniform":
                hint = " ('spherical_uniform' shapes the polar angle only; the azimuth of an area-uniform point is " \
                       "uniform, so use 'uniform' for yaw)"
            raise ValueError(
                f"{self.name}_strategy {self.strategy!r} is unknown; allowed: {', '.join(self.allowed)}{hint}"
            )
        if self.stddev < 0:
            raise ValueError(f"{self.name}_stddev must be >= 0, got {self.stddev}")
        if self.strategy == "truncated_normal" and self.stddev <= 0:
            raise ValueError(f"{self.name}_strategy 'truncated_normal' needs {self.name}_stddev > 0")
        given = list(self.value_range)
        if self.strategy in _NEEDS_RANGE:
            if len(self.value_range) != 2:
                raise ValueError(
                    f"{self.name}_strategy {self.strategy!r} needs {self.name}_range=[low, high], "
                    f"got {given}"
                )
            low, high = self.value_range
            if not low <= high:
                raise ValueError(f"{self.name}_range must be [low, high] with low <= high, got {given}")
            if self.strategy == "truncated_normal" and not low < high:
                raise ValueError(f"{self.name}_strategy 'truncated_normal' needs low < high in {self.name}_range")
            if self.strategy == "spherical_uniform" and not 0.0 <= low <= high <= math.pi:
                raise ValueError(
                    f"{self.name}_range for 'spherical_uniform' holds polar angles in [0, pi], got {given}"
                )
        elif len(self.value_range) not in (0, 2):
            raise ValueError(f"{self.name}_range must be empty or [low, high], got {given}")

    def center(self) -> float:
        """The middle of the distribution: ``mean`` for ``fix`` and the normal strategies, the middle of the
        range for ``uniform``, and for ``spherical_uniform`` the middle in area (GIRAFFE's ``v = 0.5``
        between ``v_min`` and ``v_max``, ``v = (1 - cos polar) / 2``)."""
        if self.strategy == "uniform":
            return 0.5 * (self.value_range[0] + self.value_range[1])
        if self.strategy == "spherical_uniform":
            low, high = self.value_range
            v = 0.25 * ((1 - math.cos(low)) + (1 - math.cos(high)))
            return math.acos(1 - 2 * v)
        return float(self.mean)

    def band(self) -> tuple[float, float]:
        """The values the draws cover: the range where there is one, ``mean +- 2 stddev`` for ``normal``,
        ``(mean, mean)`` for ``fix``."""
        if self.strategy == "fix":
            return (float(self.mean), float(self.mean))
        if self.strategy == "normal":
            return (self.mean - 2 * self.stddev, self.mean + 2 * self.stddev)
        return (float(self.value_range[0]), float(self.value_range[1]))

    def draw(
        self, n: int, *, device: torch.device | str = "cpu", generator: torch.Generator | None = None
    ) -> Tensor:
        """``[n]`` float32 values on ``device``."""
        if self.strategy == "fix":
            return torch.full((n,), float(self.mean), device=device)
        if self.strategy == "uniform":
            return self._uniform(n, device, generator)
        if self.strategy == "normal":
            return self._normal(n, device, generator)
        if self.strategy == "hybrid":
            # Both branches are drawn so that the choice needs no host-device synchronisation.
            coin = random_draws.uniform((1,), device=device, generator=generator) < 0.5
            return torch.where(coin, self._uniform(n, device, generator), self._normal(n, device, generator))
        if self.strategy == "truncated_normal":
            return self._truncated_normal(n, device, generator)
        # spherical_uniform: the area of the zone above polar angle p is proportional to
        # (1 - cos p) / 2, so that quantity is drawn uniformly and inverted.
        low, high = self.value_range
        u_low, u_high = (1 - math.cos(low)) / 2, (1 - math.cos(high)) / 2
        u = u_low + (u_high - u_low) * random_draws.uniform((n,), device=device, generator=generator)
        return torch.arccos((1 - 2 * u).clamp(-1.0, 1.0))

    def _uniform(self, n: int, device, generator) -> Tensor:
        low, high = self.value_range
        return low + (high - low) * random_draws.uniform((n,), device=device, generator=generator)

    def _normal(self, n: int, device, generator) -> Tensor:
        return self.mean + self.stddev * random_draws.normal((n,), device=device, generator=generator)

    def _truncated_normal(self, n: int, device, generator) -> Tensor:
        # Inverse-CDF sampling of the normal restricted to [low, high], in float64 so that bounds a
        # few standard deviations out keep their precision.
        low, high = self.value_range
        a = torch.special.ndtr(torch.tensor((low - self.mean) / self.stddev, dtype=torch.float64))
        b = torch.special.ndtr(torch.tensor((high - self.mean) / self.stddev, dtype=torch.float64))
        u = random_draws.uniform((n,), device=device, generator=generator, dtype=torch.float64)
        z = torch.special.ndtri(a.to(u.device) + (b - a).to(u.device) * u)
        return (self.mean + self.stddev * z).clamp(low, high).to(torch.float32)
