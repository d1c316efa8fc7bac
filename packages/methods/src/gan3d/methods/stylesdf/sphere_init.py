"""StyleSDF's sphere initialisation: fit the SDF network to a sphere before adversarial training.

royorel/StyleSDF ``train_volume_renderer.py`` (unless ``--no_sphere_init``) runs 10000 steps of
``L1(sdf(p), |p| - (far - near) / 4)`` over the stratified sample points of batches of 3 renders
from the training camera distribution (``Generator.init_forward`` -> ``mlp_init_pass``), with the
generator's optimizer (Adam, lr 2e-5, betas (0, 0.9)); every generator parameter the SDF depends on
(mapping network and SIREN) is trained. FFHQ and AFHQ: near 0.88, far 1.12, radius 0.06.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import Tensor

from gan3d.core import random_draws

__all__ = ["fit_sphere", "sphere_sdf"]

logger = logging.getLogger(__name__)


def sphere_sdf(points: Tensor, radius: float,
               center: tuple[float, float, float] | list[float] = (0.0, 0.0, 0.0)) -> Tensor:
    """Signed distance ``[..., 1]`` of ``points [..., 3]`` to the sphere (negative inside)."""
    c = torch.as_tensor(center, dtype=points.dtype, device=points.device)
    return (points - c).norm(dim=-1, keepdim=True) - radius


def fit_sphere(G, *, steps: int, radius: float, center: list[float] | tuple[float, ...] = (0.0, 0.0, 0.0),
               batch_size: int = 3, lr: float = 2e-5, betas: tuple[float, float] = (0.0, 0.9),
               generator: torch.Generator | None = None) -> float:
    """Fit ``G``'s mapper, embedder and SDF decoder to :func:`sphere_sdf` for ``steps`` steps;
    returns the last L1 loss. ``G`` is a :class:`gan3d.core.generator.Generator` with an SDF decoder."""
    params = [p for m in (G.mapper, G.embedder, G.decoder) for p in m.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=lr, betas=betas)
    device = next(iter(params)).device
    res = G.render_resolution
    loss = torch.zeros(())
    for _ in range(steps):
        z = random_draws.normal((batch_size, G.z_dim), generator=generator).to(device)
        cameras = G.pose_sampler(batch_size, device="cpu", generator=generator).to(device)
        samples = G.point_sampler(cameras, (res, res), generator=generator)
        ws = G.mapping(z)
        # The decoder directly: the SDF gradients Generator.field would add are not needed here.
        field = G.decoder(G.embedder(samples.points, G.embedder.scene(ws)), samples.sample_directions, ws)
        if field.sdf is None:
            raise ValueError(f"sphere initialisation needs an SDF decoder; {type(G.decoder).__name__} gives "
                             f"{field.kind}")
        loss = F.l1_loss(field.sdf, sphere_sdf(samples.points.detach(), radius, center))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    logger.info("sphere initialisation: %d steps, final L1 %.5f", steps, float(loss.detach()))
    return float(loss.detach())
