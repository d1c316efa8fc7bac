"""GIRAFFE's objective: the non-saturating GAN loss with R1 on real images at every step.

Source: autonomousvision/giraffe im2scene/giraffe/training.py ``train_step_generator`` /
``train_step_discriminator`` and im2scene/training.py ``compute_bce``, ``compute_grad2``::

    L_G = BCE(D(G(z)), 1) = mean softplus(-D(G(z)))
    L_D = BCE(D(x), 1) + BCE(D(G(z)), 0) + reg_param * mean_b ||grad_x D(x_b)||^2,   reg_param = 10

with ``x`` in ``[0, 1]``. gan3d's images are ``x' = 2 x - 1`` and the ``giraffe_dc`` discriminator maps
them back, so ``grad_x D = 2 grad_x' D``: the penalty on ``x'`` is scaled by 4 to keep GIRAFFE's.
"""

from __future__ import annotations

from gan3d.core.objective import Objective

__all__ = ["GiraffeObjective"]


class GiraffeObjective(Objective):
    """Non-saturating logistic loss; R1 ``reg_param * E||grad_x D(x)||^2`` on ``[0, 1]`` images every step.

    Args:
        reg_param: GIRAFFE's R1 weight (10 in every config). It equals the base class's
            ``r1_gamma / 2 * E||grad_x' D||^2`` with ``r1_gamma = 8 * reg_param`` on ``[-1, 1]`` images
            (``||grad_x||^2 = 4 ||grad_x'||^2``), applied at every step (``r1_interval = 1``).
        image_scale: the factor between GIRAFFE's image range and gan3d's (2: ``[0, 1]`` vs ``[-1, 1]``);
            1 gives the penalty on gan3d's images as they are.
    """

    #: im2scene/giraffe/training.py ``train_step``: the generator step, then the discriminator step.
    generator_step_first = True

    def __init__(self, reg_param: float = 10.0, image_scale: float = 2.0) -> None:
        if reg_param < 0 or image_scale <= 0:
            raise ValueError(f"reg_param must be >= 0 and image_scale > 0, got {reg_param}, {image_scale}")
        super().__init__(r1_gamma=2.0 * reg_param * image_scale ** 2, r1_interval=1)
        self.reg_param = reg_param
        self.image_scale = image_scale
