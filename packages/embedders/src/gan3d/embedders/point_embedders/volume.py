"""VolumeGAN's feature volume: a style-modulated 3D CNN grows a constant into a feature grid, and
points read it by trilinear interpolation (Xu et al. 2022, section 3.1).

Facts from genforce/volumegan ``models/volumegan_generator.py`` (``FeatureVolume``,
``InstanceNormLayer``, ``UpsamplingLayer``, ``NeRFSynthesisNetwork``) and ``models/rendering/utils.py``
(``get_grid_coords``, ``grid_sample_3d``):

* a learned constant ``[1, base_channels, init_res^3]`` initialised to ones;
* ``log2(feat_res / init_res) + 1`` stages; each stage but the first upsamples x2 (nearest), then
  ``Conv3d(3x3x3, padding 1)`` (PyTorch default init), instance norm without affine
  (``eps = 1e-8`` inside the square root), ``x * scale + shift`` with per-channel scale and shift from
  ``w``, LeakyReLU(0.2); channels halve per stage from ``base_channels`` down to ``output_channels``;
* all scales and shifts come from one ``Linear(w_dim, 2 * sum(stage channels))`` (first half scales,
  second half shifts), kaiming-leaky initialised with its weight multiplied by 0.25, fed with
  ``ws[:, 0]``;
* a point ``p`` inside the axis-aligned ``bounds = [[xmin, ymin, zmin], [xmax, ymax, zmax]]`` maps to
  ``2 (p - min) / (max - min) - 1`` and is sampled trilinearly with corner-aligned voxels
  (``align_corners=True``); VolumeGAN's hand-written ``grid_sample_3d`` clamps corner indices, which
  equals ``padding_mode='border'`` outside the box; x indexes the grid's width, y its height, z its depth;
* the MLP's input is ``[volume features, NeRF positional encoding of p]`` (10 octaves with the input,
  ``embed_cfg``); FFHQ bounds ``[[-0.1886, -0.1671, -0.1956], [0.1887, 0.1692, 0.1872]]``.

Deviation: when ``feat_res / init_res`` gives too few stages for the halving to reach
``output_channels`` the official code ends with more channels than the MLP expects; we make the last
stage emit ``output_channels`` always.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan3d.core.interfaces import PointEmbedder

from ..positional_encoding import PositionalEncoding

__all__ = ["FeatureVolumeNetwork", "VolumeEmbedder", "sample_from_volume", "trilinear_border"]

#: VolumeGAN's FFHQ feature-volume bounds (``fv_cfg`` default in NeRFSynthesisNetwork.forward).
FFHQ_BOUNDS = ((-0.1886, -0.1671, -0.1956), (0.1887, 0.1692, 0.1872))


def sample_from_volume(volume: Tensor, points: Tensor, bounds: Tensor) -> Tensor:
    """Trilinear lookup of ``volume [N, C, D, H, W]`` at world ``points [N, M, 3]``.

    ``bounds [2, 3]`` (min corner, max corner) map onto the centres of the first and last voxels
    (``align_corners=True``); outside the box the border value is read. Returns ``[N, M, C]``.

    With autograd on, the lookup is written out in gathers (:func:`trilinear_border`), as VolumeGAN's own
    ``grid_sample_3d``: the path-length regularizer differentiates the image's gradient again, and CUDA's
    ``grid_sampler_3d_backward`` has no derivative. Without autograd (inference) ``F.grid_sample`` does it;
    both agree to float32 rounding.
    """
    if volume.ndim != 5:
        raise ValueError(f"volume must be [N, C, D, H, W], got {tuple(volume.shape)}")
    if points.ndim != 3 or points.shape[-1] != 3 or points.shape[0] != volume.shape[0]:
        raise ValueError(f"points must be [N, M, 3] with N={volume.shape[0]}, got {tuple(points.shape)}")
    low, high = bounds[0], bounds[1]
    grid = ((points - low) / (high - low) * 2.0 - 1.0).to(volume.dtype)
    if torch.is_grad_enabled() and (volume.requires_grad or grid.requires_grad):
        return trilinear_border(volume, grid)
    n, m = points.shape[:2]
    sampled = F.grid_sample(volume, grid.reshape(n, 1, 1, m, 3), mode="bilinear",
                            padding_mode="border", align_corners=True)  # [N, C, 1, 1, M]
    return sampled.reshape(n, volume.shape[1], m).transpose(1, 2)


def trilinear_border(volume: Tensor, grid: Tensor) -> Tensor:
    """``F.grid_sample(volume, grid, 'bilinear', 'border', align_corners=True)`` for ``volume [N, C, D, H, W]``
    and normalized ``grid [N, M, 3]`` (x: width, y: height, z: depth), as gathers and lerps, so that it can
    be differentiated any number of times on every device. Returns ``[N, M, C]``."""
    n, c, d, h, w = volume.shape
    sizes = torch.tensor([w, h, d], device=grid.device, dtype=grid.dtype)
    # align_corners=True: -1 and 1 are the centres of the first and last voxels; border: clamp the position.
    position = torch.minimum(((grid + 1.0) * 0.5 * (sizes - 1)).clamp_min(0.0), sizes - 1)
    low = position.detach().floor().long()
    high = torch.minimum(low + 1, (sizes - 1).long())
    frac = position - low.to(position.dtype)  # [N, M, 3]
    voxels = volume.reshape(n, c, d * h * w).transpose(1, 2)  # [N, DHW, C]
    batch = torch.arange(n, device=volume.device).unsqueeze(1)
    out = 0
    for corner in range(8):
        pick = [(high if corner >> axis & 1 else low)[..., axis] for axis in range(3)]  # x, y, z indices
        weight = 1.0
        for axis in range(3):
            weight = weight * (frac[..., axis] if corner >> axis & 1 else 1.0 - frac[..., axis])
        index = (pick[2] * h + pick[1]) * w + pick[0]  # [N, M]
        out = out + voxels[batch, index] * weight.unsqueeze(-1)  # [N, M, C]
    return out


class FeatureVolumeNetwork(nn.Module):
    """``w [B, w_dim]`` -> feature volume ``[B, output_channels, feat_res, feat_res, feat_res]``."""

    def __init__(self, *, feat_res: int, init_res: int, base_channels: int, output_channels: int, w_dim: int,
                 eps: float = 1e-8) -> None:
        super().__init__()
        ratio = feat_res // init_res
        if init_res <= 0 or feat_res < init_res or ratio * init_res != feat_res or ratio & (ratio - 1):
            raise ValueError(
                f"volume embedder: feat_res ({feat_res}) must be init_res ({init_res}) times a power of two"
            )
        num_stages = int(math.log2(ratio)) + 1
        channels = []
        out = base_channels
        for _ in range(num_stages):
            channels.append(out)
            out = max(out // 2, output_channels)
        channels[-1] = output_channels
        self.stage_channels = channels
        self.eps = eps
        self.const = nn.Parameter(torch.ones(1, base_channels, init_res, init_res, init_res))
        ins = [base_channels] + channels[:-1]
        self.convs = nn.ModuleList(nn.Conv3d(i, o, kernel_size=3, padding=1) for i, o in zip(ins, channels))
        self.style = nn.Linear(w_dim, 2 * sum(channels))
        with torch.no_grad():
            nn.init.kaiming_normal_(self.style.weight, a=0.2, mode="fan_in", nonlinearity="leaky_relu")
            self.style.weight.mul_(0.25)

    def forward(self, w: Tensor) -> Tensor:
        scales, shifts = self.style(w).chunk(2, dim=-1)
        x = self.const.expand(w.shape[0], -1, -1, -1, -1)
        start = 0
        for i, conv in enumerate(self.convs):
            if i:
                x = F.interpolate(x, scale_factor=2, mode="nearest")
            x = conv(x)
            # Instance norm without affine, then the style's per-channel scale and shift (AdaIN).
            x = x - x.mean(dim=(2, 3, 4), keepdim=True)
            x = x * torch.rsqrt(x.square().mean(dim=(2, 3, 4), keepdim=True) + self.eps)
            end = start + conv.out_channels
            x = x * scales[:, start:end, None, None, None] + shifts[:, start:end, None, None, None]
            start = end
            x = F.leaky_relu(x, 0.2)
        return x


class VolumeEmbedder(PointEmbedder):
    """VolumeGAN's point features: trilinear feature-volume lookup, then a positional encoding.

    Args:
        feat_res: side of the feature volume (VolumeGAN 32).
        init_res: side of the learned constant (VolumeGAN 4).
        base_channels: channels of the first stage (VolumeGAN 256).
        output_channels: channels of the volume (VolumeGAN 32).
        w_dim: latent width (512).
        bounds: ``[[xmin, ymin, zmin], [xmax, ymax, zmax]]`` world box the volume covers
            (VolumeGAN FFHQ's by default).
        num_frequencies: octaves of the positional encoding appended to the volume features
            (VolumeGAN 10; 0 with ``include_input=False`` gives the volume features alone).
        include_input: include the raw point in that encoding (VolumeGAN: yes).

    ``scene(ws [B, num_ws, w_dim])`` -> volume ``[B, output_channels, feat_res^3]`` from ``ws[:, 0]``;
    ``forward(points [B, R, S, 3], volume)`` -> ``[B, R, S, out_channels]``,
    ``out_channels = output_channels + 3 * (include_input + 2 * num_frequencies)`` (95 by default).
    """

    num_ws = 1

    def __init__(self, *, feat_res: int = 32, init_res: int = 4, base_channels: int = 256, output_channels: int = 32,
                 w_dim: int = 512, bounds: tuple = FFHQ_BOUNDS, num_frequencies: int = 10,
                 include_input: bool = True) -> None:
        super().__init__()
        for name, value in (("base_channels", base_channels), ("output_channels", output_channels), ("w_dim", w_dim)):
            if value <= 0:
                raise ValueError(f"volume embedder: {name} must be positive, got {value}")
        # Checked on the Python values, so the module also builds on the meta device (no tensor reads).
        try:
            lo, hi = ([float(v) for v in corner] for corner in bounds)
        except (TypeError, ValueError):
            lo = hi = []
        if len(lo) != 3 or len(hi) != 3 or not all(b > a for a, b in zip(lo, hi)):
            raise ValueError(
                f"volume embedder: bounds must be [[xmin, ymin, zmin], [xmax, ymax, zmax]] with max > min, got {bounds}"
            )
        box = torch.tensor([lo, hi], dtype=torch.float32)
        self.w_dim = w_dim
        self.volume_channels = output_channels
        self.network = FeatureVolumeNetwork(feat_res=feat_res, init_res=init_res, base_channels=base_channels,
                                            output_channels=output_channels, w_dim=w_dim)
        self.register_buffer("box", box, persistent=False)
        self.encoding = None
        if num_frequencies or include_input:
            self.encoding = PositionalEncoding(in_channels=3, num_frequencies=num_frequencies,
                                               include_input=include_input)
        self.out_channels = output_channels + (self.encoding.out_channels if self.encoding is not None else 0)

    @property
    def bounds(self) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
        """The world box the feature volume covers."""
        lo, hi = self.box.tolist()
        return (tuple(lo), tuple(hi))

    def scene(self, ws: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        if ws.ndim != 3 or ws.shape[-1] != self.w_dim:
            raise ValueError(f"volume embedder: ws must be [B, num_ws, {self.w_dim}], got {tuple(ws.shape)}")
        return self.network(ws[:, 0])

    def forward(self, points: Tensor, scene: Tensor) -> Tensor:
        if not isinstance(scene, Tensor) or scene.ndim != 5 or scene.shape[1] != self.volume_channels:
            raise ValueError(
                f"volume embedder: scene must be the [B, {self.volume_channels}, D, H, W] volume from scene(ws), "
                f"got {type(scene).__name__ if not isinstance(scene, Tensor) else tuple(scene.shape)}"
            )
        b, r, s, _ = points.shape
        flat = points.reshape(b, r * s, 3)
        features = sample_from_volume(scene, flat, self.box)
        if self.encoding is not None:
            features = torch.cat([features, self.encoding(flat)], dim=-1)
        return features.reshape(b, r, s, self.out_channels)
