"""Background samples beyond a unit sphere, evenly spaced in inverse radius (NeRF++'s inverted-sphere
parametrization, Zhang et al. 2020, section 4), as StyleNeRF renders its background.

Facts from facebookresearch/StyleNeRF ``training/stylenerf.py`` (``VolumeRenderer.forward_rendering_background``,
``CameraRay.get_evaluation_points_bg``, ``CameraRay.add_noise_to_interval``, ``CameraRay.calc_volume_weights``)
and ``dnnlib/camera.py`` (``depth2pts_outside``), FFHQ values from ``conf/model/stylenerf_ffhq.yaml``
(``n_bg_samples: 4``, ``bg_start: 0.5``):

* the samples sit at inverse radii ``s = -linspace(-1, 0, S) * bg_start`` (0.5, 1/3, 1/6, 0 for FFHQ: from the
  sphere of radius 2 out to infinity), jittered in training between the neighbouring midpoints
  (``add_noise_to_interval``: our ``middle_uniform``);
* along a unit ray ``o + t d`` the point of radius ``r = 1 / s`` is at ``t = d1 + sqrt(r^2 - |p_mid|^2)``,
  ``d1 = -<o, d>``, ``p_mid = o + d1 d`` (``depth2pts_outside`` reaches the same point by rotating the ray's
  exit point from the unit sphere; its ``depth_real`` is this ``t``);
* their interval lengths are measured in inverse radius, not distance: ``s_i - s_{i+1}``, and ``1e10`` after
  the last sample (``calc_volume_weights(sigma, di, None)`` with ``last_dist=1e10``), which StyleNeRF also
  makes fully opaque (``alpha[..., -1] = 1``): in gan3d the renderer's ``last_back`` does that.

The samples are returned as world points (``RaySamples.points``), so compositing, merging and visualizers
see ordinary 3D samples; the ``inverted_sphere`` point embedder maps a point ``x`` back to NeRF++'s 4D
coordinates ``(x / |x|, 1 / |x|)``. ``sphere_radius`` scales the construction for scenes whose cameras are
further out (NeRF++ and StyleNeRF rescale their scenes to the unit sphere instead; radii are then measured
in sphere radii). The sample at ``s = 0`` (at infinity, evaluation only) is placed at
inverse radius ``1e-6`` (``TINY_NUMBER`` of ``dnnlib/camera.py``, which ``depth2pts_outside`` also adds
to the inverse radius for its depth), i.e. a million units away.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gan3d.core import random_draws
from gan3d.core.cameras import pixel_rays
from gan3d.core.interfaces import PointSampler
from gan3d.core.types import Cameras, RaySamples

__all__ = ["InvertedSphereSampler", "distance_to_sphere", "INFINITY_INVERSE_RADIUS", "LAST_INTERVAL"]

#: Inverse radius standing in for 0 (a point at infinity): dnnlib/camera.py ``TINY_NUMBER``.
INFINITY_INVERSE_RADIUS = 1e-6
#: Length of the interval after the last sample (``calc_volume_weights(..., last_dist=1e10)``).
LAST_INTERVAL = 1e10
#: Camera centres may lie on the unit sphere (StyleNeRF's radius-1 cameras) up to this rounding.
_SPHERE_TOLERANCE = 1e-4
_PERTURBATIONS = ("none", "middle_uniform")


def distance_to_sphere(origins: Tensor, directions: Tensor, radius: Tensor) -> Tensor:
    """Distance ``t`` along unit rays to where they leave the sphere of ``radius`` about the world origin.

    ``origins, directions [B, R, 3]``, ``radius [B, R, S]`` -> ``t [B, R, S]``; the far root of
    ``|o + t d| = r``: ``t = d1 + sqrt(r^2 - |p_mid|^2)`` with ``d1 = -<o, d>`` and ``p_mid = o + d1 d`` the
    ray's point closest to the origin.
    """
    d1 = -(origins * directions).sum(-1, keepdim=True)  # [B, R, 1]
    closest = (origins + d1 * directions).square().sum(-1, keepdim=True)  # |p_mid|^2
    return d1 + (radius.square() - closest).clamp_min(0.0).sqrt()


class InvertedSphereSampler(PointSampler):
    """``num_samples`` background samples per ray outside the unit sphere, even in inverse radius.

    Args:
        num_samples: samples per ray ``S`` (StyleNeRF FFHQ ``n_bg_samples`` 4), at least 2.
        inverse_radius_start: inverse radius of the nearest sample, in ``(0, 1]`` (StyleNeRF ``bg_start``
            0.5: the background starts on the sphere of radius 2); the last sample is at infinity.
        perturbation: ``'middle_uniform'`` (StyleNeRF's ``add_noise_to_interval``: each sample uniform between
            the midpoints to its neighbours, the ends clipped) or ``'none'``.
        perturb_in_eval: jitter in eval mode too (StyleNeRF does not).
        sphere_radius: radius of the sphere the background lies beyond (StyleNeRF 1; the cameras must be
            inside it). Inverse radii are in units of it.

    Returns :class:`RaySamples` with world ``points [B, R, S, 3]``, ``depths`` the distances along the
    unit rays (ascending) and ``deltas`` the intervals in inverse radius (the last ``1e10``). Cameras must
    lie inside the sphere (NeRF++'s assumption; StyleNeRF's sit on it).

    Example:
        >>> sampler = InvertedSphereSampler(num_samples=4, inverse_radius_start=0.5).eval()
        >>> samples = sampler(cameras, (8, 8))                                  # doctest: +SKIP
        >>> samples.points.norm(dim=-1)[0, 0]        # radii 2, 3, 6 and 1e6     # doctest: +SKIP
    """

    def __init__(self, *, num_samples: int = 4, inverse_radius_start: float = 0.5, perturbation: str = "middle_uniform",
                 perturb_in_eval: bool = False, sphere_radius: float = 1.0) -> None:
        super().__init__()
        if num_samples < 2:
            raise ValueError(f"inverted_sphere sampler: num_samples must be >= 2, got {num_samples}")
        if not 0.0 < inverse_radius_start <= 1.0:
            raise ValueError("inverted_sphere sampler: inverse_radius_start must lie in (0, 1] (the background "
                             f"starts on or beyond the unit sphere), got {inverse_radius_start}")
        if not sphere_radius > 0:
            raise ValueError(f"inverted_sphere sampler: sphere_radius must be positive, got {sphere_radius}")
        if perturbation not in _PERTURBATIONS:
            raise ValueError(f"inverted_sphere sampler: perturbation {perturbation!r} is unknown; allowed: "
                             f"{', '.join(_PERTURBATIONS)}")
        self.num_samples = num_samples
        self.inverse_radius_start = float(inverse_radius_start)
        self.perturbation = perturbation
        self.perturb_in_eval = perturb_in_eval
        self.sphere_radius = float(sphere_radius)

    def forward(self, cameras: Cameras, resolution: tuple[int, int], *, pixels: Tensor | None = None,
                generator: torch.Generator | None = None) -> RaySamples:
        """Samples on the rays through every pixel of an ``(h, w)`` image (row-major; pixel centres, or the
        corner-aligned grid of ``cameras.align_corners``), or through the normalized image points ``pixels
        [B, R, 2]`` when given."""
        origins, directions = pixel_rays(cameras.cam2world, cameras.intrinsics, resolution, pixels=pixels,
                                         align_corners=cameras.align_corners)
        camera_radius = origins[:, 0].norm(dim=-1).max() if origins.shape[1] else origins.new_zeros(())
        if float(camera_radius) > self.sphere_radius * (1.0 + _SPHERE_TOLERANCE):
            raise ValueError(f"inverted_sphere sampler: cameras must lie inside the sphere of sphere_radius="
                             f"{self.sphere_radius} (NeRF++'s background parametrization); a camera is at radius "
                             f"{float(camera_radius):.4f}: raise sphere_radius")
        inverse_radius = self.inverse_radii(origins.shape[:2], origins.device, origins.dtype, generator)
        radius = self.sphere_radius / inverse_radius.clamp_min(INFINITY_INVERSE_RADIUS)
        depths = distance_to_sphere(origins, directions, radius).unsqueeze(-1)
        points = origins.unsqueeze(-2) + depths * directions.unsqueeze(-2)
        gaps = inverse_radius[..., :-1] - inverse_radius[..., 1:]
        deltas = torch.cat([gaps, torch.full_like(gaps[..., :1], LAST_INTERVAL)], dim=-1).unsqueeze(-1)
        return RaySamples(origins, directions, depths, points, deltas)

    def inverse_radii(self, rays: tuple[int, ...], device: torch.device, dtype: torch.dtype,
                      generator: torch.Generator | None) -> Tensor:
        """``[B, R, S]`` inverse radii, descending (near to far), jittered when training."""
        s = self.num_samples
        grid = torch.linspace(0.0, 1.0, s, device=device, dtype=dtype).expand(*rays, s)
        if self.perturbation != "none" and (self.training or self.perturb_in_eval):
            mids = 0.5 * (grid[..., 1:] + grid[..., :-1])
            lower = torch.cat([grid[..., :1], mids], dim=-1)
            upper = torch.cat([mids, grid[..., -1:]], dim=-1)
            jitter = random_draws.uniform((*rays, s), device=device, generator=generator, dtype=dtype)
            grid = lower + (upper - lower) * jitter
        # StyleNeRF: di = linspace(-1, 0, S) * bg_start, jittered, then s = -di.
        return self.inverse_radius_start * (1.0 - grid)

    def extra_repr(self) -> str:
        return (f"num_samples={self.num_samples}, inverse_radius_start={self.inverse_radius_start}, "
                f"perturbation={self.perturbation!r}, sphere_radius={self.sphere_radius}")
