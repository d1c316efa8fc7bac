"""GRAM's objective: pi-GAN's logistic loss with R1 and the position loss, without top-k, plus a
position loss on the REAL images.

Source: microsoft/GRAM (commit 5a5ac8e) ``processes/processes.py`` ``Gan3DProcess`` (``train_D``,
``train_G``) and ``configs.py`` (the weights)::

    L_D = mean softplus(D(G(z))) + mean softplus(-D(x)) + 0.5 * r1_lambda * mean ||grad_x D(x)||^2
          + pos_lambda * MSE(D_pose(G(z)), pose_fake) + real_pos_lambda * MSE(D_pose(x), pose_real)
    L_G = sum over batch_split sub-batches of [mean softplus(-D(G(z))) + pos_lambda * MSE(D_pose(G(z)), pose_fake)]

R1 on every step (``r1_interval`` 1); pi-GAN's ``r1_lambda`` is ``r1_gamma`` here. FFHQ: r1 1, pos 15,
real_pos 15, batch_split 4; Cats: r1 1, pos 15, real_pos 30, batch_split 2; CARLA: r1 1, pos 15,
real_pos 15, batch_split 4. GRAM keeps every fake logit (no top-k). The real poses are the data
set's camera labels, turned into pi-GAN's ``(theta, phi)`` like the fakes' (GRAM's data sets store
``(phi, theta)`` per image; see :mod:`gan3d.methods.gram.data`).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from gan3d.core.objective import LossInputs
from gan3d.core.types import Cameras, DiscriminatorOutput, GeneratorOutput

from ..pigan.objective import PiGANObjective
from ..pigan.pose_angles import pigan_angles_from_cam2world

__all__ = ["GRAMObjective"]


class GRAMObjective(PiGANObjective):
    """The GRAM losses (see the module docstring).

    Args:
        r1_gamma: GRAM's ``r1_lambda`` (1 in every config), applied every ``r1_interval`` (1) steps.
        pos_lambda: weight of the position loss on generated images (15).
        real_pos_lambda: weight of the position loss on real images (FFHQ and CARLA 15, Cats 30).
        batch_split: sub-batches of the generator loss, each a mean, summed (FFHQ 4, Cats 2, CARLA 4).
    """

    def __init__(self, r1_gamma: float = 1.0, r1_interval: int = 1, pos_lambda: float = 15.0,
                 real_pos_lambda: float = 15.0, batch_split: int = 4) -> None:
        super().__init__(r1_gamma=r1_gamma, r1_interval=r1_interval, pos_lambda=pos_lambda, z_lambda=0.0,
                         topk_interval=0, topk_v=1.0, batch_split=batch_split)
        if real_pos_lambda < 0:
            raise ValueError(f"real_pos_lambda must be >= 0, got {real_pos_lambda}")
        self.real_pos_lambda = real_pos_lambda

    def real_pose_target(self, inputs: LossInputs) -> Tensor:
        """``[B, 2]`` pi-GAN ``(theta, phi)`` of the real images' cameras (from their labels)."""
        return pigan_angles_from_cam2world(Cameras.from_label(inputs.real_labels).cam2world)

    def discriminator_terms(self, fake: DiscriminatorOutput, real: DiscriminatorOutput, out: GeneratorOutput,
                            inputs: LossInputs) -> dict[str, Tensor]:
        terms = super().discriminator_terms(fake, real, out, inputs)
        if self.real_pos_lambda > 0:
            if real.pose is None:
                raise ValueError("real_pos_lambda > 0 needs a discriminator that predicts the pose (pose_dim=2); "
                                 "set loss.real_pos_lambda=0 or use discriminator 'gram' with pose_dim=2")
            target = self.real_pose_target(inputs).to(real.pose)
            terms["d_real_pos"] = F.mse_loss(real.pose, target) * self.real_pos_lambda
        return terms
