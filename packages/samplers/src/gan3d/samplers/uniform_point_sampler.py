"""Samples at evenly spaced depths along every pixel's ray, jittered in training, with importance
sampling for the hierarchical pass."""

from __future__ import annotations

import torch
from torch import Tensor

from gan3d.core import random_draws
from gan3d.core.cameras import pixel_rays
from gan3d.core.interfaces import PointSampler
from gan3d.core.types import Cameras, RaySamples

from .importance_sampling import sample_piecewise_constant, smooth_weights

__all__ = ["UniformPointSampler", "PERTURBATIONS", "RANGE_MEASURES"]

#: Jitter modes. With ``t_i`` the ``num_samples`` evenly spaced positions from ``ray_start`` to
#: ``ray_end`` and ``d`` their spacing, each sample is drawn uniformly from its cell:
PERTURBATIONS = {
    "none": "t_i itself",
    # pi-GAN volumetric_rendering.py perturb_points (Carver's 'self_uniform'): the cells tile
    # [ray_start - d/2, ray_end + d/2], so the end samples may fall up to d/2 outside the range.
    "stratified": "[t_i - d/2, t_i + d/2]",
    # NeRF run_nerf.py and GIRAFFE add_noise_to_interval (Carver's 'middle_uniform'): between the
    # midpoints of the neighbours, clipped to [ray_start, ray_end].
    "middle_uniform": "[(t_{i-1} + t_i)/2, (t_i + t_{i+1})/2] within [ray_start, ray_end]",
    # EG3D renderer.py sample_stratified (Carver's 'uniform'): the last sample may reach ray_end + d.
    "forward": "[t_i, t_i + d]",
}

#: What ``ray_start`` and ``ray_end`` measure: the distance along the unit ray (pi-GAN, EG3D), or the
#: depth along the camera's viewing axis, so that off-centre rays reach ``1 / cos`` further (StyleNeRF
#: training/stylenerf.py ``CameraRay.get_evaluation_points``: points ``o + z (p - o)`` with ``p`` the pixel
#: on the image plane at camera depth 1, ``z`` in ``depth_range``).
RANGE_MEASURES = ("ray", "optical_axis")


class UniformPointSampler(PointSampler):
    """Rays through pixel centres (:func:`gan3d.core.cameras.pixel_rays`, row-major) with
    ``num_samples`` depths each, evenly spaced from ``ray_start`` to ``ray_end``.

    Args:
        num_samples: coarse samples per ray ``S`` (at least 2; 3 for importance sampling).
        ray_start, ray_end: near and far distance along the (unit) ray, ``ray_start < ray_end``.
        perturbation: jitter of each sample within its cell, one of :data:`PERTURBATIONS`:
            ``'none'``, ``'stratified'`` (pi-GAN), ``'middle_uniform'`` (NeRF, GIRAFFE),
            ``'forward'`` (EG3D).
        disparity_space_sampling: space the samples evenly in inverse depth instead of depth
            (EG3D's option; EG3D trains FFHQ, AFHQ and ShapeNet with it off). The jitter then acts
            on the inverse-depth parameter, clipped to the range.
        perturb_in_eval: jitter (and draw random importance quantiles) in eval mode too. Off, eval
            mode gives the deterministic grid and quantiles (NeRF's ``det``); EG3D and pi-GAN draw
            randomly at inference as well, so set it to reproduce their renders exactly.
        smooth_importance_weights: smooth the coarse weights before importance sampling
            (:func:`gan3d.samplers.importance_sampling.smooth_weights`, EG3D); off for NeRF/pi-GAN.
        range_along: what the range measures, one of :data:`RANGE_MEASURES`: ``'ray'`` (distance along
            the unit ray) or ``'optical_axis'`` (depth along the camera's viewing axis, StyleNeRF). The
            returned ``depths`` are distances along the unit ray either way.

    Recipes: EG3D FFHQ ``num_samples=48, ray_start=2.25, ray_end=3.3, perturbation='forward'``
    (``train.py`` rendering options; 48 importance samples); pi-GAN CelebA ``num_samples=12..24,
    ray_start=0.88, ray_end=1.12, perturbation='stratified', smooth_importance_weights=False``
    (``curriculums.py``); GIRAFFE ``ray_start=0.5, ray_end=6.0, perturbation='middle_uniform'``;
    StyleNeRF FFHQ ``num_samples=14, ray_start=0.88, ray_end=1.12, perturbation='middle_uniform',
    range_along='optical_axis', smooth_importance_weights=False`` (``conf/model/stylenerf_ffhq.yaml``
    ``depth_range``, ``n_ray_samples``; 14 importance samples).

    Example:
        >>> sampler = UniformPointSampler(num_samples=8, ray_start=2.0, ray_end=3.0)
        >>> samples = sampler(cameras, (16, 16))               # doctest: +SKIP
        >>> samples.depths.shape                               # doctest: +SKIP
        torch.Size([B, 256, 8, 1])
    """

    supports_importance = True

    def __init__(
        self,
        *,
        num_samples: int = 48,
        ray_start: float = 2.25,
        ray_end: float = 3.3,
        perturbation: str = "forward",
        disparity_space_sampling: bool = False,
        perturb_in_eval: bool = False,
        smooth_importance_weights: bool = True,
        range_along: str = "ray",
    ) -> None:
        super().__init__()
        if num_samples < 2:
            raise ValueError(f"num_samples must be >= 2, got {num_samples}")
        if not ray_start < ray_end:
            raise ValueError(f"ray_start must be smaller than ray_end, got ray_start={ray_start}, ray_end={ray_end}")
        if ray_start < 0:
            raise ValueError(f"ray_start must be >= 0 (a distance in front of the camera), got {ray_start}")
        if disparity_space_sampling and ray_start <= 0:
            raise ValueError("disparity_space_sampling needs ray_start > 0 (it spaces samples in 1 / depth)")
        if perturbation not in PERTURBATIONS:
            raise ValueError(f"perturbation {perturbation!r} is unknown; allowed: {', '.join(PERTURBATIONS)}")
        if range_along not in RANGE_MEASURES:
            raise ValueError(f"range_along {range_along!r} is unknown; allowed: {', '.join(RANGE_MEASURES)}")
        self.num_samples = num_samples
        self.ray_start = float(ray_start)
        self.ray_end = float(ray_end)
        self.perturbation = perturbation
        self.disparity_space_sampling = disparity_space_sampling
        self.perturb_in_eval = perturb_in_eval
        self.smooth_importance_weights = smooth_importance_weights
        self.range_along = range_along

    @property
    def randomized(self) -> bool:
        """Whether jitter and importance quantiles are random now (training, or ``perturb_in_eval``)."""
        return self.training or self.perturb_in_eval

    def forward(
        self, cameras: Cameras, resolution: tuple[int, int], *, generator: torch.Generator | None = None
    ) -> RaySamples:
        """Samples for every pixel of an ``(h, w)`` image.

        Returns :class:`RaySamples` with ``origins, directions [B, h*w, 3]`` and
        ``depths [B, h*w, S, 1]``, ascending along ``S``.
        """
        origins, directions = pixel_rays(cameras.cam2world, cameras.intrinsics, resolution)
        b, r = origins.shape[:2]
        t = self._positions((b, r), origins.device, origins.dtype, generator)
        if self.disparity_space_sampling:
            # EG3D sample_stratified: 1/depth linear in t.
            t = t.clamp(0.0, 1.0)
            depths = 1.0 / ((1.0 - t) / self.ray_start + t / self.ray_end)
        else:
            depths = self.ray_start + (self.ray_end - self.ray_start) * t
        if self.range_along == "optical_axis":
            # A depth z along the viewing axis is z / cos(angle to the axis) along the unit ray.
            cos = (directions * cameras.cam2world[:, None, :3, 2]).sum(-1, keepdim=True)
            depths = depths / cos
        return RaySamples.along_rays(origins, directions, depths.unsqueeze(-1))

    def _positions(
        self, rays: tuple[int, int], device: torch.device, dtype: torch.dtype, generator: torch.Generator | None
    ) -> Tensor:
        """``[B, R, S]`` positions in units of the range (0 at ``ray_start``, 1 at ``ray_end``)."""
        s = self.num_samples
        grid = torch.linspace(0.0, 1.0, s, device=device, dtype=dtype).expand(*rays, s)
        if self.perturbation == "none" or not self.randomized:
            return grid
        jitter = random_draws.uniform((*rays, s), device=device, generator=generator, dtype=dtype)
        spacing = 1.0 / (s - 1)
        if self.perturbation == "stratified":
            return grid + (jitter - 0.5) * spacing
        if self.perturbation == "forward":
            return grid + jitter * spacing
        mids = 0.5 * (grid[..., 1:] + grid[..., :-1])  # middle_uniform
        lower = torch.cat([grid[..., :1], mids], dim=-1)
        upper = torch.cat([mids, grid[..., -1:]], dim=-1)
        return lower + (upper - lower) * jitter

    def importance(
        self, samples: RaySamples, weights: Tensor, num_samples: int, *, generator: torch.Generator | None = None
    ) -> RaySamples:
        """``num_samples`` fine samples per ray drawn where the coarse ``weights [B, R, S, 1]`` are large.

        The PDF is piecewise constant over the bins between the midpoints of consecutive coarse
        samples, bin ``i`` carrying the weight of interior sample ``i`` (NeRF ``sample_pdf``, as in
        pi-GAN and EG3D); with ``smooth_importance_weights`` the weights are smoothed first (EG3D).
        Quantiles are uniform draws in training (sorted, so the fine depths come out ascending) and
        ``linspace(0, 1, num_samples)`` in eval mode. No gradient flows through the fine depths.

        Returns fine :class:`RaySamples` with ``depths [B, R, num_samples, 1]`` on the same rays;
        merging with the coarse samples is :func:`gan3d.core.generator.merge_samples`.
        """
        coarse = samples.depths.squeeze(-1)  # [B, R, S]
        if coarse.shape[-1] < 3:
            raise ValueError(f"importance sampling needs at least 3 coarse samples per ray, got {coarse.shape[-1]}")
        if weights.shape[:-1] != coarse.shape or weights.shape[-1] != 1:
            raise ValueError(
                f"weights must be [B, R, S, 1] like depths {tuple(samples.depths.shape)}; got {tuple(weights.shape)}"
            )
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        with torch.no_grad():
            w = weights.detach().squeeze(-1)
            if self.smooth_importance_weights:
                w = smooth_weights(w)
            edges = 0.5 * (coarse[..., 1:] + coarse[..., :-1])  # [B, R, S - 1]
            shape = (*coarse.shape[:-1], num_samples)
            if self.randomized:
                u = random_draws.uniform(shape, device=coarse.device, generator=generator, dtype=coarse.dtype)
                u = torch.sort(u, dim=-1).values
            else:
                u = torch.linspace(0.0, 1.0, num_samples, device=coarse.device, dtype=coarse.dtype).expand(shape)
            fine = sample_piecewise_constant(edges, w[..., 1:-1], u)
        return RaySamples.along_rays(samples.origins, samples.directions, fine.unsqueeze(-1))

    def extra_repr(self) -> str:
        return (f"num_samples={self.num_samples}, ray_start={self.ray_start}, ray_end={self.ray_end}, "
                f"perturbation={self.perturbation!r}, disparity_space_sampling={self.disparity_space_sampling}, "
                f"range_along={self.range_along!r}")
