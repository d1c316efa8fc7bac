"""DE and PE: the rendered depth and the sampled pose against what an estimator sees in the image.

Protocol (Carver ``metrics/depth_eg3d.py`` and ``metrics/pose_eg3d.py``, after EG3D's paper): render
latents from sampled cameras; run an estimator (registry family ``estimator``) on the images.

* DE: the rendered depth (distance along rays) is resized to the estimator's depth resolution
  (antialiased bilinear); on the pixels both count as valid, each depth map is standardized per
  image to zero mean and unit standard deviation (Carver's normalization) and their mean squared
  difference is averaged over images (non-finite ones dropped, as Carver).
* PE: the sampled cameras' (yaw, polar) (read from cam2world, :func:`~.sampling.view_angles`) against
  the estimator's; the squared angle differences (wrapped to (-pi, pi]) are averaged over the two
  angles and the images, in rad^2. Carver compares rotation vectors of full rotations instead; our
  estimators give the two angles that a pose sampler controls. Beside it, per angle, the least-squares
  slope of the estimator's angle on the camera's (:func:`angle_slopes`): 1 when the heads turn with the
  camera, near 0 when they do not turn, -1 for a reflection through the mean view (what a
  depth-inverted, "hollow" face looks like from the mean view +- delta), which PE alone cannot tell
  from noise. And the yaw residuals' consistency (:func:`yaw_consistency`): under a yaw prior uniform
  over the circle (a turntable, such as the synthetic ``car`` set) a generator whose discriminator sees
  no camera may build its object at any heading (every rotation about the vertical renders the same
  image distribution), so the yaw error and slope measure nothing there; the consistency is 1 when
  the estimates follow the cameras up to a constant heading (the reported offset), near 0 when the two
  are unrelated.

Latents and poses come from one seeded generator per batch (:func:`~.sampling.batch_generator`;
Carver reseeds inside the loop, so all its samples share one pose). Under ``torch.distributed`` the
batches are shared among the ranks and every rank returns the one-process value.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan3d.core.interfaces import Evaluator

from .distributed import BatchPlan
from .estimators import Estimator, standardize_depth
from .sampling import batch_generator, evaluation_mode, sample_latents, view_angles, wrap_angle

__all__ = ["DepthErrorEvaluator", "PoseErrorEvaluator", "angle_slopes", "build_estimator", "yaw_consistency"]


def build_estimator(name: str, options: dict) -> Estimator:
    """The estimator ``name`` built by the registry with ``options``."""
    from gan3d.core.registry import get_registry

    return get_registry().build("estimator", name, **options)


def angle_slopes(cameras: Tensor, estimated: Tensor) -> Tensor:
    """``[2]`` least-squares slopes of ``estimated [N, 2]`` on ``cameras [N, 2]`` (yaw, polar), column by
    column: ``cov(c, e) / var(c)``. The estimate is unwrapped about the camera's angle first (``c +
    wrap(e - c)``), so an estimate across the +-pi seam counts as near. NaN for an angle the cameras do
    not vary.

    Example: ``angle_slopes(c, 2 * c + 1)`` is ``[2, 2]``; ``angle_slopes(c, -c)`` is ``[-1, -1]``.
    """
    if cameras.shape != estimated.shape or cameras.ndim != 2:
        raise ValueError(f"cameras and estimated must both be [N, 2]; got {tuple(cameras.shape)} and "
                         f"{tuple(estimated.shape)}")
    c = cameras.double()
    e = c + wrap_angle(estimated.double() - c)
    c, e = c - c.mean(0), e - e.mean(0)
    var = (c * c).sum(0)
    slope = (c * e).sum(0) / var
    return torch.where(var > 1e-12 * len(c), slope, torch.full_like(slope, math.nan)).float()


def yaw_consistency(residuals: Tensor) -> tuple[float, float]:
    """``(consistency, offset)`` of yaw residuals ``estimated - camera [N]`` (rad): the length of their mean
    unit vector ``|mean(exp(i d))|`` (1 when every residual is the same angle, of the order of ``1 / sqrt(N)``
    when they are drawn at random round the circle) and its direction, the circular mean residual (rad).

    Example: ``yaw_consistency(torch.tensor([0.5, 0.5]))`` is ``(1.0, 0.5)``; residuals ``0`` and ``pi``
    give consistency 0.
    """
    d = residuals.double().flatten()
    if d.numel() == 0:
        raise ValueError("yaw_consistency needs at least one residual")
    s, c = torch.sin(d).mean(), torch.cos(d).mean()
    return float(torch.hypot(s, c)), float(torch.atan2(s, c))


class _EstimatorMetric(Evaluator):
    needs = ""

    def __init__(self, *, estimator: str = "trained", estimator_options: dict | None = None,
                 num_samples: int = 1024, batch_size: int = 8, truncation_psi: float = 1.0) -> None:
        self.estimator = estimator
        self.estimator_options = dict(estimator_options or {})
        self.num_samples = num_samples
        self.batch_size = batch_size
        self.truncation_psi = truncation_psi

    def _estimator(self) -> Estimator:
        est = build_estimator(self.estimator, self.estimator_options)
        if not (est.provides_depth if self.needs == "depth" else est.provides_pose):
            raise ValueError(f"{self.name}: estimator {self.estimator!r} gives no {self.needs}; use one that does "
                             f"(e.g. 'trained')")
        return est

    def _samples(self, generator: nn.Module, device, seed: int, plan: BatchPlan):
        """Renders of this rank's batches of ``plan`` (all batches on one process)."""
        with evaluation_mode(generator):
            for index, n in plan:
                gen = batch_generator(seed, index, device)
                z = sample_latents(generator, n, gen, device)
                cameras = generator.pose_sampler(n, device=device, generator=gen)
                yield generator(z, cameras, truncation_psi=self.truncation_psi, generator=gen)


class DepthErrorEvaluator(_EstimatorMetric):
    """``evaluate(G)`` -> ``{"de": float}``: standardized depth MSE against an estimator.

    Args:
        estimator: a registered ``estimator`` name (``'trained'``).
        estimator_options: its options, e.g. ``{"weights": "work/depth_pose_net.pth"}``.
        num_samples: images (Carver: 1024).
        batch_size: images rendered at a time.
        truncation_psi: truncation of the latents.
    """

    name = "depth"
    needs = "depth"

    def evaluate(self, generator: nn.Module, *, dataset=None, device: torch.device | str = "cpu",
                 seed: int = 0) -> dict[str, float]:
        est = self._estimator().to(device).eval()
        plan = BatchPlan(self.num_samples, self.batch_size)
        errors = []
        for out in self._samples(generator, device, seed, plan):
            pred = est.predict(out.image)
            # The surface depth (NaN on background), so every renderer's depth_mode compares alike.
            depth = out.depth if out.surface_depth is None else out.surface_depth
            rendered = F.interpolate(depth.float(), size=pred.depth.shape[-2:], mode="bilinear",
                                     align_corners=False, antialias=True)
            mask = torch.isfinite(rendered) & torch.isfinite(pred.depth)
            if pred.depth_mask is not None:
                mask &= pred.depth_mask.bool()
            a, b = standardize_depth(rendered, mask), standardize_depth(pred.depth.float(), mask)
            m = mask.float()
            errors.append(((((a - b) ** 2) * m).sum(dim=(1, 2, 3)) / m.sum(dim=(1, 2, 3))).cpu())
        e = plan.gather(errors).numpy()
        e = e[np.isfinite(e)]
        return {"de": float(e.mean()) if e.size else math.nan}


class PoseErrorEvaluator(_EstimatorMetric):
    """``evaluate(G)`` -> ``{"pe": rad^2, "pe_yaw_deg": MAE, "pe_polar_deg": MAE, "pe_yaw_slope",
    "pe_polar_slope", "pe_yaw_consistency", "pe_yaw_offset_deg"}`` (the slopes of :func:`angle_slopes`, NaN
    for an angle the pose sampler keeps fixed; the last two of :func:`yaw_consistency`).

    Options as :class:`DepthErrorEvaluator`.
    """

    name = "pose"
    needs = "pose"

    def evaluate(self, generator: nn.Module, *, dataset=None, device: torch.device | str = "cpu",
                 seed: int = 0) -> dict[str, float]:
        est = self._estimator().to(device).eval()
        plan = BatchPlan(self.num_samples, self.batch_size)
        diffs, views = [], []
        for out in self._samples(generator, device, seed, plan):
            pred = est.predict(out.image).angles
            view = view_angles(out.cameras.cam2world.float())
            diffs.append(wrap_angle(pred.float() - view).cpu())
            views.append(view.cpu())
        d, view = plan.gather(diffs), plan.gather(views)
        slopes = angle_slopes(view, view + d)
        consistency, offset = yaw_consistency(d[:, 0])
        return {
            "pe": float((d**2).mean()),
            "pe_yaw_deg": float(torch.rad2deg(d[:, 0].abs()).mean()),
            "pe_polar_deg": float(torch.rad2deg(d[:, 1].abs()).mean()),
            "pe_yaw_slope": float(slopes[0]),
            "pe_polar_slope": float(slopes[1]),
            "pe_yaw_consistency": consistency,
            "pe_yaw_offset_deg": math.degrees(offset),
        }
