"""The exponential moving average of the generator used for samples and evaluation."""

from __future__ import annotations

import torch
from torch import nn

from .config import TrainingConfig

__all__ = ["ema_beta", "update_ema"]


def ema_beta(cfg: TrainingConfig, *, step: int, nimg: int, batch: int) -> float:
    """The EMA decay of the update made at the end of iteration ``step`` (counted from 0), when
    ``nimg`` real images had been shown before it and the iteration's global batch is ``batch``.

    - ``cfg.ema_beta`` set: that fixed decay (pi-GAN: 0.999); with ``cfg.ema_warmup`` capped by
      ``(1 + t) / (10 + t)`` at the ``t = step + 1``-th update (torch_ema's ``ExponentialMovingAverage``
      with ``use_num_updates``, which pi-GAN's train.py uses).
    - otherwise StyleGAN2's half-life in images (stylegan2-ada-pytorch, training/training_loop.py,
      "Update G_ema"): ``0.5 ** (batch / ema_nimg)`` with ``ema_nimg = ema_kimg * 1000``, ramped up
      as ``min(ema_nimg, nimg * ema_rampup)`` when ``cfg.ema_rampup`` is set.
    """
    if cfg.ema_beta is not None:
        beta = cfg.ema_beta
        if cfg.ema_warmup:
            t = step + 1
            beta = min(beta, (1 + t) / (10 + t))
        return beta
    ema_nimg = cfg.ema_kimg * 1000
    if cfg.ema_rampup is not None:
        ema_nimg = min(ema_nimg, nimg * cfg.ema_rampup)
    return 0.5 ** (batch / max(ema_nimg, 1e-8))


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, beta: float) -> None:
    """``ema <- beta * ema + (1 - beta) * model`` for every parameter; buffers are copied."""
    for p_ema, p in zip(ema.parameters(), model.parameters()):
        p_ema.copy_(p.detach().lerp(p_ema, beta))
    for b_ema, b in zip(ema.buffers(), model.buffers()):
        b_ema.copy_(b)
