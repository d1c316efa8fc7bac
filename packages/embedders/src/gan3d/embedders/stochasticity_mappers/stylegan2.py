"""The StyleGAN2 mapping network as a stochasticity mapper (EG3D, StyleNeRF, VolumeGAN, EpiGRAF).

A thin adapter around :class:`gan3d.core.layers.MappingNetwork` (StyleGAN2-ADA official file
training/networks_stylegan2.py ``MappingNetwork``): 2nd-moment-normalised ``z`` and embedded ``c``,
``num_layers`` equalized-lr leaky-ReLU layers with lr multiplier 0.01, ``w`` broadcast to ``num_ws``
latents, running mean ``w_avg`` (beta 0.998) and truncation.

EG3D conditions on the camera label (``c_dim=25``, ``--map-depth 2``) and, in
``TriPlaneGenerator.mapping`` (training/triplane.py), first multiplies the label by ``c_scale``
(``--c-scale``, 1) or replaces it by zeros when generator pose conditioning is off
(``c_gen_conditioning_zero``): options ``c_scale`` and ``zero_condition`` here.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gan3d.core.interfaces import StochasticityMapper
from gan3d.core.layers.mapping import MappingNetwork

__all__ = ["StyleGAN2Mapper"]


class StyleGAN2Mapper(StochasticityMapper):
    """``z [B, z_dim]`` (+ ``c [B, c_dim]``) -> ``ws [B, num_ws, w_dim]`` (one ``w`` repeated).

    Args:
        z_dim, w_dim: latent sizes (512 each in StyleGAN2 and EG3D).
        c_dim: condition size (0: unconditional; EG3D 25, its camera label).
        num_ws: latents to broadcast to; at least what the embedder, decoder and upsampler read
            (EG3D: 14 for the 256-px tri-plane backbone).
        num_layers: depth (StyleGAN2 8; EG3D 2).
        lr_multiplier: learning-rate multiplier of the layers (0.01).
        w_avg_beta: decay of the running mean ``w_avg`` (0.998).
        c_scale: factor on ``c`` before the embedding (EG3D ``c_scale``, 1).
        zero_condition: feed zeros instead of ``c`` (EG3D with ``--gen_pose_cond False``).
        embed_features, layer_features: width of the label embedding and of the hidden layers;
            0 means ``w_dim``, StyleGAN2's default (``MappingNetwork`` ``embed_features``,
            ``layer_features``; every released network uses the default).
    """

    def __init__(self, *, z_dim: int = 512, c_dim: int = 0, w_dim: int = 512, num_ws: int = 14, num_layers: int = 8,
                 lr_multiplier: float = 0.01, w_avg_beta: float = 0.998, c_scale: float = 1.0,
                 zero_condition: bool = False, embed_features: int = 0, layer_features: int = 0) -> None:
        super().__init__()
        for name, value in (("z_dim", z_dim), ("w_dim", w_dim), ("num_ws", num_ws), ("num_layers", num_layers)):
            if value <= 0:
                raise ValueError(f"stylegan2 mapper: {name} must be positive, got {value}")
        if c_dim < 0:
            raise ValueError(f"stylegan2 mapper: c_dim must be >= 0 (0: unconditional), got {c_dim}")
        if embed_features < 0 or layer_features < 0:
            raise ValueError("stylegan2 mapper: embed_features and layer_features must be >= 0 (0: w_dim)")
        self.network = MappingNetwork(z_dim, c_dim, w_dim, num_ws, num_layers=num_layers,
                                      embed_features=embed_features or None, layer_features=layer_features or None,
                                      lr_multiplier=lr_multiplier, w_avg_beta=w_avg_beta)
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.num_ws = num_ws
        self.c_scale = c_scale
        self.zero_condition = zero_condition

    @property
    def w_avg(self) -> Tensor:
        """``[w_dim]`` running mean of ``w``, the centre of truncation."""
        return self.network.w_avg

    def forward(
        self,
        z: Tensor,
        c: Tensor | None = None,
        *,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        update_w_avg: bool = False,
    ) -> Tensor:
        if self.c_dim:
            if c is None:
                raise ValueError(f"stylegan2 mapper has c_dim={self.c_dim}: pass c [B, {self.c_dim}] "
                                 "(EG3D: the camera label, Cameras.label)")
            c = torch.zeros_like(c) if self.zero_condition else c * self.c_scale
        elif c is not None and c.numel():
            raise ValueError("stylegan2 mapper is unconditional (c_dim=0) but got c; pass c=None or set c_dim")
        else:
            c = None
        return self.network(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                            update_w_avg=update_w_avg)
