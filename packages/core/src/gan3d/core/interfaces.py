"""The interface of every module family.

A plugin implements a family by subclassing its base class here and registering the subclass with
the registry (see :mod:`gan3d.core.hookspecs`). The registry builds an implementation by calling the
class with the keyword arguments of the recipe slot, so every constructor argument is a plain JSON
value (numbers, strings, lists, dicts).

The contracts (shapes in brackets, see :mod:`gan3d.core.types` for the letters):

============================  ========================================================================
family                        contract
============================  ========================================================================
``stochasticity_mapper``      ``z [B, z_dim]``, ``c [B, c_dim]`` -> ``ws [B, num_ws, w_dim]`` or a
                              :class:`~gan3d.core.types.SceneLatent`
``pose_sampler``              ``batch_size`` -> :class:`~gan3d.core.types.Cameras`;
                              ``camera_rig()`` -> :class:`~gan3d.core.types.CameraRig`
``point_sampler``             ``Cameras``, ``(h, w)`` or ``pixels [B, R, 2]`` ->
                              :class:`~gan3d.core.types.RaySamples`;
                              ``importance(samples, weights, n)`` -> fine ``RaySamples``
``point_embedder``            ``scene(ws_rows, generator=)`` once per batch; ``points [B, R, S, 3]`` -> ``[B, R, S, C]``
``feature_decoder``           ``features [B, R, S, C]``, ``directions [B, R, S, 3]``, ``ws_rows`` ->
                              :class:`~gan3d.core.types.Field`
``volume_renderer``           ``Field``, ``RaySamples`` -> :class:`~gan3d.core.types.Render`;
                              ``render(parts)`` composites several sample sets and fields
``upsampler``                 ``features [B, F, h, w]``, ``ws_rows``, ``alpha`` -> ``image [B, 3, H, W]``
``discriminator``             :class:`~gan3d.core.types.DiscriminatorInput` ->
                              :class:`~gan3d.core.types.DiscriminatorOutput`
============================  ========================================================================

Every attribute the generator, the trainer or the evaluators read is declared here with its default
(``num_ws``, ``out_channels``, ``field_kind``, ``depth_mode``, ``bounds``, ``camera_rig()``,
``out_resolution()``, ``set_training_step()``...): an implementation overrides what applies to it and
nobody probes for undeclared attributes.

**Latent rows.** A consumer of the latent (embedder, decoder, upsampler) declares ``num_ws``, the rows
of ``ws`` it reads, and optionally ``ws_from_previous``, how many of them are the last rows of the
previous consumer's (EG3D's super-resolution reads the tri-plane backbone's last row). The generator
allocates consecutive row ranges in data-flow order (``Generator.ws_layout``) and hands each module
only its rows.

**Wiring.** What a module's constructor takes from its upstream is filled in by the generator at build
time (:meth:`Wired.wire`): a decoder's ``in_channels`` is its embedder's ``out_channels``, every
``w_dim`` is the mapper's, the mapper's ``num_ws`` is the total of the consumers'. Recipes leave these
out.
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from .types import (
    CameraRig,
    Cameras,
    DiscriminatorInput,
    DiscriminatorOutput,
    Field,
    FieldSamples,
    RaySamples,
    Render,
    UpsampledImages,
)

__all__ = [
    "Scheduled",
    "Wired",
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
    "LatentConsumer",
]


class Scheduled:
    """Anything whose behaviour follows the training progress (annealed noise, patch scales, fade-ins).

    The trainer calls :meth:`set_training_step` on every module of the generator, the discriminator and
    the objective before each step (and after a resume).
    """

    def set_training_step(self, step: int, kimg: float) -> None:
        """Follow the schedule: ``step`` iterations and ``kimg`` thousand real images done. No-op here."""


class Wired:
    """Constructor options filled in by the generator from the module's upstream at build time.

    ``WIRED`` maps a constructor option to the upstream fact it takes: ``'in_channels'`` (the upstream's
    output channels), ``'w_dim'`` (the latent width), ``'num_ws'`` (the rows the consumers need). An
    option is wired only when the constructor accepts it. A module with another rule overrides
    :meth:`wire`.
    """

    WIRED: ClassVar[dict[str, str]] = {}

    @classmethod
    def wire(cls, options: dict[str, Any], upstream: dict[str, Any]) -> dict[str, Any]:
        """The wired values of ``options`` from the ``upstream`` facts (a dict with keys such as
        ``in_channels``, ``w_dim``, ``num_ws``); returns only the options to set."""
        try:
            accepted = inspect.signature(cls).parameters
        except (TypeError, ValueError):
            return {}
        return {name: upstream[fact] for name, fact in cls.WIRED.items()
                if name in accepted and fact in upstream and upstream[fact] is not None}


class LatentConsumer:
    """A module that reads rows of the latent: declares how many (``num_ws``), how many of those are the
    previous consumer's last rows (``ws_from_previous``) and their width (``w_dim``; 0 when it reads none)."""

    num_ws: int = 0
    ws_from_previous: int = 0
    w_dim: int = 0


class StochasticityMapper(Scheduled, Wired, nn.Module):
    """Maps noise (and an optional condition) to the latent the generator renders.

    Subclasses set ``z_dim``, ``c_dim`` (0 when unconditional) and ``w_dim``; ``num_ws`` is wired by the
    generator (the rows its consumers read). A mapper with truncation keeps a ``w_avg`` buffer.

    ``latent_kind`` is ``'ws'`` for a ``[B, num_ws, w_dim]`` tensor and ``'scene'`` for a
    :class:`~gan3d.core.types.SceneLatent` (compositional scenes: per group and instance codes and
    frames); a scene mapper declares each group's code width in :meth:`code_dim`.
    """

    WIRED: ClassVar[dict[str, str]] = {"num_ws": "num_ws"}
    latent_kind: ClassVar[str] = "ws"
    z_dim: int
    c_dim: int = 0
    num_ws: int = 1
    w_dim: int

    def forward(
        self,
        z: Tensor,
        c: Tensor | None = None,
        *,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        update_w_avg: bool = False,
    ) -> Any:
        """Return ``ws [B, num_ws, w_dim]`` (or a ``SceneLatent``) for ``z [B, z_dim]`` and condition
        ``c [B, c_dim]``.

        ``truncation_psi < 1`` pulls the latents towards ``w_avg`` (only the first
        ``truncation_cutoff`` layers when it is given); ``update_w_avg`` updates the running mean
        (training only).
        """
        raise NotImplementedError

    def code_dim(self, group: str) -> int:
        """The width of the latent rows the modules of field group ``group`` read (``w_dim`` for ``ws``)."""
        return self.w_dim

    def frame_priors(self) -> dict[str, Any] | None:
        """For scene mappers with object frames: the priors they draw transforms from, e.g.
        ``{'scale': (min [3], max [3]), 'translation': (min [3], max [3]), 'rotation': (low, high)}`` in
        radians about the up axis (controllable-generation sweeps use them). ``None``: no frames."""
        return None


class PoseSampler(Scheduled, nn.Module):
    """Draws the cameras a batch is rendered from.

    ``needs_dataset_poses`` declares that the sampler draws the data set's camera labels (EG3D), so a
    data set without labels is refused up front.
    """

    needs_dataset_poses: ClassVar[bool] = False

    def forward(
        self, batch_size: int, *, device: torch.device | str = "cpu", generator: torch.Generator | None = None
    ) -> Cameras:
        """Return ``batch_size`` cameras on ``device``, drawn with ``generator`` when given."""
        raise NotImplementedError

    def bind_dataset_poses(self, labels: Tensor) -> None:
        """Give the sampler the data set's ``[N, 25]`` camera labels (used by samplers that draw
        poses from the data, as EG3D does). Samplers that do not need them ignore the call."""

    def camera_rig(self) -> CameraRig:
        """The mean camera and the orbit it turns on (:class:`~gan3d.core.types.CameraRig`).

        The default estimates it from 1024 seeded draws (:func:`gan3d.core.cameras.rig_from_cameras`);
        samplers that know their distribution override it with the exact values.
        """
        from .cameras import rig_from_cameras

        with torch.no_grad():
            cams = self(1024, generator=torch.Generator().manual_seed(0))
        return rig_from_cameras(cams)


class PointSampler(Scheduled, nn.Module):
    """Casts rays through pixels and places samples along them.

    Declares ``align_corners``: whether the rays of a full-image render lie on the corner-aligned grid
    (``u = j / (w - 1)``, the outermost rays on the image's edges: pi-GAN's and GIRAFFE's) rather than
    through pixel centres (``u = (j + 0.5) / w``), whatever the cameras say. :meth:`corner_aligned` is
    what the evaluators read to lift the generator's depth and to read its images at projected points.
    """

    supports_importance: ClassVar[bool] = False
    #: Rays on the corner-aligned grid for every camera (a sampler with the option sets it per instance).
    align_corners: bool = False

    def corner_aligned(self, cameras: Cameras) -> bool:
        """Whether the rays of an ``(h, w)`` render of ``cameras`` lie on the corner-aligned grid: this
        sampler's :attr:`align_corners`, or the cameras' own flag (a corner-aligned patch,
        :meth:`~gan3d.core.types.Cameras.crop`)."""
        return bool(self.align_corners or cameras.align_corners)

    def forward(
        self,
        cameras: Cameras,
        resolution: tuple[int, int],
        *,
        pixels: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> RaySamples:
        """Samples for every pixel of an ``(h, w)`` image, ``R = h * w`` rays in row-major order (through
        pixel centres, or on the corner-aligned grid when :meth:`corner_aligned`); or, when ``pixels
        [B, R, 2]`` (normalized image coordinates ``(u, v)`` in ``[0, 1]``) are given, one ray each."""
        raise NotImplementedError

    def support(self, points: Tensor) -> Tensor | None:
        """Where this sampler can place samples: ``[B, R, S, 1]`` bool for world ``points [B, R, S, 3]``, or
        ``None`` (the default) when any point may be sampled. Shape extraction
        (:meth:`~gan3d.core.generator.Generator.query_field`) gives the field no density outside it, since
        rendering never sees it there (GRAM's radiance field is seen only between its outermost and
        innermost manifolds)."""
        return None

    def importance(
        self, samples: RaySamples, weights: Tensor, num_samples: int, *, generator: torch.Generator | None = None
    ) -> RaySamples:
        """``num_samples`` new samples per ray drawn where ``weights [B, R, S, 1]`` are large.

        Raises ``NotImplementedError`` for samplers with no hierarchical pass; a recipe that asks
        for importance samples with such a sampler fails when the generator is assembled.
        """
        raise NotImplementedError(f"{type(self).__name__} has no importance (hierarchical) sampling")


class PointEmbedder(Scheduled, Wired, LatentConsumer, nn.Module):
    """Turns sample points into features, possibly from a per-batch scene representation.

    ``scene(ws_rows, generator=)`` runs once per batch (a tri-plane's synthesis network, a feature volume's 3D
    convolutions, a random latent drawn with the pass's ``generator``); ``forward(points, scene)`` runs once
    per chunk of rays.

    Declares ``out_channels`` (``C``), ``num_ws`` and ``bounds``: the box ``([x0, y0, z0], [x1, y1, z1])``
    where the scene representation is defined (shape extraction samples it), ``None`` when unbounded.
    """

    WIRED: ClassVar[dict[str, str]] = {"w_dim": "w_dim"}
    out_channels: int
    bounds: tuple[tuple[float, float, float], tuple[float, float, float]] | None = None

    def scene(self, ws: Tensor, *, generator: torch.Generator | None = None) -> Any:
        """Per-batch representation computed from this module's latent rows ``[B, num_ws, w_dim]``
        (default ``None``). ``generator`` is the forward pass's random generator, for a scene with random
        inputs of its own (StyleNeRF's background latent, drawn per batch), so that a seed reproduces it;
        deterministic scenes ignore it."""
        return None

    def forward(self, points: Tensor, scene: Any) -> Tensor:
        """``points [B, R, S, 3]`` -> ``features [B, R, S, out_channels]``."""
        raise NotImplementedError


class FeatureDecoder(Scheduled, Wired, LatentConsumer, nn.Module):
    """Decodes embedded features into a :class:`Field` (geometry plus colour/features).

    Declares ``out_channels`` (``F``; the first three are RGB when the method renders colour),
    ``num_ws`` and ``field_kind``, the kind of geometry it outputs (``'density'``, ``'sdf'`` or
    ``'occupancy'``), which the generator checks against the volume renderer at build time.
    """

    WIRED: ClassVar[dict[str, str]] = {"in_channels": "in_channels", "w_dim": "w_dim"}
    in_channels: int = 0
    out_channels: int
    field_kind: str = "density"

    def forward(self, features: Tensor, directions: Tensor, ws: Tensor) -> Field:
        """``features [B, R, S, C]``, ``directions [B, R, S, 3]``, this module's latent rows
        ``[B, num_ws, w_dim]``."""
        raise NotImplementedError


class VolumeRenderer(Scheduled, nn.Module):
    """Composites fields along rays (alpha compositing, equation 3 of NeRF).

    Declares ``field_kind`` (the geometry it reads) and ``depth_mode`` (``'expected'``: ``sum_i w_i t_i``;
    otherwise normalized by the weights).
    """

    field_kind: ClassVar[str] = "density"
    depth_mode: str = "expected"

    def forward(self, field: Field, samples: RaySamples) -> Render:
        """Composite ``field`` at ``samples`` into per-ray features, depth, weights and opacity."""
        raise NotImplementedError

    def render(self, parts: list[FieldSamples]) -> Render:
        """Composite several fields. Parts of the same ``sample_set`` share their samples and are
        composed there first (sum of densities, density-weighted features: GIRAFFE eq. 4); then the
        intervals of every sample set are merged by depth and composited together, so a field behind
        another is seen through its transmittance (NeRF++). ``Render.weights`` are those of the first
        sample set's samples. The base class composites one part only."""
        if len(parts) != 1:
            raise NotImplementedError(f"{type(self).__name__} composites one field; the generator has {len(parts)} "
                                      "field parts (field groups): use a renderer that composites several")
        return self(parts[0].field, parts[0].samples)

    def density(self, geometry: Tensor) -> Tensor:
        """The volume density (or the value shape extraction thresholds) of the decoder's geometry values
        ``[..., 1]``, without training noise. The default returns them as they are."""
        return geometry

    def sample_noise(self, field: Field) -> Field:
        """``field`` as just evaluated by the generator (before any importance pass), with whatever random
        perturbation the renderer draws once per sample rather than at each compositing (StyleNeRF's density
        noise: a coarse sample keeps its draw in the final composite). The default returns it unchanged."""
        return field


class Upsampler(Scheduled, Wired, LatentConsumer, nn.Module):
    """Turns the rendered feature image into the final image.

    Declares ``num_ws`` and :meth:`out_resolution`; progressive upsamplers (StyleNeRF, VolumeGAN) read
    the fade-in ``alpha``.
    """

    WIRED: ClassVar[dict[str, str]] = {"in_channels": "in_channels", "w_dim": "w_dim"}
    #: the feature channels it reads (0: any with RGB first).
    in_channels: int = 0

    def forward(self, features: Tensor, ws: Tensor, *, alpha: float = 1.0) -> Tensor | UpsampledImages:
        """``features [B, F, h, w]``, this module's latent rows, fade-in ``alpha`` -> ``image [B, 3, H, W]``.

        The generator leaves ``alpha`` out unless its caller gives one: a progressive upsampler then uses
        its own fade-in (StyleNeRF's, a buffer that follows :meth:`set_training_step`).

        An upsampler whose official counterpart also changes the raw image returns
        :class:`~gan3d.core.types.UpsampledImages`; the generator then reports its ``image_raw`` (EG3D's 128-
        and 256-px modules, see ``EG3DSuperResolution``)."""
        raise NotImplementedError

    def out_resolution(self, render_resolution: int) -> int:
        """The side of the output image for a ``render_resolution`` feature image (default: the same); a
        progressive upsampler gives the side at its current fade-in, which the trainer resizes the reals to."""
        return render_resolution


class Discriminator(Scheduled, nn.Module):
    """Scores real and generated images."""

    def forward(self, x: DiscriminatorInput) -> DiscriminatorOutput:
        """Score ``x.image [B, 3, H, W]`` (and whichever other inputs of the container it uses)."""
        raise NotImplementedError


class Evaluator:
    """A metric computed on a generator (and, for distribution metrics, a data set).

    Built by the registry with its options (weight-file paths, sample counts); ``evaluate`` returns
    named floats, e.g. ``{"fid": 12.3}``. Evaluators use only the :class:`Generator` interface
    (``mapping``, ``synthesis``, ``forward``, ``corner_aligned(cameras)``, its pose sampler's
    ``camera_rig()``), so they work for every method.
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
#: classes or factories whose contract their own module documents. A plugin that declares a new
#: family gives its base class to :meth:`gan3d.core.registry.Registry.add_family`.
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
