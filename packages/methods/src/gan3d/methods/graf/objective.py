"""GRAF's objective: the non-saturating GAN loss on one ``K x K`` patch per image, with R1 on the real
patches at every step.

Sources: autonomousvision/graf train.py (the loop), graf/transforms.py (``ImgToPatch``,
``FlexGridRaySampler``), submodules/GAN_stability/gan_training/train.py (``Trainer.generator_trainstep``,
``discriminator_trainstep``, ``compute_loss`` with ``gan_type='standard'``, ``compute_grad2``)::

    L_G = BCE(D(G(z, patch)), 1)
    L_D = BCE(D(x_patch), 1) + BCE(D(G(z, patch')), 0) + reg_param * mean_rows ||d D / d x_row||^2

Each iteration updates D first, then G. Fakes and reals draw their own patch per image (scale and
centre from :mod:`.patch_schedule`, the minimum scale annealed with the iteration counter). A patch is
GRAF's corner-aligned grid ``x_j = c + s (2 j / (K - 1) - 1)`` in the NDC whose ``+-1`` are the centres of
the corner pixels of the full ``W``-pixel image (``W`` = the generator's output side, GRAF's ``data.imsize``);
:func:`gan3d.methods.patches.ndc_patch_params` turns it into Generator v2's
:class:`~gan3d.core.types.PatchParams`, whose cropped cameras render the official patch rays and whose
``cut`` samples the full-resolution real where GRAF's ``grid_sample(align_corners=True)`` does.

The R1 weight. GRAF hands the discriminator the real patches flattened to ``[B * K * K, 3]`` rows, so
``compute_grad2`` sums the squared gradient over the 3 channels of a row and ``.mean()`` averages over
all ``B K^2`` rows: the penalty is ``reg_param / K^2 * mean_b ||d D / d x_b||^2``. In StyleGAN2's terms
(``gamma / 2 * mean_b ||grad||^2``) that is ``gamma = 2 reg_param / K^2 = 20 / 1024`` for the released
configs, not 20. GRAF adds it at every step on the same real patches as the real loss; here it is the
objective's discriminator regularizer (``r1_interval`` 1: every step, its gradient joining the same optimizer
step), which the trainer runs right after :meth:`Objective.discriminator_loss` on the same real batch, and
:meth:`GRAFObjective.real_input` hands it the very patches it cut for the real loss.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gan3d.core.images import resize_images
from gan3d.core.objective import LossInputs, Objective
from gan3d.core.types import Cameras, DiscriminatorInput, GeneratorOutput, PatchParams

from ..patches import ndc_patch_params
from .patch_schedule import graf_min_scale, sample_graf_patches

__all__ = ["GRAFObjective"]


class GRAFObjective(Objective):
    """GRAF's patch GAN loss (see the module docstring).

    Args:
        reg_param: GRAF's ``training.reg_param`` (10).
        patch_size: ``K``, the patch side (``sqrt(ray_sampler.N_samples)`` = 32).
        min_scale, max_scale, scale_anneal: ``ray_sampler`` options (0.25, 1, 0.0025; celebAHQ 0.125 and
            0.0019).

    The full image the patches are placed on is the generator's output (``LossInputs.image_resolution``);
    reals of another size are resized to it first (GRAF's data transform ``Resize(imsize)``).
    """

    #: train.py: the discriminator step, then the generator step.
    generator_step_first = False

    def __init__(self, reg_param: float = 10.0, patch_size: int = 32, min_scale: float = 0.25, max_scale: float = 1.0,
                 scale_anneal: float = 0.0025) -> None:
        if reg_param < 0:
            raise ValueError(f"graf loss: reg_param must be >= 0, got {reg_param}")
        if patch_size < 2:
            raise ValueError(f"graf loss: patch_size must be >= 2 (a corner-aligned grid), got {patch_size}")
        graf_min_scale(0, min_scale=min_scale, max_scale=max_scale, scale_anneal=scale_anneal)  # validates
        # StyleGAN2's gamma / 2 * E||grad||^2 with gamma = 2 reg_param / K^2, every step (see the module docstring).
        super().__init__(r1_gamma=2.0 * reg_param / patch_size**2, r1_interval=1 if reg_param > 0 else 0)
        self.reg_param = float(reg_param)
        self.patch_size = patch_size
        self.min_scale = float(min_scale)
        self.max_scale = float(max_scale)
        self.scale_anneal = float(scale_anneal)
        #: (reals, step, their patches) of the last real_input: R1 then acts on the real loss's patches.
        self._last_real: tuple[Tensor, int, DiscriminatorInput] | None = None

    # ------------------------------------------------------------ patches
    def current_min_scale(self, step: int) -> float:
        """The annealed smallest scale at iteration ``step``."""
        return graf_min_scale(step, min_scale=self.min_scale, max_scale=self.max_scale,
                              scale_anneal=self.scale_anneal)

    def sample_patches(self, batch_size: int, step: int, image_resolution: int, *,
                       device: torch.device | str = "cpu", generator: torch.Generator | None = None) -> PatchParams:
        """One patch per image at iteration ``step`` on a ``image_resolution``-pixel image, as PatchParams."""
        scales, centres = sample_graf_patches(batch_size, min_scale=self.current_min_scale(step),
                                              max_scale=self.max_scale, device=device, generator=generator)
        return ndc_patch_params(scales, centres, image_resolution=image_resolution)

    @staticmethod
    def image_resolution(inputs: LossInputs) -> int:
        """``W``: the generator's output side (the reals' side when the trainer does not say)."""
        return int(inputs.image_resolution or inputs.real_images.shape[-1])

    # ------------------------------------------------------------ running the networks
    def run_generator(self, G: nn.Module, inputs: LossInputs, *, requests: frozenset[str] = frozenset()
                      ) -> GeneratorOutput:
        """Render one patch per sample: the camera cropped to a freshly drawn patch, at ``patch_size``
        (the patch is kept in ``aux['patch']``)."""
        cameras: Cameras | None = inputs.gen_cameras
        if cameras is None:
            cameras = G.pose_sampler(inputs.z.shape[0], device=inputs.z.device, generator=inputs.generator)
        patch = self.sample_patches(inputs.z.shape[0], inputs.step, self.image_resolution(inputs),
                                    device=inputs.z.device, generator=inputs.generator)
        out = G(inputs.z, patch.cameras(cameras), c=inputs.gen_c, resolution=self.patch_size,
                generator=inputs.generator, update_w_avg=True, requests=requests)
        out.aux["patch"] = patch
        return out

    def fake_input(self, out: GeneratorOutput, inputs: LossInputs) -> DiscriminatorInput:
        return DiscriminatorInput(out.image, camera_angles=out.cameras.angles, patch=out.aux.get("patch"))

    def real_input(self, inputs: LossInputs) -> DiscriminatorInput:
        """One patch per real image, cut from the full-resolution real (its own patch draw); asked again for the
        same reals at the same step (R1 after the real loss), the same patches."""
        last = self._last_real
        if last is not None and last[0] is inputs.real_images and last[1] == inputs.step:
            return last[2]
        images = inputs.real_images
        if images.ndim != 4 or images.shape[-1] != images.shape[-2]:
            raise ValueError(f"graf loss: real images must be square [B, 3, H, W], got {tuple(images.shape)}")
        w = self.image_resolution(inputs)
        if images.shape[-1] != w:
            images = resize_images(images, w)
        patch = self.sample_patches(images.shape[0], inputs.step, w, device=images.device,
                                    generator=inputs.generator)
        x = DiscriminatorInput(patch.cut(images, self.patch_size), camera_label=inputs.real_labels, patch=patch)
        self._last_real = (inputs.real_images, inputs.step, x)
        return x

    def extra_repr(self) -> str:
        return (f"reg_param={self.reg_param}, patch_size={self.patch_size}, min_scale={self.min_scale}, "
                f"max_scale={self.max_scale}, scale_anneal={self.scale_anneal}")
