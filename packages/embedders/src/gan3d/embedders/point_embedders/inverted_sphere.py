"""NeRF++'s inverted-sphere coordinates of background points, frequency-encoded, with a per-batch random
latent appended: the input of StyleNeRF's background NeRF.

NeRF++ (Zhang et al. 2020, section 4) describes a point ``x`` outside the unit sphere by the 4-vector
``(x / |x|, 1 / |x|)``: a direction and an inverse radius in ``(0, 1]``, bounded even at infinity.
StyleNeRF (facebookresearch/StyleNeRF ``training/stylenerf.py`` ``NeRFBlock`` with ``inverse_sphere``,
``dnnlib/camera.py`` ``depth2pts_outside``, ``conf/model/stylenerf_ffhq.yaml`` ``background_kwargs``)
encodes those 4 values with its positional encoding (``positional_encoding: "normal"``, 10 octaves,
``sin/cos(2^k pi q)``, no raw input: 80 channels) and, because its background block has ``z_dim = z_dim_bg
= 32``, concatenates a latent ``z_bg ~ N(0, I_32)`` after the encoding (``NeRFBlock.forward_nerf``:
``torch.cat([p, z_shape], -1)``). That latent is drawn afresh for every generated batch
(``NeRFSynthesisNetwork.get_latent_codes``; nothing passes its own), independent of the image latent: the
background is a stochastic input, like StyleGAN's noise. Here :meth:`InvertedSphereEmbedder.scene` draws it
once per batch, so all chunks and passes of a batch share it.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gan3d.core import random_draws
from gan3d.core.interfaces import PointEmbedder

from ..positional_encoding import PositionalEncoding

__all__ = ["InvertedSphereEmbedder", "inverted_sphere_coordinates"]


def inverted_sphere_coordinates(points: Tensor, sphere_radius: float = 1.0) -> Tensor:
    """``points [..., 3]`` outside the sphere of ``sphere_radius`` -> NeRF++ coordinates ``[..., 4]``:
    ``(x / |x|, sphere_radius / |x|)``.

    Example:
        >>> inverted_sphere_coordinates(torch.tensor([0.0, 4.0, 0.0]))
        tensor([0.0000, 1.0000, 0.0000, 0.2500])
    """
    radius = points.norm(dim=-1, keepdim=True)
    return torch.cat([points / radius, sphere_radius / radius], dim=-1)


class InvertedSphereEmbedder(PointEmbedder):
    """``points [B, R, S, 3]`` -> ``[PE(x / |x|, 1 / |x|), z_bg]`` ``[B, R, S, out_channels]``.

    Args:
        num_frequencies: octaves of the encoding (StyleNeRF ``n_freq_posenc`` 10).
        include_input: put the raw 4D coordinates first (StyleNeRF: no, ``use_pos`` False).
        multiply_by_pi: ``sin(2^k pi q)`` (StyleNeRF: yes).
        latent_dim: size of the per-batch latent ``z_bg`` (StyleNeRF ``z_dim_bg`` 32); 0 for none.
        sphere_radius: the sphere the background lies beyond (StyleNeRF 1); the inverse radius is in units
            of it, as the ``inverted_sphere`` point sampler places the samples.

    ``out_channels = 4 * (include_input + 2 * num_frequencies) + latent_dim`` (FFHQ: 80 + 32 = 112); no
    parameters; ``num_ws = 0``. ``scene(ws)`` draws ``z_bg [B, latent_dim]`` from ``N(0, 1)`` with the
    batch size of ``ws`` (with ``generator`` when given).

    Example:
        >>> emb = InvertedSphereEmbedder(num_frequencies=2, latent_dim=3)
        >>> z = emb.scene(torch.zeros(2, 0, 8))
        >>> emb(torch.full((2, 5, 4, 3), 3.0), z).shape
        torch.Size([2, 5, 4, 19])
    """

    num_ws = 0

    def __init__(self, *, num_frequencies: int = 10, include_input: bool = False, multiply_by_pi: bool = True,
                 latent_dim: int = 32, sphere_radius: float = 1.0) -> None:
        super().__init__()
        if not sphere_radius > 0:
            raise ValueError(f"inverted_sphere embedder: sphere_radius must be positive, got {sphere_radius}")
        if latent_dim < 0:
            raise ValueError(f"inverted_sphere embedder: latent_dim must be >= 0, got {latent_dim}")
        self.encoding = PositionalEncoding(in_channels=4, num_frequencies=num_frequencies,
                                           include_input=include_input, multiply_by_pi=multiply_by_pi)
        self.latent_dim = latent_dim
        self.sphere_radius = float(sphere_radius)
        self.out_channels = self.encoding.out_channels + latent_dim

    def scene(self, ws: Tensor, *, generator: torch.Generator | None = None) -> Tensor | None:
        """``z_bg [B, latent_dim]`` for the batch of ``ws [B, *, *]`` (``None`` when ``latent_dim`` is 0)."""
        if self.latent_dim == 0:
            return None
        return random_draws.normal((ws.shape[0], self.latent_dim), device=ws.device, generator=generator,
                                   dtype=ws.dtype if ws.is_floating_point() else torch.float32)

    def forward(self, points: Tensor, scene: Tensor | None) -> Tensor:
        if points.ndim != 4 or points.shape[-1] != 3:
            raise ValueError(f"inverted_sphere embedder: points must be [B, R, S, 3], got {tuple(points.shape)}")
        features = self.encoding(inverted_sphere_coordinates(points, self.sphere_radius))
        if self.latent_dim == 0:
            return features
        if scene is None or scene.shape != (points.shape[0], self.latent_dim):
            raise ValueError(f"inverted_sphere embedder: the scene must be z_bg [B, {self.latent_dim}] from "
                             f"scene(ws), got {None if scene is None else tuple(scene.shape)}")
        latent = scene.to(features.dtype)[:, None, None, :].expand(*points.shape[:3], self.latent_dim)
        return torch.cat([features, latent], dim=-1)

    def extra_repr(self) -> str:
        return f"out_channels={self.out_channels}, latent_dim={self.latent_dim}"
