"""StyleSDF's objective: the non-saturating logistic loss with R1, the viewpoint loss, the eikonal
and minimal-surface regularizers of the SDF, style mixing, and the one-off preparation of a fresh
generator (the sphere initialisation; the full pipeline instead loads the trained volume renderer through
``training.init_from``).

Source: royorel/StyleSDF ``losses.py``, ``train_volume_renderer.py``, ``train_full_pipeline.py``,
``options.py`` (defaults below):

    L_view = view_lambda * smooth_l1(D_view(G(z)), [azim, elev])           (D and G steps, on fakes)
    L_eik  = eikonal_lambda * mean((|grad_p sdf| - 1) ** 2)               (all samples)
    L_surf = min_surf_lambda * mean(exp(-min_surf_beta * |sdf|))          (all samples)
    L_R1   = r1 / 2 * E|grad_x D(x)|^2                                    (every step for the volume
             renderer; every 16 steps, times 16, for the full pipeline)

    L_path = path_regularize * g_reg_every * mean((|J_w^T y| - a) ** 2)     (full pipeline, every
             g_reg_every G steps, on batch / path_batch_shrink fresh samples; StyleGAN2's path length
             regularizer on the decoder's latents w+, y ~ N(0, I) / sqrt(H W), a the running mean of
             the lengths with decay 0.01; losses.py ``g_path_regularize``)

Weights: ``view_lambda`` 15, ``eikonal_lambda`` 0.1, ``min_surf_lambda`` 0.05, ``min_surf_beta`` 100,
``r1`` 10 (AFHQ full pipeline 50), ``mixing`` 0.9, ``path_regularize`` 2 with ``g_reg_every`` 4 and
``path_batch_shrink`` 2 (full pipeline).
"""

from __future__ import annotations

import dataclasses
import logging
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan3d.core import random_draws
from gan3d.core.objective import LossInputs, Objective
from gan3d.core.regularizers import path_length_penalty
from gan3d.core.types import DiscriminatorOutput, Field, GeneratorOutput
from gan3d.renderers.stylesdf_upsampler import StyleSDFUpsampler

from .sphere_init import fit_sphere
from .viewpoint import stylesdf_viewpoint

__all__ = ["StyleSDFObjective", "eikonal_loss", "minimal_surface_loss", "path_length_penalty"]

logger = logging.getLogger(__name__)


def eikonal_loss(sdf_gradients: Tensor) -> Tensor:
    """``mean((|g| - 1)^2)`` over every sample of ``sdf_gradients [..., 3]`` (``losses.py``)."""
    return (sdf_gradients.norm(dim=-1) - 1.0).square().mean()


def minimal_surface_loss(sdf: Tensor, beta: float = 100.0) -> Tensor:
    """``mean(exp(-beta |sdf|))`` over every sample (``losses.py``): penalises spurious surfaces."""
    return torch.exp(-beta * sdf.abs()).mean()


def _fields(out: GeneratorOutput) -> list[Field]:
    fields = out.aux.get("coarse_field", [])
    fields = fields if isinstance(fields, list) else [fields]
    fine = out.aux.get("fine_field", [])
    return fields + (fine if isinstance(fine, list) else [fine])


class StyleSDFObjective(Objective):
    """The StyleSDF losses (see the module docstring).

    Args:
        r1_gamma, r1_interval: R1 weight and lazy interval (volume renderer 10 / 1; full 10 / 16).
        view_lambda: viewpoint loss weight (15; 0 for the full pipeline, whose D has no pose head).
        eikonal_lambda, min_surf_lambda, min_surf_beta: SDF regularizers (0.1, 0.05, 100); 0 turns
            one off (the full pipeline, whose SDF network is frozen).
        style_mixing_prob: probability of mixing two latents at a random layer (0.9); only matters when
            the mapper gives more than one latent (the full pipeline's decoder).
        sphere_init_steps: steps of the sphere fit before training (10000; 0: none),
            ``sphere_radius``/``sphere_center`` the sphere ((far - near) / 4 = 0.06 at the origin),
            ``sphere_init_batch`` renders per step (3), ``sphere_init_lr`` (2e-5).
        path_regularize: weight of the path length regularizer on the upsampler's latents (full
            pipeline 2; 0 turns it off, as in the volume stage), every ``g_reg_every`` generator steps
            (4; the trainer then adjusts G's Adam as StyleGAN2 does) on ``batch // path_batch_shrink``
            fresh samples (2); ``path_decay`` of the running mean of the lengths (0.01).
    """

    def __init__(
        self,
        r1_gamma: float = 10.0,
        r1_interval: int = 1,
        view_lambda: float = 15.0,
        eikonal_lambda: float = 0.1,
        min_surf_lambda: float = 0.05,
        min_surf_beta: float = 100.0,
        style_mixing_prob: float = 0.9,
        sphere_init_steps: int = 10000,
        sphere_radius: float = 0.06,
        sphere_center: list[float] | tuple[float, ...] = (0.0, 0.0, 0.0),
        sphere_init_batch: int = 3,
        sphere_init_lr: float = 2e-5,
        path_regularize: float = 0.0,
        g_reg_every: int = 4,
        path_batch_shrink: int = 2,
        path_decay: float = 0.01,
    ) -> None:
        super().__init__(r1_gamma=r1_gamma, r1_interval=r1_interval)
        for name, value in (("view_lambda", view_lambda), ("eikonal_lambda", eikonal_lambda),
                            ("min_surf_lambda", min_surf_lambda), ("sphere_init_steps", sphere_init_steps)):
            if value < 0:
                raise ValueError(f"stylesdf loss: {name} must be >= 0, got {value}")
        if not 0.0 <= style_mixing_prob <= 1.0:
            raise ValueError(f"stylesdf loss: style_mixing_prob must lie in [0, 1], got {style_mixing_prob}")
        if sphere_radius <= 0 or sphere_init_batch <= 0:
            raise ValueError("stylesdf loss: sphere_radius and sphere_init_batch must be positive")
        self.view_lambda = view_lambda
        self.eikonal_lambda = eikonal_lambda
        self.min_surf_lambda = min_surf_lambda
        self.min_surf_beta = min_surf_beta
        self.style_mixing_prob = style_mixing_prob
        self.sphere_init_steps = sphere_init_steps
        self.sphere_radius = sphere_radius
        self.sphere_center = [float(c) for c in sphere_center]
        self.sphere_init_batch = sphere_init_batch
        self.sphere_init_lr = sphere_init_lr
        if path_regularize < 0 or g_reg_every < 1 or path_batch_shrink < 1 or not 0 < path_decay <= 1:
            raise ValueError(f"stylesdf loss: need path_regularize >= 0, g_reg_every >= 1, path_batch_shrink >= 1 "
                             f"and 0 < path_decay <= 1; got {path_regularize}, {g_reg_every}, {path_batch_shrink}, "
                             f"{path_decay}")
        self.path_regularize = path_regularize
        self.path_batch_shrink = path_batch_shrink
        self.path_decay = path_decay
        #: Read by the trainer: run :meth:`generator_regularizer` every this many steps (0: never).
        self.g_reg_interval = g_reg_every if path_regularize > 0 else 0
        # The running mean of the path lengths travels with checkpoints (official: mean_path_length).
        self.register_buffer("mean_path_length", torch.zeros(()))

    #: train_full_pipeline.py steps the optimizer again after the path length loss, but adds R1 to the
    #: discriminator's main loss.
    g_reg_own_step = True

    @property
    def generator_requests(self) -> frozenset[str]:  # the fields' sdf and gradients, for the SDF regularizers
        requests = set()
        if self.eikonal_lambda > 0:
            requests |= {"samples", "sdf_gradients"}
        if self.min_surf_lambda > 0:
            requests.add("samples")
        return frozenset(requests)

    # ------------------------------------------------------------ preparing a fresh generator
    def initialize_generator(self, G: nn.Module, *, generator: torch.Generator | None = None) -> dict[str, float]:
        """Fit the SDF to a sphere (the full pipeline loads the volume renderer through
        ``training.init_from`` instead, and the trainer then does not call this)."""
        if self.sphere_init_steps:
            loss = fit_sphere(G, steps=self.sphere_init_steps, radius=self.sphere_radius, center=self.sphere_center,
                              batch_size=self.sphere_init_batch, lr=self.sphere_init_lr, generator=generator)
            return {"sphere_init_l1": loss}
        logger.warning("StyleSDF: no sphere fit: the volume renderer starts from random weights. For the full "
                       "pipeline give --set training.init_from.checkpoint=<stage-1 checkpoint>.")
        return {}

    # ------------------------------------------------------------ running the networks
    def run_generator(self, G: nn.Module, inputs: LossInputs, *, requests: frozenset[str] = frozenset()
                      ) -> GeneratorOutput:
        """StyleSDF's ``mixing_noise``: with probability ``style_mixing_prob`` the latents from
        ``randint(1, num_ws - 1)`` on come from a second ``z``."""
        num_ws = G.num_ws
        if num_ws < 2 or self.style_mixing_prob == 0 or float(torch.rand(())) >= self.style_mixing_prob:
            return super().run_generator(G, inputs, requests=requests)
        cameras = inputs.gen_cameras
        if cameras is None:
            cameras = G.pose_sampler(inputs.z.shape[0], device=inputs.z.device, generator=inputs.generator)
        ws = G.mapping(inputs.z, update_w_avg=True)
        other = G.mapping(torch.randn_like(inputs.z), update_w_avg=True)
        cutoff = int(torch.randint(1, num_ws, ()))
        ws = torch.cat([ws[:, :cutoff], other[:, cutoff:]], dim=1)
        return G.synthesis(ws, cameras, resolution=inputs.resolution, generator=inputs.generator,
                           requests=requests, alpha=inputs.alpha)

    def view_term(self, d_out: DiscriminatorOutput, out: GeneratorOutput) -> dict[str, Tensor]:
        if self.view_lambda == 0:
            return {}
        if d_out.pose is None:
            raise ValueError("view_lambda > 0 needs a discriminator that predicts the viewpoint "
                             "(stylesdf_volume with pose_dim=2); set loss.view_lambda=0 otherwise")
        target = stylesdf_viewpoint(out.cameras).to(d_out.pose)
        return {"view": self.view_lambda * F.smooth_l1_loss(d_out.pose, target)}

    def generator_terms(self, out: GeneratorOutput, d_out: DiscriminatorOutput,
                        inputs: LossInputs) -> dict[str, Tensor]:
        terms = self.view_term(d_out, out)
        fields = _fields(out)
        if self.eikonal_lambda > 0:
            grads = [f.extras["sdf_gradients"] for f in fields if "sdf_gradients" in f.extras]
            if not grads:
                raise ValueError("eikonal_lambda > 0 needs an SDF field (the stylesdf_siren decoder with the sdf "
                                 "volume renderer), or set loss.eikonal_lambda=0")
            terms["eikonal"] = self.eikonal_lambda * eikonal_loss(torch.cat([g.flatten(0, -2) for g in grads]))
        if self.min_surf_lambda > 0:
            sdf = [f.sdf for f in fields if f.sdf is not None]
            if not sdf:
                raise ValueError("min_surf_lambda > 0 needs an SDF field; set loss.min_surf_lambda=0")
            terms["min_surf"] = self.min_surf_lambda * minimal_surface_loss(
                torch.cat([s.flatten() for s in sdf]), self.min_surf_beta)
        return terms

    def discriminator_terms(self, fake: DiscriminatorOutput, real: DiscriminatorOutput, out: GeneratorOutput,
                            inputs: LossInputs) -> dict[str, Tensor]:
        return {f"d_{k}": v for k, v in self.view_term(fake, out).items()}

    # ------------------------------------------------------------ path length regularizer
    def generator_regularizer(self, G: nn.Module, inputs: LossInputs) -> dict[str, Tensor]:
        """StyleSDF's path length regularization (``train_full_pipeline.py``), already multiplied by its
        weight and interval: fresh latents (with style mixing) and cameras for ``batch //
        path_batch_shrink`` samples, the gradient of ``image . y`` with respect to the upsampler's
        latents (the decoder's ``w+``, after its own mapping network)."""
        if self.path_regularize <= 0:
            return {}
        if not isinstance(G.upsampler, StyleSDFUpsampler):
            raise ValueError("stylesdf loss: path_regularize > 0 needs the stylesdf upsampler (its latents are "
                             "what the path length is measured against); set loss.path_regularize=0 otherwise")
        n = max(1, inputs.z.shape[0] // self.path_batch_shrink)
        device = inputs.z.device
        z = random_draws.normal((n, inputs.z.shape[1]), device=device, generator=inputs.generator)
        cameras = G.pose_sampler(n, device=device, generator=inputs.generator)
        path_inputs = dataclasses.replace(inputs, z=z, gen_cameras=cameras, gen_c=None)
        captured: list[Tensor] = []
        hook = G.upsampler.mapping.register_forward_hook(lambda _m, _i, out: captured.append(out))
        try:
            out = self.run_generator(G, path_inputs)
        finally:
            hook.remove()
        image = out.image
        noise = random_draws.normal(tuple(image.shape), device=device, generator=inputs.generator,
                                    dtype=image.dtype) / math.sqrt(image.shape[2] * image.shape[3])
        if len(captured) != 1:
            raise RuntimeError(f"stylesdf loss: expected one pass through the upsampler's mapping network, "
                               f"saw {len(captured)}")
        penalty, new_mean, lengths = path_length_penalty(image, captured[0], noise, self.mean_path_length,
                                                         self.path_decay)
        self.mean_path_length.copy_(new_mean.detach())
        # "+ 0 * image[0, 0, 0, 0]": the official keeps every output in the graph (DDP).
        loss = self.path_regularize * self.g_reg_interval * penalty + 0 * image[0, 0, 0, 0]
        return {"path": penalty.detach(), "path_length": lengths.mean().detach(), "loss": loss}
