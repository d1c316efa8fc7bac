"""EpiGRAF's tri-plane reading (plane axes in gan3d's world, align_corners) and its two-layer MLP as
options of the shared tri-plane embedder and OSG decoder."""

import math

import pytest
import torch
import torch.nn.functional as F

from gan3d.embedders.feature_decoders.osg import OSGDecoder
from gan3d.embedders.point_embedders.triplane import TriplaneEmbedder
from gan3d.embedders.point_embedders.triplane_sampling import project_onto_planes, sample_from_planes
from gan3d.embedders.stochasticity_mappers.stylegan2 import StyleGAN2Mapper

#: tools/official/epigraf_parameter_counts.py on universome/epigraf bda8d47 (FFHQ 512 generator).
OFFICIAL_EPIGRAF_GENERATOR = 28_983_507
OFFICIAL_EPIGRAF_MLP = 2_372


def test_epigraf_planes_are_epigrafs_own_planes_after_the_quarter_turn():
    """EpiGRAF projects its own coordinates onto (x_e, y_e), (x_e, z_e), (y_e, z_e); gan3d's world is its
    world turned a quarter about y: x_e = z, y_e = y, z_e = -x."""
    points = torch.randn(2, 7, 3)
    x, y, z = points.unbind(-1)
    xe, ye, ze = z, y, -x
    expected = torch.stack([torch.stack([xe, ye], -1), torch.stack([xe, ze], -1), torch.stack([ye, ze], -1)], 1)
    torch.testing.assert_close(project_onto_planes(points, "epigraf"), expected)


def test_align_corners_puts_corner_texels_on_the_cube_faces():
    planes = torch.arange(3 * 1 * 3 * 3, dtype=torch.float32).view(1, 3, 1, 3, 3)
    # box_warp 0.4: the cube [-0.2, 0.2]^3. Point (x, y, z) = (-0.2, -0.2, 0.2): in EpiGRAF's frame
    # (x_e, y_e, z_e) = (0.2, -0.2, 0.2): plane 0 reads (w=+1, h=-1) -> texel [0, 2] exactly.
    point = torch.tensor([[[-0.2, -0.2, 0.2]]])
    got = sample_from_planes(planes, point, box_warp=0.4, plane_axes="epigraf", align_corners=True)
    assert float(got[0, 0, 0, 0]) == planes[0, 0, 0, 0, 2]
    assert float(got[0, 1, 0, 0]) == planes[0, 1, 0, 2, 2]  # (x_e, z_e) = (0.2, 0.2): bottom-right
    assert float(got[0, 2, 0, 0]) == planes[0, 2, 0, 2, 0]  # (y_e, z_e) = (-0.2, 0.2): bottom-left
    edge = sample_from_planes(planes, point, box_warp=0.4, plane_axes="epigraf", align_corners=False)
    assert float(edge[0, 0, 0, 0]) == pytest.approx(planes[0, 0, 0, 0, 2] / 4)  # EG3D: half a texel outside


def test_triplane_embedder_passes_align_corners():
    torch.manual_seed(0)
    emb = TriplaneEmbedder(resolution=8, channels=2, w_dim=8, channel_base=64, channel_max=8, box_warp=0.4,
                           plane_axes="epigraf", align_corners=True)
    planes = emb.scene(torch.randn(1, emb.num_ws, 8))
    pts = torch.rand(1, 4, 3, 3) * 0.4 - 0.2
    expected = sample_from_planes(planes, pts.view(1, 12, 3), box_warp=0.4, plane_axes="epigraf",
                                  align_corners=True).mean(1)
    torch.testing.assert_close(emb(pts, planes), expected.view(1, 4, 3, 2))
    assert "align_corners=True" in repr(emb)


def test_epigraf_mlp_formula():
    """TriPlaneMLP: FC(32 -> 64, lrelu 0.2, gain sqrt 2) -> FC(64 -> 4, linear); [r, g, b, sigma]."""
    torch.manual_seed(0)
    dec = OSGDecoder(in_channels=5, hidden_dim=6, output_dim=3, hidden_activation="lrelu",
                     feature_activation="linear", density_channel="last")
    feats = torch.randn(2, 3, 4, 5)
    field = dec(feats)
    h = F.leaky_relu(feats @ (dec.hidden.weight / math.sqrt(5)).t() + dec.hidden.bias, 0.2) * math.sqrt(2)
    x = h @ (dec.output.weight / math.sqrt(6)).t() + dec.output.bias
    torch.testing.assert_close(field.density, x[..., 3:])
    torch.testing.assert_close(field.features, x[..., :3])
    with pytest.raises(ValueError, match="density_channel"):
        OSGDecoder(density_channel="middle")


def test_published_generator_count():
    """stylegan2 mapper (2 layers) + 512-px tri-plane backbone (96 channels, clamp 256) + the MLP."""
    mapper = StyleGAN2Mapper(z_dim=512, w_dim=512, num_ws=16, num_layers=2)
    embedder = TriplaneEmbedder(resolution=512, channels=32, box_warp=0.4, plane_axes="epigraf", align_corners=True,
                                conv_clamp=256.0)
    decoder = OSGDecoder(in_channels=32, hidden_dim=64, output_dim=3, hidden_activation="lrelu",
                         feature_activation="linear", density_channel="last")
    assert embedder.num_ws == 16
    assert sum(p.numel() for p in decoder.parameters()) == OFFICIAL_EPIGRAF_MLP
    total = sum(p.numel() for m in (mapper, embedder, decoder) for p in m.parameters())
    assert total == OFFICIAL_EPIGRAF_GENERATOR
