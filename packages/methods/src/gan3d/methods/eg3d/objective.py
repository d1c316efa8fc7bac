"""EG3D's objective: the non-saturating logistic loss with generator pose conditioning and its
swapping regularization, the discriminator blur at the start of training, R1 on both inputs of the
dual discriminator, and the lazy density regularizer.

Source: NVlabs/eg3d ``training/loss.py`` (``StyleGAN2Loss``), with ``train.py`` for the defaults:

* pose conditioning (``run_G``): the mapper's condition is the rendering camera's label, replaced by
  the label of the previous sample in the batch (``torch.roll(c, 1, 0)``) with probability
  ``p = (1 - a) + a * gpc_reg_prob``, ``a = min(kimg / gpc_reg_fade_kimg, 1)`` (so every label is
  swapped at the start); without pose conditioning the condition is zeros;
* blur (``run_D``): ``sigma = max(1 - kimg / blur_fade_kimg, 0) * blur_init_sigma`` on the ``image``
  the discriminator sees, real and fake; the real raw target is blurred too (``blur_raw_target``),
  the fake raw image is not;
* the real raw image is the real image resized (antialiased bilinear) to the render resolution;
* R1 (``Dreg``): ``gamma / 2 * (||d D / d image||^2 + ||d D / d image_raw||^2)`` on the un-blurred
  inputs, every 16 steps, times 16;
* density regularization (``Greg``, ``reg_type='l1'``): 1000 points uniform in ``[-1, 1]^3`` per
  sample, each perturbed by ``N(0, density_reg_p_dist^2)``; ``density_reg * L1(sigma(x), sigma(x'))``
  on the raw (pre-activation) densities, every ``density_reg_every`` steps, times that interval
  (the official phase gain). Its conditioning draws one swap decision for the whole batch.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan3d.core import random_draws
from gan3d.core.objective import LossInputs, Objective
from gan3d.core.types import DiscriminatorInput, DiscriminatorOutput, GeneratorOutput

from .image_filters import FILTER_MODES, blur_images, blur_sigma, filtered_resize

__all__ = ["EG3DObjective", "swapping_probability"]


def swapping_probability(kimg: float, gpc_reg_prob: float, gpc_reg_fade_kimg: float) -> float:
    """Probability that the generator is conditioned on another sample's pose at ``kimg``.

    ``(1 - a) * 1 + a * gpc_reg_prob`` with ``a = min(kimg / gpc_reg_fade_kimg, 1)`` (``a = 1`` when
    the fade length is 0), loss.py ``accumulate_gradients``.

    Example:
        >>> swapping_probability(500.0, 0.5, 1000.0)
        0.75
    """
    alpha = min(kimg / gpc_reg_fade_kimg, 1.0) if gpc_reg_fade_kimg > 0 else 1.0
    return (1.0 - alpha) + alpha * gpc_reg_prob


class EG3DObjective(Objective):
    """The EG3D losses (see the module docstring for the formulas).

    Args:
        r1_gamma: R1 weight (EG3D ``--gamma``: FFHQ 512 1, AFHQ 5, ShapeNet 0.3).
        r1_interval: lazy R1 interval (StyleGAN2/EG3D ``D_reg_interval`` 16).
        gen_pose_cond: condition the generator on the camera pose (``--gen_pose_cond``); off feeds zeros.
        gpc_reg_prob: the final swapping probability (``--gpc_reg_prob`` 0.5; 0.8 for AFHQ).
        gpc_reg_fade_kimg: kimg over which the swapping probability falls from 1 to ``gpc_reg_prob``
            (``--gpc_reg_fade_kimg`` 1000).
        blur_init_sigma: blur at kimg 0 (10).
        blur_fade_kimg: kimg until the blur is gone (train.py ``batch * 200 / 32``).
        blur_raw_target: blur the real raw image as well (loss.py ``blur_raw_target`` True).
        filter_mode: resize of the real image to the render resolution (``'antialiased'``).
        density_reg: weight of the density regularizer (``--density_reg`` 0.25; 0 turns it off).
        density_reg_every: its lazy interval (``--density_reg_every`` 4).
        density_reg_p_dist: standard deviation of the point perturbation (``--density_reg_p_dist`` 0.004).
        density_reg_num_points: points per sample (loss.py: 1000).
    """

    #: training_loop.py runs lazy R1 ('Dreg') and the density regularizer ('Greg') as phases with
    #: their own optimizer steps.
    d_reg_own_step = True
    g_reg_own_step = True
    #: ... and its phases go Gmain, Greg, Dmain, Dreg.
    generator_step_first = True

    def __init__(
        self,
        r1_gamma: float = 1.0,
        r1_interval: int = 16,
        gen_pose_cond: bool = True,
        gpc_reg_prob: float = 0.5,
        gpc_reg_fade_kimg: float = 1000.0,
        blur_init_sigma: float = 10.0,
        blur_fade_kimg: float = 200.0,
        blur_raw_target: bool = True,
        filter_mode: str = "antialiased",
        density_reg: float = 0.25,
        density_reg_every: int = 4,
        density_reg_p_dist: float = 0.004,
        density_reg_num_points: int = 1000,
    ) -> None:
        super().__init__(r1_gamma=r1_gamma, r1_interval=r1_interval)
        if not 0 <= gpc_reg_prob <= 1:
            raise ValueError(f"gpc_reg_prob is a probability; it must be in [0, 1], got {gpc_reg_prob}")
        for name, value in (("gpc_reg_fade_kimg", gpc_reg_fade_kimg), ("blur_init_sigma", blur_init_sigma),
                            ("blur_fade_kimg", blur_fade_kimg), ("density_reg", density_reg),
                            ("density_reg_p_dist", density_reg_p_dist)):
            if value < 0:
                raise ValueError(f"eg3d loss: {name} must be >= 0, got {value}")
        if density_reg > 0 and density_reg_every < 1:
            raise ValueError(f"density_reg_every must be >= 1 when density_reg > 0, got {density_reg_every}")
        if density_reg_num_points < 1:
            raise ValueError(f"density_reg_num_points must be >= 1, got {density_reg_num_points}")
        if filter_mode not in FILTER_MODES:
            raise ValueError(f"filter_mode must be one of {', '.join(FILTER_MODES)}, got {filter_mode!r}")
        self.gen_pose_cond = gen_pose_cond
        self.gpc_reg_prob = float(gpc_reg_prob)
        self.gpc_reg_fade_kimg = float(gpc_reg_fade_kimg)
        self.blur_init_sigma = float(blur_init_sigma)
        self.blur_fade_kimg = float(blur_fade_kimg)
        self.blur_raw_target = blur_raw_target
        self.filter_mode = filter_mode
        self.density_reg = float(density_reg)
        self.density_reg_every = density_reg_every
        self.density_reg_p_dist = float(density_reg_p_dist)
        self.density_reg_num_points = density_reg_num_points
        #: Read by the trainer: run :meth:`generator_regularizer` every this many steps (and adjust
        #: Adam as StyleGAN2 does for lazy regularization); 0 when the regularizer is off.
        self.g_reg_interval = density_reg_every if density_reg > 0 else 0

    # ------------------------------------------------------------ schedules
    def blur_sigma(self, kimg: float) -> float:
        """The discriminator blur at ``kimg`` (see :func:`.image_filters.blur_sigma`)."""
        return blur_sigma(kimg, self.blur_init_sigma, self.blur_fade_kimg)

    def swapping_probability(self, kimg: float) -> float:
        return swapping_probability(kimg, self.gpc_reg_prob, self.gpc_reg_fade_kimg)

    def generator_condition(self, labels: Tensor, kimg: float, *, per_sample: bool = True,
                            generator: torch.Generator | None = None) -> Tensor:
        """The mapper's condition ``[B, 25]`` for rendering labels ``labels [B, 25]``.

        Each row is swapped with the previous row's label with the swapping probability at ``kimg``:
        one draw per sample (``per_sample``, EG3D's main generator pass) or one for the whole batch
        (its density-regularization pass). Zeros when pose conditioning is off.
        """
        if not self.gen_pose_cond:
            return torch.zeros_like(labels)
        p = self.swapping_probability(kimg)
        shape = (labels.shape[0], 1) if per_sample else (1, 1)
        swap = random_draws.uniform(shape, device=labels.device, generator=generator) < p
        return torch.where(swap, torch.roll(labels, 1, 0), labels)

    # ------------------------------------------------------------ running the networks
    def run_generator(self, G: nn.Module, inputs: LossInputs, *, requests: frozenset[str] = frozenset()
                      ) -> GeneratorOutput:
        cameras = inputs.gen_cameras
        if cameras is None:
            cameras = G.pose_sampler(inputs.z.shape[0], device=inputs.z.device, generator=inputs.generator)
        labels = inputs.gen_c if inputs.gen_c is not None else cameras.label
        c = self.generator_condition(labels, inputs.kimg, generator=inputs.generator)
        return G(inputs.z, cameras, c=c, resolution=inputs.resolution, generator=inputs.generator,
                 update_w_avg=True, requests=requests, alpha=inputs.alpha)

    # D is conditioned on the rendering camera, never on the swapped one (loss.py run_D(gen_img, gen_c)):
    # the base class's fake_input gives out.cameras.label.

    def real_input(self, inputs: LossInputs) -> DiscriminatorInput:
        """``image`` (the reals at the output resolution) and ``image_raw`` (resized to the render
        resolution, blurred when ``blur_raw_target``); R1 applies to both."""
        x = super().real_input(inputs)
        resolution = inputs.resolution or x.image.shape[-1]
        image_raw = filtered_resize(x.image, resolution, self.filter_mode)
        if self.blur_raw_target:
            image_raw = blur_images(image_raw, self.blur_sigma(inputs.kimg))
        return x.with_images(image_raw=image_raw)

    def discriminate(self, D: nn.Module, x: DiscriminatorInput, inputs: LossInputs) -> DiscriminatorOutput:
        """loss.py ``run_D``: the image (not the raw one) blurred by the fading blur, then ``D``."""
        return D(x.with_images(image=blur_images(x.image, self.blur_sigma(inputs.kimg))))

    # ------------------------------------------------------------ density regularization
    def density_pairs(self, G: nn.Module, ws: Tensor,
                      generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Raw densities ``[B, N, 1]`` at ``N`` random points in ``[-1, 1]^3`` and at their perturbed
        copies, for latents ``ws [B, num_ws, w_dim]``."""
        b, n = ws.shape[0], self.density_reg_num_points
        initial = (random_draws.uniform((b, n, 3), device=ws.device, generator=generator) * 2 - 1).to(ws)
        noise = random_draws.normal((b, n, 3), device=ws.device, generator=generator).to(ws)
        perturbed = initial + noise * self.density_reg_p_dist
        points = torch.cat([initial, perturbed], dim=1).unsqueeze(1)  # [B, 1, 2N, 3]: one "ray" of 2N points
        # The directions are unused by EG3D's decoder; EG3D passes random ones too.
        directions = F.normalize(random_draws.normal((b, 1, 2 * n, 3), device=ws.device, generator=generator), dim=-1)
        scene = G.embedder.scene(G.rows(ws, "point_embedder"))
        field = G.field(points, directions.to(ws), ws, scene)
        sigma = field.geometry.reshape(b, 2 * n, 1)
        return sigma[:, :n], sigma[:, n:]

    def generator_regularizer(self, G: nn.Module, inputs: LossInputs) -> dict[str, Tensor]:
        """EG3D's 'l1' density regularizer, already multiplied by its lazy interval."""
        if self.density_reg <= 0:
            return {}
        cameras = inputs.gen_cameras
        if cameras is None:
            cameras = G.pose_sampler(inputs.z.shape[0], device=inputs.z.device, generator=inputs.generator)
        labels = inputs.gen_c if inputs.gen_c is not None else cameras.label
        c = self.generator_condition(labels, inputs.kimg, per_sample=False, generator=inputs.generator)
        ws = G.mapping(inputs.z, c, update_w_avg=False)
        sigma_initial, sigma_perturbed = self.density_pairs(G, ws, inputs.generator)
        penalty = F.l1_loss(sigma_initial, sigma_perturbed)
        loss = penalty * self.density_reg * max(self.g_reg_interval, 1)
        return {"density_reg": penalty.detach(), "loss": loss}

    def extra_repr(self) -> str:
        parts: dict[str, Any] = dict(r1_gamma=self.r1_gamma, gpc_reg_prob=self.gpc_reg_prob,
                                     blur_fade_kimg=self.blur_fade_kimg, density_reg=self.density_reg)
        return ", ".join(f"{k}={v}" for k, v in parts.items())
