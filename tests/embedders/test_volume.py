"""VolumeGAN feature volume: trilinear exactness on linear fields, bounds, the 3D CNN, gradients."""

import pytest
import torch

from gan3d.embedders.point_embedders.volume import (
    FeatureVolumeNetwork,
    VolumeEmbedder,
    sample_from_volume,
    trilinear_border,
)

BOUNDS = torch.tensor([[-0.5, -1.0, 0.0], [1.5, 1.0, 0.5]])
D, H, W = 3, 4, 5  # z, y, x voxel counts, all different so a swapped axis shows


def linear_field_volume(a: torch.Tensor, b: float) -> torch.Tensor:
    """``[1, 1, D, H, W]`` holding ``a . p + b`` at each voxel centre ``p`` (corner-aligned voxels span the bounds)."""
    lo, hi = BOUNDS
    z = torch.linspace(lo[2], hi[2], D).reshape(D, 1, 1)
    y = torch.linspace(lo[1], hi[1], H).reshape(1, H, 1)
    x = torch.linspace(lo[0], hi[0], W).reshape(1, 1, W)
    return (a[0] * x + a[1] * y + a[2] * z + b).reshape(1, 1, D, H, W)


def test_trilinear_lookup_is_exact_on_a_linear_field():
    torch.manual_seed(0)
    a = torch.tensor([0.7, -1.3, 2.1])
    volume = linear_field_volume(a, 0.4)
    lo, hi = BOUNDS
    pts = lo + torch.rand(1, 64, 3) * (hi - lo)
    out = sample_from_volume(volume, pts, BOUNDS)
    assert out.shape == (1, 64, 1)
    torch.testing.assert_close(out[0, :, 0], pts[0] @ a + 0.4, atol=1e-5, rtol=0)


def test_box_corners_read_corner_voxels_and_outside_reads_the_border():
    volume = torch.randn(1, 2, D, H, W)
    lo, hi = BOUNDS
    pts = torch.stack([lo, hi, torch.stack([hi[0], lo[1], hi[2]]), hi + 1.0]).unsqueeze(0)
    out = sample_from_volume(volume, pts, BOUNDS)[0]
    torch.testing.assert_close(out[0], volume[0, :, 0, 0, 0])
    torch.testing.assert_close(out[1], volume[0, :, -1, -1, -1])
    torch.testing.assert_close(out[2], volume[0, :, -1, 0, -1])  # x max, y min, z max -> [z=-1, y=0, x=-1]
    torch.testing.assert_close(out[3], volume[0, :, -1, -1, -1])  # beyond the box: border value (VolumeGAN clamps)


def test_written_out_lookup_equals_grid_sample_inside_and_outside_the_box():
    """The autograd path (gathers) and inference's F.grid_sample read the same values, also on the border."""
    torch.manual_seed(1)
    volume = torch.randn(2, 3, D, H, W)
    grid = torch.rand(2, 200, 3) * 3.0 - 1.5  # a third of the coordinates beyond [-1, 1]
    grid[0, :3] = torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0], [1.0, -1.0, 0.0]])  # exact corners and edges
    reference = torch.nn.functional.grid_sample(volume, grid.reshape(2, 1, 1, 200, 3), mode="bilinear",
                                                padding_mode="border", align_corners=True).reshape(2, 3, 200)
    torch.testing.assert_close(trilinear_border(volume, grid), reference.transpose(1, 2), atol=1e-6, rtol=0)
    lo, hi = BOUNDS
    points = lo + torch.rand(2, 50, 3) * (hi - lo)
    with torch.no_grad():
        fast = sample_from_volume(volume, points, BOUNDS)
    written = sample_from_volume(volume.requires_grad_(), points, BOUNDS)
    torch.testing.assert_close(written, fast, atol=1e-6, rtol=0)


def test_the_lookup_has_second_derivatives_for_the_path_length_penalty():
    """CUDA's grid_sampler_3d_backward has no derivative; the written-out lookup is differentiable twice
    in the volume and in the points (checked against finite differences in float64)."""
    torch.manual_seed(2)
    volume = torch.randn(1, 2, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    grid = (torch.rand(1, 6, 3, dtype=torch.float64) * 1.6 - 0.8).requires_grad_()
    assert torch.autograd.gradgradcheck(trilinear_border, (volume, grid))


def test_training_graph_has_no_grid_sampler_3d_node():
    """What CUDA lacks (a derivative of grid_sampler_3d_backward) must not be in the graph the path-length
    penalty differentiates twice: checked on the CPU by walking the autograd graph of a training lookup."""
    volume = torch.randn(1, 2, D, H, W, requires_grad=True)
    out = sample_from_volume(volume, torch.rand(1, 5, 3), BOUNDS)
    names, stack, seen = set(), [out.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        names.add(type(node).__name__)
        stack.extend(next_node for next_node, _ in node.next_functions)
    assert names and not any("GridSampler3D" in name for name in names), names


def test_embedder_forward_concatenates_volume_features_and_encoding():
    emb = VolumeEmbedder(feat_res=4, init_res=2, base_channels=4, output_channels=2, w_dim=8,
                         bounds=BOUNDS.tolist(), num_frequencies=2)
    assert emb.out_channels == 2 + 3 * (1 + 4)
    volume = torch.cat([linear_field_volume(torch.tensor([1.0, 0, 0]), 0.0),
                        linear_field_volume(torch.tensor([0, 0, 1.0]), 0.0)], dim=1)
    lo, hi = BOUNDS
    pts = (lo + torch.rand(1, 3, 4, 3) * (hi - lo))
    out = emb(pts, volume)
    assert out.shape == (1, 3, 4, emb.out_channels)
    torch.testing.assert_close(out[..., 0], pts[..., 0], atol=1e-5, rtol=0)
    torch.testing.assert_close(out[..., 1], pts[..., 2], atol=1e-5, rtol=0)
    torch.testing.assert_close(out[..., 2:5], pts)
    torch.testing.assert_close(out[..., 5:8], torch.sin(pts))


def test_stage_channels_follow_volumegan_and_end_at_output_channels():
    assert FeatureVolumeNetwork(feat_res=32, init_res=4, base_channels=256, output_channels=32,
                                w_dim=8).stage_channels == [256, 128, 64, 32]
    # Too few stages to halve down to 8: the last stage still gives output_channels.
    assert FeatureVolumeNetwork(feat_res=8, init_res=4, base_channels=64, output_channels=8,
                                w_dim=8).stage_channels == [64, 8]


def test_style_init_and_adain_normalisation():
    torch.manual_seed(0)
    net = FeatureVolumeNetwork(feat_res=4, init_res=4, base_channels=3, output_channels=5, w_dim=64)
    # kaiming leaky (a=0.2, fan_in) times 0.25 (VolumeGAN FeatureVolume.mapping_network).
    expected_std = 0.25 * (2 / (1 + 0.2 ** 2)) ** 0.5 / 64 ** 0.5
    assert abs(net.style.weight.std().item() / expected_std - 1) < 0.1
    with torch.no_grad():  # scale 1, shift 0: the output is leaky_relu(instance_norm(conv(const)))
        net.const.normal_()
        net.style.weight.zero_()
        net.style.bias.copy_(torch.cat([torch.ones(5), torch.zeros(5)]))
    out = net(torch.zeros(2, 64))
    assert out.shape == (2, 5, 4, 4, 4)
    pre = torch.where(out > 0, out, out / 0.2)  # undo the leaky ReLU
    torch.testing.assert_close(pre.mean(dim=(2, 3, 4)), torch.zeros(2, 5), atol=1e-5, rtol=0)
    torch.testing.assert_close(pre.square().mean(dim=(2, 3, 4)), torch.ones(2, 5), atol=1e-4, rtol=0)


def test_scene_shapes_and_gradients_reach_every_parameter():
    torch.manual_seed(0)
    emb = VolumeEmbedder(feat_res=8, init_res=2, base_channels=8, output_channels=4, w_dim=16, num_frequencies=1)
    ws = torch.randn(2, 3, 16, requires_grad=True)
    volume = emb.scene(ws)
    assert volume.shape == (2, 4, 8, 8, 8)
    pts = (torch.rand(2, 5, 6, 3) - 0.5) * 0.3
    emb(pts, volume).square().sum().backward()
    for name, p in emb.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert ws.grad[:, 0].abs().sum() > 0 and ws.grad[:, 1:].abs().sum() == 0  # VolumeGAN reads ws[:, 0]


def test_bad_options_and_inputs():
    with pytest.raises(ValueError, match="power of two"):
        VolumeEmbedder(feat_res=24, init_res=4)
    for bounds in ([[0, 0, 0], [1, -1, 1]], [[0, 0], [1, 1]], [[0, 0, 0], [1, 1, 1], [2, 2, 2]], "box"):
        with pytest.raises(ValueError, match="bounds must be"):
            VolumeEmbedder(bounds=bounds)
    emb = VolumeEmbedder(feat_res=4, init_res=4, base_channels=4, output_channels=2, w_dim=8)
    with pytest.raises(ValueError, match="scene must be the"):
        emb(torch.zeros(1, 2, 3, 3), None)
    with pytest.raises(ValueError, match="ws must be"):
        emb.scene(torch.zeros(1, 2, 7))


def test_defaults_are_volumegan_ffhq256_with_the_official_parameter_count():
    # genforce/volumegan FeatureVolume(feat_res=32, init_res=4, base_channels=256, output_channels=32), counted by
    # building the official network (tools/reference/volumegan_official.py): 3,440,032 parameters.
    embedder = VolumeEmbedder()
    assert sum(p.numel() for p in embedder.parameters()) == 3_440_032
    assert embedder.out_channels == 32 + 63  # the MLP's 95 input channels
    assert embedder.network.stage_channels == [256, 128, 64, 32]


def test_builds_on_the_meta_device():
    """tools/run.py builds generators on the meta device to ask their output size: nothing may read a tensor."""
    with torch.device("meta"):
        emb = VolumeEmbedder(feat_res=8, init_res=4, base_channels=8, output_channels=4, w_dim=8,
                             bounds=[[-1, -2, -3], [1, 2, 3]])
    assert emb.box.is_meta and emb.out_channels == 4 + 63
