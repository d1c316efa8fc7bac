"""StyleSDF's 2D styled generator (registered as ``upsampler`` ``stylesdf``): the StyleGAN2 decoder
that turns the volume-rendered feature map into the high-resolution image.

Facts from royorel/StyleSDF ``model.py`` (``Decoder``) and ``options.py``:

* its own mapping network: pixel norm, then ``EqualLinear(256 -> 512)`` and four
  ``EqualLinear(512 -> 512)``, leaky ReLU, learning-rate multiplier 0.01 (``--lr_mapping``), applied to
  the volume renderer's latent ``w`` (one per layer under style mixing): core's
  :class:`~gan3d.core.layers.MappingNetwork` with ``num_layers=5``;
* ``conv1``: a styled 3x3 convolution from the 256 rendered feature channels to ``channels[64]``
  at the render resolution (64), then ``to_rgb1`` with no incoming image (``rgbd_in=None``: the
  rendered RGB is not read);
* per doubling up to ``size`` (FFHQ 1024, AFHQ 512): an upsampling styled conv, a styled conv and a
  ``ToRGB`` added to the upsampled image (StyleGAN2 'skip'); channels
  ``{64: 256 m, 128: 128 m, 256: 64 m, 512: 32 m, 1024: 16 m}`` with ``channel_multiplier`` m = 2
  (at most 512), noise injection in every styled conv, no output activation;
* ``n_latent = 2 * log2(size / 64) + 2`` latents: conv1 uses 0, to_rgb1 1, then each block three from
  ``1 + 2 k`` (its toRGB shares the next block's first latent).

The styled layers are core's StyleGAN2 layers (:class:`~gan3d.core.layers.SynthesisLayer`,
:class:`~gan3d.core.layers.ToRGBLayer`, :class:`~gan3d.core.layers.SynthesisBlock`) with no conv
clamp, as rosinality's StyleGAN2 that StyleSDF builds on.
"""

from __future__ import annotations

import math

from torch import Tensor

from gan3d.core.interfaces import Upsampler
from gan3d.core.layers import MappingNetwork, SynthesisBlock, SynthesisLayer, ToRGBLayer

__all__ = ["StyleSDFUpsampler", "stylesdf_channels"]


def stylesdf_channels(resolution: int, channel_multiplier: int) -> int:
    """``Decoder.channels``: 512 up to 32 px, then ``16384 * m / resolution`` (at most 512)."""
    return min(512, 16384 * channel_multiplier // resolution) if resolution >= 64 else 512


class StyleSDFUpsampler(Upsampler):
    """``features [B, skip_channels + in_channels, h, h]``, ``ws [B, >= num_ws, style_dim]`` ->
    ``image [B, 3, out_resolution, out_resolution]``.

    Args:
        in_channels: rendered feature channels read (StyleSDF: the SIREN width, 256).
        skip_channels: leading channels of the feature image left unread (3: the rendered RGB the
            generator puts first, which StyleSDF's decoder does not use).
        in_resolution: render resolution ``h`` (StyleSDF ``renderer_spatial_output_dim`` 64).
        out_resolution: image size (FFHQ 1024, AFHQ 512).
        style_dim: size of the renderer latent ``w`` (256); the decoder's styles are twice that.
        mapping_layers, mapping_lr_multiplier: the decoder's own mapping network (5, 0.01).
        channel_multiplier: StyleGAN2 config-f width factor (2).
        noise_mode: ``'random'`` (StyleSDF's ``randomize_noise=True``), ``'const'`` or ``'none'``.

    Example:
        >>> up = StyleSDFUpsampler(in_channels=8, in_resolution=8, out_resolution=16, style_dim=4)
        >>> up(torch.randn(2, 11, 8, 8), torch.randn(2, up.num_ws, 4)).shape
        torch.Size([2, 3, 16, 16])
    """

    #: The full pipeline's decoder maps the same ``w`` that drives the SIREN (model.py ``Generator``), so
    #: its first row is the volume renderer's.
    ws_from_previous = 1

    def __init__(self, *, in_channels: int = 256, skip_channels: int = 3, in_resolution: int = 64,
                 out_resolution: int = 1024, style_dim: int = 256, mapping_layers: int = 5,
                 mapping_lr_multiplier: float = 0.01, channel_multiplier: int = 2, noise_mode: str = "random") -> None:
        super().__init__()
        for name, res in (("in_resolution", in_resolution), ("out_resolution", out_resolution)):
            if res < 4 or res & (res - 1):
                raise ValueError(f"stylesdf upsampler: {name} must be a power of two >= 4, got {res}")
        if out_resolution <= in_resolution:
            raise ValueError(f"stylesdf upsampler: out_resolution ({out_resolution}) must exceed "
                             f"in_resolution ({in_resolution})")
        if in_channels <= 0 or skip_channels < 0:
            raise ValueError(f"stylesdf upsampler: in_channels must be positive and skip_channels >= 0, "
                             f"got {in_channels}, {skip_channels}")
        self.in_channels = in_channels
        self.skip_channels = skip_channels
        self.in_resolution = in_resolution
        self.image_resolution = out_resolution
        self.scale_factor = out_resolution // in_resolution
        self.style_dim = style_dim
        self.w_dim = style_dim  # the rows it reads; its own mapping network makes them 2 * style_dim wide
        styles = 2 * style_dim
        self.noise_mode = noise_mode
        self.num_ws = 2 * int(math.log2(out_resolution // in_resolution)) + 2
        self.mapping = MappingNetwork(style_dim, 0, styles, None, num_layers=mapping_layers,
                                      lr_multiplier=mapping_lr_multiplier, w_avg_beta=None)
        channels = stylesdf_channels(in_resolution, channel_multiplier)
        self.conv_in = SynthesisLayer(in_channels, channels, styles, in_resolution, conv_clamp=None)
        self.torgb_in = ToRGBLayer(channels, 3, styles)
        self.block_resolutions = [in_resolution * 2 ** i for i in range(1, int(math.log2(self.scale_factor)) + 1)]
        for res in self.block_resolutions:
            out_channels = stylesdf_channels(res, channel_multiplier)
            block = SynthesisBlock(channels, out_channels, styles, res, 3, res == out_resolution,
                                   architecture="skip", conv_clamp=None)
            setattr(self, f"b{res}", block)
            channels = out_channels

    def map_styles(self, ws: Tensor) -> Tensor:
        """``ws [B, >= num_ws, style_dim]`` -> the decoder's styles ``[B, num_ws, 2 * style_dim]``."""
        if ws.ndim != 3 or ws.shape[1] < self.num_ws or ws.shape[2] != self.style_dim:
            raise ValueError(f"stylesdf upsampler needs ws [B, >={self.num_ws}, {self.style_dim}] (raise "
                             f"stochasticity_mapper.num_ws to {self.num_ws}); got {tuple(ws.shape)}")
        b = ws.shape[0]
        return self.mapping(ws[:, :self.num_ws].reshape(b * self.num_ws, self.style_dim)).view(b, self.num_ws, -1)

    def synthesize(self, features: Tensor, styles: Tensor) -> Tensor:
        """``features [B, skip_channels + in_channels, h, h]``, ``styles [B, num_ws, 2 * style_dim]`` -> image."""
        expected = self.skip_channels + self.in_channels
        if features.ndim != 4 or features.shape[1] != expected or features.shape[-1] != self.in_resolution:
            raise ValueError(f"stylesdf upsampler expects features [B, {expected}, {self.in_resolution}, "
                             f"{self.in_resolution}] ({self.skip_channels} RGB + {self.in_channels} feature "
                             f"channels: set the decoder's output_features=true); got {tuple(features.shape)}")
        x = self.conv_in(features[:, self.skip_channels:], styles[:, 0], noise_mode=self.noise_mode)
        img = self.torgb_in(x, styles[:, 1])
        for k, res in enumerate(self.block_resolutions):
            x, img = getattr(self, f"b{res}")(x, img, styles[:, 1 + 2 * k:4 + 2 * k], noise_mode=self.noise_mode)
        return img

    def forward(self, features: Tensor, ws: Tensor, *, alpha: float = 1.0) -> Tensor:
        return self.synthesize(features, self.map_styles(ws))

    def out_resolution(self, render_resolution: int) -> int:
        """The configured output side (the input must be ``in_resolution``)."""
        return self.image_resolution

    @classmethod
    def wire(cls, options: dict, upstream: dict) -> dict:
        """``in_channels`` is the decoder's feature channels after the ``skip_channels`` RGB ones, ``style_dim``
        the mapper's ``w_dim`` (StyleSDF maps the volume renderer's ``w`` once more, model.py ``Decoder``)."""
        out = {}
        if upstream.get("in_channels") is not None:
            out["in_channels"] = upstream["in_channels"] - int(options.get("skip_channels", 3))
        if upstream.get("w_dim") is not None:
            out["style_dim"] = upstream["w_dim"]
        return out

    def extra_repr(self) -> str:
        return (f"in_channels={self.in_channels}, {self.in_resolution} -> {self.image_resolution}, "
                f"num_ws={self.num_ws}")
