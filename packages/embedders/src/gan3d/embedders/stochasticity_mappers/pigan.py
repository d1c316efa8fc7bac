"""pi-GAN's mapping network: noise to the frequencies and phase shifts of every FiLM-SIREN layer.

Facts from marcoamonteiro/pi-GAN ``siren/siren.py`` (``CustomMappingNetwork``, ``kaiming_leaky_init``)
and ``generators/generators.py`` (``generate_avg_frequencies``, ``staged_forward``):

* an MLP ``z_dim -> 256 -> 256 -> 256 -> 2 * num_film_layers * film_dim`` with LeakyReLU(0.2) after
  the three hidden layers;
* every linear weight gets ``kaiming_normal_(a=0.2, mode='fan_in', nonlinearity='leaky_relu')``,
  biases keep PyTorch's default, and the last weight is then multiplied by 0.25;
* the output's first half holds the frequencies of all FiLM layers (layer by layer, ``film_dim``
  each), the second half their phase shifts;
* truncation interpolates frequencies and phase shifts towards their means over 10000 draws of ``z``.

Layout of ``ws`` (ours). The frequencies and phase shifts are packed per FiLM layer:
``ws [B, num_ws, w_dim]`` with ``num_ws = num_film_layers`` (pi-GAN: 8 SIREN layers + the colour
layer = 9) and ``w_dim = 2 * film_dim`` (pi-GAN: 512); ``ws[:, i, :film_dim]`` are layer ``i``'s raw
frequencies (before SIREN's ``* 15 + 30``) and ``ws[:, i, film_dim:]`` its phase shifts. The linear
layers are pi-GAN's unchanged, so its mapping weights load as they are.

``w_avg [num_ws, w_dim]`` is the mean used for truncation. pi-GAN recomputes it from 10000 draws before
each inference; we estimate it the same way at construction and on :meth:`estimate_w_avg`, and in
training ``update_w_avg=True`` tracks it as a running average (StyleGAN2's ``w_avg_beta``), so it
follows the network as it learns.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gan3d.core import random_draws
from gan3d.core.interfaces import StochasticityMapper

__all__ = ["PiGANMappingNetwork"]


class PiGANMappingNetwork(StochasticityMapper):
    """``z [B, z_dim]`` -> ``ws [B, num_ws, 2 * film_dim]`` (frequencies | phase shifts per FiLM layer).

    Args:
        z_dim: noise dimension (pi-GAN ``latent_dim`` 256).
        hidden_dim: width of the three hidden layers (pi-GAN ``map_hidden_dim`` 256).
        num_ws: FiLM layers to drive (pi-GAN TALLSIREN: 8 + 1 colour layer = 9).
        film_dim: width of each FiLM layer (pi-GAN SIREN ``hidden_dim`` 256).
        w_avg_beta: decay of the running mean ``w_avg`` when ``update_w_avg=True``
            (StyleGAN2's 0.995; pi-GAN itself recomputes the mean, see :meth:`estimate_w_avg`).
        w_avg_samples: draws of ``z`` for the mean estimated at construction (pi-GAN's 10000).

    Example:
        >>> mapper = PiGANMappingNetwork()
        >>> mapper(torch.randn(2, 256)).shape
        torch.Size([2, 9, 512])
    """

    c_dim = 0

    def __init__(self, *, z_dim: int = 256, hidden_dim: int = 256, num_ws: int = 9, film_dim: int = 256,
                 w_avg_beta: float = 0.995, w_avg_samples: int = 10000) -> None:
        super().__init__()
        for name, value in (("z_dim", z_dim), ("hidden_dim", hidden_dim), ("num_ws", num_ws),
                            ("film_dim", film_dim)):
            if value <= 0:
                raise ValueError(f"pigan mapper: {name} must be positive, got {value}")
        if not 0.0 <= w_avg_beta < 1.0:
            raise ValueError(f"pigan mapper: w_avg_beta must lie in [0, 1), got {w_avg_beta}")
        if w_avg_samples < 0:
            raise ValueError(f"pigan mapper: w_avg_samples must be >= 0, got {w_avg_samples}")
        self.z_dim = z_dim
        self.num_ws = num_ws
        self.film_dim = film_dim
        self.w_dim = 2 * film_dim
        self.w_avg_beta = w_avg_beta
        self.network = nn.Sequential(
            nn.Linear(z_dim, hidden_dim), nn.LeakyReLU(0.2),
            nn.Linear(hidden_dim, hidden_dim), nn.LeakyReLU(0.2),
            nn.Linear(hidden_dim, hidden_dim), nn.LeakyReLU(0.2),
            nn.Linear(hidden_dim, 2 * num_ws * film_dim),
        )
        with torch.no_grad():
            for layer in self.network:
                if isinstance(layer, nn.Linear):
                    nn.init.kaiming_normal_(layer.weight, a=0.2, mode="fan_in", nonlinearity="leaky_relu")
            self.network[-1].weight.mul_(0.25)  # pi-GAN: small initial FiLM offsets
        self.register_buffer("w_avg", torch.zeros(num_ws, self.w_dim))
        if w_avg_samples:
            # A fixed seed: building a module must not depend on (or advance) the global draws.
            self.estimate_w_avg(w_avg_samples, generator=torch.Generator().manual_seed(0))

    def _map(self, z: Tensor) -> Tensor:
        out = self.network(z)  # [B, 2 * num_ws * film_dim]: all frequencies, then all phase shifts
        frequencies, phase_shifts = out.view(z.shape[0], 2, self.num_ws, self.film_dim).unbind(1)
        return torch.cat([frequencies, phase_shifts], dim=-1)

    @torch.no_grad()
    def estimate_w_avg(self, num_samples: int = 10000, *, generator: torch.Generator | None = None) -> Tensor:
        """Set ``w_avg`` to the mean of ``ws`` over ``num_samples`` draws of ``z`` (pi-GAN's
        ``generate_avg_frequencies``) and return it ``[num_ws, w_dim]``."""
        device = self.w_avg.device
        z = random_draws.normal((num_samples, self.z_dim), generator=generator).to(device)
        self.w_avg.copy_(self._map(z).mean(0))
        return self.w_avg

    def forward(
        self,
        z: Tensor,
        c: Tensor | None = None,
        *,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        update_w_avg: bool = False,
    ) -> Tensor:
        """``z [B, z_dim]`` -> ``ws [B, num_ws, w_dim]``; ``c`` must be ``None`` (unconditional).

        ``truncation_psi`` pulls the first ``truncation_cutoff`` layers (all when ``None``) towards
        ``w_avg``: ``w_avg + psi * (ws - w_avg)`` (pi-GAN ``staged_forward``).
        """
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"pigan mapper: z must be [B, {self.z_dim}], got {tuple(z.shape)}")
        if c is not None and c.numel():
            raise ValueError("pigan mapper is unconditional (c_dim=0); pass c=None")
        ws = self._map(z)
        if update_w_avg:
            with torch.no_grad():
                self.w_avg.copy_(ws.detach().mean(0).lerp(self.w_avg, self.w_avg_beta))
        if truncation_psi != 1.0:
            cutoff = self.num_ws if truncation_cutoff is None else truncation_cutoff
            head = self.w_avg[:cutoff].lerp(ws[:, :cutoff], truncation_psi)
            ws = torch.cat([head, ws[:, cutoff:]], dim=1)
        return ws

    def extra_repr(self) -> str:
        return f"z_dim={self.z_dim}, num_ws={self.num_ws}, w_dim={self.w_dim}"
