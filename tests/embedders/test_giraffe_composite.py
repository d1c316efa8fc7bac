"""GIRAFFE's mapper, compositional embedder and decoder: composition by hand, object transforms by hand,
transform priors, and the family contracts."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from gan3d.core.testing import check_contract
from gan3d.embedders.feature_decoders.giraffe_composite import GiraffeCompositeDecoder, compose_fields
from gan3d.embedders.giraffe_scene import SceneTransforms, giraffe_box_ranges, rotation_about_y, scene_transforms
from gan3d.embedders.point_embedders.giraffe_composite import GiraffeCompositeEmbedder
from gan3d.embedders.stochasticity_mappers.giraffe import GiraffeMapper

TINY = {"n_objects": 2, "object_z_dim": 4, "background_z_dim": 2}


def test_compose_fields_sums_densities_and_weights_features_by_density():
    densities = torch.tensor([[2.0], [6.0]]).view(2, 1, 1)  # two fields, one point
    features = torch.tensor([[1.0, 0.0], [0.0, 1.0]]).view(2, 1, 2)
    sigma, f = compose_fields(densities, features)
    assert torch.allclose(sigma, torch.tensor([[8.0]]))
    assert torch.allclose(f, torch.tensor([[0.25, 0.75]]))
    # No density anywhere: zero feature, no division by zero.
    sigma0, f0 = compose_fields(torch.zeros(2, 1, 1), features)
    assert sigma0.item() == 0 and torch.equal(f0, torch.zeros(1, 2))


class _AnalyticField(nn.Module):
    """sigma = a + b * x_0, features = x (3 channels), ignoring directions and codes."""

    def __init__(self, a: float, b: float) -> None:
        super().__init__()
        self.a, self.b = a, b

    def forward(self, x, d, z_shape, z_app):
        return x.clone(), self.a + self.b * x[..., :1]


def test_decoder_composes_two_analytic_fields_as_by_hand():
    dec = GiraffeCompositeDecoder(n_objects=1, object_z_dim=4, background_z_dim=2, feature_dim=3).eval()
    dec.object_field = _AnalyticField(2.0, 1.0)  # sigma_obj = 2 + x_0 inside the padded box, else 0
    dec.background_field = _AnalyticField(3.0, 0.0)  # sigma_bg = 3
    ws = GiraffeMapper(n_objects=1, object_z_dim=4, background_z_dim=2)(torch.zeros(1, 4 * 2 + 7 + 2 * 2 + 1))
    obj = torch.tensor([[0.5, 0.0, 0.0], [1.5, 0.0, 0.0], [-1.0, 1.0, 0.5]])  # object-frame points
    bg = torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    feats = torch.cat([obj, bg], dim=-1).view(1, 1, 3, 6)
    field = dec(feats, torch.tensor([0.0, 0.0, 1.0]).expand(1, 1, 3, 3), ws)
    sigma_obj = torch.tensor([2.5, 0.0, 1.0])  # the second point lies outside [-1.1, 1.1]^3
    total = sigma_obj + 3.0
    expected = (sigma_obj[:, None] * obj + 3.0 * bg) / total[:, None]
    assert torch.allclose(field.density.view(3), total)
    assert torch.allclose(field.features.view(3, 3), expected, atol=1e-6)
    per_field = torch.stack([sigma_obj, torch.full((3,), 3.0)], -1)
    assert torch.allclose(field.extras["field_densities"].view(3, 2), per_field)


def test_density_noise_only_in_training():
    dec = GiraffeCompositeDecoder(**TINY, feature_dim=3, object_hidden_dim=8, background_hidden_dim=8)
    ws = GiraffeMapper(**TINY)(torch.randn(1, GiraffeMapper(**TINY).z_dim))
    feats, dirs = torch.randn(1, 4, 5, 9) * 0.3, nn.functional.normalize(torch.randn(1, 4, 5, 3), dim=-1)
    dec.eval()
    assert torch.equal(dec(feats, dirs, ws).density, dec(feats, dirs, ws).density)
    dec.train()
    torch.manual_seed(0)
    assert not torch.equal(dec(feats, dirs, ws).density, dec(feats, dirs, ws).density)


def test_object_transform_moves_points_as_by_hand():
    # s = (2, 1, 0.5), t = (1, 0, 0), a quarter turn about +y: p = (1, 0, 1) -> p - t = (0, 0, 1)
    # -> R_y(pi/2) (0, 0, 1) = (1, 0, 0) -> / s = (0.5, 0, 0).
    transforms = SceneTransforms(
        scale=torch.tensor([[[2.0, 1.0, 0.5]]]), translation=torch.tensor([[[1.0, 0.0, 0.0]]]),
        rotation=rotation_about_y(torch.tensor([[math.pi / 2]])), background_rotation=torch.eye(3)[None])
    p = torch.tensor([1.0, 0.0, 1.0]).view(1, 1, 1, 3)
    assert torch.allclose(transforms.object_points(p).view(3), torch.tensor([0.5, 0.0, 0.0]), atol=1e-6)
    # Directions: R d / s, then unit length: d = (0, 0, 1) -> (1, 0, 0) / 2 -> (1, 0, 0).
    d = transforms.object_directions(torch.tensor([0.0, 0.0, 1.0]).view(1, 1, 1, 3))
    assert torch.allclose(d.view(3), torch.tensor([1.0, 0.0, 0.0]), atol=1e-6)


def test_rotation_about_y_is_giraffes_z_rotation_in_our_axes():
    angle = torch.tensor(0.7)
    c, s = math.cos(0.7), math.sin(0.7)
    rz = torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])  # scipy Rot.from_euler('z', 0.7)
    m = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])  # (x, y, z) -> (x, z, -y)
    assert torch.allclose(rotation_about_y(angle), m @ rz @ m.T, atol=1e-6)
    ranges = giraffe_box_ranges([0.2, 0.16, 0.17], [0.25, 0.2, 0.21], [-0.22, -0.12, 0.0], [0.22, 0.1, 0.3])
    assert ranges == {"scale_min": [0.2, 0.17, 0.16], "scale_max": [0.25, 0.21, 0.2],
                      "translation_min": [-0.22, 0.0, -0.1], "translation_max": [0.22, 0.3, 0.12]}


def test_embedder_outputs_points_in_each_frame_then_the_background():
    mapper = GiraffeMapper(**TINY, background_rotation_range=[0.25, 0.25])
    ws = mapper(torch.randn(2, mapper.z_dim))
    emb = GiraffeCompositeEmbedder(**TINY)
    points = torch.randn(2, 3, 4, 3)
    out = emb(points, emb.scene(ws))
    assert out.shape == (2, 3, 4, 9)
    tr = scene_transforms(ws, mapper.layout)
    for i in range(2):
        s, t = ws[:, i, 8:11], ws[:, i, 11:14]
        expected = torch.einsum("bij,brsj->brsi", tr.rotation[:, i], points - t[:, None, None]) / s[:, None, None]
        assert torch.allclose(out[..., 3 * i:3 * i + 3], expected, atol=1e-5)
    # Background rotated a quarter turn about +y: (x, y, z) -> (z, y, -x).
    bg = torch.stack([points[..., 2], points[..., 1], -points[..., 0]], -1)
    assert torch.allclose(out[..., 6:], bg, atol=1e-5)


def test_mapper_samples_transforms_within_the_configured_priors():
    mapper = GiraffeMapper(**TINY, scale_min=[0.2, 0.16, 0.16], scale_max=[0.25, 0.2, 0.2],
                           translation_min=[-0.22, 0.0, -0.12], translation_max=[0.22, 0.0, 0.12],
                           rotation_range=[0.4, 0.6])
    z = torch.randn(4096, mapper.z_dim) * 3  # wide draws still land inside
    ws = mapper(z)
    lay = mapper.layout
    s, t, r = ws[:, :2, lay.scale], ws[:, :2, lay.translation], ws[:, :2, lay.rotation]
    assert (s >= torch.tensor([0.2, 0.16, 0.16]) - 1e-6).all() and (s <= torch.tensor([0.25, 0.2, 0.2]) + 1e-6).all()
    assert (t >= torch.tensor([-0.22, 0.0, -0.12]) - 1e-6).all() and (t <= torch.tensor([0.22, 0.0, 0.12]) + 1e-6).all()
    assert (r >= 0.4 * 2 * math.pi - 1e-5).all() and (r <= 0.6 * 2 * math.pi + 1e-5).all()
    # fix_scale_ratio: one draw for all axes, so every scale sits at the same fraction of its range.
    frac = (s - torch.tensor([0.2, 0.16, 0.16])) / torch.tensor([0.05, 0.04, 0.04])
    assert torch.allclose(frac[..., :1].expand_as(frac), frac, atol=1e-4)
    # Standard normal z: the uniform draws cover the range (mean near the middle).
    u = (mapper(torch.randn(4096, mapper.z_dim))[:, :2, lay.rotation] / (2 * math.pi) - 0.4) / 0.2
    assert abs(u.mean().item() - 0.5) < 0.03 and u.min() < 0.01 and u.max() > 0.99
    # Codes are z's own entries; the background row has unit scale.
    assert torch.equal(ws[:, 0, :8], z[:, :8]) and torch.equal(ws[:, 2, :2], z[:, 30:32])
    assert torch.equal(ws[:, 2, lay.scale], torch.ones(4096, 3))


def test_mapper_truncation_scales_codes_only_and_edits_touch_one_object():
    mapper = GiraffeMapper(**TINY)
    z = torch.randn(3, mapper.z_dim)
    ws, ws_t = mapper(z), mapper(z, truncation_psi=0.5)
    assert torch.allclose(ws_t[..., :8], ws[..., :8] * 0.5) and torch.equal(ws_t[..., 8:], ws[..., 8:])
    edited = mapper.edit_objects(ws, 1, translation=[0.1, 0.2, 0.3], rotation=1.0)
    assert torch.equal(edited[:, 1, 11:14], torch.tensor([0.1, 0.2, 0.3]).expand(3, 3))
    assert torch.equal(edited[:, 1, 14], torch.ones(3))
    changed = (edited != ws).any(0)
    assert not changed[0].any() and not changed[2].any() and not changed[1, :11].any()
    with pytest.raises(ValueError, match="object_index"):
        mapper.edit_objects(ws, 2, rotation=0.0)
    with pytest.raises(ValueError, match="z_dim"):
        GiraffeCompositeEmbedder(n_objects=1, object_z_dim=4, background_z_dim=2).scene(ws)


@pytest.mark.parametrize("family", ["stochasticity_mapper", "point_embedder", "feature_decoder"])
def test_contracts(family):
    module = {"stochasticity_mapper": GiraffeMapper(**TINY),
              "point_embedder": GiraffeCompositeEmbedder(**TINY),
              "feature_decoder": GiraffeCompositeDecoder(**TINY, feature_dim=5, object_hidden_dim=8,
                                                         background_hidden_dim=8)}[family]
    check_contract(family, module)
