"""GRAF's patch sampling: one ``K x K`` patch per image at a random scale whose minimum is annealed.

Source: autonomousvision/graf graf/transforms.py ``FlexGridRaySampler.sample_rays`` (and train.py, which
sets ``ray_sampler.iterations = it`` before every iteration, ``it`` counting from 0):

    k         = (it // 1000) * 3
    min_scale = min(0.9, max(min_scale, max_scale * exp(-k * scale_anneal)))    (scale_anneal > 0)
    scale     ~ U(min_scale, max_scale)
    offset    ~ U(0, 1 - scale) * (+1 or -1), for x and y independently

so the first 15000 iterations draw scales in ``[0.9, 1]`` and the minimum reaches ``min_scale`` (0.25 for
carla/celebA with ``scale_anneal`` 0.0025; 0.125 with 0.0019 for celebAHQ) after about 185k / 330k
iterations. A symmetric random sign times ``U(0, m)`` is ``U(-m, m)``; that is how the centre is drawn
here. The geometry of a patch (scale, centre in corner-pixel NDC) is :mod:`gan3d.methods.patches`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from gan3d.core import random_draws

__all__ = ["graf_min_scale", "sample_graf_patches", "MIN_SCALE_CAP"]

#: graf/transforms.py: ``min_scale = min(0.9, min_scale)`` -- the first patches already vary a little.
MIN_SCALE_CAP = 0.9


def graf_min_scale(step: int, *, min_scale: float = 0.25, max_scale: float = 1.0,
                   scale_anneal: float = 0.0025) -> float:
    """GRAF's smallest patch scale at iteration ``step`` (see the module docstring).

    Example:
        >>> graf_min_scale(0), round(graf_min_scale(100_000), 5), graf_min_scale(400_000)
        (0.9, 0.47237, 0.25)
    """
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if not 0 < min_scale <= max_scale <= 1:
        raise ValueError(f"need 0 < min_scale <= max_scale <= 1, got min_scale={min_scale}, max_scale={max_scale}")
    if scale_anneal <= 0:
        return float(min_scale)
    k = (step // 1000) * 3
    return min(MIN_SCALE_CAP, max(min_scale, max_scale * math.exp(-k * scale_anneal)))


def sample_graf_patches(batch_size: int, *, min_scale: float, max_scale: float = 1.0,
                        device: torch.device | str = "cpu",
                        generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """One patch per image: ``scales [B] ~ U(min_scale, max_scale)`` and ``centres [B, 2]`` uniform in
    ``[-(1 - s), 1 - s]`` per axis (``min_scale`` is the annealed value of :func:`graf_min_scale`)."""
    if not 0 < min_scale <= max_scale <= 1:
        raise ValueError(f"need 0 < min_scale <= max_scale <= 1, got min_scale={min_scale}, max_scale={max_scale}")
    u = random_draws.uniform((batch_size, 3), device=device, generator=generator)
    scales = min_scale + (max_scale - min_scale) * u[:, 0]
    centres = (2 * u[:, 1:] - 1) * (1 - scales).unsqueeze(-1)
    return scales, centres
