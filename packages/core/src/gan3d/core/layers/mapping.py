"""The StyleGAN2 mapping network ``z (+ c) -> w`` (StyleGAN, Karras et al. 2019, section 2;
StyleGAN2-ADA official file training/networks_stylegan2.py ``MappingNetwork``).

Inputs are normalised to unit second moment, an optional condition ``c`` is embedded by a linear
layer and concatenated, then ``num_layers`` equalized-lr linear layers with leaky ReLU and
learning-rate multiplier 0.01 produce ``w``. During training a running mean ``w_avg`` is kept
(decay ``w_avg_beta``); truncation (StyleGAN section 3 / appendix B) pulls ``w`` towards it.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .equalized import FullyConnectedLayer

__all__ = ["normalize_2nd_moment", "MappingNetwork"]


def normalize_2nd_moment(x: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """Scale ``x`` so that ``mean(x**2)`` along ``dim`` is one (the "pixel norm" of the latent)."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


class MappingNetwork(nn.Module):
    """``z [B, z_dim]`` and ``c [B, c_dim]`` -> ``w [B, num_ws, w_dim]`` (or ``[B, w_dim]``).

    Layers (names match the official module, so parameter counts match): ``embed`` (only when
    ``c_dim > 0``, ``c_dim -> embed_features``), ``fc0 .. fc{num_layers-1}``.

    Args:
        z_dim: latent size (0: no latent, e.g. the discriminator's label mapping).
        c_dim: condition size (0: unconditional; 25 for EG3D's camera labels).
        w_dim: output size.
        num_ws: latents to broadcast to (``None``: return ``[B, w_dim]`` without broadcast).
        num_layers: depth (8 in StyleGAN2; EG3D's generator uses 2 via ``--map-depth``, its
            discriminator the default 8).
        embed_features: embedding size of ``c`` (``None``: ``w_dim``).
        layer_features: hidden size (``None``: ``w_dim``).
        activation: hidden activation (``'lrelu'``).
        lr_multiplier: learning-rate multiplier of every ``fc`` layer (0.01).
        w_avg_beta: decay of the running mean of ``w`` (``None``: no tracking, no truncation).
    """

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        num_ws: int | None,
        *,
        num_layers: int = 8,
        embed_features: int | None = None,
        layer_features: int | None = None,
        activation: str = "lrelu",
        lr_multiplier: float = 0.01,
        w_avg_beta: float | None = 0.998,
    ) -> None:
        super().__init__()
        if z_dim == 0 and c_dim == 0:
            raise ValueError("MappingNetwork needs an input: give z_dim > 0 or c_dim > 0")
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.num_ws = num_ws
        self.num_layers = num_layers
        self.w_avg_beta = w_avg_beta

        embed_features = (w_dim if embed_features is None else embed_features) if c_dim > 0 else 0
        layer_features = w_dim if layer_features is None else layer_features
        sizes = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for idx in range(num_layers):
            layer = FullyConnectedLayer(sizes[idx], sizes[idx + 1], activation=activation, lr_multiplier=lr_multiplier)
            setattr(self, f"fc{idx}", layer)
        #: Whether a running mean is kept (the official network keeps one only with num_ws and w_avg_beta).
        self.tracks_w_avg = num_ws is not None and w_avg_beta is not None
        if self.tracks_w_avg:
            self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(
        self,
        z: Tensor | None,
        c: Tensor | None = None,
        *,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        update_w_avg: bool = False,
    ) -> Tensor:
        """Map ``z [B, z_dim]`` (and ``c [B, c_dim]``) to ``ws [B, num_ws, w_dim]``.

        ``update_w_avg`` (training) moves ``w_avg`` towards the batch mean:
        ``w_avg <- beta * w_avg + (1 - beta) * mean_B(w)``. ``truncation_psi`` interpolates
        ``w_avg + psi * (w - w_avg)`` for the first ``truncation_cutoff`` latents (all when ``None``).
        """
        parts = []
        if self.z_dim > 0:
            if z is None or z.ndim != 2 or z.shape[1] != self.z_dim:
                raise ValueError(f"z must be [B, {self.z_dim}], got {None if z is None else tuple(z.shape)}")
            parts.append(normalize_2nd_moment(z.to(torch.float32)))
        if self.c_dim > 0:
            if c is None or c.ndim != 2 or c.shape[1] != self.c_dim:
                raise ValueError(f"c must be [B, {self.c_dim}] (the condition, e.g. camera labels), "
                                 f"got {None if c is None else tuple(c.shape)}")
            parts.append(normalize_2nd_moment(self.embed(c.to(torch.float32))))
        x = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]

        for idx in range(self.num_layers):
            x = getattr(self, f"fc{idx}")(x)

        if update_w_avg and self.tracks_w_avg:
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))

        if self.num_ws is not None:
            x = x.unsqueeze(1).repeat(1, self.num_ws, 1)

        if truncation_psi != 1:
            if not self.tracks_w_avg:
                raise ValueError("truncation needs w_avg: build the MappingNetwork with num_ws and w_avg_beta set")
            if self.num_ws is None or truncation_cutoff is None:
                x = self.w_avg.lerp(x, truncation_psi)
            else:
                x = torch.cat([self.w_avg.lerp(x[:, :truncation_cutoff], truncation_psi), x[:, truncation_cutoff:]],
                              dim=1)
        return x

    def extra_repr(self) -> str:
        return f"z_dim={self.z_dim}, c_dim={self.c_dim}, w_dim={self.w_dim}, num_ws={self.num_ws}"
