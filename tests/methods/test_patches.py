"""Patch geometry: the corner-aligned grid, real patches cut through it, the NDC patch as Generator v2's
PatchParams, and the cropped camera that renders the same patch (checked against GRAF's construction:
bilinear interpolation of the full-image rays)."""

import math

import pytest
import torch
import torch.nn.functional as F

from gan3d.core.cameras import fov_to_intrinsics, look_at, pixel_rays, spherical_origin
from gan3d.core.types import Cameras
from gan3d.methods.patches import crop_cameras, cut_patches, ndc_patch_params, ndc_to_image, patch_grid


def _cameras(batch: int, principal=(0.5, 0.5)) -> Cameras:
    yaw = torch.linspace(1.2, 1.9, batch)
    polar = torch.linspace(1.4, 1.7, batch)
    c2w = look_at(spherical_origin(yaw, polar, 2.0))
    k = fov_to_intrinsics(30.0, batch)
    k[:, 0, 2], k[:, 1, 2] = principal
    return Cameras(c2w, k)


def test_grid_is_corner_aligned_and_row_major():
    grid = patch_grid(torch.tensor([0.5, 1.0]), torch.tensor([[0.25, -0.5], [0.0, 0.0]]), 3)
    assert grid.shape == (2, 3, 3, 2)
    torch.testing.assert_close(grid[0, :, :, 0], torch.tensor([[-0.25, 0.25, 0.75]] * 3))  # x along columns
    torch.testing.assert_close(grid[0, :, 0, 1], torch.tensor([-1.0, -0.5, 0.0]))  # y along rows
    torch.testing.assert_close(grid[1, 0, 0], torch.tensor([-1.0, -1.0]))
    torch.testing.assert_close(grid[1, 2, 2], torch.tensor([1.0, 1.0]))


def test_real_patches_sample_pixel_centres():
    w = 5
    cols = torch.arange(w, dtype=torch.float32).expand(1, 1, w, w)
    rows = cols.transpose(-1, -2)
    image = torch.cat([cols, rows], 1).repeat(2, 1, 1, 1)
    full = cut_patches(image, torch.ones(2), torch.zeros(2, 2), w)
    torch.testing.assert_close(full, image)  # scale 1, centred, K = W: the image itself
    # s = 0.5 about (0.5, -0.5): x in [0, 1] -> columns 2..4, y in [-1, 0] -> rows 0..2.
    patch = cut_patches(image, torch.tensor([0.5, 0.25]), torch.tensor([[0.5, -0.5], [0.0, 0.0]]), 3)
    torch.testing.assert_close(patch[0, 0, 0], torch.tensor([2.0, 3.0, 4.0]))
    torch.testing.assert_close(patch[0, 1, :, 0], torch.tensor([0.0, 1.0, 2.0]))
    torch.testing.assert_close(patch[1, 0, 1], torch.tensor([1.5, 2.0, 2.5]))  # bilinear between pixels


def test_crop_of_the_whole_image_is_the_camera_itself():
    cams = _cameras(3, principal=(0.5 + 0.5 / 16, 0.47))
    same = crop_cameras(cams, torch.ones(3), torch.zeros(3, 2), image_resolution=16, patch_resolution=16)
    torch.testing.assert_close(same.intrinsics, cams.intrinsics)
    torch.testing.assert_close(same.cam2world, cams.cam2world)


def _graf_patch_rays(cams: Cameras, scales, centres, w: int, k: int) -> torch.Tensor:
    """GRAF's patch rays: grid_sample(align_corners=True) of the full image's (unnormalized, camera-space)
    ray directions at the patch grid -- exact for a pinhole, whose directions are affine in the pixel."""
    b = cams.batch_size
    v, u = torch.meshgrid((torch.arange(w) + 0.5) / w, (torch.arange(w) + 0.5) / w, indexing="ij")
    kk = cams.intrinsics
    dirs = torch.stack([(u - kk[:, 0, 2, None, None]) / kk[:, 0, 0, None, None],
                        (v - kk[:, 1, 2, None, None]) / kk[:, 1, 1, None, None], torch.ones(b, w, w)], 1)
    interpolated = F.grid_sample(dirs, patch_grid(scales, centres, k), align_corners=True)  # [B, 3, K, K]
    return F.normalize(interpolated.flatten(2).transpose(1, 2) @ cams.cam2world[:, :3, :3].transpose(1, 2), dim=-1)


def _random_patches(b: int):
    scales = torch.rand(b) * 0.7 + 0.3
    centres = (torch.rand(b, 2) * 2 - 1) * (1 - scales).unsqueeze(-1)
    return scales, centres


@pytest.mark.parametrize("image_resolution, patch_resolution", [(16, 5), (64, 32), (9, 9)])
def test_cropped_rays_equal_interpolated_full_image_rays(image_resolution, patch_resolution):
    torch.manual_seed(0)
    b, w, k = 4, image_resolution, patch_resolution
    cams = _cameras(b, principal=(0.5 + 0.5 / w, 0.5 + 0.5 / w))  # GRAF's half-pixel principal point
    scales, centres = _random_patches(b)
    expected = _graf_patch_rays(cams, scales, centres, w, k)
    # Generator v2: the NDC patch as PatchParams, the camera cropped with align_corners=True.
    patch_cams = ndc_patch_params(scales, centres, image_resolution=w).cameras(cams)
    assert patch_cams.align_corners
    _, got = pixel_rays(patch_cams.cam2world, patch_cams.intrinsics, (k, k), align_corners=True)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    _, phase_a = pixel_rays(*(lambda c: (c.cam2world, c.intrinsics))(crop_cameras(
        cams, scales, centres, image_resolution=w, patch_resolution=k)), (k, k))
    torch.testing.assert_close(phase_a, expected, rtol=1e-5, atol=1e-5)


def test_ndc_patch_params_hand_values():
    """W = 5: NDC -1 / +1 are the centres of columns 0 and 4, u = 0.1 and 0.9. The patch s = 0.5, c = 0.5 spans
    x in [0, 1] -> columns 2..4 -> u in [0.5, 0.9]: offset 0.5, scale 0.4 = s (W - 1) / W."""
    p = ndc_patch_params(torch.tensor([0.5]), torch.tensor([[0.5, -0.5]]), image_resolution=5)
    torch.testing.assert_close(p.offsets, torch.tensor([[0.5, 0.1]]))
    torch.testing.assert_close(p.scales, torch.tensor([0.4]))
    torch.testing.assert_close(p.coordinates(3)[0, 0, :, 0], torch.tensor([0.5, 0.7, 0.9]))
    torch.testing.assert_close(ndc_to_image(torch.tensor([-1.0, 0.0, 1.0]), None), torch.tensor([0.0, 0.5, 1.0]))
    edges = ndc_patch_params(torch.tensor([0.5]), torch.tensor([[0.5, -0.5]]), image_resolution=None)
    torch.testing.assert_close(edges.offsets, torch.tensor([[0.5, 0.0]]))
    torch.testing.assert_close(edges.scales, torch.tensor([0.5]))
    with pytest.raises(ValueError, match="outside the image"):
        ndc_patch_params(torch.tensor([0.5]), torch.tensor([[0.6, 0.0]]), image_resolution=8)


@pytest.mark.parametrize("image_resolution, patch_resolution", [(16, 5), (64, 32)])
def test_patch_params_cut_equals_grid_sample_at_the_ndc_grid(image_resolution, patch_resolution):
    """GRAF's ImgToPatch: grid_sample(align_corners=True) of the full-resolution real at x_j; v2's PatchParams.cut
    samples the same points."""
    torch.manual_seed(1)
    b, w, k = 6, image_resolution, patch_resolution
    images = torch.randn(b, 3, w, w)
    scales, centres = _random_patches(b)
    expected = cut_patches(images, scales, centres, k)
    params = ndc_patch_params(scales, centres, image_resolution=w)
    # The same pixel positions (column = u W - 0.5 vs (x + 1) / 2 (W - 1)) up to float32 rounding ...
    pixels = params.coordinates(k) * w - 0.5
    torch.testing.assert_close(pixels, (patch_grid(scales, centres, k) + 1) / 2 * (w - 1), rtol=0, atol=w * 1e-6)
    # ... so the same bilinear samples, up to that rounding times the noise image's slope (a few per pixel).
    torch.testing.assert_close(params.cut(images, k), expected, rtol=0, atol=w * 1e-6 * 8)


def test_patches_outside_the_image_are_refused():
    with pytest.raises(ValueError, match="outside the image"):
        patch_grid(torch.tensor([0.5]), torch.tensor([[0.6, 0.0]]), 4)
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        patch_grid(torch.tensor([1.5]), torch.zeros(1, 2), 4)
    with pytest.raises(ValueError, match="at least 2"):
        patch_grid(torch.tensor([0.5]), torch.zeros(1, 2), 1)
    with pytest.raises(ValueError, match="one patch per camera"):
        crop_cameras(_cameras(2), torch.ones(3), torch.zeros(3, 2), image_resolution=8, patch_resolution=4)
    with pytest.raises(ValueError, match="one patch each"):
        cut_patches(torch.zeros(2, 3, 8, 8), torch.ones(3), torch.zeros(3, 2), 4)
    assert math.isfinite(float(patch_grid(torch.tensor([1.0]), torch.zeros(1, 2), 2).sum()))
