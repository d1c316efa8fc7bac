"""No mapping network: the latent itself is the code the generator reads (GRAF).

GRAF feeds its Gaussian ``z`` (256 values, ``z_dist.type: gauss``) straight to the conditional NeRF
(autonomousvision/graf graf/models/generator.py ``Generator.__call__``: ``render_kwargs['features'] = z``);
the decoder splits it into shape and appearance codes. As a stochasticity mapper that is
``ws = z`` repeated ``num_ws`` times: ``w_dim = z_dim``, no parameters.

Truncation. GRAF has none (its generator samples ``z ~ N(0, I)`` only). The truncation trick of the other
methods pulls the latent towards the mean of its distribution (StyleGAN's ``w_avg + psi (w - w_avg)``); the
mean of ``z ~ N(0, I)`` is known exactly, 0, so here ``ws = psi z`` (the classic truncation of the latent
itself), and the evaluators' and ``infer``'s ``truncation_psi`` work as for every other method. ``psi = 1``
(the default) is GRAF's generator.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gan3d.core.interfaces import StochasticityMapper

__all__ = ["IdentityMapper"]


class IdentityMapper(StochasticityMapper):
    """``z [B, z_dim]`` -> ``ws [B, num_ws, z_dim]``, every row ``z`` (``psi z`` in the first
    ``truncation_cutoff`` rows, or all, under truncation).

    Args:
        z_dim: latent size (GRAF 256).
        num_ws: rows to return (GRAF's decoder reads one; Generator v2 wires the total).

    Example:
        >>> IdentityMapper(z_dim=4)(torch.ones(2, 4)).shape
        torch.Size([2, 1, 4])
    """

    c_dim = 0

    def __init__(self, *, z_dim: int = 256, num_ws: int = 1) -> None:
        super().__init__()
        if z_dim <= 0 or num_ws <= 0:
            raise ValueError(f"identity mapper: z_dim and num_ws must be positive, got {z_dim} and {num_ws}")
        self.z_dim = z_dim
        self.w_dim = z_dim
        self.num_ws = num_ws

    def forward(self, z: Tensor, c: Tensor | None = None, *, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, update_w_avg: bool = False) -> Tensor:
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"identity mapper: z must be [B, {self.z_dim}], got {tuple(z.shape)}")
        if c is not None and c.numel():
            raise ValueError("identity mapper is unconditional: pass c=None")
        ws = z.unsqueeze(1).expand(z.shape[0], self.num_ws, self.z_dim)
        if truncation_psi == 1:
            return ws
        # Towards the latent's mean, 0 for z ~ N(0, I).
        rows = self.num_ws if truncation_cutoff is None else min(max(truncation_cutoff, 0), self.num_ws)
        scale = torch.ones(self.num_ws, 1, dtype=z.dtype, device=z.device)
        scale[:rows] = truncation_psi
        return ws * scale

    def extra_repr(self) -> str:
        return f"z_dim={self.z_dim}, num_ws={self.num_ws}"
