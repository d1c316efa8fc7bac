"""VolumeGAN's objective: the non-saturating logistic loss with lazy R1, StyleGAN2's path-length
regularizer on all latent rows, and style mixing restricted to the neural renderer's rows
(registered as loss ``volumegan``).

Source: genforce/volumegan ``runners/losses/volumegan_loss.py`` ``VolumeGANLoss`` (identical in
qiuyu96/Carver), ``runners/volumegan_runner.py`` ``VolumeGANRunner.train_step`` (phase order),
``models/volumegan_generator.py`` ``VolumeGANGenerator.forward`` (style mixing) and the FFHQ demo
``scripts/training_demos/volumegan_ffhq256.sh`` (weights)::

    L_G   = softplus(-D(G(z)))                                          every step, first
    L_pl  = pl_weight * pl_interval * (|J_w^T y| - a)^2                 when step % pl_interval == 0,
            y ~ N(0, I) / sqrt(H W) on the output image, J over all     its own optimizer step
            latent rows, |.| = sqrt(mean_rows sum_dim), a the running mean of the lengths (decay 0.01),
            on batch // pl_batch_shrink fresh samples
    L_D   = softplus(D(G(z))) + softplus(-D(x))                         every step
    L_R1  = r1_gamma / 2 * r1_interval * |grad_x D(x)|^2                when step % r1_interval == 0,
                                                                        its own optimizer step

Weights: ``r1_gamma`` 10, ``r1_interval`` 16, ``pl_weight`` 2, ``pl_interval`` 4, ``pl_batch_shrink`` 2,
``pl_decay`` 0.01, ``style_mixing_prob`` 0.9. (The official iteration counter starts at 1 and tests
``iter % interval == 1``: gan3d's 0-based ``step % interval == 0``.)

Style mixing (every training forward of the generator, with probability ``style_mixing_prob``): a
second latent replaces the rows from ``cutoff`` on, ``cutoff`` uniform over the neural renderer's rows
(official ``randint(num_nerf_layers, num_layers)``), so the feature volume and the point MLP always
see the first latent. Only the first latent updates ``w_avg``.

The path-length gradient is taken with respect to the mapped (and mixed) latents without detaching
them, as the official ``compute_pl_penalty`` and StyleGAN2-ADA do, so the penalty also trains the mapping
network through its second-order term: core's
:meth:`gan3d.core.regularizers.PathLengthRegularizer.penalize` on the image made from those latents (its
``forward`` would detach ``ws``).

Optimizer states: both are cleared whenever the level of detail starts or stops changing
(:meth:`VolumeGANObjective.reset_optimizers_now`, official ``ProgressScheduler.reset_optimizer``).
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import Tensor, nn

from gan3d.core import random_draws
from gan3d.core.objective import LossInputs, Objective
from gan3d.core.regularizers import PathLengthRegularizer
from gan3d.core.types import GeneratorOutput

__all__ = ["VolumeGANObjective", "mix_latents", "draw_mixing_cutoff", "mixing_rows"]


def mixing_rows(G: nn.Module) -> slice:
    """The latent rows style mixing may replace: the upsampler's (``G.ws_layout['upsampler']``)."""
    layout = getattr(G, "ws_layout", None)
    if not isinstance(layout, dict) or "upsampler" not in layout:
        raise ValueError("volumegan loss: style mixing needs the generator's latent row layout (G.ws_layout) with "
                         "an 'upsampler' entry")
    rows = layout["upsampler"]
    if rows.stop - rows.start < 1:
        raise ValueError("volumegan loss: the upsampler reads no latent rows; set loss.style_mixing_prob=0")
    return rows


def draw_mixing_cutoff(rows: slice, *, generator: torch.Generator | None = None) -> int:
    """The first mixed row, uniform over ``[rows.start, rows.stop - 1]`` (official
    ``np.random.randint(num_nerf_layers, num_layers)``)."""
    span = rows.stop - rows.start
    if span < 1:
        raise ValueError(f"no rows to mix in {rows}")
    return rows.start + int(random_draws.randint(span, (), generator=generator))


def mix_latents(ws: Tensor, other: Tensor, cutoff: int) -> Tensor:
    """``ws [B, N, D]`` with rows ``cutoff:`` taken from ``other [B, N, D]`` (a new tensor)."""
    if ws.shape != other.shape:
        raise ValueError(f"mix_latents: ws {tuple(ws.shape)} and other {tuple(other.shape)} differ")
    if not 0 <= cutoff <= ws.shape[1]:
        raise ValueError(f"mix_latents: cutoff {cutoff} outside [0, {ws.shape[1]}]")
    return torch.cat([ws[:, :cutoff], other[:, cutoff:]], dim=1)


class VolumeGANObjective(Objective):
    """The VolumeGAN losses (see the module docstring).

    Args:
        r1_gamma, r1_interval: R1 weight and lazy interval (10, 16).
        style_mixing_prob: probability of mixing in the neural renderer's rows (0.9; 0 turns it off).
        pl_weight: path-length weight (2; 0 turns the regularizer off), every ``pl_interval`` (4)
            generator steps on ``batch // pl_batch_shrink`` (2) samples, running-mean decay
            ``pl_decay`` (0.01).
        reset_optimizer: clear both optimizers' states whenever the level of detail starts or stops
            changing (official ``ProgressScheduler`` ``reset_optimizer``, default True).
    """

    #: VolumeGANRunner.train_step: the generator step (and its path-length step) come first, then the
    #: discriminator step; both regularizers take optimizer steps of their own.
    generator_step_first = True
    g_reg_own_step = True
    d_reg_own_step = True

    def __init__(
        self,
        r1_gamma: float = 10.0,
        r1_interval: int = 16,
        style_mixing_prob: float = 0.9,
        pl_weight: float = 2.0,
        pl_interval: int = 4,
        pl_batch_shrink: int = 2,
        pl_decay: float = 0.01,
        reset_optimizer: bool = True,
    ) -> None:
        super().__init__(r1_gamma=r1_gamma, r1_interval=r1_interval)
        if not 0.0 <= style_mixing_prob <= 1.0:
            raise ValueError(f"volumegan loss: style_mixing_prob must lie in [0, 1], got {style_mixing_prob}")
        if pl_weight < 0 or pl_interval < 1 or pl_batch_shrink < 1 or not 0 < pl_decay <= 1:
            raise ValueError(f"volumegan loss: need pl_weight >= 0, pl_interval >= 1, pl_batch_shrink >= 1 and "
                             f"0 < pl_decay <= 1; got {pl_weight}, {pl_interval}, {pl_batch_shrink}, {pl_decay}")
        self.style_mixing_prob = style_mixing_prob
        self.pl_weight = pl_weight
        self.pl_batch_shrink = pl_batch_shrink
        #: Read by the trainer: run :meth:`generator_regularizer` every this many steps (0: never).
        self.g_reg_interval = pl_interval if pl_weight > 0 else 0
        # Its running mean of the path lengths (official ``pl_mean``) travels with checkpoints.
        self.path_length = PathLengthRegularizer(decay=pl_decay)
        self.reset_optimizer = reset_optimizer
        #: The level of detail at the last step (the official runner's ``lod``, 0.0 before the first).
        self._last_lod = 0.0

    # ------------------------------------------------------------ the level of detail
    @staticmethod
    def check_levels(G: nn.Module, D: nn.Module) -> None:
        """The generator's and the discriminator's levels of detail must agree (the official runner
        writes one ``lod`` into both); a recipe override of one schedule only is caught here."""
        g_lod = getattr(getattr(G, "upsampler", None), "lod", None)
        d_lod = getattr(D, "lod", None)
        if isinstance(g_lod, Tensor) and isinstance(d_lod, Tensor) and float(g_lod) != float(d_lod):
            raise ValueError(f"volumegan: the upsampler's level of detail ({float(g_lod)}) differs from the "
                             f"discriminator's ({float(d_lod)}); give both the same lod_* schedule options")

    def reset_optimizers_now(self, G: nn.Module, D: nn.Module, step: int, kimg: float) -> bool:
        """Clear both optimizers' states when the level of detail starts or stops changing (official
        ``ProgressScheduler.execute_before_iteration``: ``int(lod)`` or ``ceil(lod)`` differs from the previous
        iteration's, ``reset_optimizer`` True by default). Like the official runner, whose ``lod`` starts at 0,
        the first step of a run or of a resumed run at ``lod >= 1`` clears them too."""
        self.check_levels(G, D)
        level = getattr(D, "lod", getattr(getattr(G, "upsampler", None), "lod", None))
        if not isinstance(level, Tensor):  # neither network grows progressively: nothing to follow
            return False
        lod = float(level)
        previous, self._last_lod = self._last_lod, lod
        if not self.reset_optimizer:
            return False
        return int(lod) != int(previous) or math.ceil(lod) != math.ceil(previous)

    def generator_loss(self, G: nn.Module, D: nn.Module, inputs: LossInputs) -> dict[str, Tensor]:
        """The adversarial terms, and the level of detail of this step as the term ``lod`` (logged, not part
        of ``loss``: a run's log shows when the neural renderer reached its full resolution, ``lod`` 0)."""
        self.check_levels(G, D)
        terms = super().generator_loss(G, D, inputs)
        level = getattr(D, "lod", getattr(getattr(G, "upsampler", None), "lod", None))
        if isinstance(level, Tensor):
            terms["lod"] = level.detach().to(terms["loss"].device, torch.float32).clone()
        return terms

    def discriminator_loss(self, G: nn.Module, D: nn.Module, inputs: LossInputs) -> dict[str, Tensor]:
        self.check_levels(G, D)
        return super().discriminator_loss(G, D, inputs)

    # ------------------------------------------------------------ running the generator
    def mapped_latents(self, G: nn.Module, z: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """``ws [B, num_ws, w_dim]`` for ``z``, updating ``w_avg``, with the neural renderer's rows from
        a second latent with probability ``style_mixing_prob`` (official ``VolumeGANGenerator.forward``)."""
        ws = G.mapping(z, update_w_avg=True)
        if self.style_mixing_prob == 0:
            return ws
        if float(random_draws.uniform((), generator=generator)) >= self.style_mixing_prob:
            return ws
        other = G.mapping(random_draws.normal(tuple(z.shape), device=z.device, generator=generator,
                                              dtype=z.dtype))
        return mix_latents(ws, other, draw_mixing_cutoff(mixing_rows(G), generator=generator))

    def run_generator(self, G: nn.Module, inputs: LossInputs, *, requests: frozenset[str] = frozenset()
                      ) -> GeneratorOutput:
        cameras = inputs.gen_cameras
        if cameras is None:
            cameras = G.pose_sampler(inputs.z.shape[0], device=inputs.z.device, generator=inputs.generator)
        ws = self.mapped_latents(G, inputs.z, inputs.generator)
        return G.synthesis(ws, cameras, resolution=inputs.resolution, generator=inputs.generator,
                           requests=requests, alpha=inputs.alpha)

    # ------------------------------------------------------------ path length regularizer
    def generator_regularizer(self, G: nn.Module, inputs: LossInputs) -> dict[str, Tensor]:
        """The path-length penalty (``VolumeGANLoss.g_reg``), already times its weight and interval:
        ``batch // pl_batch_shrink`` fresh samples (style-mixed as in training) and cameras, the
        gradient of ``image . y`` with respect to all latent rows."""
        if self.pl_weight <= 0:
            return {}
        n = max(1, inputs.z.shape[0] // self.pl_batch_shrink)
        device = inputs.z.device
        z = random_draws.normal((n, inputs.z.shape[1]), device=device, generator=inputs.generator)
        cameras = G.pose_sampler(n, device=device, generator=inputs.generator)
        path_inputs = dataclasses.replace(inputs, z=z, gen_cameras=cameras, gen_c=None)
        ws = self.mapped_latents(G, path_inputs.z, inputs.generator)
        out = G.synthesis(ws, cameras, resolution=path_inputs.resolution, generator=inputs.generator,
                          alpha=inputs.alpha)
        # The noise N(0, I) / sqrt(H W) on the output image and the running mean, in core; the penalty keeps
        # the image in the graph ("image[:, 0, 0, 0] * 0" in the official loss, for DDP).
        penalty, lengths = self.path_length.penalize(out.image, ws, generator=inputs.generator)
        loss = self.pl_weight * self.g_reg_interval * penalty
        return {"pl": penalty.detach(), "pl_length": lengths.mean().detach(), "loss": loss}
