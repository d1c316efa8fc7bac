"""StyleNeRF's objective: StyleGAN2's non-saturating logistic loss with style mixing over every latent row,
lazy R1 on the reals resized to the current output side, lazy path length regularization, and the NeRF
path regularization of the progressively grown upsampler.

Source: facebookresearch/StyleNeRF ``training/loss.py`` (``StyleGAN2Loss``: ``run_G``,
``accumulate_gradients``, ``get_loss``), ``training/stylenerf.py`` (``NeRFSynthesisNetwork.forward``,
"nerf_path_reg_loss"), ``training/training_loop.py`` (phases, ``gain = interval``), settings from
``conf/model/stylenerf_ffhq.yaml`` (``style_mixing_prob 0.9``, ``n_reg_samples 16``, ``reg_full True``) and
``conf/spec/paper*.yaml`` (R1 ``gamma``):

* ``run_G``: ``ws = mapping(z)`` (updating ``w_avg``); a cutoff ``~ U{1 .. num_ws - 1}`` for the batch, used
  with probability 0.9, from which the rows come from ``mapping(z')`` of a fresh ``z'`` (no ``w_avg``
  update): every row mixes, the foreground NeRF's and the upsampler's;
* Gmain: ``softplus(-D(G(z)))`` + the NeRF path penalty (weight 1: ``get_loss`` sums every ``*_loss``
  output of the generator), averaged over the batch;
* Greg (every 4 steps, own optimizer step): path length on ``batch // 2`` fresh samples, gradient of
  ``<image, y>`` with ``y ~ N(0, I) / sqrt(H W)`` at the current output side with respect to the mixed
  ``ws`` (the graph goes on into the mapping network), running mean decay 0.01, ``penalty * 2 * 4``;
* Dmain: ``softplus(D(G(z))) + softplus(-D(x))``; Dreg (every 16 steps, own step): ``gamma / 2 *
  ||dD/dx||^2 * 16`` on the real image;
* the reals go to the discriminator at the generator's current output side, resized by OpenCV's Lanczos-4
  on the 8-bit images (``D_kwargs.resize_real_early``, ``training/data_utils.py resize_image``);
* phases Gmain, Greg, Dmain, Dreg (``training_loop.py``); the trainer's lazy-regularization Adam.

The NeRF path regularization (:mod:`.nerf_path`) runs, as in the official generator, in every training
forward pass of the generator once the upsampler has grown (fade-in ``alpha > 0``): the Dmain and Greg
passes compute it too (and discard it), so the upsampler's input-magnitude running means see the per-point
features as often as officially.

Official grads are passed through ``nan_to_num`` before each optimizer step; gan3d's trainer instead skips a
step with a non-finite loss (``training.max_bad_steps``).
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan3d.core import random_draws
from gan3d.core.objective import LossInputs, Objective
from gan3d.core.regularizers import PathLengthRegularizer
from gan3d.core.types import DiscriminatorInput, DiscriminatorOutput, GeneratorOutput
from gan3d.renderers.stylenerf_upsampler import StyleNeRFUpsampler

from .nerf_path import gather_pixels, nerf_path_penalty, nerf_path_rgb, regularization_pixels
from .schedule import mix_styles, resize_reals_lanczos, style_mixing_cutoff

__all__ = ["StyleNeRFObjective"]


class StyleNeRFObjective(Objective):
    """The StyleNeRF losses (see the module docstring).

    Args:
        r1_gamma: R1 weight (``spec.gamma``: 0.5 at 256 and 512, 2 at 1024).
        r1_interval: lazy R1 interval (16).
        style_mixing_prob: probability of mixing two latents at a random row (0.9).
        pl_weight: path length weight (2; 0 turns it off), every ``pl_interval`` steps (4) on
            ``batch // pl_batch_shrink`` samples (2), running mean decay ``pl_decay`` (0.01).
        nerf_path_grid: side of the NeRF path regularization's pixel grid (``n_reg_samples`` 16; 0 turns it
            off), ``nerf_path_weight`` its weight (1).
    """

    #: training_loop.py runs 'Greg' and 'Dreg' as phases with their own optimizer steps ...
    d_reg_own_step = True
    g_reg_own_step = True
    #: ... in the order Gmain, Greg, Dmain, Dreg.
    generator_step_first = True

    def __init__(self, r1_gamma: float = 0.5, r1_interval: int = 16, style_mixing_prob: float = 0.9,
                 pl_weight: float = 2.0, pl_interval: int = 4, pl_batch_shrink: int = 2, pl_decay: float = 0.01,
                 nerf_path_grid: int = 16, nerf_path_weight: float = 1.0) -> None:
        super().__init__(r1_gamma=r1_gamma, r1_interval=r1_interval)
        if not 0.0 <= style_mixing_prob <= 1.0:
            raise ValueError(f"stylenerf loss: style_mixing_prob must lie in [0, 1], got {style_mixing_prob}")
        if pl_weight < 0 or pl_interval < 1 or pl_batch_shrink < 1:
            raise ValueError(f"stylenerf loss: need pl_weight >= 0, pl_interval >= 1 and pl_batch_shrink >= 1; got "
                             f"{pl_weight}, {pl_interval}, {pl_batch_shrink}")
        if nerf_path_grid < 0 or nerf_path_weight < 0:
            raise ValueError(f"stylenerf loss: nerf_path_grid and nerf_path_weight must be >= 0, got {nerf_path_grid} "
                             f"and {nerf_path_weight}")
        self.style_mixing_prob = float(style_mixing_prob)
        self.pl_weight = float(pl_weight)
        self.pl_batch_shrink = pl_batch_shrink
        self.nerf_path_grid = nerf_path_grid
        self.nerf_path_weight = float(nerf_path_weight)
        #: Read by the trainer: run :meth:`generator_regularizer` every this many steps (0: never).
        self.g_reg_interval = pl_interval if pl_weight > 0 else 0
        self.path_length = PathLengthRegularizer(decay=pl_decay)

    # ------------------------------------------------------------ running the generator
    def mapping(self, G: nn.Module, z: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """``run_G``'s latents: ``ws [B, num_ws, w_dim]`` of ``z``, rows from the cutoff on replaced by those of a
        fresh latent with probability ``style_mixing_prob``."""
        ws = G.mapping(z, update_w_avg=True)
        if self.style_mixing_prob > 0:
            cutoff = style_mixing_cutoff(ws.shape[1], self.style_mixing_prob, device=z.device, generator=generator)
            other_z = random_draws.normal(tuple(z.shape), device=z.device, generator=generator, dtype=z.dtype)
            if cutoff < ws.shape[1]:
                ws = mix_styles(ws, G.mapping(other_z, update_w_avg=False), cutoff)
        return ws

    def nerf_path_active(self, G: nn.Module) -> bool:
        """Whether a training pass of ``G`` computes the NeRF path regularization: training mode, a grid, and an
        upsampler that has started to grow (official ``end_l > 0``)."""
        if self.nerf_path_grid == 0 or self.nerf_path_weight == 0 or not G.training:
            return False
        if not isinstance(G.upsampler, StyleNeRFUpsampler):
            raise ValueError(f"stylenerf loss: the NeRF path regularization needs the stylenerf upsampler (its "
                             f"per-pixel path), got {type(G.upsampler).__name__}; set loss.nerf_path_grid=0")
        return G.upsampler.resolution_at() > G.upsampler.in_resolution

    def run_generator(self, G: nn.Module, inputs: LossInputs, *, requests: frozenset[str] = frozenset()
                      ) -> GeneratorOutput:
        """The fakes (at the upsampler's own fade-in) and, once the upsampler grows, their NeRF path penalty
        ``aux['nerf_path'] [B]``."""
        cameras = inputs.gen_cameras
        if cameras is None:
            cameras = G.pose_sampler(inputs.z.shape[0], device=inputs.z.device, generator=inputs.generator)
        ws = self.mapping(G, inputs.z, inputs.generator)
        path = self.nerf_path_active(G)
        out = G.synthesis(ws, cameras, resolution=inputs.resolution, generator=inputs.generator,
                          requests=requests | {"scene"} if path else requests)
        if path:
            out.aux["nerf_path"] = self.nerf_path(G, out, inputs.generator)
        return out

    def nerf_path(self, G: nn.Module, out: GeneratorOutput, generator: torch.Generator | None = None) -> Tensor:
        """The NeRF path penalty ``[B]`` of the images ``out`` (made with the ``'scene'`` request): rays through
        a strided ``grid x grid`` set of the output's pixel centres, rendered with the same scenes (background
        latent included), every merged interval's ``[rgb, features]`` through the upsampler's per-pixel path,
        composited, compared with the image there."""
        image = out.image
        indices, pixels = regularization_pixels(image.shape[0], image.shape[-1], self.nerf_path_grid,
                                                device=image.device, generator=generator)
        render = G.render_pixels(out.ws, out.cameras, pixels.to(image.dtype), generator=generator,
                                 requests={"intervals"}, scenes=out.aux["scenes"])
        features = render.interval_features
        if G.image_range == "unit":  # the generator maps the rendered RGB to [-1, 1] before the upsampler
            features = torch.cat([features[..., :3] * 2 - 1, features[..., 3:]], dim=-1)
        nerf = nerf_path_rgb(G.upsampler, features, render.interval_weights, G.rows(out.ws, "upsampler"))
        return nerf_path_penalty(gather_pixels(image, indices), nerf)

    # ------------------------------------------------------------ what the discriminator sees
    def fake_input(self, out: GeneratorOutput, inputs: LossInputs) -> DiscriminatorInput:
        return DiscriminatorInput(out.image)

    def real_input(self, inputs: LossInputs) -> DiscriminatorInput:
        """The reals at the generator's current output side (Lanczos on the 8-bit images)."""
        image = inputs.real_images
        if inputs.image_resolution is not None:
            image = resize_reals_lanczos(image, inputs.image_resolution)
        return DiscriminatorInput(image)

    # ------------------------------------------------------------ the phases
    def generator_loss(self, G: nn.Module, D: nn.Module, inputs: LossInputs) -> dict[str, Tensor]:
        """Gmain: ``mean softplus(-D(G(z)))`` plus the NeRF path penalty (once active)."""
        out = self.run_generator(G, inputs, requests=frozenset(self.generator_requests))
        d_out: DiscriminatorOutput = self.discriminate(D, self.fake_input(out, inputs), inputs)
        terms = {"g_adv": F.softplus(-d_out.logits).mean()}
        if "nerf_path" in out.aux:
            terms["nerf_path"] = self.nerf_path_weight * out.aux["nerf_path"].mean()
        terms["loss"] = sum(terms.values())
        if isinstance(G.upsampler, StyleNeRFUpsampler):  # logged: the trainer's own "alpha" is its stage fade
            terms["fade"] = G.upsampler.alpha.detach().clone()
        return terms

    def generator_regularizer(self, G: nn.Module, inputs: LossInputs) -> dict[str, Tensor]:
        """Greg: the path length penalty on ``batch // pl_batch_shrink`` fresh samples, times its weight and
        interval (the official phase gain)."""
        if self.pl_weight == 0:
            return {}
        n = max(1, inputs.z.shape[0] // self.pl_batch_shrink)
        device = inputs.z.device
        z = random_draws.normal((n, inputs.z.shape[1]), device=device, generator=inputs.generator, dtype=inputs.z.dtype)
        cameras = G.pose_sampler(n, device=device, generator=inputs.generator)
        out = self.run_generator(G, dataclasses.replace(inputs, z=z, gen_cameras=cameras, gen_c=None))
        penalty, lengths = self.path_length.penalize(out.image, out.ws, generator=inputs.generator)
        return {"pl_penalty": penalty.detach(), "pl_length": lengths.mean().detach(),
                "loss": penalty * self.pl_weight * self.g_reg_interval}

    def extra_repr(self) -> str:
        return (f"r1_gamma={self.r1_gamma}, style_mixing_prob={self.style_mixing_prob}, pl_weight={self.pl_weight}, "
                f"nerf_path_grid={self.nerf_path_grid}")
