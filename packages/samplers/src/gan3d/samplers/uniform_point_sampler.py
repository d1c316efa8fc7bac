"""Samples at evenly spaced depths along every pixel's ray, jittered in training, with importance
sampling for the hierarchical pass."""

from __future__ import annotations

import torch
from torch import Tensor

from gan3d.core import random_draws
from gan3d.core.cameras import pixel_rays
from gan3d.core.interfaces import PointSampler
from gan3d.core.types import Cameras, RaySamples

from .importance_sampling import PDF_EPS, sample_piecewise_constant, smooth_weights

__all__ = ["UniformPointSampler", "PERTURBATIONS", "IMPORTANCE_PDFS"]

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

#: How the coarse weights become the PDF of the fine samples. With ``t_i`` the ``S`` coarse depths
#: and ``m_i = (t_i + t_{i+1}) / 2`` their midpoints:
IMPORTANCE_PDFS = {
    # NeRF sample_pdf (nerf-pytorch, kwea123's nerf_pl): bins [m_{i-1}, m_i] around the interior
    # samples i = 1..S-2, each with its sample's weight + 1e-5; u = cdf[j] falls in bin j.
    "nerf": "bins [m_{i-1}, m_i], weight w_i + 1e-5, i = 1..S-2",
    # pi-GAN generators.py: weights + 1e-5 before sample_pdf, which adds 1e-5 again, and
    # torch.searchsorted's default right=False (u = cdf[j] falls in bin j - 1).
    "pigan": "bins [m_{i-1}, m_i], weight w_i + 2e-5, i = 1..S-2, searchsorted left",
    # EG3D renderer.py sample_importance: its ray marcher's S - 1 interval weights (midpoint
    # quadrature; the renderer's trailing zero dropped) taken as if they were per-sample weights:
    # smoothed, then [1:-1] over the bins [m_{i-1}, m_i] of sample_pdf, of which only the first
    # S - 3 are reached, so interval i weighs the bin around sample i and the last bin is never drawn.
    "eg3d": "bins [m_{i-1}, m_i], weight of interval (t_i, t_{i+1}) + 1e-5, i = 1..S-3",
}


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
        align_corners: put the rays of an ``h x w`` image on the corner-aligned grid (the outermost
            rays on the image's edges, ``u = j / (w - 1)``: pi-GAN's ``linspace(-1, 1)`` NDC grid)
            instead of through pixel centres (EG3D); see :func:`gan3d.core.cameras.pixel_rays`.
        axis_depths: measure the sample depths along the camera's optical axis (planes of constant
            camera depth between ``ray_start`` and ``ray_end``) instead of along each ray: a sample at
            depth ``z`` lies ``z / cos(angle to the axis)`` along its ray. StyleSDF's ``render_rays``
            (``pts = rays_o + rays_d * z_vals`` with ``rays_d`` of camera-space z-length 1).
        static_view_directions_in_eval: in eval mode hand the decoder each ray's direction in the
            camera frame, OpenGL axes (x right, y up, looking down -z), instead of the world
            direction: StyleSDF's ``static_viewdirs``, which its generation scripts switch on (a
            view-dependent colour that does not change with the camera). Not kept through
            importance sampling.
        importance_pdf: how the coarse weights make the fine samples' PDF, one of
            :data:`IMPORTANCE_PDFS`: ``'nerf'``, ``'pigan'`` or ``'eg3d'`` (which expects the weights of
            midpoint quadrature, ``S - 1`` intervals and a zero).
        range_reference_radius: when positive, each camera's range is shifted by ``|origin| -
            range_reference_radius`` (the camera's distance from the world origin), so cameras at
            different radii sample the same region: GRAF with a radius range (graf/models/generator.py
            ``__call__``: ``near - (r_max - |o|)``, ``far - (r_max - |o|)``, reference ``r_max``). The
            shift applies to the depths as ``axis_depths`` measures them (GRAF: along the axis).

    Recipes: EG3D FFHQ ``num_samples=48, ray_start=2.25, ray_end=3.3, perturbation='forward'``
    (``train.py`` rendering options; 48 importance samples); pi-GAN CelebA ``num_samples=12..24,
    ray_start=0.88, ray_end=1.12, perturbation='stratified', smooth_importance_weights=False``
    (``curriculums.py``); GIRAFFE ``ray_start=0.5, ray_end=6.0, perturbation='middle_uniform'``.

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
        importance_pdf: str = "nerf",
        align_corners: bool = False,
        axis_depths: bool = False,
        static_view_directions_in_eval: bool = False,
        range_reference_radius: float = 0.0,
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
        if importance_pdf not in IMPORTANCE_PDFS:
            raise ValueError(f"importance_pdf {importance_pdf!r} is unknown; allowed: {', '.join(IMPORTANCE_PDFS)}")
        if range_reference_radius < 0:
            raise ValueError(f"range_reference_radius must be >= 0 (0: off), got {range_reference_radius}")
        if range_reference_radius > 0 and disparity_space_sampling:
            raise ValueError("range_reference_radius shifts depths linearly; it cannot be combined with "
                             "disparity_space_sampling")
        self.num_samples = num_samples
        self.ray_start = float(ray_start)
        self.ray_end = float(ray_end)
        self.perturbation = perturbation
        self.disparity_space_sampling = disparity_space_sampling
        self.perturb_in_eval = perturb_in_eval
        self.smooth_importance_weights = smooth_importance_weights
        self.importance_pdf = importance_pdf
        self.align_corners = align_corners
        self.axis_depths = axis_depths
        self.static_view_directions_in_eval = static_view_directions_in_eval
        if range_reference_radius < 0:
            raise ValueError(f"range_reference_radius must be >= 0 (0: off), got {range_reference_radius}")
        self.range_reference_radius = float(range_reference_radius)

    @property
    def randomized(self) -> bool:
        """Whether jitter and importance quantiles are random now (training, or ``perturb_in_eval``)."""
        return self.training or self.perturb_in_eval

    def forward(
        self,
        cameras: Cameras,
        resolution: tuple[int, int] | None,
        *,
        pixels: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> RaySamples:
        """Samples for every pixel of an ``(h, w)`` image (through pixel centres, or on the corner-aligned
        grid when :meth:`corner_aligned`), or for the rays through ``pixels [B, R, 2]`` (normalized image
        coordinates).

        Returns :class:`RaySamples` with ``origins, directions [B, R, 3]`` and ``depths [B, R, S, 1]``,
        ascending along ``S`` (``R = h * w`` without ``pixels``).
        """
        origins, directions = pixel_rays(cameras.cam2world, cameras.intrinsics, resolution, pixels=pixels,
                                         align_corners=self.corner_aligned(cameras))
        b, r = origins.shape[:2]
        if self.disparity_space_sampling:
            # EG3D sample_stratified: 1/depth linear in t.
            t = self._positions((b, r), 0.0, 1.0, origins.device, origins.dtype, generator).clamp(0.0, 1.0)
            depths = 1.0 / ((1.0 - t) / self.ray_start + t / self.ray_end)
        else:
            depths = self._positions((b, r), self.ray_start, self.ray_end, origins.device, origins.dtype, generator)
        if self.range_reference_radius > 0:
            distance = cameras.origins.norm(dim=-1).view(b, 1, 1).to(depths)
            if bool((distance - self.range_reference_radius + self.ray_start < 0).any()):
                raise ValueError(f"a camera at distance {float(distance.min()):.4g} from the origin puts ray_start "
                                 f"behind it (range_reference_radius={self.range_reference_radius}); GRAF asserts "
                                 "the same")
            depths = depths + (distance - self.range_reference_radius)
        if self.axis_depths:  # z along the optical axis (camera +z) -> distance along the unit ray
            depths = depths / (directions * cameras.cam2world[:, None, :3, 2]).sum(-1, keepdim=True)
        samples = RaySamples.along_rays(origins, directions, depths.unsqueeze(-1))
        if self.static_view_directions_in_eval and not self.training:
            # Camera-frame directions (R^T d), OpenCV -> OpenGL axes: (x, -y, -z).
            camera = directions @ cameras.cam2world[:, :3, :3]
            view = camera * camera.new_tensor([1.0, -1.0, -1.0])
            samples.sample_directions_override = view.unsqueeze(-2).expand_as(samples.points)
        return samples

    def _positions(
        self, rays: tuple[int, int], start: float, end: float, device: torch.device, dtype: torch.dtype,
        generator: torch.Generator | None,
    ) -> Tensor:
        """``[B, R, S]`` positions from ``start`` to ``end``, jittered as :attr:`perturbation` says.

        The grid is ``torch.linspace(start, end, S)`` and the jitter is scaled by the spacing, as in
        EG3D's and pi-GAN's samplers, so that the unjittered depths are theirs to the last bit.
        """
        s = self.num_samples
        grid = torch.linspace(start, end, s, device=device, dtype=dtype).expand(*rays, s)
        if self.perturbation == "none" or not self.randomized:
            return grid
        jitter = random_draws.uniform((*rays, s), device=device, generator=generator, dtype=dtype)
        spacing = (end - start) / (s - 1)
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
        if self.importance_pdf == "eg3d" and coarse.shape[-1] < 4:
            raise ValueError(f"importance_pdf='eg3d' needs at least 4 coarse samples per ray, got {coarse.shape[-1]}")
        with torch.no_grad():
            w = weights.detach().squeeze(-1)
            edges = 0.5 * (coarse[..., 1:] + coarse[..., :-1])  # [B, R, S - 1]
            if self.importance_pdf == "eg3d":
                # The S - 1 interval weights (the renderer pads a zero); sample_pdf reaches only the
                # first S - 2 edges, as it gets S - 3 weights (renderer.py sample_importance).
                w, edges = w[..., :-1], edges[..., :-1]
            elif self.importance_pdf == "pigan":
                w = w + PDF_EPS  # generators.py: weights + 1e-5, then sample_pdf adds its own
            if self.smooth_importance_weights:
                w = smooth_weights(w)
            shape = (*coarse.shape[:-1], num_samples)
            if self.randomized:
                u = random_draws.uniform(shape, device=coarse.device, generator=generator, dtype=coarse.dtype)
                u = torch.sort(u, dim=-1).values
            else:
                u = torch.linspace(0.0, 1.0, num_samples, device=coarse.device, dtype=coarse.dtype).expand(shape)
            fine = sample_piecewise_constant(edges, w[..., 1:-1], u, right=self.importance_pdf != "pigan")
        out = RaySamples.along_rays(samples.origins, samples.directions, fine.unsqueeze(-1))
        if samples.sample_directions_override is not None:  # the coarse samples' per-ray view directions
            out.sample_directions_override = samples.sample_directions_override[..., :1, :].expand_as(out.points)
        return out

    def extra_repr(self) -> str:
        return (f"num_samples={self.num_samples}, ray_start={self.ray_start}, ray_end={self.ray_end}, "
                f"perturbation={self.perturbation!r}, disparity_space_sampling={self.disparity_space_sampling}, "
                f"importance_pdf={self.importance_pdf!r}, align_corners={self.align_corners}, "
                f"axis_depths={self.axis_depths}, range_reference_radius={self.range_reference_radius}")
