"""Regularizers shared by several methods.

``path_length_penalty`` is StyleGAN2's path length regularizer (Karras et al. 2020, "Analyzing and
Improving the Image Quality of StyleGAN", eq. 4; NVlabs/stylegan2-ada-pytorch training/loss.py ``Gpl``,
StyleSDF losses.py ``g_path_regularize``): for random image-space directions ``y ~ N(0, I) / sqrt(H W)``
the Jacobian-vector product ``J_w^T y`` should have a constant length ``a``, the running mean of the
lengths. :class:`PathLengthRegularizer` applies it to a generator's ``ws`` (or the rows of some of its
slots: StyleNeRF and VolumeGAN regularize the latents of their 2D upsamplers).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import Tensor, nn

from . import random_draws
from .types import Cameras

__all__ = ["path_length_penalty", "PathLengthRegularizer"]


def path_length_penalty(image: Tensor, latents: Tensor, noise: Tensor, mean_path_length: Tensor,
                        decay: float = 0.01) -> tuple[Tensor, Tensor, Tensor]:
    """StyleGAN2's path length penalty.

    Args:
        image: ``[B, 3, H, W]``, a differentiable function of ``latents``.
        latents: the latents ``[B, L, D]`` the image depends on (any tensor of the graph).
        noise: ``[B, 3, H, W]`` random image-space directions, ``N(0, 1) / sqrt(H W)``.
        mean_path_length: the running mean ``a`` of the lengths (a scalar tensor).
        decay: the running mean's rate (StyleGAN2 ``pl_decay`` 0.01).

    Returns:
        ``(penalty, new_mean, lengths)``: ``lengths [B] = sqrt(mean_L sum_D (J^T y)^2)``, ``new_mean =
        a + decay * (mean(lengths) - a)`` and ``penalty = mean((lengths - new_mean) ** 2)``, with
        ``new_mean`` not detached inside the penalty, as the official code.

    Example:
        >>> w = torch.ones(2, 1, 4, requires_grad=True)
        >>> image = (w.sum(-1) * torch.ones(2, 3 * 4)).view(2, 3, 2, 2)   # d image / d w = 1 everywhere
        >>> penalty, new_mean, lengths = path_length_penalty(image, w, torch.ones(2, 3, 2, 2), torch.zeros(()))
        >>> lengths.tolist()                                               # sqrt(sum_D (12)^2) = 24
        [24.0, 24.0]
    """
    (grad,) = torch.autograd.grad((image * noise).sum(), latents, create_graph=True)
    grad = grad.reshape(image.shape[0], -1, grad.shape[-1])
    lengths = grad.square().sum(2).mean(1).sqrt()
    new_mean = mean_path_length + decay * (lengths.mean() - mean_path_length)
    return (lengths - new_mean).square().mean(), new_mean, lengths


class PathLengthRegularizer(nn.Module):
    """StyleGAN2's path length regularizer on a generator's ``ws``, with its running mean as a buffer
    (so it travels with the objective's checkpoints).

    Args:
        decay: rate of the running mean of the lengths (StyleGAN2 ``pl_decay`` 0.01).
        slots: the slots whose latent rows the gradient is taken with respect to (``None``: every row of
            ``ws``, StyleGAN2's ``gen_ws``).
    """

    def __init__(self, decay: float = 0.01, slots: Iterable[str] | None = None) -> None:
        super().__init__()
        if not 0 < decay <= 1:
            raise ValueError(f"path length decay must be in (0, 1], got {decay}")
        self.decay = decay
        self.slots = None if slots is None else list(slots)
        self.register_buffer("mean_path_length", torch.zeros(()))

    def rows(self, G: nn.Module) -> list[int]:
        """The ``ws`` rows the gradient is measured on."""
        if self.slots is None:
            return list(range(G.num_ws))
        unknown = [s for s in self.slots if s not in G.ws_layout]
        if unknown:
            raise ValueError(f"path length regularizer: the generator has no latent consumer slot(s) {unknown}; "
                             f"slots with latent rows: {', '.join(G.ws_layout)}")
        return sorted({r for s in self.slots for r in range(*G.ws_layout[s].indices(G.num_ws))})

    def forward(self, G: nn.Module, ws: Tensor, cameras: Cameras, *, resolution: int | None = None,
                alpha: float | None = None, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """``(penalty, lengths [B])`` for images of ``ws [B, num_ws, w_dim]`` from ``cameras``; updates the
        running mean. The penalty is unweighted (multiply by the weight and the lazy interval)."""
        rows = self.rows(G)
        ws = ws.detach()
        latents = ws[:, rows].clone().requires_grad_(True)
        full = ws.clone()
        full[:, rows] = latents
        image = G.synthesis(full, cameras, resolution=resolution, alpha=alpha, generator=generator).image
        return self.penalize(image, latents, generator=generator)

    def penalize(self, image: Tensor, latents: Tensor, *, generator: torch.Generator | None = None
                 ) -> tuple[Tensor, Tensor]:
        """``(penalty, lengths [B])`` for an ``image [B, 3, H, W]`` already made from ``latents`` (any tensor of
        its graph): draws the noise ``N(0, I) / sqrt(H W)`` and updates the running mean. The caller keeps
        the graph to the latents' own parameters: StyleGAN2-ADA's ``Gpl`` takes the gradient with respect
        to the mapped ``ws``, so the penalty also trains the mapping network (:meth:`forward` detaches
        ``ws`` and trains only the synthesis)."""
        noise = random_draws.normal(tuple(image.shape), device=image.device, generator=generator,
                                    dtype=image.dtype) / math.sqrt(image.shape[2] * image.shape[3])
        penalty, new_mean, lengths = path_length_penalty(image, latents, noise, self.mean_path_length, self.decay)
        self.mean_path_length.copy_(new_mean.detach())
        return penalty + 0 * image[0, 0, 0, 0], lengths
