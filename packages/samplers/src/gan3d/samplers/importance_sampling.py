"""Hierarchical (importance) sampling along rays: inverse-CDF draws from a piecewise-constant PDF.

NeRF section 5.2: the coarse compositing weights, normalized, define a piecewise-constant PDF along
each ray; fine samples are drawn from it by inverting its CDF. pi-GAN and EG3D use the same
``sample_pdf`` (``generators/volumetric_rendering.py``, ``volumetric_rendering/renderer.py``): the
bins run between the midpoints of consecutive coarse samples and take the weights of the interior
samples; EG3D first smooths the weights (:func:`smooth_weights`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["smooth_weights", "sample_piecewise_constant", "EG3D_WEIGHT_FLOOR", "PDF_EPS"]

#: Added to the smoothed weights so that empty stretches of a ray still get some samples (EG3D
#: ``renderer.py`` ``sample_importance``).
EG3D_WEIGHT_FLOOR = 0.01
#: Added to every bin weight before normalizing, against division by zero (``sample_pdf`` of NeRF,
#: pi-GAN and EG3D).
PDF_EPS = 1e-5


def smooth_weights(weights: Tensor) -> Tensor:
    """EG3D's weight smoothing: a 2-wide max filter, a 2-wide mean filter, then ``+ 0.01``.

    ``weights [..., S]`` -> ``[..., S]``. Sample ``i`` gets
    ``(max(w[i-1], w[i]) + max(w[i], w[i+1])) / 2 + 0.01`` (missing neighbours are left out of the
    max), which widens each peak by one sample on either side (EG3D ``renderer.py``
    ``sample_importance``: ``max_pool1d(2, 1, padding=1)`` then ``avg_pool1d(2, 1)``).
    """
    shape = weights.shape
    flat = weights.reshape(-1, 1, shape[-1]).float()
    widened = F.avg_pool1d(F.max_pool1d(flat, 2, 1, padding=1), 2, 1)
    return widened.reshape(shape).to(weights.dtype) + EG3D_WEIGHT_FLOOR


def sample_piecewise_constant(bin_edges: Tensor, bin_weights: Tensor, u: Tensor, *, right: bool = True) -> Tensor:
    """Invert the CDF of the piecewise-constant PDF ``bin_weights`` over ``bin_edges`` at ``u``.

    Args:
        bin_edges: ``[..., K + 1]`` ascending edges of ``K`` bins.
        bin_weights: ``[..., K]`` non-negative weights (need not sum to one; ``PDF_EPS`` is added).
        u: ``[..., N]`` quantiles in ``[0, 1]``; ascending ``u`` gives ascending samples.
        right: ``u`` equal to ``cdf[j]`` goes to bin ``j`` (``torch.searchsorted(..., right=True)``,
            NeRF and EG3D); ``False`` sends it to bin ``j - 1`` (pi-GAN's default ``searchsorted``).

    Returns:
        ``[..., N]`` samples: inside the bin whose CDF interval holds ``u``, placed linearly.

    Example:
        >>> sample_piecewise_constant(torch.tensor([0.0, 1.0, 2.0]), torch.tensor([0.0, 1.0]),
        ...                           torch.tensor([0.5]))  # nearly all mass in [1, 2]
        tensor([1.5000])
    """
    num_bins = bin_weights.shape[-1]
    if bin_edges.shape[-1] != num_bins + 1:
        raise ValueError(f"{num_bins} bins need {num_bins + 1} edges, got {bin_edges.shape[-1]}")
    weights = bin_weights + PDF_EPS
    pdf = weights / weights.sum(dim=-1, keepdim=True)
    cdf = torch.cat([torch.zeros_like(pdf[..., :1]), torch.cumsum(pdf, dim=-1)], dim=-1)  # [..., K + 1]
    # Bin j holds cdf[j] <= u < cdf[j + 1]; right=True puts u = cdf[j] into bin j (EG3D's choice).
    upper = torch.searchsorted(cdf.contiguous(), u.contiguous(), right=right)
    below = (upper - 1).clamp(0, num_bins)
    above = upper.clamp(0, num_bins)
    cdf_below, cdf_above = cdf.gather(-1, below), cdf.gather(-1, above)
    edge_below, edge_above = bin_edges.gather(-1, below), bin_edges.gather(-1, above)
    span = cdf_above - cdf_below
    # A bin of (near) zero probability is never chosen except at u == its CDF value; any
    # denominator then gives its lower edge.
    span = torch.where(span < PDF_EPS, torch.ones_like(span), span)
    return edge_below + (u - cdf_below) / span * (edge_above - edge_below)
