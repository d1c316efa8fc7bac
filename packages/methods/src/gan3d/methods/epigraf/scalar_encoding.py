"""EpiGRAF's encoding of scalars (patch scale and offsets, camera angles) for its discriminator.

Source: universome/epigraf src/training/layers.py ``ScalarEncoder1d``, ``FourierEncoder1d``,
``construct_log_spaced_freqs``. A scalar ``x`` in ``[0, 1]`` is multiplied by ``x_multiplier`` and encoded
by ``sin`` and ``cos`` at ``n`` log-spaced frequencies ``2^k pi / T`` (``T = 2^ceil(log2 x_multiplier)``,
``n = log2 T``), optionally preceded by the raw value and followed by a learned embedding of
``round(x * x_multiplier)`` (``nn.Embedding(ceil(x_multiplier) + 1, const_emb_dim)``, one table for all
coordinates). Per coordinate ``[raw?, sin x n, cos x n, embedding]``, coordinates one after the other.

The discriminator's patch encoder: ``x_multiplier`` 1000 (10 frequencies), ``const_emb_dim`` 256, three
coordinates: ``3 * (20 + 256) = 828`` values. Its camera encoder: ``x_multiplier`` 64 (6 frequencies), no
embedding, two coordinates: 24 values (or the 2 raw values with ``camera_cond_raw``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["log_spaced_frequencies", "FourierEncoder1d", "ScalarEncoder1d"]


def log_spaced_frequencies(max_value: float) -> Tensor:
    """``2^k pi / T`` for ``k < log2 T``, ``T = 2^ceil(log2 max_value)`` (``construct_log_spaced_freqs``).

    Example:
        >>> log_spaced_frequencies(64.0) * 64 / math.pi
        tensor([ 1.,  2.,  4.,  8., 16., 32.])
    """
    if not max_value > 1:
        raise ValueError(f"the largest encoded value must be > 1, got {max_value}")
    resolution = 2 ** math.ceil(math.log2(max_value))
    count = math.ceil(math.log2(resolution))
    return (2.0 ** torch.arange(count, dtype=torch.float32)) * math.pi / resolution


class FourierEncoder1d(nn.Module):
    """``x [B, coord_dim]`` -> ``[B, coord_dim, 2 n]``: ``sin`` of every frequency, then ``cos``.

    Buffer ``fourier_coefs [n]`` (persistent, as in the official module).
    """

    def __init__(self, coord_dim: int, max_x_value: float) -> None:
        super().__init__()
        self.coord_dim = coord_dim
        self.register_buffer("fourier_coefs", log_spaced_frequencies(max_x_value))
        self.out_dim = 2 * self.fourier_coefs.shape[0]

    def forward(self, x: Tensor) -> Tensor:
        raw = self.fourier_coefs.view(1, 1, -1) * x.float().unsqueeze(2)
        return torch.cat([raw.sin(), raw.cos()], dim=2)


class ScalarEncoder1d(nn.Module):
    """``x [B, coord_dim]`` in ``[0, 1]`` -> ``[B, coord_dim * (raw + 2 n + const_emb_dim)]``.

    Args:
        coord_dim: scalars per sample.
        x_multiplier: the scale of the encoding (0: no Fourier features and no embedding).
        const_emb_dim: size of the learned embedding of ``round(x * x_multiplier)`` (0: none).
        use_raw: put the raw value first.

    Example:
        >>> ScalarEncoder1d(3, 1000.0, 256).out_dim
        828
    """

    def __init__(self, coord_dim: int, x_multiplier: float, const_emb_dim: int, use_raw: bool = False) -> None:
        super().__init__()
        self.coord_dim = coord_dim
        self.x_multiplier = float(x_multiplier)
        self.const_emb_dim = const_emb_dim
        self.use_raw = use_raw
        self.const_embed = (nn.Embedding(math.ceil(x_multiplier) + 1, const_emb_dim)
                            if const_emb_dim > 0 and x_multiplier > 0 else None)
        self.fourier_encoder = FourierEncoder1d(coord_dim, x_multiplier) if x_multiplier > 0 else None
        per_coordinate = (int(use_raw) + (self.fourier_encoder.out_dim if self.fourier_encoder is not None else 0)
                          + (const_emb_dim if self.const_embed is not None else 0))
        if per_coordinate == 0:
            raise ValueError("ScalarEncoder1d encodes nothing: give x_multiplier > 0 or use_raw=True")
        self.out_dim = coord_dim * per_coordinate

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 2 or x.shape[1] != self.coord_dim:
            raise ValueError(f"ScalarEncoder1d expects [B, {self.coord_dim}] scalars, got {tuple(x.shape)}")
        parts = [x.unsqueeze(2)] if self.use_raw else []
        scaled = x.float() * self.x_multiplier
        if self.fourier_encoder is not None:
            parts.append(self.fourier_encoder(scaled))
        if self.const_embed is not None:
            index = scaled.round().long()
            if bool((index < 0).any()) or bool((index >= self.const_embed.num_embeddings).any()):
                raise ValueError(f"ScalarEncoder1d: values must lie in [0, 1] for the embedding, got "
                                 f"[{float(x.min()):.4g}, {float(x.max()):.4g}]")
            parts.append(self.const_embed(index))
        return torch.cat(parts, dim=2).reshape(x.shape[0], self.out_dim)
