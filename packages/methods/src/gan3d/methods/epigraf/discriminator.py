"""EpiGRAF's patch-aware discriminator: StyleGAN2's residual discriminator on ``64 x 64`` patches,
modulated by the patch scale and position through a hypernetwork and conditioned on them (and, optionally,
on the camera angles) through its projection head.

Source: universome/epigraf src/training/networks_discriminator.py (``Discriminator``,
``DiscriminatorBlock``, ``DiscriminatorEpilogue``), src/training/layers.py (``Conv2dLayer`` with
``hyper_mod``, ``MappingNetwork``, ``ScalarEncoder1d``), configs/model/base.yaml + epigraf.yaml, src/train.py:

* the patch ``(s, o_x, o_y)`` (scale, offsets from the left and bottom edge, :func:`.patch_schedule.
  epigraf_patch_params`) is encoded to 828 values (:class:`.scalar_encoding.ScalarEncoder1d`, multiplier 1000,
  embedding 256); ``hyper_mod_mapping`` (a mapping network 828 -> 512 -> 512 -> 512, 2 layers, lr multiplier
  0.01) turns it into the modulation code;
* blocks ``b{res}`` from the virtual resolution ``patch * 2^n`` down to 8, ``n = log2(image / patch)``
  (model/epigraf.yaml ``num_additional_start_blocks``: 3 at 512, 2 at 256): the first ``n`` blocks keep the
  64 x 64 size (``down=1``), the others halve it, so the network has the channels of a StyleGAN2
  discriminator for the full image (``min(16384 / res, 512)``, ``cbase`` 32768 times ``fmaps`` 0.5);
* each block: ``fromrgb`` (1x1; built in every block, read only by the first), ``conv0`` (3x3),
  ``conv1`` (3x3, resampling, hyper-modulated: its input is multiplied per channel by
  ``1 + tanh(affine(code))``, ``affine`` 512 -> in_channels with zero bias), ``skip`` (1x1, no bias);
  residual sum with gains ``sqrt(1/2)``; conv clamp 256 except on ``skip`` (mixed precision is on in the
  official runs, so the clamp is there);
* ``head_mapping`` maps ``[class label, patch encoding (, camera encoding)]`` to the 512-value projection
  of the epilogue ``b4`` (minibatch std group 4, conv, fc, out); with ``camera_cond`` the yaw and pitch are
  mapped to ``[-1/2, 1/2]`` turns, Fourier-encoded (multiplier 64: 24 values) and dropped out with
  probability ``camera_cond_drop_p`` in training (README: 0.5).

Parameter and buffer names are the official ones, so an EpiGRAF ``D`` state dict loads as it is. Inputs
use gan3d's conventions (:class:`~gan3d.core.types.DiscriminatorInput`): the patch as a corner-aligned
:class:`~gan3d.core.types.PatchParams` of the ``image_resolution``-pixel image (:mod:`.patches`), camera
angles as gan3d's ``(yaw, polar)``; both are converted to EpiGRAF's before encoding.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan3d.core.interfaces import Discriminator
from gan3d.core.layers.discriminator import DiscriminatorEpilogue
from gan3d.core.layers.equalized import Conv2dLayer, FullyConnectedLayer
from gan3d.core.layers.filtered_resampling import setup_filter
from gan3d.core.layers.mapping import MappingNetwork
from gan3d.core.types import DiscriminatorInput, DiscriminatorOutput

from .camera_angles import to_epigraf_angles
from .patches import epigraf_patch_params
from .scalar_encoding import ScalarEncoder1d

__all__ = ["HyperModulatedConv2dLayer", "EpiGRAFDiscriminatorBlock", "ConditionMapping", "EpiGRAFPatchDiscriminator"]

#: networks_discriminator.py: the patch encoder and the modulation width.
PATCH_X_MULTIPLIER, PATCH_CONST_EMB_DIM, HYPER_MOD_DIM = 1000.0, 256, 512
#: layers.py MappingNetwork with camera_cond (raw scalars off): ScalarEncoder1d(2, x_multiplier=64).
CAMERA_X_MULTIPLIER = 64.0


class HyperModulatedConv2dLayer(Conv2dLayer):
    """A :class:`Conv2dLayer` whose input channels are scaled by ``1 + tanh(affine(code))`` first
    (EpiGRAF layers.py ``Conv2dLayer`` with ``hyper_mod=True``). Extra parameter: ``affine``
    (``code_dim -> in_channels``, equalized, zero bias)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, code_dim: int, **kwargs) -> None:
        super().__init__(in_channels, out_channels, kernel_size, **kwargs)
        self.affine = FullyConnectedLayer(code_dim, in_channels, bias_init=0.0)

    def forward(self, x: Tensor, code: Tensor, gain: float = 1.0) -> Tensor:  # type: ignore[override]
        """``x [B, in_channels, H, W]``, ``code [B, code_dim]``."""
        scale = 1.0 + torch.tanh(self.affine(code))
        return super().forward(x * scale.to(x.dtype)[:, :, None, None], gain=gain)


class EpiGRAFDiscriminatorBlock(nn.Module):
    """One EpiGRAF discriminator block (see the module docstring); ``down`` is 1 or 2."""

    def __init__(self, in_channels: int, tmp_channels: int, out_channels: int, resolution: int, img_channels: int, *,
                 down: int = 2, code_dim: int = 0, conv_clamp: float | None = 256.0, first_layer_idx: int = 0,
                 freeze_layers: int = 0) -> None:
        super().__init__()
        if in_channels not in (0, tmp_channels):
            raise ValueError(f"in_channels must be 0 (first block) or tmp_channels={tmp_channels}, got {in_channels}")
        self.in_channels = in_channels
        self.resolution = resolution
        self.down = down
        self.register_buffer("resample_filter", setup_filter([1, 3, 3, 1]))
        flags = [first_layer_idx + i >= freeze_layers for i in range(4)]  # fromrgb, conv0, conv1, skip
        self.num_layers = 4
        self.fromrgb = Conv2dLayer(img_channels, tmp_channels, 1, activation="lrelu", conv_clamp=conv_clamp,
                                   trainable=flags[0])
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, 3, activation="lrelu", conv_clamp=conv_clamp,
                                 trainable=flags[1])
        conv1 = dict(activation="lrelu", down=down, conv_clamp=conv_clamp, trainable=flags[2])
        self.conv1 = (HyperModulatedConv2dLayer(tmp_channels, out_channels, 3, code_dim=code_dim, **conv1)
                      if code_dim else Conv2dLayer(tmp_channels, out_channels, 3, **conv1))
        self.skip = Conv2dLayer(tmp_channels, out_channels, 1, bias=False, down=down, trainable=flags[3])

    def forward(self, x: Tensor | None, img: Tensor, code: Tensor | None) -> Tensor:
        """``x [B, in_channels, h, h]`` (``None`` in the first block), ``img [B, img_channels, h, h]``,
        ``code [B, code_dim]`` -> ``[B, out_channels, h / down, h / down]``."""
        if self.in_channels == 0:
            y = self.fromrgb(img)
            x = x + y if x is not None else y
        y = self.skip(x, gain=math.sqrt(0.5))
        x = self.conv0(x)
        x = self.conv1(x, code, gain=math.sqrt(0.5)) if code is not None else self.conv1(x, gain=math.sqrt(0.5))
        return y + x

    def extra_repr(self) -> str:
        return f"resolution={self.resolution}, down={self.down}"


class ConditionMapping(MappingNetwork):
    """A ``z_dim=0`` mapping network of a condition ``c [B, c_dim]``, optionally with encoded camera angles
    appended (EpiGRAF layers.py ``MappingNetwork`` with ``camera_cond``; its ``camera_scalar_enc`` buffer
    keeps the official name).

    Args:
        camera_cond: append the encoded (yaw, pitch) of EpiGRAF's convention.
        camera_cond_drop_p: dropout on the camera encoding in training.
        camera_cond_noise_std: Gaussian noise on the angles in training, in batch standard deviations.
        camera_raw_scalars: the raw angles instead of their Fourier features.
    """

    def __init__(self, c_dim: int, w_dim: int, *, num_layers: int = 2, camera_cond: bool = False,
                 camera_cond_drop_p: float = 0.0, camera_cond_noise_std: float = 0.0,
                 camera_raw_scalars: bool = False) -> None:
        encoder = None
        if camera_cond:
            encoder = (ScalarEncoder1d(2, 0.0, 0, use_raw=True) if camera_raw_scalars
                       else ScalarEncoder1d(2, CAMERA_X_MULTIPLIER, 0))
        super().__init__(0, c_dim + (encoder.out_dim if encoder is not None else 0), w_dim, None,
                         num_layers=num_layers, w_avg_beta=None)
        self.camera_scalar_enc = encoder
        self.camera_cond_drop_p = float(camera_cond_drop_p)
        self.camera_cond_noise_std = float(camera_cond_noise_std)

    def forward(self, c: Tensor, camera_angles: Tensor | None = None) -> Tensor:  # type: ignore[override]
        """``c [B, c_dim]`` and, with ``camera_cond``, EpiGRAF angles ``[B, >=2]`` -> ``[B, w_dim]``."""
        if self.camera_scalar_enc is not None:
            if camera_angles is None:
                raise ValueError("this discriminator is camera-conditioned (camera_cond): pass camera_angles")
            angles = camera_angles[:, :2].float()
            if self.training and self.camera_cond_noise_std > 0:
                spread = angles.std(dim=0, keepdim=True)
                angles = angles + self.camera_cond_noise_std * torch.randn_like(angles) * spread
            # Angles as signed fractions of a turn (layers.py MappingNetwork.forward).
            angles = angles.sign() * (torch.remainder(angles.abs(), 2 * math.pi) / (2 * math.pi))
            embedding = F.dropout(self.camera_scalar_enc(angles), p=self.camera_cond_drop_p, training=self.training)
            c = torch.cat([c, embedding], dim=1)
        return super().forward(None, c)


class EpiGRAFPatchDiscriminator(Discriminator):
    """Patches ``image [B, 3, P, P]`` with where they lie (and camera angles) -> logits ``[B, 1]``.

    Args:
        patch_resolution: ``P`` (EpiGRAF 64).
        image_resolution: the data set resolution the patches come from (FFHQ 512, Cats 256); sets the
            number of size-keeping start blocks, ``log2(image_resolution / patch_resolution)``.
        img_channels: 3.
        c_dim: class-label size (0; Megascans 198 and 10), projected with the patch encoding; read from
            ``DiscriminatorInput.extras['class_label']``.
        channel_base, channel_max: ``min(channel_base // res, channel_max)`` channels (EpiGRAF
            ``32768 * fmaps 0.5 = 16384`` and 512).
        conv_clamp: convolution output clamp (256; 0 or less: none).
        mbstd_group_size, mbstd_num_channels: minibatch standard deviation (4, 1).
        patch_params_cond, hyper_mod: condition on the patch (EpiGRAF: both on; both off gives a plain
            StyleGAN2 discriminator of patches).
        camera_cond, camera_cond_drop_p, camera_cond_noise_std, camera_cond_raw: condition the head on the
            camera angles (EpiGRAF configs: off; README: on with drop 0.5 for posed data).
        mapping_num_layers: depth of both mapping networks (EpiGRAF's MappingNetwork default 2).
        freeze_layers: Freeze-D (``training.freezed`` 0).

    Example:
        >>> from gan3d.methods.epigraf.patches import to_patch_params
        >>> d = EpiGRAFPatchDiscriminator(patch_resolution=16, image_resolution=32, channel_base=256, channel_max=16)
        >>> patch = to_patch_params(torch.tensor([[0.5, 0.25, 0.25]]).repeat(4, 1), 32)
        >>> d(DiscriminatorInput(torch.randn(4, 3, 16, 16), patch=patch)).logits.shape
        torch.Size([4, 1])
    """

    def __init__(self, *, patch_resolution: int = 64, image_resolution: int = 512, img_channels: int = 3,
                 c_dim: int = 0, channel_base: int = 16384, channel_max: int = 512, conv_clamp: float = 256.0,
                 mbstd_group_size: int = 4, mbstd_num_channels: int = 1, patch_params_cond: bool = True,
                 hyper_mod: bool = True, camera_cond: bool = False, camera_cond_drop_p: float = 0.0,
                 camera_cond_noise_std: float = 0.0, camera_cond_raw: bool = False, mapping_num_layers: int = 2,
                 freeze_layers: int = 0) -> None:
        super().__init__()
        if patch_resolution < 8 or patch_resolution & (patch_resolution - 1):
            raise ValueError(f"epigraf_patch discriminator: patch_resolution must be a power of two >= 8, "
                             f"got {patch_resolution}")
        ratio = image_resolution / patch_resolution
        if ratio < 1 or not math.log2(ratio).is_integer():
            raise ValueError(f"epigraf_patch discriminator: image_resolution ({image_resolution}) must be the patch "
                             f"resolution ({patch_resolution}) times a power of two")
        if patch_params_cond != hyper_mod:
            raise ValueError("epigraf_patch discriminator: patch_params_cond and hyper_mod go together (EpiGRAF "
                             "turns both on; both off is a plain patch discriminator)")
        if camera_cond and not (patch_params_cond or c_dim > 0):
            raise ValueError("epigraf_patch discriminator: camera_cond needs a conditioned head (patch_params_cond "
                             "or c_dim > 0), as in EpiGRAF")
        self.patch_resolution = patch_resolution
        self.image_resolution = image_resolution
        self.img_channels = img_channels
        self.c_dim = c_dim
        self.camera_cond = camera_cond
        self.num_additional_start_blocks = int(math.log2(ratio))
        virtual = patch_resolution * 2 ** self.num_additional_start_blocks
        self.block_resolutions = [2**i for i in range(int(math.log2(virtual)), 2, -1)]
        channels = {res: min(channel_base // res, channel_max) for res in [*self.block_resolutions, 4]}
        clamp = conv_clamp if conv_clamp > 0 else None

        self.scalar_enc = ScalarEncoder1d(3, PATCH_X_MULTIPLIER, PATCH_CONST_EMB_DIM) if patch_params_cond else None
        code_dim = HYPER_MOD_DIM if hyper_mod else 0
        if hyper_mod:
            self.hyper_mod_mapping = MappingNetwork(0, self.scalar_enc.out_dim, HYPER_MOD_DIM, None,
                                                    num_layers=mapping_num_layers, w_avg_beta=None)
        conditioned = c_dim > 0 or patch_params_cond
        cmap_dim = channels[4] if conditioned or camera_cond else 0
        layer_idx = 0
        for i, res in enumerate(self.block_resolutions):
            block = EpiGRAFDiscriminatorBlock(
                channels[res] if res < virtual else 0, channels[res], channels[res // 2], res, img_channels,
                down=1 if i < self.num_additional_start_blocks else 2, code_dim=code_dim, conv_clamp=clamp,
                first_layer_idx=layer_idx, freeze_layers=freeze_layers)
            setattr(self, f"b{res}", block)
            layer_idx += block.num_layers
        if conditioned:
            head_c = c_dim + (self.scalar_enc.out_dim if patch_params_cond else 0)
            self.head_mapping = ConditionMapping(head_c, cmap_dim, num_layers=mapping_num_layers,
                                                 camera_cond=camera_cond, camera_cond_drop_p=camera_cond_drop_p,
                                                 camera_cond_noise_std=camera_cond_noise_std,
                                                 camera_raw_scalars=camera_cond_raw)
        self.b4 = DiscriminatorEpilogue(channels[4], cmap_dim, 4, img_channels, mbstd_group_size=mbstd_group_size,
                                        mbstd_num_channels=mbstd_num_channels, conv_clamp=clamp)

    def forward(self, x: DiscriminatorInput) -> DiscriminatorOutput:
        """Score ``x.image [B, 3, P, P]``.

        ``x.patch`` places each patch (a corner-aligned :class:`~gan3d.core.types.PatchParams` of the
        ``image_resolution``-pixel image, :mod:`.patches`; needed with ``patch_params_cond``);
        ``x.camera_angles [B, 2]`` are gan3d's ``(yaw, polar)`` (needed with ``camera_cond``);
        ``x.extras['class_label'] [B, c_dim]`` the class label. The raw image, camera label and fade-in are
        not used.
        """
        image, c = x.image, x.extras.get("class_label")
        p = self.patch_resolution
        if image.ndim != 4 or tuple(image.shape[1:]) != (self.img_channels, p, p):
            raise ValueError(f"epigraf_patch discriminator takes [B, {self.img_channels}, {p}, {p}] patches, got "
                             f"{tuple(image.shape)}; set discriminator.patch_resolution to the patch size")
        batch = image.shape[0]
        if self.c_dim > 0:
            if c is None or c.shape != (batch, self.c_dim):
                raise ValueError(f"epigraf_patch discriminator has c_dim={self.c_dim}: give DiscriminatorInput."
                                 f"extras['class_label'] [{batch}, {self.c_dim}]")
            condition = c.float()
        else:
            condition = image.new_zeros(batch, 0)
        code = None
        if self.scalar_enc is not None:
            if x.patch is None or x.patch.scales.shape != (batch,):
                raise ValueError("epigraf_patch discriminator is conditioned on the patch: give "
                                 f"DiscriminatorInput.patch (PatchParams of {batch} patches)")
            # In [0, 1] up to the conversions' rounding (float64): clamp before the encoder checks the range.
            params = epigraf_patch_params(x.patch, self.image_resolution).clamp(0.0, 1.0).float()
            embedding = self.scalar_enc(params)
            code = self.hyper_mod_mapping(None, embedding)
            condition = torch.cat([condition, embedding], dim=1)
        angles = None
        if self.camera_cond:
            if x.camera_angles is None or x.camera_angles.shape != (batch, 2):
                raise ValueError("epigraf_patch discriminator is camera-conditioned: give DiscriminatorInput."
                                 "camera_angles [B, 2] (gan3d yaw, polar)")
            angles = to_epigraf_angles(x.camera_angles.float())
        h = None
        for res in self.block_resolutions:
            h = getattr(self, f"b{res}")(h, image, code)
        cmap = self.head_mapping(condition, angles) if hasattr(self, "head_mapping") else None
        return DiscriminatorOutput(logits=self.b4(h, None, cmap))

    def extra_repr(self) -> str:
        return (f"patch_resolution={self.patch_resolution}, image_resolution={self.image_resolution}, "
                f"c_dim={self.c_dim}, camera_cond={self.camera_cond}")
