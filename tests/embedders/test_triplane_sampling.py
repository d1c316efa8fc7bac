"""Tri-plane projection and bilinear sampling against hand-computed values (EG3D renderer.py math)."""

import pytest
import torch
import torch.nn.functional as F

from gan3d.embedders.point_embedders.triplane_sampling import project_onto_planes, sample_from_planes

H, W = 4, 8  # non-square, so a swapped width/height shows


def ramp_planes() -> torch.Tensor:
    """``[1, 3, 6, H, W]``: plane p holds, in channels 2p and 2p+1, the normalized coordinate of each
    pixel centre along the width and along the height (align_corners=False: ``(2j + 1) / W - 1``).
    Bilinear sampling of such a linear ramp returns the sampling coordinate exactly."""
    u = ((2 * torch.arange(W) + 1) / W - 1).expand(H, W)
    v = ((2 * torch.arange(H) + 1) / H - 1).unsqueeze(1).expand(H, W)
    planes = torch.zeros(1, 3, 6, H, W)
    for p in range(3):
        planes[0, p, 2 * p] = u
        planes[0, p, 2 * p + 1] = v
    return planes


def test_projection_pairs_per_mode():
    pts = torch.tensor([[[0.1, 0.2, 0.3]]])
    official = project_onto_planes(pts, "official")[0, :, 0]
    corrected = project_onto_planes(pts, "corrected")[0, :, 0]
    torch.testing.assert_close(official, torch.tensor([[0.1, 0.2], [0.1, 0.3], [0.3, 0.1]]))
    torch.testing.assert_close(corrected, torch.tensor([[0.1, 0.2], [0.2, 0.3], [0.3, 0.1]]))


def test_official_projection_equals_eg3d_inverse_matrix_product():
    # EG3D's generate_planes() axis matrices; project_onto_planes keeps (p @ inv(M))[:2].
    mats = torch.tensor([[[1., 0, 0], [0, 1, 0], [0, 0, 1]],
                         [[1., 0, 0], [0, 0, 1], [0, 1, 0]],
                         [[0., 0, 1], [1, 0, 0], [0, 1, 0]]])
    pts = torch.randn(2, 7, 3)
    expected = torch.stack([(pts @ torch.linalg.inv(m))[..., :2] for m in mats], dim=1)
    torch.testing.assert_close(project_onto_planes(pts, "official"), expected)


@pytest.mark.parametrize("mode, pick", [("official", [0, 1, 0, 2, 2, 0]), ("corrected", [0, 1, 1, 2, 2, 0])])
def test_ramp_planes_return_projected_coordinates(mode, pick):
    torch.manual_seed(0)
    pts = (torch.rand(1, 50, 3) * 2 - 1) * 0.7  # inside every plane's interior (|v| <= 1 - 1/H)
    out = sample_from_planes(ramp_planes(), pts, box_warp=2.0, plane_axes=mode)  # [1, 3, M, 6]
    assert out.shape == (1, 3, 50, 6)
    mean = out.mean(1)[0]
    torch.testing.assert_close(mean, pts[0][:, pick] / 3, atol=1e-6, rtol=0)


def test_box_warp_scales_world_points():
    pts = torch.tensor([[[0.3, -0.2, 0.1]]])
    out = sample_from_planes(ramp_planes(), pts, box_warp=1.0).mean(1)[0, 0]
    x, y, z = 0.6, -0.4, 0.2  # 2 / box_warp = 2
    torch.testing.assert_close(out, torch.tensor([x, y, x, z, z, x]) / 3, atol=1e-6, rtol=0)


def test_pixel_centre_reads_pixel_value_exactly():
    planes = torch.randn(1, 3, 2, H, W)
    i, j = 2, 5
    u, v = (2 * j + 1) / W - 1, (2 * i + 1) / H - 1
    pts = torch.tensor([[[u, v, 0.0]]])  # plane 0 (x, y) hits pixel (i, j) at its centre
    out = sample_from_planes(planes, pts, box_warp=2.0)
    torch.testing.assert_close(out[0, 0, 0], planes[0, 0, :, i, j])


@pytest.mark.parametrize("point, official, corrected", [
    ((0.0, 0.0, 0.0), 1.0, 1.0),          # centre of every plane
    ((1.0, 1.0, 1.0), 0.25, 0.25),        # the planes' corner: a quarter of the footprint is inside
    ((1.0, 0.0, 0.0), 0.5, 2 / 3),        # x at the edge of every plane that sees x (not of yz)
    ((0.0, 1.0, 0.0), 5 / 6, 2 / 3),      # y reaches the edge of plane 0, and of plane 1 only when corrected
    ((1.5, 0.0, 0.0), 0.0, 1 / 3),        # outside along x: zero padding, except on the yz plane
    ((1.5, -1.5, 1.5), 0.0, 0.0),         # outside the cube: zeros everywhere
])
def test_constant_planes_at_corners_edges_and_centre(point, official, corrected):
    planes = torch.ones(1, 3, 1, H, W)
    pts = torch.tensor([[point]])
    got_official = sample_from_planes(planes, pts, box_warp=2.0, plane_axes="official").mean(1)
    got_corrected = sample_from_planes(planes, pts, box_warp=2.0, plane_axes="corrected").mean(1)
    torch.testing.assert_close(got_official.reshape(()), torch.tensor(official))
    torch.testing.assert_close(got_corrected.reshape(()), torch.tensor(corrected))


def test_gradients_reach_planes_and_points():
    planes = torch.randn(2, 3, 4, H, W, requires_grad=True)
    pts = (torch.rand(2, 9, 3) - 0.5).requires_grad_(True)
    sample_from_planes(planes, pts, box_warp=2.0).square().sum().backward()
    assert planes.grad is not None and planes.grad.abs().sum() > 0
    assert pts.grad is not None and pts.grad.abs().sum() > 0


def test_bad_inputs_say_what_is_wrong():
    with pytest.raises(ValueError, match="plane_axes must be one of"):
        project_onto_planes(torch.zeros(1, 2, 3), "eg3d")
    with pytest.raises(ValueError, match=r"planes must be \[N, 3, C, H, W\]"):
        sample_from_planes(torch.zeros(1, 2, 4, H, W), torch.zeros(1, 2, 3))
    with pytest.raises(ValueError, match=r"points must be \[N, M, 3\]"):
        sample_from_planes(torch.zeros(1, 3, 4, H, W), torch.zeros(2, 2, 3))
    with pytest.raises(ValueError, match="reduce must be None or 'mean'"):
        sample_from_planes(torch.zeros(1, 3, 4, H, W), torch.zeros(1, 2, 3), reduce="sum")


@pytest.mark.parametrize("batch", [1, 2])
def test_channels_last_planes_sample_the_same_values_and_gradients(batch):
    """Planes from a channels_last backbone are sampled as they lie; values and gradients equal
    grid_sample on the plain planes."""
    torch.manual_seed(7)
    feats = torch.randn(batch, 3 * 4, 8, 8)
    points = (torch.rand(batch, 50, 3) - 0.5) * 1.3  # some outside the box: zero padding
    expected = F.grid_sample(feats.reshape(batch * 3, 4, 8, 8),
                             project_onto_planes(points * 2.0).reshape(batch * 3, 1, 50, 2),
                             align_corners=False).reshape(batch, 3, 4, 50).transpose(-1, -2)
    for layout in (torch.contiguous_format, torch.channels_last):
        planes = feats.clone(memory_format=layout).requires_grad_()
        out = sample_from_planes(planes.view(batch, 3, 4, 8, 8), points)
        torch.testing.assert_close(out, expected)
        out.square().sum().backward()
        if layout is torch.contiguous_format:
            reference_grad = planes.grad
        else:
            torch.testing.assert_close(planes.grad, reference_grad)


@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_mean_over_planes_equals_the_mean_of_the_planes(batch, layout):
    """reduce='mean' (averaged in grid_sample's layout) gives EG3D's mean over the three planes, values
    and gradients, in float64 to the last bits."""
    torch.manual_seed(8)
    feats = torch.randn(batch, 3 * 5, 8, 8, dtype=torch.float64).contiguous(memory_format=layout)
    points = (torch.rand(batch, 40, 3, dtype=torch.float64) - 0.5) * 1.3
    a = feats.clone(memory_format=layout).requires_grad_()
    b = feats.clone(memory_format=layout).requires_grad_()
    expected = sample_from_planes(a.view(batch, 3, 5, 8, 8), points).mean(1)
    out = sample_from_planes(b.view(batch, 3, 5, 8, 8), points, reduce="mean")
    assert out.shape == (batch, 40, 5)
    torch.testing.assert_close(out, expected, rtol=1e-14, atol=1e-14)
    weights = torch.randn_like(expected)
    (expected * weights).sum().backward()
    (out * weights).sum().backward()
    torch.testing.assert_close(b.grad, a.grad, rtol=1e-14, atol=1e-14)
