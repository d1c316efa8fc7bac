"""EG3D's dual discriminator (Chan et al. 2022, section 4.2 "Dual discrimination").

The super-resolved image and the raw neural rendering, resized (filtered) to the same resolution,
are concatenated into one 6-channel image and scored by StyleGAN2's residual discriminator, which is
conditioned on the 25-value camera label through a label-mapping network and a projection in its
epilogue. Facts from NVlabs/eg3d ``training/dual_discriminator.py`` (``DualDiscriminator``,
``filtered_resizing``) and ``train.py`` (``disc_c_noise``, ``d_num_fp16_res=4`` hence
``conv_clamp=256``, ``mbstd_group=4``; the label mapping keeps StyleGAN2's 8 layers because train.py
passes no ``mapping_kwargs`` to D).

Parameter names follow the official module (``b512 ... b8``, ``mapping``, ``b4``, the
``resample_filter`` buffer), so state dicts line up with EG3D's.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gan3d.core.interfaces import Discriminator
from gan3d.core.layers.discriminator import StyleGAN2Discriminator
from gan3d.core.layers.filtered_resampling import setup_filter
from gan3d.core.types import DiscriminatorInput, DiscriminatorOutput

from .image_filters import FILTER_MODES, filtered_resize

__all__ = ["EG3DDualDiscriminator"]


class EG3DDualDiscriminator(Discriminator, StyleGAN2Discriminator):
    """``image [B, 3, R, R]``, ``image_raw [B, 3, r, r]``, ``camera_label [B, 25]`` -> logits ``[B, 1]``.

    Args:
        c_dim: camera-label size (25; 0 for an unconditional discriminator).
        img_resolution: ``R``, the super-resolved image side (EG3D FFHQ 512).
        img_channels: channels of each image (3); the network reads twice as many.
        architecture: ``'resnet'`` (EG3D), ``'skip'`` or ``'orig'``.
        channel_base, channel_max: channels per resolution ``min(channel_base // res, channel_max)``.
        num_fp16_res: accepted for EG3D compatibility and ignored (float32 here).
        conv_clamp: clamp of convolution outputs (EG3D 256 because D runs 4 fp16 resolutions);
            0 or less disables it.
        cmap_dim: size of the mapped label (0: the 4x4 channel count, as the official ``None``).
        mapping_num_layers: depth of the label-mapping network (8).
        mbstd_group_size, mbstd_num_channels: minibatch standard deviation (4, 1).
        freeze_layers: Freeze-D, leading layers with frozen weights (EG3D ``--freezed`` 0).
        disc_c_noise: add Gaussian noise of ``disc_c_noise`` batch standard deviations to the label
            before mapping (EG3D ``--disc_c_noise``, 0).
        filter_mode: how ``image_raw`` is resized to ``R`` (``'antialiased'``, EG3D's).

    Example:
        >>> d = EG3DDualDiscriminator(img_resolution=16, channel_base=256, channel_max=32)
        >>> out = d(torch.randn(4, 3, 16, 16), image_raw=torch.randn(4, 3, 8, 8),
        ...         camera_label=torch.randn(4, 25))
        >>> out.logits.shape
        torch.Size([4, 1])
    """

    def __init__(
        self,
        *,
        c_dim: int = 25,
        img_resolution: int = 512,
        img_channels: int = 3,
        architecture: str = "resnet",
        channel_base: int = 32768,
        channel_max: int = 512,
        num_fp16_res: int = 4,
        conv_clamp: float = 256.0,
        cmap_dim: int = 0,
        mapping_num_layers: int = 8,
        mbstd_group_size: int = 4,
        mbstd_num_channels: int = 1,
        freeze_layers: int = 0,
        disc_c_noise: float = 0.0,
        filter_mode: str = "antialiased",
    ) -> None:
        if disc_c_noise < 0:
            raise ValueError(f"eg3d_dual discriminator: disc_c_noise must be >= 0, got {disc_c_noise}")
        if filter_mode not in FILTER_MODES:
            raise ValueError(f"eg3d_dual discriminator: filter_mode must be one of {', '.join(FILTER_MODES)}, "
                             f"got {filter_mode!r}")
        # The network sees the image and the resized raw image stacked: 2 * img_channels inputs.
        super().__init__(
            c_dim, img_resolution, 2 * img_channels, architecture=architecture, channel_base=channel_base,
            channel_max=channel_max, num_fp16_res=num_fp16_res, conv_clamp=conv_clamp if conv_clamp > 0 else None,
            cmap_dim=cmap_dim or None, mapping_num_layers=mapping_num_layers, mbstd_group_size=mbstd_group_size,
            mbstd_num_channels=mbstd_num_channels, freeze_layers=freeze_layers,
        )
        self.image_channels = img_channels
        self.disc_c_noise = float(disc_c_noise)
        self.filter_mode = filter_mode
        # Kept for state-dict parity with EG3D's DualDiscriminator (its 'classic' filter mode uses it).
        self.register_buffer("resample_filter", setup_filter([1, 3, 3, 1]))

    def stack_inputs(self, image: Tensor, image_raw: Tensor) -> Tensor:
        """``[B, 2 * img_channels, R, R]``: ``image`` and ``image_raw`` resized to ``R``."""
        if image.ndim != 4 or image.shape[1:] != (self.image_channels, self.img_resolution, self.img_resolution):
            raise ValueError(f"eg3d_dual discriminator expects image [B, {self.image_channels}, {self.img_resolution}, "
                             f"{self.img_resolution}], got {tuple(image.shape)}; set discriminator.img_resolution "
                             "to the upsampler's output resolution")
        if image_raw.ndim != 4 or image_raw.shape[:2] != image.shape[:2]:
            raise ValueError(f"eg3d_dual discriminator expects image_raw "
                             f"[{image.shape[0]}, {self.image_channels}, h, w], "
                             f"got {tuple(image_raw.shape)}")
        return torch.cat([image, filtered_resize(image_raw, self.img_resolution, self.filter_mode)], dim=1)

    def forward(self, x: DiscriminatorInput) -> DiscriminatorOutput:
        """Score ``x.image [B, 3, R, R]`` with its raw rendering ``x.image_raw [B, 3, r, r]`` under the
        camera ``x.camera_label [B, 25]``; ``x.alpha`` is unused (no fade-in)."""
        image, image_raw, camera_label = x.image, x.image_raw, x.camera_label
        if image_raw is None:
            raise ValueError("eg3d_dual discriminator needs image_raw (the volume-rendered image) beside image")
        stacked = self.stack_inputs(image, image_raw)
        c = None
        if self.c_dim > 0:
            if camera_label is None or camera_label.shape != (image.shape[0], self.c_dim):
                got = None if camera_label is None else tuple(camera_label.shape)
                raise ValueError(f"eg3d_dual discriminator is conditional: pass camera_label [{image.shape[0]}, "
                                 f"{self.c_dim}], got {got}")
            c = camera_label
            if self.disc_c_noise > 0:
                # EG3D adds the noise in place (c += ...), changing the caller's labels; we do not.
                c = c + torch.randn_like(c) * c.std(0) * self.disc_c_noise
        logits = StyleGAN2Discriminator.forward(self, stacked, c)
        return DiscriminatorOutput(logits=logits)
