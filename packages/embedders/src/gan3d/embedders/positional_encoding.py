"""NeRF's frequency (positional) encoding of coordinates.

``gamma(p) = (p, sin(2^0 s p), cos(2^0 s p), ..., sin(2^{L-1} s p), cos(2^{L-1} s p))``
(NeRF, Mildenhall et al. 2020, eq. 4; the layout -- input first, then ``sin, cos`` per octave, each
block covering all input channels -- is the official NeRF ``Embedder``'s, which VolumeGAN's
``Embedder`` (genforce/volumegan models/volumegan_generator.py) also uses). NeRF and VolumeGAN use
the scale ``s = 1``; StyleNeRF (facebookresearch/StyleNeRF dnnlib/geometry.py
``positional_encoding``) multiplies by ``pi`` and leaves the input out.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["PositionalEncoding"]


class PositionalEncoding(nn.Module):
    """Frequency encoding with ``num_frequencies`` octaves.

    Args:
        in_channels: channels of the encoded input (3 for points).
        num_frequencies: octaves ``L``; 0 gives the identity (the input alone).
        include_input: put the raw input first in the output.
        multiply_by_pi: use ``2^k pi p`` (StyleNeRF) instead of ``2^k p`` (NeRF, VolumeGAN).

    Shapes: ``x [..., in_channels]`` -> ``[..., out_channels]`` with
    ``out_channels = in_channels * (include_input + 2 * num_frequencies)``.

    Example:
        >>> enc = PositionalEncoding(in_channels=3, num_frequencies=10)
        >>> enc(torch.zeros(2, 5, 3)).shape
        torch.Size([2, 5, 63])
    """

    def __init__(self, *, in_channels: int = 3, num_frequencies: int = 0, include_input: bool = True,
                 multiply_by_pi: bool = False) -> None:
        super().__init__()
        if in_channels <= 0:
            raise ValueError(f"in_channels must be positive, got {in_channels}")
        if num_frequencies < 0:
            raise ValueError(f"num_frequencies must be >= 0, got {num_frequencies}")
        if num_frequencies == 0 and not include_input:
            raise ValueError("num_frequencies=0 with include_input=False encodes nothing; "
                             "set num_frequencies > 0 or include_input=True")
        self.in_channels = in_channels
        self.num_frequencies = num_frequencies
        self.include_input = include_input
        self.multiply_by_pi = multiply_by_pi
        scale = math.pi if multiply_by_pi else 1.0
        # Octaves 2^0 .. 2^{L-1} (NeRF's log-sampled bands), a buffer so they follow .to(device).
        bands = scale * 2.0 ** torch.arange(num_frequencies, dtype=torch.float32)
        self.register_buffer("bands", bands, persistent=False)
        self.out_channels = in_channels * (int(include_input) + 2 * num_frequencies)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] != self.in_channels:
            raise ValueError(f"PositionalEncoding expects [..., {self.in_channels}] input, got {tuple(x.shape)}")
        parts = [x] if self.include_input else []
        if self.num_frequencies:
            # [..., L, C]: every octave scales all channels; sin and cos interleave per octave.
            scaled = x.unsqueeze(-2) * self.bands.to(x.dtype).unsqueeze(-1)
            waves = torch.stack([torch.sin(scaled), torch.cos(scaled)], dim=-2)  # [..., L, 2, C]
            parts.append(waves.flatten(-3))
        return torch.cat(parts, dim=-1) if len(parts) > 1 else parts[0]

    def extra_repr(self) -> str:
        return (f"in_channels={self.in_channels}, num_frequencies={self.num_frequencies}, "
                f"include_input={self.include_input}, multiply_by_pi={self.multiply_by_pi}")
