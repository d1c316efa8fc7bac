"""The interface of every module family.

A plugin implements a family by subclassing its base class here and registering the subclass with
the registry (see :mod:`gan3d.core.hookspecs`). The registry builds an implementation by calling the
class with the keyword arguments of the recipe slot, so every constructor argument is a plain JSON
value (numbers, strings, lists, dicts).

The contracts (shapes in brackets, see :mod:`gan3d.core.types` for the letters):

============================  ========================================================================
family                        contract
============================  ========================================================================
``stochasticity_mapper``      ``z [B, z_dim]``, ``c [B, c_dim]`` -> ``ws [B, num_ws, w_dim]``
``pose_sampler``              ``batch_size`` -> :class:`~gan3d.core.types.Cameras`
``point_sampler``             ``Cameras``, ``(h, w)`` -> :class:`~gan3d.core.types.RaySamples`;
                              ``importance(samples, weights, n)`` -> fine ``RaySamples``
``point_embedder``            ``scene(ws)`` once per batch; ``points [B, R, S, 3]`` -> ``[B, R, S, C]``
``feature_decoder``           ``features [B, R, S, C]``, ``directions [B, R, S, 3]``, ``ws`` ->
                              :class:`~gan3d.core.types.Field`
``volume_renderer``           ``Field``, ``RaySamples`` -> :class:`~gan3d.core.types.Render`
``upsampler``                 ``features [B, F, h, w]``, ``ws`` -> ``image [B, 3, H, W]``
``discriminator``             ``image [B, 3, H, W]`` (+ raw image, camera label) ->
                              :class:`~gan3d.core.types.DiscriminatorOutput`
============================  ========================================================================
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from .types import Cameras, DiscriminatorOutput, Field, RaySamples, Render

__all__ = [
    "StochasticityMapper",
    "PoseSampler",
    "PointSampler",
    "PointEmbedder",
    "FeatureDecoder",
    "VolumeRenderer",
    "Upsampler",
    "Discriminator",
    "Evaluator",
    "Visualizer",
    "FAMILY_BASES",
]


class StochasticityMapper(nn.Module):
    """Maps noise (and an optional condition) to per-layer latents.

    Subclasses set ``z_dim``, ``c_dim`` (0 when unconditional), ``num_ws`` and ``w_dim`` and keep a
    ``w_avg`` buffer ``[num_ws, w_dim]`` (or ``[w_dim]``) when they support truncation.
    """

    z_dim: int
    c_dim: int = 0
    num_ws: int
    w_dim: int

    def forward(
        self,
        z: Tensor,
        c: Tensor | None = None,
        *,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        update_w_avg: bool = False,
    ) -> Tensor:
        """Return ``ws [B, num_ws, w_dim]`` for ``z [B, z_dim]`` and condition ``c [B, c_dim]``.

        ``truncation_psi < 1`` pulls the latents towards ``w_avg`` (only the first
        ``truncation_cutoff`` layers when it is given); ``update_w_avg`` updates the running mean
        (training only).
        """
        raise NotImplementedError


class PoseSampler(nn.Module):
    """Draws the cameras a batch is rendered from."""

    def forward(
        self, batch_size: int, *, device: torch.device | str = "cpu", generator: torch.Generator | None = None
    ) -> Cameras:
        """Return ``batch_size`` cameras on ``device``, drawn with ``generator`` when given."""
        raise NotImplementedError

    def bind_dataset_poses(self, labels: Tensor) -> None:
        """Give the sampler the data set's ``[N, 25]`` camera labels (used by samplers that draw
        poses from the data, as EG3D does). Samplers that do not need them ignore the call."""


class PointSampler(nn.Module):
    """Casts rays through pixel centres and places samples along them."""

    def forward(
        self, cameras: Cameras, resolution: tuple[int, int], *, generator: torch.Generator | None = None
    ) -> RaySamples:
        """Samples for every pixel of an ``(h, w)`` image: ``R = h * w`` rays in row-major order."""
        raise NotImplementedError

    def importance(
        self, samples: RaySamples, weights: Tensor, num_samples: int, *, generator: torch.Generator | None = None
    ) -> RaySamples:
        """``num_samples`` new samples per ray drawn where ``weights [B, R, S, 1]`` are large.

        Raises ``NotImplementedError`` for samplers with no hierarchical pass; a recipe that asks
        for importance samples with such a sampler fails when the generator is assembled.
        """
        raise NotImplementedError(f"{type(self).__name__} has no importance (hierarchical) sampling")

    supports_importance: bool = False


class PointEmbedder(nn.Module):
    """Turns sample points into features, possibly from a per-batch scene representation.

    ``scene(ws)`` runs once per batch (a tri-plane's synthesis network, a feature volume's 3D
    convolutions); ``forward(points, scene)`` runs once per chunk of rays.
    """

    out_channels: int

    def scene(self, ws: Tensor) -> Any:
        """Per-batch representation computed from ``ws [B, num_ws, w_dim]`` (default ``None``)."""
        return None

    def forward(self, points: Tensor, scene: Any) -> Tensor:
        """``points [B, R, S, 3]`` -> ``features [B, R, S, out_channels]``."""
        raise NotImplementedError


class FeatureDecoder(nn.Module):
    """Decodes embedded features into a :class:`Field` (geometry plus colour/features).

    A decoder of an SDF that sets ``sdf_gradients = True`` gets ``extras['sdf_gradients']`` (d sdf /
    d world points) added by :meth:`gan3d.core.generator.Generator.field` whenever autograd is on.
    """

    out_channels: int
    sdf_gradients: bool = False

    def forward(self, features: Tensor, directions: Tensor, ws: Tensor) -> Field:
        """``features [B, R, S, C]``, ``directions [B, R, S, 3]``, ``ws [B, num_ws, w_dim]``."""
        raise NotImplementedError


class VolumeRenderer(nn.Module):
    """Composites a field along rays (alpha compositing, equation 3 of NeRF)."""

    def forward(self, field: Field, samples: RaySamples) -> Render:
        """Composite ``field`` at ``samples`` into per-ray features, depth, weights and opacity."""
        raise NotImplementedError


class Upsampler(nn.Module):
    """Turns the rendered feature image into the final image."""

    def forward(self, features: Tensor, ws: Tensor) -> Tensor:
        """``features [B, F, h, w]`` -> ``image [B, 3, H, W]``."""
        raise NotImplementedError


class Discriminator(nn.Module):
    """Scores real and generated images."""

    def forward(
        self,
        image: Tensor,
        *,
        image_raw: Tensor | None = None,
        camera_label: Tensor | None = None,
        alpha: float = 1.0,
    ) -> DiscriminatorOutput:
        """``image [B, 3, H, W]``; ``image_raw [B, 3, h, w]`` for dual discriminators;
        ``camera_label [B, 25]`` for conditional ones; ``alpha`` the fade-in of a progressive one."""
        raise NotImplementedError


class Evaluator:
    """A metric computed on a generator (and, for distribution metrics, a data set).

    Built by the registry with its options (weight-file paths, sample counts); ``evaluate`` returns
    named floats, e.g. ``{"fid": 12.3}``. Evaluators use only the :class:`Generator` interface
    (``mapping``, ``synthesis``, ``forward``, its pose sampler), so they work for every method.
    """

    name: str = ""

    def evaluate(
        self,
        generator: nn.Module,
        *,
        dataset: Any = None,
        device: torch.device | str = "cpu",
        seed: int = 0,
    ) -> dict[str, float]:
        raise NotImplementedError


class Visualizer:
    """Writes images, videos or shapes of a generator into a folder; returns the written paths."""

    name: str = ""

    def visualize(self, generator: nn.Module, out_dir: Any, *, device: torch.device | str = "cpu",
                  seed: int = 0) -> list[Any]:
        raise NotImplementedError


#: The base class of each family whose implementations are ``nn.Module`` classes. Families not
#: listed here (``method``, ``loss``, ``evaluator``, ``visualizer``, ``estimator``) register
#: classes or factories whose contract their own module documents.
FAMILY_BASES: dict[str, type] = {
    "stochasticity_mapper": StochasticityMapper,
    "pose_sampler": PoseSampler,
    "point_sampler": PointSampler,
    "point_embedder": PointEmbedder,
    "feature_decoder": FeatureDecoder,
    "volume_renderer": VolumeRenderer,
    "upsampler": Upsampler,
    "discriminator": Discriminator,
}
