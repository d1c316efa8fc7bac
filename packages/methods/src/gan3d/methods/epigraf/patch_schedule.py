"""EpiGRAF's patch sampling: scales from a Beta distribution whose second parameter is annealed over kimg.

Sources: universome/epigraf configs/training/base.yaml + patch_beta.yaml (``alpha`` 1, ``beta_val_start``
0.001, ``beta_val_end`` 0.8, ``anneal_kimg`` 10000, ``min_scale_trg = patch resolution / data set
resolution``, ``max_scale`` 1), src/training/loss.py ``progressive_update`` (``beta =
linear_schedule(cur_kimg, 0.001, 0.8, 10000)``), src/training/training_utils.py ``linear_schedule``,
``sample_patch_params_beta`` and ``create_patch_params_from_x_scales``:

    s = Beta(1, beta(kimg)) * (max_scale - min_scale) + min_scale      one per group of group_size
    o = U(0, 1) * (1 - s)                                               per axis, [0, 1] image units
    patch parameters repeated for the group_size consecutive samples of the group (repeat_interleave)

``Beta(1, b)`` has the CDF ``1 - (1 - x)^b``, so it is drawn exactly by inverting it:
``x = 1 - (1 - u)^(1 / b)``. At ``b = 0.001`` nearly every patch is the whole image (a 64-px rendering of
it); at ``b = 0.8`` the mean scale is ``1 / 1.8`` of the way from ``min_scale`` to 1.

EpiGRAF measures the offsets from the image's left and BOTTOM edge (its ray grid has y pointing up:
rendering.py ``get_initial_rays_trig``; the real patch negates y, training_utils.py ``compute_patch_coords``);
:mod:`.patches` turns these parameters into gan3d's :class:`~gan3d.core.types.PatchParams`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gan3d.core import random_draws

__all__ = ["linear_schedule", "beta_parameter", "beta_one_quantile", "sample_epigraf_patches",
           "BETA_START", "BETA_END", "BETA_ANNEAL_KIMG"]

#: configs/training/patch_beta.yaml and base.yaml.
BETA_START, BETA_END, BETA_ANNEAL_KIMG = 0.001, 0.8, 10000.0


def linear_schedule(step: float, start: float, end: float, period: float) -> float:
    """EpiGRAF's ``linear_schedule``: ``start`` before 0, ``end`` from ``period`` on, linear in between.

    Example:
        >>> linear_schedule(2500.0, 1.0, 0.0, 5000.0)
        0.5
    """
    if step >= period:
        return float(end)
    if step <= 0:
        return float(start)
    return start + (end - start) * step / period


def beta_parameter(kimg: float, start: float = BETA_START, end: float = BETA_END,
                   anneal_kimg: float = BETA_ANNEAL_KIMG) -> float:
    """The second Beta parameter at ``kimg`` (loss.py ``progressive_update``).

    Example:
        >>> beta_parameter(0.0), beta_parameter(5000.0), beta_parameter(20000.0)
        (0.001, 0.4005, 0.8)
    """
    return linear_schedule(kimg, start, end, anneal_kimg)


def beta_one_quantile(u: Tensor, b: float) -> Tensor:
    """The ``u``-quantile of ``Beta(1, b)``: ``1 - (1 - u)^(1 / b)`` (computed in float64).

    Example:
        >>> round(float(beta_one_quantile(torch.tensor(0.5), 0.8)), 5)
        0.57955
    """
    if not b > 0:
        raise ValueError(f"the Beta parameter must be positive, got {b}")
    return (1.0 - (1.0 - u.double()).pow(1.0 / b)).to(u.dtype)


def sample_epigraf_patches(batch_size: int, *, kimg: float, min_scale: float, max_scale: float = 1.0,
                           beta_start: float = BETA_START, beta_end: float = BETA_END,
                           anneal_kimg: float = BETA_ANNEAL_KIMG, group_size: int = 4,
                           device: torch.device | str = "cpu",
                           generator: torch.Generator | None = None) -> Tensor:
    """EpiGRAF's patch parameters ``[B, 3]`` ``(s, o_x, o_y)`` for a batch (``o_y`` from the bottom edge),
    shared by each run of ``group_size`` consecutive samples, as EpiGRAF shares them for its minibatch-std
    groups (``group_size`` = ``mbstd_group_size`` 4). Float64, so that the discriminator reads back
    the drawn values exactly after the conversions of :mod:`.patches`.

    Example:
        >>> p = sample_epigraf_patches(8, kimg=10000.0, min_scale=0.125, generator=torch.Generator().manual_seed(0))
        >>> p.shape, bool((p[:4] == p[0]).all())
        (torch.Size([8, 3]), True)
    """
    if not 0 < min_scale <= max_scale <= 1:
        raise ValueError(f"need 0 < min_scale <= max_scale <= 1, got min_scale={min_scale}, max_scale={max_scale}")
    if group_size < 1 or batch_size % group_size:
        raise ValueError(f"EpiGRAF shares patch parameters within groups of {group_size} samples: the batch "
                         f"({batch_size}) must be a multiple of the group size (discriminator mbstd_group_size)")
    groups = batch_size // group_size
    u = random_draws.uniform((groups, 3), device=device, generator=generator).double()
    b = beta_parameter(kimg, beta_start, beta_end, anneal_kimg)
    scales = beta_one_quantile(u[:, 0], b) * (max_scale - min_scale) + min_scale
    offsets = u[:, 1:] * (1 - scales).unsqueeze(-1)  # [groups, 2]: (o_x, o_y) from the left / bottom edge
    return torch.cat([scales.unsqueeze(-1), offsets], dim=-1).repeat_interleave(group_size, dim=0)
