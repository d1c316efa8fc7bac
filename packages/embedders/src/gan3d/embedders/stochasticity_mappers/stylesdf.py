"""StyleSDF's volume-renderer mapping network (registered as ``stochasticity_mapper`` ``stylesdf``).

Facts from royorel/StyleSDF ``model.py`` (``Generator.style``, ``MappingLinear``) and ``options.py``
(``--style_dim 256``):

* three layers ``style_dim -> style_dim`` (256), each ``leaky_relu(W z + b, 0.2)`` with gain 1
  (``fused_leaky_relu(..., scale=1)``), and no pixel norm on ``z``;
* ``W = kaiming_normal(a=0.2, fan_in, leaky_relu)``, ``b ~ U(-sqrt(1/n), sqrt(1/n))``;
* one latent ``w`` drives every SIREN layer (each layer projects it itself); the full pipeline's 2D
  decoder maps the same ``w`` (one per layer under style mixing) through its own network.

``ws [B, num_ws, w_dim]`` repeats ``w`` ``num_ws`` times (1 for the volume renderer alone, the
upsampler's latent count for the full pipeline), so the trainer's style mixing can swap rows.
Truncation pulls ``w`` towards ``w_avg``, estimated from 10000 draws at construction (StyleSDF's
``mean_latent(10000)``) and tracked as a running mean in training.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan3d.core.interfaces import StochasticityMapper

__all__ = ["StyleSDFMappingNetwork"]


class StyleSDFMappingNetwork(StochasticityMapper):
    """``z [B, z_dim]`` -> ``ws [B, num_ws, w_dim]`` (the same ``w`` in every row).

    Args:
        z_dim: noise size (StyleSDF ``style_dim`` 256); the hidden and output sizes equal it.
        num_layers: depth (StyleSDF 3).
        num_ws: rows of ``ws`` (1 for the volume renderer; the upsampler's ``num_ws`` for the full model).
        w_avg_beta: decay of the running mean ``w_avg`` with ``update_w_avg=True``.
        w_avg_samples: draws of ``z`` for the mean estimated at construction (StyleSDF 10000).

    Example:
        >>> StyleSDFMappingNetwork(z_dim=8, num_ws=3)(torch.randn(2, 8)).shape
        torch.Size([2, 3, 8])
    """

    c_dim = 0

    def __init__(self, *, z_dim: int = 256, num_layers: int = 3, num_ws: int = 1, w_avg_beta: float = 0.995,
                 w_avg_samples: int = 10000) -> None:
        super().__init__()
        for name, value in (("z_dim", z_dim), ("num_layers", num_layers), ("num_ws", num_ws)):
            if value <= 0:
                raise ValueError(f"stylesdf mapper: {name} must be positive, got {value}")
        if not 0.0 <= w_avg_beta < 1.0:
            raise ValueError(f"stylesdf mapper: w_avg_beta must lie in [0, 1), got {w_avg_beta}")
        self.z_dim = z_dim
        self.w_dim = z_dim
        self.num_ws = num_ws
        self.w_avg_beta = w_avg_beta
        self.layers = nn.ModuleList(nn.Linear(z_dim, z_dim) for _ in range(num_layers))
        with torch.no_grad():
            for layer in self.layers:
                nn.init.kaiming_normal_(layer.weight, a=0.2, mode="fan_in", nonlinearity="leaky_relu")
                layer.bias.uniform_(-math.sqrt(1 / z_dim), math.sqrt(1 / z_dim))
        self.register_buffer("w_avg", torch.zeros(z_dim))
        if w_avg_samples:
            # A fixed seed: building a module must not depend on (or advance) the global draws.
            with torch.no_grad():
                z = torch.randn(w_avg_samples, z_dim, generator=torch.Generator().manual_seed(0))
                self.w_avg.copy_(self._map(z).mean(0))

    def _map(self, z: Tensor) -> Tensor:
        for layer in self.layers:
            z = F.leaky_relu(layer(z), 0.2)
        return z

    def forward(self, z: Tensor, c: Tensor | None = None, *, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, update_w_avg: bool = False) -> Tensor:
        """``z [B, z_dim]`` -> ``ws [B, num_ws, z_dim]``; ``c`` must be ``None`` (unconditional)."""
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"stylesdf mapper: z must be [B, {self.z_dim}], got {tuple(z.shape)}")
        if c is not None and c.numel():
            raise ValueError("stylesdf mapper is unconditional (c_dim=0); pass c=None")
        w = self._map(z)
        if update_w_avg:
            with torch.no_grad():
                self.w_avg.copy_(w.detach().mean(0).lerp(self.w_avg, self.w_avg_beta))
        ws = w.unsqueeze(1).repeat(1, self.num_ws, 1)
        if truncation_psi != 1.0:
            cutoff = self.num_ws if truncation_cutoff is None else truncation_cutoff
            ws[:, :cutoff] = self.w_avg.lerp(ws[:, :cutoff], truncation_psi)
        return ws

    def extra_repr(self) -> str:
        return f"z_dim={self.z_dim}, num_layers={len(self.layers)}, num_ws={self.num_ws}"
