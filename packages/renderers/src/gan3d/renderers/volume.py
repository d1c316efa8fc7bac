"""The density volume renderer (registered as ``volume_renderer`` ``volume``).

Reads a :class:`~gan3d.core.types.Field` with raw (pre-activation) ``density``; per interval

    sigma_i = activation(raw_i + noise_i),   alpha_i = 1 - exp(-sigma_i * delta_i),

then alpha compositing (:mod:`gan3d.renderers.compositing`). The methods differ only in options:

=========  ==============  ===========  =========  ==========================  ====================
method     activation      quadrature   noise_std  background                  depth_mode
=========  ==============  ===========  =========  ==========================  ====================
GRAF       relu            last_delta   1.0 [1]_   white_back (Carla)          expected
pi-GAN     relu            last_delta   1.0 [1]_   white_back (Carla),         expected
                                                   eval_last_back (CelebA)
EG3D       mipnerf         midpoint     0.0        white_back (ShapeNet),      normalized_clamped
                                                   unit_to_signed
GRAM       softplus [2]_   last_delta   0.0        deltas from the sampler     normalized
=========  ==============  ===========  =========  ==========================  ====================

.. [1] annealed linearly to 0 over the first 5000 steps (pi-GAN train.py
   ``nerf_noise = max(0, 1 - step/5000)``; GRAF graf/models/generator.py ``decrease_nerf_noise``):
   ``noise_anneal_steps=5000``, with the trainer calling :meth:`set_training_step`.
.. [2] GRAM's decoder applies softplus (generators/representations/gram.py ``sigma_clamp_mode``) and its
   renderer uses a fixed interval of 0.04 (``delta_alpha``) and 1e10 for the background plane; here the
   decoder gives the raw value, the renderer the softplus, and the point sampler the ``deltas``.
"""

from __future__ import annotations

import dataclasses
import logging

import torch
import torch.nn.functional as F
from torch import Tensor

from gan3d.core.types import Field, RaySamples

from .compositing import AlphaCompositingRenderer, Intervals
from .quadrature import QUADRATURES, quadrature_intervals

__all__ = ["DENSITY_ACTIVATIONS", "DensityVolumeRenderer"]

logger = logging.getLogger(__name__)

#: ``relu``: NeRF/GRAF ``raw2outputs`` and pi-GAN ``clamp_mode='relu'``; ``softplus``: pi-GAN
#: ``clamp_mode='softplus'``, StyleSDF without SDF, GRAM; ``mipnerf``: ``softplus(raw - 1)``, EG3D's
#: ray_marcher.py (the -1 bias "makes things initialize better", after MipNeRF).
DENSITY_ACTIVATIONS = ("relu", "softplus", "mipnerf")


class DensityVolumeRenderer(AlphaCompositingRenderer):
    """Alpha compositing of a raw density field (NeRF eq. 3), configured per method.

    Args:
        density_activation: one of :data:`DENSITY_ACTIVATIONS`.
        quadrature: ``'last_delta'`` (per-sample intervals, last one ``last_delta`` long) or
            ``'midpoint'`` (EG3D: ``S - 1`` intervals between samples, raw density, features and depth
            averaged at the midpoints). See :mod:`gan3d.renderers.quadrature`.
        last_delta: length of the last interval under ``'last_delta'`` (1e10 in NeRF, pi-GAN, GRAM; 0 for
            StyleNeRF's foreground, composited in front of its background: ``calc_volume_weights`` with
            ``last_dist=0``, training/stylenerf.py ``VolumeRenderer.forward_rendering``).
        noise_std: standard deviation of Gaussian noise added to the raw density before the
            activation, in training mode only (NeRF ``raw_noise_std``, pi-GAN ``nerf_noise``, EG3D
            ``density_noise``).
        noise_anneal_steps: when positive, the noise falls linearly from ``noise_std`` to 0 over this
            many training steps, as told by :meth:`set_training_step` (pi-GAN and GRAF: 5000).
        noise_anneal_kimg: when positive, the noise falls linearly from ``noise_std`` to 0 over this many
            thousand real images instead (EpiGRAF: 5000, networks_epigraf.py ``progressive_update``:
            ``linear_schedule(cur_kimg, nerf_noise_std_init, 0, nerf_noise_kimg_growth)``). At most one
            of the two schedules may be set.
        noise_per_sample: draw each sample's noise once, when the generator evaluates its field
            (:meth:`sample_noise`), so that the final composite of an importance pass keeps the coarse
            samples' draws, the ones their importance weights came from (StyleNeRF: ``get_density`` runs
            on each pass's samples and the coarse densities are concatenated with the fine ones,
            training/stylenerf.py ``VolumeRenderer.forward_rendering``). Default False: the noise is drawn
            at each compositing, so the final composite draws the coarse samples' noise afresh
            (nerf-pytorch's ``raw2outputs`` and pi-GAN's ``fancy_integration`` on the merged samples).
        white_back, last_back, eval_last_back, depth_mode, unit_to_signed, depth_from: see
            :class:`~gan3d.renderers.compositing.AlphaCompositingRenderer`.

    Colour is not touched: a sigmoid on RGB (GRAF's ``raw2outputs``, pi-GAN's and EG3D's decoders)
    acts per sample, so it belongs to the feature decoder.

    Example:
        >>> renderer = DensityVolumeRenderer(density_activation="mipnerf", quadrature="midpoint")
        >>> render = renderer(field, samples)   # doctest: +SKIP
        >>> render.features.shape, render.weights.shape   # [B, R, F], [B, R, S, 1]   # doctest: +SKIP
    """

    field_kind = "density"

    def __init__(
        self,
        *,
        density_activation: str = "relu",
        quadrature: str = "last_delta",
        last_delta: float = 1e10,
        noise_std: float = 0.0,
        noise_anneal_steps: int = 0,
        noise_anneal_kimg: float = 0.0,
        noise_per_sample: bool = False,
        white_back: bool = False,
        last_back: bool = False,
        eval_last_back: bool = False,
        depth_mode: str = "expected",
        unit_to_signed: bool = False,
        depth_from: str = "all",
    ) -> None:
        super().__init__(white_back=white_back, last_back=last_back, eval_last_back=eval_last_back,
                         depth_mode=depth_mode, unit_to_signed=unit_to_signed, depth_from=depth_from)
        if density_activation not in DENSITY_ACTIVATIONS:
            raise ValueError(
                f"density_activation must be one of {', '.join(DENSITY_ACTIVATIONS)}; got {density_activation!r}"
            )
        if quadrature not in QUADRATURES:
            raise ValueError(f"quadrature must be one of {', '.join(QUADRATURES)}; got {quadrature!r}")
        if last_delta < 0:
            raise ValueError(f"last_delta must be >= 0, got {last_delta}")
        if noise_std < 0:
            raise ValueError(f"noise_std must be >= 0, got {noise_std}")
        if noise_anneal_steps < 0:
            raise ValueError(f"noise_anneal_steps must be >= 0, got {noise_anneal_steps}")
        if noise_anneal_kimg < 0:
            raise ValueError(f"noise_anneal_kimg must be >= 0, got {noise_anneal_kimg}")
        if noise_anneal_steps > 0 and noise_anneal_kimg > 0:
            raise ValueError("give noise_anneal_steps or noise_anneal_kimg, not both: the density noise follows one "
                             f"schedule (got {noise_anneal_steps} steps and {noise_anneal_kimg} kimg)")
        self.density_activation = density_activation
        self.quadrature = quadrature
        self.last_delta = float(last_delta)
        self.noise_std = float(noise_std)
        self.noise_anneal_steps = noise_anneal_steps
        self.noise_anneal_kimg = float(noise_anneal_kimg)
        self.noise_per_sample = bool(noise_per_sample)
        #: the standard deviation used now; :meth:`set_training_step` anneals it.
        self.current_noise_std = self.noise_std

    def set_training_step(self, step: int, kimg: float = 0.0) -> None:
        """Anneal the density noise: ``noise_std * max(0, 1 - step / noise_anneal_steps)``, or
        ``noise_std * max(0, 1 - kimg / noise_anneal_kimg)``.

        A no-op schedule (constant ``noise_std``) when neither is set.
        """
        if self.noise_anneal_steps > 0:
            self.current_noise_std = self.noise_std * max(0.0, 1.0 - step / self.noise_anneal_steps)
        elif self.noise_anneal_kimg > 0:
            self.current_noise_std = self.noise_std * max(0.0, 1.0 - kimg / self.noise_anneal_kimg)

    def density(self, raw: Tensor) -> Tensor:
        """Volume density ``sigma >= 0`` of raw decoder output ``raw [..., 1]`` (no noise); for
        visualizers that extract shapes from a density grid."""
        if self.density_activation == "relu":
            return F.relu(raw)
        if self.density_activation == "softplus":
            return F.softplus(raw)
        return F.softplus(raw - 1.0)  # mipnerf

    def _noisy(self, raw: Tensor) -> Tensor:
        """``raw`` plus the training noise when it is drawn at compositing (not :attr:`noise_per_sample`)."""
        if self.training and self.current_noise_std > 0 and not self.noise_per_sample:
            return raw + torch.randn_like(raw) * self.current_noise_std
        return raw

    def sample_noise(self, field: Field) -> Field:
        """With :attr:`noise_per_sample`, in training: ``field`` with the noise added to its raw density, once
        (the generator calls this where it evaluates the field); otherwise ``field`` unchanged."""
        if not (self.noise_per_sample and self.training and self.current_noise_std > 0):
            return field
        noise = torch.randn_like(field.density) * self.current_noise_std
        return dataclasses.replace(field, density=field.density + noise)

    def sigma(self, field: Field) -> Tensor:
        """Per-sample density with the training noise, for composing fields at shared samples (GIRAFFE adds
        the noise to each field's raw density before its ReLU, generator.py ``volume_render_image``)."""
        return self.density(self._noisy(field.density))

    def intervals(self, field: Field, samples: RaySamples) -> Intervals:
        # Noise on each sample's raw value before the activation (and before EG3D's midpoint averaging, as
        # EG3D adds it in run_model), as in NeRF raw2outputs and pi-GAN; drawn here unless noise_per_sample.
        raw = self._noisy(field.density)
        parts = quadrature_intervals(raw, field.features, samples, self.quadrature, self.last_delta)
        alpha = 1.0 - torch.exp(-self.density(parts.geometry) * parts.deltas)
        return Intervals(alpha=alpha, features=parts.features, depths=parts.depths)

    def extra_repr(self) -> str:
        return (f"density_activation={self.density_activation!r}, quadrature={self.quadrature!r}, "
                f"noise_std={self.noise_std}, white_back={self.white_back}, depth_mode={self.depth_mode!r}")
