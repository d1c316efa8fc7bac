"""pi-GAN's objective: non-saturating logistic loss with top-k generator training, R1 every step, and
the discriminator's latent and position (camera) consistency losses.

Source: marcoamonteiro/pi-GAN ``train.py`` (the loss lines quoted as formulas below) and
``curriculums.py`` (the CelebA values used as defaults).

Generator, per step, summed over the ``batch_split`` sub-batches of size ``b`` (train.py)::

    k       = ceil(max(0.99 ** (step / topk_interval), topk_v) * b)
    L_G     = mean(softplus(-topk_k(D(G(z))))) + pos_lambda * MSE(D_pose(G(z)), pose) + z_lambda * MSE(D_z(G(z)), z)

Discriminator, per step::

    L_D     = mean(softplus(D(G(z)))) + mean(softplus(-D(x))) + 0.5 * r1_lambda * E||grad_x D(x)||^2
              + pos_lambda * MSE(D_pose(G(z)), pose) + z_lambda * MSE(D_z(G(z)), z)

The R1 term is the base class's ``r1_gamma / 2 * penalty * r1_interval``; pi-GAN's ``r1_lambda`` maps
to ``r1_gamma = r1_lambda`` with ``r1_interval = 1``. (Carver passes the position weight and the top-k
options under names its loss never reads; here they are this class's own constructor options.)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan3d.core.objective import LossInputs, Objective
from gan3d.core.types import DiscriminatorOutput, GeneratorOutput

from .pose_angles import pigan_angles

__all__ = ["PiGANObjective", "topk_fraction"]


def topk_fraction(step: int, topk_interval: int, topk_v: float) -> float:
    """Fraction of the fake logits the generator loss keeps at ``step``.

    pi-GAN ``train.py``: ``max(0.99 ** (step / topk_interval), topk_v)`` (Sinha et al. 2020, "Top-k
    training of GANs"); ``topk_interval <= 0`` keeps everything.
    """
    if topk_interval <= 0:
        return 1.0
    return max(0.99 ** (step / topk_interval), topk_v)


class PiGANObjective(Objective):
    """The pi-GAN losses (see the module docstring for the formulas).

    Args:
        r1_gamma: pi-GAN's ``r1_lambda`` (CelebA and Cats 0.2, CARLA 10).
        r1_interval: 1: pi-GAN applies R1 at every step, unscaled.
        pos_lambda: weight of the position loss (CelebA 15, CARLA and Cats 0).
        z_lambda: weight of the latent loss (0 in every released curriculum).
        topk_interval: steps over which the kept fraction decays by a factor 0.99 (2000 for CelebA and
            Cats, 1000 for CARLA); 0 turns top-k off.
        topk_v: the smallest fraction kept (CelebA and Cats 0.6; CARLA 1.0, i.e. off).
        batch_split: sub-batches of the generator loss (pi-GAN CelebA 2, Cats 4, CARLA 1/2/5 by
            stage), see :meth:`generator_loss`.
    """

    def __init__(
        self,
        r1_gamma: float = 0.2,
        r1_interval: int = 1,
        pos_lambda: float = 15.0,
        z_lambda: float = 0.0,
        topk_interval: int = 2000,
        topk_v: float = 0.6,
        batch_split: int = 1,
    ) -> None:
        super().__init__(r1_gamma=r1_gamma, r1_interval=r1_interval)
        if pos_lambda < 0 or z_lambda < 0:
            raise ValueError(f"pos_lambda and z_lambda must be >= 0, got {pos_lambda}, {z_lambda}")
        if topk_interval < 0:
            raise ValueError(f"topk_interval must be >= 0 (0 turns top-k off), got {topk_interval}")
        if not 0 < topk_v <= 1:
            raise ValueError(f"topk_v is the smallest fraction of fakes kept; it must be in (0, 1], got {topk_v}")
        if batch_split < 1:
            raise ValueError(f"batch_split must be >= 1, got {batch_split}")
        self.pos_lambda = pos_lambda
        self.z_lambda = z_lambda
        self.topk_interval = topk_interval
        self.topk_v = topk_v
        self.batch_split = batch_split

    # ------------------------------------------------------------ pieces
    def topk_count(self, batch_size: int, step: int) -> int:
        """How many of ``batch_size`` fake logits the generator loss keeps at ``step``."""
        k = math.ceil(topk_fraction(step, self.topk_interval, self.topk_v) * batch_size)
        return max(1, min(batch_size, k))

    def consistency_terms(self, d_out: DiscriminatorOutput, target_pose: Tensor | None, z: Tensor,
                          prefix: str) -> dict[str, Tensor]:
        """pi-GAN's "identity penalty" on fakes: position and latent MSE, each already weighted.

        ``d_out.pose [B, 2]`` is compared with ``target_pose [B, 2]`` (:func:`.pose_angles.pigan_angles`
        of the rendering cameras), ``d_out.latent [B, z_dim]`` with ``z [B, z_dim]``; a term with
        weight 0 is left out (pi-GAN computes both only when one weight is positive; a zero weight
        adds zero).
        """
        terms: dict[str, Tensor] = {}
        if self.pos_lambda > 0:
            if d_out.pose is None or target_pose is None:
                raise ValueError("pos_lambda > 0 needs a discriminator that predicts the pose (pose_dim=2); "
                                 "set loss.pos_lambda=0 or use discriminator pigan_progressive with pose_dim=2")
            terms[f"{prefix}_pos"] = F.mse_loss(d_out.pose, target_pose.to(d_out.pose)) * self.pos_lambda
        if self.z_lambda > 0:
            if d_out.latent is None or d_out.latent.shape != z.shape:
                got = None if d_out.latent is None else tuple(d_out.latent.shape)
                raise ValueError(f"z_lambda > 0 needs a discriminator latent of shape {tuple(z.shape)}, got {got}; "
                                 "set the discriminator's latent_dim to the generator's z_dim")
            terms[f"{prefix}_latent"] = F.mse_loss(d_out.latent, z) * self.z_lambda
        return terms

    def pose_target(self, out: GeneratorOutput) -> Tensor | None:
        """``[B, 2]`` pi-GAN ``(theta, phi)`` of the rendering cameras (``None`` when unused)."""
        return pigan_angles(out.cameras) if self.pos_lambda > 0 else None

    # ------------------------------------------------------------ the phases
    def discriminator_terms(self, fake: DiscriminatorOutput, real: DiscriminatorOutput, out: GeneratorOutput,
                            inputs: LossInputs) -> dict[str, Tensor]:
        return self.consistency_terms(fake, self.pose_target(out), inputs.z, "d")

    def generator_loss(self, G: nn.Module, D: nn.Module, inputs: LossInputs) -> dict[str, Tensor]:
        """``softplus(-D(G(z)))`` over the top-k fakes plus the consistency terms (see module doc).

        pi-GAN's ``batch_split`` (train.py runs the generator step on ``batch_split`` sub-batches and
        accumulates their gradients, for memory) changes the loss itself: top-k is taken within each
        sub-batch and the per-sub-batch means are summed, so the gradient is ``batch_split`` times
        that of one mean before ``grad_clip``. ``batch_split`` reproduces both on one pass.
        """
        out = self.run_generator(G, inputs, requests=frozenset(self.generator_requests))
        d_out = self.discriminate(D, self.fake_input(out, inputs), inputs)
        batch = d_out.logits.shape[0]
        if batch % self.batch_split:
            raise ValueError(f"the generator batch ({batch} per process) must be divisible by loss.batch_split "
                             f"({self.batch_split}); change training.batch_size or loss.batch_split")
        size = batch // self.batch_split
        target = self.pose_target(out)
        terms: dict[str, Tensor] = {}
        kept_count = 0
        for first in range(0, batch, size):
            rows = slice(first, first + size)
            k = self.topk_count(size, inputs.step)
            kept_count += k
            kept = torch.topk(d_out.logits[rows], k, dim=0).values
            part = DiscriminatorOutput(
                logits=d_out.logits[rows],
                pose=None if d_out.pose is None else d_out.pose[rows],
                latent=None if d_out.latent is None else d_out.latent[rows],
            )
            part_target = None if target is None else target[rows]
            split_terms = {"g_adv": F.softplus(-kept).mean(),
                           **self.consistency_terms(part, part_target, inputs.z[rows], "g")}
            for name, value in split_terms.items():
                terms[name] = terms[name] + value if name in terms else value
        terms["loss"] = sum(terms.values())
        terms["g_topk_fraction"] = torch.tensor(kept_count / batch, device=d_out.logits.device)
        return terms
