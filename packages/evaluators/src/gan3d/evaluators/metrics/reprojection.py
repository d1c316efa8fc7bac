"""RE: multi-view consistency measured by warping each view into its neighbour with the rendered depth.

Protocol (Carver ``metrics/reprojection_error.py``): five views of one latent at yaw offsets
``+0.4, +0.2, 0, -0.2, -0.4`` rad around the front pose, one shared ``ws``; each adjacent pair is
warped in both directions and the mean squared colour difference (images in ``[-1, 1]``) over the
pixels both views see is averaged over the 8 warps of a latent, then over latents.

What differs from Carver, on purpose: the geometry uses each camera's own intrinsics and
cam2world (gan3d.core.cameras), never a fixed 18.837 degree field of view, and the pixel grid the
generator's rays use (``Generator.corner_aligned``: pixel centres, or pi-GAN's and GIRAFFE's
corner-aligned grid); "depth" is the rendered
distance along each pixel's ray (not world z); the warp is backward (each target pixel is lifted with
its own depth, projected into the source view and the source colour read bilinearly), and a pixel
counts only when the source view sees the same surface: the distance from the source camera to the
lifted point agrees with the source's depth there within ``depth_tolerance`` (relative). Carver
forward-splats with rounding and no visibility test.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan3d.core.cameras import pixel_rays, world_to_camera
from gan3d.core.interfaces import Evaluator
from gan3d.core.types import Cameras

from .distributed import BatchPlan, is_main_process
from .sampling import batch_generator, evaluation_mode, orbit_cameras, render_latents, sample_latents

__all__ = ["ReprojectionErrorEvaluator", "warp_error", "YAW_OFFSETS"]

logger = logging.getLogger(__name__)

#: Carver's five views (``sample_cam_pose``): yaw offsets in radians.
YAW_OFFSETS = (0.4, 0.2, 0.0, -0.2, -0.4)


def warp_error(
    target_image: Tensor,
    target_depth: Tensor,
    target_cameras: Cameras,
    source_image: Tensor,
    source_depth: Tensor,
    source_cameras: Cameras,
    *,
    depth_tolerance: float = 0.03,
    align_corners: bool = False,
) -> tuple[Tensor, Tensor]:
    """Per-sample MSE of the source view warped into the target view, and the co-visible fraction.

    Args:
        target_image, source_image: ``[B, 3, H, W]`` in ``[-1, 1]``.
        target_depth, source_depth: ``[B, 1, H, W]`` distance along each pixel's ray.
        target_cameras, source_cameras: the cameras of each view (normalized intrinsics).
        depth_tolerance: relative depth difference still counted as the same surface.
        align_corners: the images' pixels lie on the corner-aligned grid (``u = j / (W - 1)``) rather than
            at pixel centres: the generator's :meth:`~gan3d.core.generator.Generator.corner_aligned`. The
            target pixels are lifted along the rays of that grid and the source read on it.

    Returns:
        ``(mse [B], covisible [B])``; ``mse`` is NaN where no pixel is co-visible.
    """
    b, _, h, w = target_image.shape
    origins, dirs = pixel_rays(target_cameras.cam2world, target_cameras.intrinsics, (h, w), align_corners=align_corners)
    # Background (NaN depth) is lifted to the camera centre and excluded by ``valid`` below.
    points = origins + torch.nan_to_num(target_depth, nan=0.0).reshape(b, h * w, 1) * dirs  # [B, R, 3]
    cam = world_to_camera(points, source_cameras.cam2world)  # [B, R, 3]
    k = source_cameras.intrinsics
    z = cam[..., 2]
    safe_z = torch.where(z.abs() > 1e-8, z, torch.full_like(z, 1e-8))
    x_n, y_n = cam[..., 0] / safe_z, cam[..., 1] / safe_z
    u = k[:, 0, 0:1] * x_n + k[:, 0, 1:2] * y_n + k[:, 0, 2:3]  # normalized image coordinates in [0, 1]
    v = k[:, 1, 1:2] * y_n + k[:, 1, 2:3]
    grid = torch.stack([2 * u - 1, 2 * v - 1], dim=-1).reshape(b, h, w, 2)
    # grid_sample's align_corners: -1 and 1 are the outermost pixels' centres (True) or the image's edges.
    sampled = F.grid_sample(source_image, grid, mode="bilinear", padding_mode="border", align_corners=align_corners)
    # The source depth read both ways: a bilinear read mixes foreground and background at silhouettes,
    # where the bilinear colour read is unreliable too, so such pixels fail the test and are skipped.
    seen_nearest = F.grid_sample(source_depth, grid, mode="nearest", padding_mode="border",
                                 align_corners=align_corners)
    seen_linear = F.grid_sample(source_depth, grid, mode="bilinear", padding_mode="border",
                                align_corners=align_corners)
    distance = (points - source_cameras.origins[:, None, :]).norm(dim=-1).reshape(b, 1, h, w)
    inside = ((z > 0) & (u >= 0) & (u <= 1) & (v >= 0) & (v <= 1)).reshape(b, 1, h, w)
    agrees = ((distance - seen_nearest).abs() <= depth_tolerance * distance) & (
        (distance - seen_linear).abs() <= depth_tolerance * distance)
    valid = (inside & agrees & torch.isfinite(target_depth)).float()
    sq = ((sampled - target_image) ** 2).mean(dim=1, keepdim=True)
    count = valid.sum(dim=(1, 2, 3))
    mse = (sq * valid).sum(dim=(1, 2, 3)) / count.clamp_min(1)
    mse = torch.where(count > 0, mse, torch.full_like(mse, float("nan")))
    return mse, count / (h * w)


class ReprojectionErrorEvaluator(Evaluator):
    """``evaluate(G)`` -> ``{"re": mean warp MSE, "re_covisible": mean co-visible fraction}``; under
    ``torch.distributed`` the latents are shared among the ranks and every rank returns the
    one-process value.

    Args:
        num_samples: latents (Carver: 1024).
        batch_size: latents rendered at a time.
        yaw_offsets: the views' yaw offsets in radians.
        around: ``'front'`` (yaw = polar = pi/2 at the sampled camera's pivot and radius, as Carver) or
            ``'sampled'`` (offsets around each sampled camera).
        pivot: ``[x, y, z]`` the point the views turn about (Carver: the generator's
            ``avg_camera_pivot``, (0, 0, 0.2) for EG3D FFHQ). Empty: the pose sampler's ``pivot`` (its
            look-at point) or ``orbit_center`` attribute when it has one, else the point of each sampled
            camera's optical axis closest to the world origin.
        depth_tolerance: relative depth agreement for a pixel to count as co-visible.
        truncation_psi: truncation of the latents.
    """

    name = "reprojection"

    def __init__(self, *, num_samples: int = 1024, batch_size: int = 8, yaw_offsets: tuple = YAW_OFFSETS,
                 around: str = "front", pivot: tuple = (), depth_tolerance: float = 0.03,
                 truncation_psi: float = 1.0) -> None:
        if around not in ("front", "sampled"):
            raise ValueError(f"reprojection option 'around' must be 'front' or 'sampled', got {around!r}")
        if len(yaw_offsets) < 2:
            raise ValueError("reprojection needs at least two yaw_offsets")
        self.num_samples = num_samples
        self.batch_size = batch_size
        self.yaw_offsets = [float(o) for o in yaw_offsets]
        self.around = around
        if len(pivot) not in (0, 3):
            raise ValueError(f"reprojection option 'pivot' must be empty or [x, y, z], got {list(pivot)}")
        self.pivot = [float(p) for p in pivot]
        self.depth_tolerance = depth_tolerance
        self.truncation_psi = truncation_psi

    def _pivot(self, generator: nn.Module, device) -> Tensor:
        if self.pivot:
            return torch.tensor(self.pivot, device=device)
        return torch.tensor(generator.pose_sampler.camera_rig().pivot, device=device)

    def evaluate(self, generator: nn.Module, *, dataset=None, device: torch.device | str = "cpu",
                 seed: int = 0) -> dict[str, float]:
        plan = BatchPlan(self.num_samples, self.batch_size)  # this rank's batches under torch.distributed
        errors, covisible = [], []
        with evaluation_mode(generator):
            for index, n in plan:
                gen = batch_generator(seed, index, device)
                z = sample_latents(generator, n, gen, device)
                base = generator.pose_sampler(n, device=device, generator=gen)
                pivot = self._pivot(generator, device)
                rig = generator.pose_sampler.camera_rig()
                centre = (rig.yaw, rig.polar)
                views = [orbit_cameras(base, offset, around=self.around, pivot=pivot, front=centre)
                         for offset in self.yaw_offsets]
                front = orbit_cameras(base, 0.0, around=self.around, pivot=pivot, front=centre)
                renders = []
                for cams in views:
                    out = render_latents(generator, z, cams, truncation_psi=self.truncation_psi, gen=gen,
                                         condition=front)
                    depth = out.depth if out.surface_depth is None else out.surface_depth
                    depth = F.interpolate(depth, size=out.image.shape[-2:], mode="nearest")
                    renders.append((out.image.float(), depth.float(), cams))
                pair_errors, pair_cov = [], []
                for (img_a, dep_a, cam_a), (img_b, dep_b, cam_b) in zip(renders[:-1], renders[1:]):
                    for tgt, src in (((img_b, dep_b, cam_b), (img_a, dep_a, cam_a)),
                                     ((img_a, dep_a, cam_a), (img_b, dep_b, cam_b))):
                        mse, cov = warp_error(*tgt, *src, depth_tolerance=self.depth_tolerance,
                                              align_corners=generator.corner_aligned(tgt[2]))
                        pair_errors.append(mse)
                        pair_cov.append(cov)
                errors.append(torch.nanmean(torch.stack(pair_errors, 1), dim=1).cpu())
                covisible.append(torch.stack(pair_cov, 1).mean(1).cpu())
        errors_all = plan.gather(errors).numpy()
        covisible_all = plan.gather(covisible)
        finite = errors_all[np.isfinite(errors_all)]
        if finite.size < errors_all.size and is_main_process():
            logger.warning("reprojection: %d of %d latents had no co-visible pixel", errors_all.size - finite.size,
                           errors_all.size)
        re = float(finite.mean()) if finite.size else math.nan
        return {"re": re, "re_covisible": float(covisible_all.mean())}
