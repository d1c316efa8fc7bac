"""VolumeGAN's neural renderer: a StyleGAN2 'skip' network of 1x1 modulated convolutions from the
rendered feature image to the final image, grown progressively (Xu et al. 2022, section 3.2;
registered as upsampler ``volumegan_neural_renderer``).

Source: genforce/volumegan ``models/volumegan_generator.py`` ``SynthesisNetwork`` (layers, ``ws``
indices, the level-of-detail blend) with ``models/stylegan2_generator.py`` ``ModulateConvLayer``
(the layer), configured by ``configs/volumegan_ffhq_config.py`` (``init_res`` = NeRF resolution 32,
``resolution`` 256, ``fmaps_base`` 32768, ``fmaps_max`` 512, ``rgb_init_res_out`` False)::

    octave 0 (in_resolution):  image = features[:, :3]        (or a 1x1 conv with rgb_init_res_out)
    octave b >= 1 (res = in_resolution * 2^b), channels nf(res) = min(channel_base // res, channel_max):
        x = conv0(x, ws[2b - 1])      modulated 1x1, filtered 2x upsampling (conv first, [1,3,3,1])
        x = conv1(x, ws[2b])          modulated 1x1
        image = torgb(x, ws[2b + 1]) + upsample2d(image)

Every convolution is 1x1 (a per-pixel renderer), with per-pixel noise, leaky ReLU (gain sqrt 2) and
``conv_clamp`` as in StyleGAN2; ``num_ws = 2 * (octaves + 1)`` rows of which row 0 is never read (the
official network has no layer at octave 0 but keeps its row). Parameters are gan3d's StyleGAN2
layers (:class:`gan3d.core.layers.SynthesisLayer`, :class:`gan3d.core.layers.ToRGBLayer`).

The network runs at ``in_resolution``. In eval mode a feature image rendered at another side is resized
to it first (bilinear; the viewer's previews and renders at other sizes); in training only
``in_resolution`` is accepted, as the official network takes only ``nerf_res``.

Progressive growing: the buffer ``lod`` (level of detail, see :mod:`gan3d.renderers.level_of_detail`)
selects the octaves computed and fades the newest one in; the output always has ``out_resolution``
pixels, coarser octaves nearest-neighbour upsampled, exactly as the official network does. The trainer
moves ``lod`` through :meth:`VolumeGANNeuralRenderer.set_training_step`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan3d.core.interfaces import Upsampler
from gan3d.core.layers import NOISE_MODES, Conv2dLayer, SynthesisLayer, ToRGBLayer, setup_filter, upsample2d

from .level_of_detail import LevelOfDetailSchedule, fade_in_alpha

__all__ = ["VolumeGANNeuralRenderer", "VolumeGANRendererBlock"]


class VolumeGANRendererBlock(nn.Module):
    """One octave: ``conv0`` (1x1, 2x up), ``conv1`` (1x1), ``torgb`` (1x1, no demodulation).

    Official names: ``layer{2b-1}``, ``layer{2b}``, ``output{b}`` (``style`` is our ``affine``).
    ``x [B, in_channels, res/2, res/2]``, ``image [B, 3, res/2, res/2]``, ``ws [B, 3, w_dim]`` ->
    ``x [B, out_channels, res, res]``, ``image [B, 3, res, res]``.
    """

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, *, use_noise: bool,
                 conv_clamp: float | None, resample_filter: Sequence[float]) -> None:
        super().__init__()
        common = dict(kernel_size=1, use_noise=use_noise, conv_clamp=conv_clamp, resample_filter=resample_filter)
        self.resolution = resolution
        self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim, resolution, up=2, **common)
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution, **common)
        self.torgb = ToRGBLayer(out_channels, 3, w_dim, conv_clamp=conv_clamp)
        self.register_buffer("resample_filter", setup_filter(resample_filter))

    def forward(self, x: Tensor, image: Tensor, ws: Tensor, *, noise_mode: str, fused_modconv: bool
                ) -> tuple[Tensor, Tensor]:
        x = self.conv0(x, ws[:, 0], noise_mode=noise_mode, fused_modconv=fused_modconv)
        x = self.conv1(x, ws[:, 1], noise_mode=noise_mode, fused_modconv=fused_modconv)
        y = self.torgb(x, ws[:, 2], fused_modconv=fused_modconv).to(torch.float32)
        return x, y + upsample2d(image, self.resample_filter)


class VolumeGANNeuralRenderer(Upsampler):
    """``features [B, in_channels, in_resolution, in_resolution]``, ``ws [B, num_ws, w_dim]`` ->
    ``image [B, 3, out_resolution, out_resolution]``.

    Args:
        in_channels: channels of the rendered feature image (wired from the decoder; VolumeGAN 512,
            which the official network requires to equal ``nf(in_resolution)``; here the first
            convolution takes whatever it is given).
        in_resolution: side of the feature image (VolumeGAN ``nerf_res`` 32).
        out_resolution: side of the output image (256).
        w_dim: latent width (512).
        channel_base, channel_max: ``nf(res) = min(channel_base // res, channel_max)`` (32768, 512).
        conv_clamp: clamp of every layer's output (the FFHQ demo's mixed precision sets 256; ``None`` off).
        use_noise: per-pixel noise in ``conv0``/``conv1`` (``noise_type='spatial'``).
        noise_mode, eval_noise_mode: the noise in training and in eval mode (official ``'random'``
            and ``'const'``; one of ``random``, ``const``, ``none``).
        rgb_init_res_out: the octave-0 image from a 1x1 convolution (``rgb_init_res``) instead of the
            first three feature channels (the FFHQ config: False).
        progressive: grow from ``in_resolution`` (VolumeGAN ``--use_pg``: on); off keeps ``lod = 0``.
        lod_training_kimg, lod_transition_kimg, minibatch_repeats: the schedule
            (:class:`~gan3d.renderers.level_of_detail.LevelOfDetailSchedule`; 750, 750, 4).
        resample_filter: the low-pass filter of the upsampling ([1, 3, 3, 1]).

    Example:
        >>> up = VolumeGANNeuralRenderer(in_channels=32, in_resolution=8, out_resolution=32, w_dim=16,
        ...                              channel_base=256, channel_max=32)
        >>> up.num_ws, float(up.lod)
        (6, 2.0)
    """

    def __init__(
        self,
        *,
        in_channels: int = 512,
        in_resolution: int = 32,
        out_resolution: int = 256,
        w_dim: int = 512,
        channel_base: int = 32768,
        channel_max: int = 512,
        conv_clamp: float | None = None,
        use_noise: bool = True,
        noise_mode: str = "random",
        eval_noise_mode: str = "const",
        rgb_init_res_out: bool = False,
        progressive: bool = True,
        lod_training_kimg: float = 750.0,
        lod_transition_kimg: float = 750.0,
        minibatch_repeats: int = 4,
        resample_filter: Sequence[float] = (1, 3, 3, 1),
    ) -> None:
        super().__init__()
        what = "upsampler 'volumegan_neural_renderer'"
        for name, value in (("in_channels", in_channels), ("w_dim", w_dim), ("channel_base", channel_base),
                            ("channel_max", channel_max)):
            if value <= 0:
                raise ValueError(f"{what}: {name} must be positive, got {value}")
        ratio = out_resolution // max(in_resolution, 1)
        if in_resolution < 1 or ratio < 1 or ratio * in_resolution != out_resolution or ratio & (ratio - 1):
            raise ValueError(f"{what}: out_resolution ({out_resolution}) must be in_resolution ({in_resolution}) "
                             "times a power of two")
        if in_channels < 3 and not rgb_init_res_out:
            raise ValueError(f"{what}: in_channels={in_channels} < 3; the first three feature channels are the "
                             "low-resolution image (or set rgb_init_res_out=true)")
        for name, mode in (("noise_mode", noise_mode), ("eval_noise_mode", eval_noise_mode)):
            if mode not in NOISE_MODES:
                raise ValueError(f"{what}: {name} must be one of {', '.join(NOISE_MODES)}, got {mode!r}")
        self.in_channels = in_channels
        self.in_resolution = in_resolution
        self.image_resolution = out_resolution
        self.w_dim = w_dim
        self.num_octaves = int(math.log2(ratio))
        #: official ``num_cnn_layers = log2(resolution // nerf_res * 2) * 2``: two rows per octave with octave 0.
        self.num_ws = 2 * (self.num_octaves + 1)
        self.noise_mode = noise_mode
        self.eval_noise_mode = eval_noise_mode
        self.schedule = LevelOfDetailSchedule(init_lod=self.num_octaves, training_kimg=lod_training_kimg,
                                              transition_kimg=lod_transition_kimg,
                                              minibatch_repeats=minibatch_repeats, enabled=progressive)
        self.register_buffer("lod", torch.tensor(self.schedule.initial()))

        def channels(res: int) -> int:
            return min(channel_base // res, channel_max)

        self.torgb_init = Conv2dLayer(in_channels, 3, 1, conv_clamp=conv_clamp) if rgb_init_res_out else None
        previous = in_channels
        for b in range(1, self.num_octaves + 1):
            res = in_resolution << b
            block = VolumeGANRendererBlock(previous, channels(res), w_dim, res, use_noise=use_noise,
                                           conv_clamp=conv_clamp, resample_filter=resample_filter)
            setattr(self, f"b{res}", block)
            previous = channels(res)

    def out_resolution(self, render_resolution: int) -> int:
        """The output side, ``out_resolution`` whatever the render resolution (in eval mode a feature image
        of another side is resized to ``in_resolution`` first; training takes only ``in_resolution``, see
        :meth:`forward`)."""
        return self.image_resolution

    def set_training_step(self, step: int, kimg: float) -> None:
        """Move the level of detail along the schedule (VolumeGAN ``ProgressScheduler``)."""
        self.lod.fill_(self.schedule.update(step, kimg, float(self.lod)))

    def forward(self, features: Tensor, ws: Tensor, *, alpha: float = 1.0, lod: float | None = None) -> Tensor:
        """Render ``features`` with ``ws`` at the level of detail ``lod`` (default: the ``lod`` buffer).

        ``alpha`` is the generator's stage fade-in; this network fades by its own level of detail, so
        only ``alpha = 1`` (no stage fade) is accepted.
        """
        what = "upsampler 'volumegan_neural_renderer'"
        side = self.in_resolution
        if features.ndim != 4 or features.shape[1] != self.in_channels or features.shape[2] != features.shape[3]:
            raise ValueError(f"{what} expects square features [B, {self.in_channels}, h, h] (h = {side}, "
                             f"in_resolution, in training), got {tuple(features.shape)}")
        if features.shape[-1] != side:
            if self.training:
                # Training renders at in_resolution only, as the official network (nerf_res): a resized
                # feature image would train another model than VolumeGAN's.
                raise ValueError(f"{what} trains on {side} px feature images (in_resolution), got "
                                 f"{features.shape[-1]} px; set generator.render_resolution={side} (or "
                                 f"upsampler.in_resolution={features.shape[-1]})")
            # A render at another resolution in eval mode (the viewer's previews, infer at another size): the
            # network, its constant noise and its level of detail are laid out for in_resolution, so the feature
            # image is resized to it (bilinear, antialiased when shrinking), as EG3D's super-resolution does.
            features = F.interpolate(features, size=(side, side), mode="bilinear", align_corners=False,
                                     antialias=features.shape[-1] > side)
        if ws.ndim != 3 or ws.shape != (features.shape[0], self.num_ws, self.w_dim):
            raise ValueError(f"{what} reads exactly its {self.num_ws} latent rows: ws must be "
                             f"[{features.shape[0]}, {self.num_ws}, {self.w_dim}], got {tuple(ws.shape)}")
        if alpha != 1.0:
            raise ValueError(f"{what} fades octaves in by its level of detail (lod), not by a stage alpha; got "
                             f"alpha={alpha}: remove fade_steps from the training stages")
        lod = float(self.lod) if lod is None else float(lod)
        if not 0.0 <= lod <= self.num_octaves:
            raise ValueError(f"{what}: lod must lie in [0, {self.num_octaves}], got {lod}")
        noise_mode = self.noise_mode if self.training else self.eval_noise_mode
        kwargs = dict(noise_mode=noise_mode, fused_modconv=not self.training)
        x = features.to(torch.float32)
        octave_image = self.torgb_init(x) if self.torgb_init is not None else x[:, :3]
        image = octave_image if lod > self.num_octaves - 1 else None
        for b in range(1, self.num_octaves + 1):
            octave_lod = self.num_octaves - b
            if lod < octave_lod + 1:  # this octave is computed
                block = getattr(self, f"b{side << b}")
                x, octave_image = block(x, octave_image, ws[:, 2 * b - 1:2 * b + 2], **kwargs)
            if lod <= octave_lod - 1:  # a finer octave is the output; nothing to blend yet
                continue
            alpha_b = fade_in_alpha(lod, octave_lod)
            if alpha_b == 1.0:
                image = octave_image
                continue
            image = F.interpolate(image, scale_factor=2.0, mode="nearest")
            if alpha_b > 0.0:
                image = octave_image * alpha_b + image * (1 - alpha_b)
        return image
