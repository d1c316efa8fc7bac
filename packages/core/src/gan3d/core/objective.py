"""GAN objectives: the non-saturating logistic loss with lazy R1, which methods extend.

A method plugin registers a subclass of :class:`Objective` in the ``loss`` family and adds its own
terms by overriding :meth:`Objective.generator_terms`, :meth:`Objective.discriminator_terms` or
:meth:`Objective.generator_regularizer`, and what the discriminator sees by overriding
:meth:`Objective.real_input`, :meth:`Objective.fake_input` and :meth:`Objective.discriminate`. The
trainer calls, each iteration:

1. :meth:`Objective.discriminator_loss` (and every ``r1_interval`` steps
   :meth:`Objective.discriminator_regularizer`), then a discriminator optimizer step;
2. :meth:`Objective.generator_loss` (and every ``g_reg_interval`` steps
   :meth:`Objective.generator_regularizer`), then a generator optimizer step.

(``generator_step_first`` swaps the two.) A regularizer's gradients join the main loss's in that one
step, unless the objective sets
``d_reg_own_step`` / ``g_reg_own_step``: then the regularizer gets an optimizer step of its own after
the main one (StyleGAN2-ADA's 'Dreg' and 'Greg' phases). Before both, the trainer asks
:meth:`Objective.reset_optimizers_now` whether to clear the optimizers' states (a progressive schedule's
phase change).

The trainer hands the real images at the data set's full resolution; :meth:`Objective.real_input`
resizes them to the generator's output (or cuts patches, for patch-trained methods). What the
objective needs from a forward pass beyond the images it declares in :attr:`Objective.generator_requests`
(see :data:`gan3d.core.generator.REQUESTS`).

Each loss returns a dict of scalar tensors whose ``'loss'`` entry is minimized; the other entries are
logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .images import resize_images
from .interfaces import Scheduled
from .types import Cameras, DiscriminatorInput, DiscriminatorOutput, GeneratorOutput

__all__ = ["Objective", "LossInputs", "r1_penalty"]


@dataclass
class LossInputs:
    """One iteration's inputs.

    Attributes:
        real_images: ``[B, 3, H, W]`` real images in ``[-1, 1]`` at the data set's resolution.
        real_labels: ``[B, 25]`` their camera labels.
        z: ``[B, z_dim]`` latents for the generated half.
        gen_cameras: cameras to render the generated images from (``None``: the pose sampler's).
        gen_c: ``[B, 25]`` the mapper's condition for the generated images (``None``: the labels of
            ``gen_cameras``), so a trainer can swap conditioning poses as EG3D does.
        resolution: the render resolution of this stage (progressive methods change it).
        image_resolution: the side of the generator's output images at ``resolution`` (what the reals are
            resized to by default); ``None``: leave the reals as they are.
        alpha: fade-in of a progressive discriminator (and upsampler), in ``[0, 1]``.
        step: the iteration counter, for schedules inside a loss (blur fade, warm-ups).
        kimg: thousands of real images shown so far.
        generator: the random generator for sampling inside the step (poses, stratification).
    """

    real_images: Tensor
    real_labels: Tensor
    z: Tensor
    gen_cameras: Cameras | None = None
    gen_c: Tensor | None = None
    resolution: int | None = None
    image_resolution: int | None = None
    alpha: float = 1.0
    step: int = 0
    kimg: float = 0.0
    generator: torch.Generator | None = None


def r1_penalty(logits: Tensor, inputs: list[Tensor]) -> Tensor:
    """R1 (Mescheder et al. 2018, eq. 9 without the gamma/2): ``sum ||d logits / d x||^2`` per
    sample, averaged over the batch, summed over ``inputs`` (EG3D penalizes both of its images)."""
    grads = torch.autograd.grad(logits.sum(), inputs, create_graph=True)
    return sum(g.square().flatten(1).sum(1) for g in grads).mean()


class Objective(Scheduled, nn.Module):
    """Non-saturating logistic GAN loss (Goodfellow et al. 2014) with lazy R1 (StyleGAN2).

    Args:
        r1_gamma: weight ``gamma`` of the R1 penalty ``gamma / 2 * E||grad D(x)||^2``.
        r1_interval: apply R1 every this many steps, scaled by the interval (lazy regularization,
            StyleGAN2 section 3.1); 1 applies it every step, 0 turns it off.
    """

    #: Whether a lazy regularizer gets an optimizer step of its own after the main loss's step
    #: (StyleGAN2-ADA and EG3D run 'Dreg' and 'Greg' as separate phases; StyleSDF steps its path
    #: length regularizer separately but adds R1 to the main D step), or is added to the main step.
    #: The lazy-regularization Adam adjustment (``training.lazy_reg_adam``) assumes separate steps.
    d_reg_own_step: ClassVar[bool] = False
    g_reg_own_step: ClassVar[bool] = False
    #: Whether an iteration updates the generator before the discriminator (StyleGAN2-ADA's phase order,
    #: which EG3D keeps, and GIRAFFE's) rather than after it (pi-GAN, StyleSDF).
    generator_step_first: ClassVar[bool] = False
    #: What :meth:`generator_loss` needs from the forward pass besides the images (``'samples'``,
    #: ``'sdf_gradients'``, ...; :data:`gan3d.core.generator.REQUESTS`). Subclasses may make it a property.
    generator_requests: frozenset[str] = frozenset()
    #: Run :meth:`generator_regularizer` every this many steps (0: never).
    g_reg_interval: int = 0

    def __init__(self, r1_gamma: float = 10.0, r1_interval: int = 16) -> None:
        super().__init__()
        if r1_gamma < 0:
            raise ValueError(f"r1_gamma must be >= 0, got {r1_gamma}")
        if r1_interval < 0:
            raise ValueError(f"r1_interval must be >= 0, got {r1_interval}")
        self.r1_gamma = r1_gamma
        self.r1_interval = r1_interval

    # ------------------------------------------------------------ running the networks
    def run_generator(self, G: nn.Module, inputs: LossInputs, *, requests: frozenset[str] = frozenset()
                      ) -> GeneratorOutput:
        """Generate the fake half of the batch (override to add method-specific inputs)."""
        return G(inputs.z, inputs.gen_cameras, c=inputs.gen_c, resolution=inputs.resolution,
                 generator=inputs.generator, update_w_avg=True, requests=requests, alpha=inputs.alpha)

    def fake_input(self, out: GeneratorOutput, inputs: LossInputs) -> DiscriminatorInput:
        """What the discriminator sees of generated images: the image, the raw image, the rendering
        camera's label and angles, the fade-in."""
        return DiscriminatorInput(out.image, image_raw=out.image_raw, camera_label=out.cameras.label,
                                  camera_angles=out.cameras.angles, alpha=inputs.alpha)

    def real_input(self, inputs: LossInputs) -> DiscriminatorInput:
        """What the discriminator sees of real images: the reals resized to the generator's output
        resolution (bilinear, antialiased when shrinking), their labels, the fade-in. R1 acts on the
        tensors of :meth:`~gan3d.core.types.DiscriminatorInput.penalized`."""
        image = inputs.real_images
        if inputs.image_resolution is not None:
            image = resize_images(image, inputs.image_resolution)
        return DiscriminatorInput(image, camera_label=inputs.real_labels, alpha=inputs.alpha)

    def discriminate(self, D: nn.Module, x: DiscriminatorInput, inputs: LossInputs) -> DiscriminatorOutput:
        """Run ``D`` on ``x`` (override to transform its inputs first, e.g. EG3D's blur)."""
        return D(x)

    # ------------------------------------------------------------ hooks for methods
    def generator_terms(
        self, out: GeneratorOutput, d_out: DiscriminatorOutput, inputs: LossInputs
    ) -> dict[str, Tensor]:
        """Extra generator terms (already weighted); added to the loss."""
        return {}

    def discriminator_terms(
        self, fake: DiscriminatorOutput, real: DiscriminatorOutput, out: GeneratorOutput, inputs: LossInputs
    ) -> dict[str, Tensor]:
        """Extra discriminator terms (already weighted); added to the loss."""
        return {}

    def generator_regularizer(self, G: nn.Module, inputs: LossInputs) -> dict[str, Tensor]:
        """A separate generator regularization pass (EG3D's density regularizer); ``{}`` for none."""
        return {}

    def initialize_generator(self, G: nn.Module, *, generator: torch.Generator | None = None) -> dict[str, float]:
        """A method's one-off preparation of a freshly built generator, run by the trainer before
        the first step and never on resume (StyleSDF fits its SDF to a sphere); returns logged scalars.
        The default does nothing."""
        return {}

    # ------------------------------------------------------------ the phases
    def generator_loss(self, G: nn.Module, D: nn.Module, inputs: LossInputs) -> dict[str, Tensor]:
        out = self.run_generator(G, inputs, requests=frozenset(self.generator_requests))
        d_out = self.discriminate(D, self.fake_input(out, inputs), inputs)
        adv = F.softplus(-d_out.logits).mean()  # -log(sigmoid(D(G(z))))
        terms = {"g_adv": adv, **self.generator_terms(out, d_out, inputs)}
        terms["loss"] = sum(terms.values())
        return terms

    def discriminator_loss(self, G: nn.Module, D: nn.Module, inputs: LossInputs) -> dict[str, Tensor]:
        with torch.no_grad():
            out = self.run_generator(G, inputs)
        fake = self.discriminate(D, self.fake_input(out, inputs).detached(), inputs)
        real = self.discriminate(D, self.real_input(inputs), inputs)
        terms = {
            "d_fake": F.softplus(fake.logits).mean(),  # -log(1 - sigmoid(D(G(z))))
            "d_real": F.softplus(-real.logits).mean(),  # -log(sigmoid(D(x)))
            **self.discriminator_terms(fake, real, out, inputs),
        }
        terms["loss"] = sum(terms.values())
        terms["d_real_logit"] = real.logits.detach().mean()
        terms["d_fake_logit"] = fake.logits.detach().mean()
        return terms

    def discriminator_regularizer(self, D: nn.Module, inputs: LossInputs) -> dict[str, Tensor]:
        """Lazy R1 on the real images, scaled by ``r1_interval``."""
        if self.r1_gamma == 0 or self.r1_interval == 0:
            return {}
        x = self.real_input(inputs)
        leaves = {k: v.detach().requires_grad_(True) for k, v in x.penalized().items()}
        d_out = self.discriminate(D, x.with_images(**leaves), inputs)
        penalty = r1_penalty(d_out.logits, list(leaves.values()))
        loss = penalty * (self.r1_gamma / 2) * self.r1_interval
        # Keep the logits in the graph (times zero) so every D parameter sees a gradient, as the
        # official StyleGAN2 code does, which keeps DDP's gradient buckets consistent.
        return {"r1": penalty.detach(), "loss": loss + d_out.logits.sum() * 0}

    def regularize_discriminator_now(self, step: int) -> bool:
        return bool(self.r1_gamma) and bool(self.r1_interval) and step % self.r1_interval == 0

    def reset_optimizers_now(self, G: nn.Module, D: nn.Module, step: int, kimg: float) -> bool:
        """Whether the trainer clears both optimizers' states (Adam's moments and step counts) before
        iteration ``step``, ``kimg`` thousand real images in. The trainer asks every iteration, after
        :meth:`set_training_step` has reached every module, so the answer may read the modules'
        schedules (PGGAN's and VolumeGAN's progressive scheduler clears the states whenever the level of
        detail starts or stops changing). The default never does."""
        return False
