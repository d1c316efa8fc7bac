"""EG3D's tri-plane embedder: a StyleGAN2 synthesis network paints three feature planes per sample,
and each point reads the mean of its three bilinear samples (Chan et al. 2022, section 3.2).

Facts from NVlabs/eg3d ``training/triplane.py`` (``TriPlaneGenerator``) and ``train.py``:

* the backbone is StyleGAN2's synthesis network at resolution 256 with ``3 * 32 = 96`` output
  channels (``channel_base`` 32768, ``channel_max`` 512, no conv clamp since the generator runs
  without fp16 layers), its output viewed as ``[B, 3, 32, 256, 256]``;
* ``box_warp`` is 1 for FFHQ and AFHQ (1.6 for ShapeNet cars); sampling as in
  :mod:`.triplane_sampling`, including the ``plane_axes`` quirk (default ``'official'``, which
  official EG3D checkpoints need; ``'corrected'`` uses the xy, yz and zx planes);
* the mean over the three planes happens in EG3D's decoder; here it happens in the embedder, so
  every decoder sees ``[B, R, S, channels]``.

The backbone is :class:`gan3d.core.layers.SynthesisNetwork`; ``num_ws`` is its ``num_ws`` (14 at 256).
Small ``resolution``/``channel_base``/``channel_max`` give a tiny tri-plane for tests and CPU runs.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gan3d.core.interfaces import PointEmbedder
from gan3d.core.layers.synthesis import NOISE_MODES, SynthesisNetwork

from .triplane_sampling import PLANE_AXES, sample_from_planes

__all__ = ["TriplaneEmbedder"]


class TriplaneEmbedder(PointEmbedder):
    """Tri-plane features: ``scene(ws)`` -> planes ``[B, 3, channels, resolution, resolution]``;
    ``forward(points [B, R, S, 3], planes)`` -> ``[B, R, S, channels]``.

    Args:
        resolution: plane side (EG3D 256; a power of two >= 4).
        channels: features per plane (EG3D 32).
        w_dim: latent width (512).
        box_warp: side of the world cube the planes span (EG3D FFHQ 1.0).
        plane_axes: ``'official'`` (EG3D's projection, loads its checkpoints), ``'corrected'`` or
            ``'epigraf'`` (EpiGRAF's planes in gan3d's world; see :mod:`.triplane_sampling`).
        align_corners: ``grid_sample``'s convention when reading the planes (EG3D ``False``; EpiGRAF
            ``True``, networks_epigraf.py ``tri_plane_renderer``).
        channel_base, channel_max: the backbone's channel schedule (EG3D 32768, 512).
        conv_clamp: clamp of the backbone's convolution outputs (EG3D: none).
        use_noise: per-pixel noise inputs in the backbone (StyleGAN2: yes).
        noise_mode: ``'random'``, ``'const'`` or ``'none'`` noise when painting the planes
            (EG3D trains with random noise; its sample scripts use ``'const'``).
        memory_format: the backbone's activation layout, ``'auto'`` (channels_last on a CPU, where
            it is faster and the planes come out channel-contiguous, as the sampling wants them;
            contiguous on CUDA), ``'channels_last'`` or ``'contiguous'``. Same values.
    """

    def __init__(self, *, resolution: int = 256, channels: int = 32, w_dim: int = 512, box_warp: float = 1.0,
                 plane_axes: str = "official", channel_base: int = 32768, channel_max: int = 512,
                 conv_clamp: float | None = None, use_noise: bool = True, noise_mode: str = "random",
                 memory_format: str = "auto", align_corners: bool = False) -> None:
        super().__init__()
        if plane_axes not in PLANE_AXES:
            raise ValueError(
                f"triplane embedder: plane_axes must be one of {', '.join(map(repr, PLANE_AXES))}, got {plane_axes!r}; "
                "'official' matches EG3D checkpoints, 'corrected' uses the xy, yz, zx planes"
            )
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"triplane embedder: noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        if not box_warp > 0:
            raise ValueError(f"triplane embedder: box_warp must be positive, got {box_warp}")
        if channels <= 0:
            raise ValueError(f"triplane embedder: channels must be positive, got {channels}")
        self.backbone = SynthesisNetwork(w_dim, resolution, 3 * channels, channel_base=channel_base,
                                         channel_max=channel_max, conv_clamp=conv_clamp, use_noise=use_noise,
                                         memory_format=memory_format)
        self.resolution = resolution
        self.channels = channels
        self.out_channels = channels
        self.w_dim = w_dim
        self.num_ws = self.backbone.num_ws
        self.box_warp = float(box_warp)
        self.plane_axes = plane_axes
        self.noise_mode = noise_mode
        self.align_corners = align_corners

    @property
    def bounds(self) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
        """The cube of side ``box_warp`` about the origin the planes span."""
        h = self.box_warp / 2
        return ((-h, -h, -h), (h, h, h))

    def scene(self, ws: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        """``ws [B, num_ws, w_dim]`` (its rows) -> planes ``[B, 3, C, res, res]``."""
        if ws.ndim != 3 or ws.shape[1] < self.num_ws or ws.shape[2] != self.w_dim:
            raise ValueError(
                f"triplane embedder needs ws [B, >={self.num_ws}, {self.w_dim}] for its synthesis backbone; "
                f"got {tuple(ws.shape)}; set the mapper's num_ws to at least {self.num_ws}"
            )
        # EG3D's train.py: fused_modconv_default='inference_only' -- per-sample grouped convolutions at
        # inference, one shared-weight convolution per layer in training (same values, faster steps).
        planes = self.backbone(ws[:, : self.num_ws], noise_mode=self.noise_mode, fused_modconv=not self.training)
        planes = planes.view(ws.shape[0], 3, self.channels, self.resolution, self.resolution)
        if planes.device.type == "cpu":
            # Each plane channel-contiguous, the layout sample_from_planes samples in on a CPU: made once
            # here rather than at each of its calls (coarse and fine samples); same values.
            planes = planes.permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3)
        return planes

    def forward(self, points: Tensor, scene: Tensor) -> Tensor:
        if not isinstance(scene, Tensor) or scene.ndim != 5 or scene.shape[1:3] != (3, self.channels):
            got = tuple(scene.shape) if isinstance(scene, Tensor) else type(scene).__name__
            raise ValueError(f"triplane embedder: scene must be planes [B, 3, {self.channels}, H, W] from scene(ws), "
                             f"got {got}")
        b, r, s, _ = points.shape
        features = sample_from_planes(scene, points.reshape(b, r * s, 3), box_warp=self.box_warp,
                                      plane_axes=self.plane_axes, align_corners=self.align_corners,
                                      reduce="mean")  # [B, R*S, C]
        return features.reshape(b, r, s, self.channels)

    def extra_repr(self) -> str:
        return (f"resolution={self.resolution}, channels={self.channels}, box_warp={self.box_warp}, "
                f"plane_axes={self.plane_axes!r}, align_corners={self.align_corners}, num_ws={self.num_ws}")
