"""EpiGRAF's objective: StyleGAN2's non-saturating loss with lazy R1, on ``64 x 64`` patches whose scale
follows the annealed Beta schedule, the discriminator told where each patch lies.

Source: universome/epigraf src/training/loss.py ``StyleGAN2Loss`` (``run_G``, ``run_D``,
``extract_patches``, ``accumulate_gradients``, ``progressive_update``), src/training/training_loop.py (phases
``Gall``, ``Dmain``, ``Dreg`` every 16 steps with gain 16; lazy-regularization Adam), src/train.py and
configs/training/*.yaml, configs/model/epigraf.yaml (``blur_init_sigma`` 10, ``blur_fade_kimg`` 200):

* fake patches: patch parameters drawn per call (:func:`.patch_schedule.sample_epigraf_patches`, kimg
  annealed), the camera cropped to the patch (:class:`~gan3d.core.types.PatchParams` of :mod:`.patches`),
  rendered at the patch resolution; the discriminator gets the patch and the rendering camera's angles;
* real patches: their own draw, cut from the full-resolution real by ``grid_sample(align_corners=True)``
  (``extract_patches``), with the real camera's angles; the R1 phase draws patches again;
* both are blurred by ``sigma = max(1 - kimg / 200, 0) * 10`` before the discriminator (``run_D``), the R1
  gradient taken with respect to the un-blurred real patch, ``gamma / 2 * ||grad||^2`` every 16 steps,
  times 16;
* the mapping network's running mean moves only when fakes are generated for the discriminator
  (``update_emas=True`` in ``Dmain``, not in ``Gmain``).

The R1 weight of the released FFHQ 512 run is discussed in the recipe (0.1, the README's, not the config's
``auto`` 0.8192).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gan3d.core.objective import LossInputs, Objective
from gan3d.core.types import Cameras, DiscriminatorInput, DiscriminatorOutput, GeneratorOutput, PatchParams
from gan3d.samplers.camera_angles import spherical_angles

from ..eg3d.image_filters import blur_images, blur_sigma
from .patch_schedule import BETA_ANNEAL_KIMG, BETA_END, BETA_START, sample_epigraf_patches
from .patches import to_patch_params

__all__ = ["EpiGRAFObjective"]


def _camera_angles(cameras: Cameras) -> Tensor:
    """gan3d ``(yaw, polar)`` ``[B, 2]`` of cameras orbiting the origin (EpiGRAF's look-at point)."""
    return spherical_angles(cameras.origins)


class EpiGRAFObjective(Objective):
    """EpiGRAF's patch-wise StyleGAN2 loss (see the module docstring).

    Args:
        r1_gamma, r1_interval: lazy R1 (``training.gamma``; ``D_reg_interval`` 16).
        patch_size: the patch resolution (``training.patch.resolution`` 64).
        image_resolution: the data set resolution the patches are cut from (FFHQ 512, Cats 256).
        min_scale, max_scale: the scale range (``min_scale_trg = patch / image``, 0.125 at 512; 1).
        beta_start, beta_end, anneal_kimg: the Beta schedule (0.001, 0.8, 10000).
        group_size: samples sharing one patch (``mbstd_group_size`` 4).
        blur_init_sigma, blur_fade_kimg: the discriminator blur (10, 200).
    """

    #: training_loop.py: phases Gall, Dmain, Dreg (own optimizer step).
    generator_step_first = True
    d_reg_own_step = True

    def __init__(self, r1_gamma: float = 0.1, r1_interval: int = 16, patch_size: int = 64, image_resolution: int = 512,
                 min_scale: float = 0.125, max_scale: float = 1.0, beta_start: float = BETA_START,
                 beta_end: float = BETA_END, anneal_kimg: float = BETA_ANNEAL_KIMG, group_size: int = 4,
                 blur_init_sigma: float = 10.0, blur_fade_kimg: float = 200.0) -> None:
        super().__init__(r1_gamma=r1_gamma, r1_interval=r1_interval)
        if patch_size < 2 or image_resolution < patch_size:
            raise ValueError(f"epigraf loss: need 2 <= patch_size <= image_resolution, got {patch_size} and "
                             f"{image_resolution}")
        if not 0 < min_scale <= max_scale <= 1:
            raise ValueError(f"epigraf loss: need 0 < min_scale <= max_scale <= 1, got {min_scale}, {max_scale}")
        if min_scale * image_resolution < patch_size - 1e-6:
            # src/train.py: "It does not make any sense to have so small patch size".
            raise ValueError(f"epigraf loss: min_scale {min_scale} would cut patches smaller than {patch_size} pixels "
                             f"from {image_resolution}-pixel images; use min_scale >= patch_size / image_resolution")
        if not (beta_start > 0 and beta_end > 0):
            raise ValueError(f"epigraf loss: the Beta parameters must be positive, got {beta_start}, {beta_end}")
        if anneal_kimg <= 0 or group_size < 1:
            raise ValueError(f"epigraf loss: anneal_kimg must be > 0 and group_size >= 1, got {anneal_kimg}, "
                             f"{group_size}")
        if blur_init_sigma < 0 or blur_fade_kimg < 0:
            raise ValueError("epigraf loss: blur_init_sigma and blur_fade_kimg must be >= 0")
        self.patch_size = patch_size
        self.image_resolution = image_resolution
        self.min_scale, self.max_scale = float(min_scale), float(max_scale)
        self.beta_start, self.beta_end, self.anneal_kimg = float(beta_start), float(beta_end), float(anneal_kimg)
        self.group_size = group_size
        self.blur_init_sigma, self.blur_fade_kimg = float(blur_init_sigma), float(blur_fade_kimg)

    # ------------------------------------------------------------ patches
    def sample_patches(self, batch_size: int, kimg: float, *, device: torch.device | str = "cpu",
                       generator: torch.Generator | None = None) -> PatchParams:
        """This step's patches at ``kimg`` (shared by groups of ``group_size``), as corner-aligned
        :class:`~gan3d.core.types.PatchParams` of the ``image_resolution``-pixel image (:mod:`.patches`)."""
        params = sample_epigraf_patches(batch_size, kimg=kimg, min_scale=self.min_scale, max_scale=self.max_scale,
                                        beta_start=self.beta_start, beta_end=self.beta_end,
                                        anneal_kimg=self.anneal_kimg, group_size=self.group_size, device=device,
                                        generator=generator)
        return to_patch_params(params, self.image_resolution)

    def blur_sigma(self, kimg: float) -> float:
        return blur_sigma(kimg, self.blur_init_sigma, self.blur_fade_kimg)

    # ------------------------------------------------------------ running the networks
    def run_generator(self, G: nn.Module, inputs: LossInputs, *, requests: frozenset[str] = frozenset()
                      ) -> GeneratorOutput:
        """Render one ``patch_size`` patch per sample from its cropped camera; ``aux['patch']`` keeps where
        it lies, for the discriminator.

        The mapper's running mean is updated only for the discriminator's fakes (the trainer's
        discriminator phase generates them under ``no_grad``), as EpiGRAF's ``Dmain`` does
        (``update_emas=True``) and its ``Gall`` does not."""
        cameras = inputs.gen_cameras
        if cameras is None:
            cameras = G.pose_sampler(inputs.z.shape[0], device=inputs.z.device, generator=inputs.generator)
        patch = self.sample_patches(inputs.z.shape[0], inputs.kimg, device=inputs.z.device, generator=inputs.generator)
        out = G(inputs.z, patch.cameras(cameras), c=inputs.gen_c, resolution=self.patch_size,
                generator=inputs.generator, update_w_avg=not torch.is_grad_enabled(), requests=requests)
        out.aux["patch"] = patch
        return out

    def fake_input(self, out: GeneratorOutput, inputs: LossInputs) -> DiscriminatorInput:
        """The fake patch, where it lies and the rendering camera's angles (loss.py ``run_D(gen_img, ...,
        patch_params, camera_angles=gen_camera_angles)``)."""
        return DiscriminatorInput(out.image, camera_angles=_camera_angles(out.cameras), patch=out.aux["patch"],
                                  alpha=inputs.alpha)

    def real_input(self, inputs: LossInputs) -> DiscriminatorInput:
        """A real patch (its own draw) cut from each full-resolution real (``extract_patches``:
        ``grid_sample(align_corners=True)`` at the patch's points), with the real camera's angles. R1 acts on
        the patch pixels."""
        images = inputs.real_images
        if images.ndim != 4 or tuple(images.shape[-2:]) != (self.image_resolution, self.image_resolution):
            raise ValueError(f"epigraf loss: real images must be [B, 3, {self.image_resolution}, "
                             f"{self.image_resolution}] (loss.image_resolution, the data set's resolution), got "
                             f"{tuple(images.shape)}")
        patch = self.sample_patches(images.shape[0], inputs.kimg, device=images.device, generator=inputs.generator)
        angles = _camera_angles(Cameras.from_label(inputs.real_labels))
        return DiscriminatorInput(patch.cut(images, self.patch_size), camera_label=inputs.real_labels,
                                  camera_angles=angles, patch=patch, alpha=inputs.alpha)

    def discriminate(self, D: nn.Module, x: DiscriminatorInput, inputs: LossInputs) -> DiscriminatorOutput:
        """loss.py ``run_D``: the patch blurred by the fading blur (the R1 gradient is taken before it)."""
        return D(x.with_images(image=blur_images(x.image, self.blur_sigma(inputs.kimg))))

    def extra_repr(self) -> str:
        return (f"r1_gamma={self.r1_gamma}, patch_size={self.patch_size}, image_resolution={self.image_resolution}, "
                f"min_scale={self.min_scale}, beta={self.beta_start}->{self.beta_end} over {self.anneal_kimg} kimg")
