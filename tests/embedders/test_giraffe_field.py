"""GIRAFFE's scene-latent mapper and field decoder: transform priors, truncation, frame edits, the
object frames by hand, and the family contracts. (Composition of the fields: tests/renderers.)"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from gan3d.core.testing import check_contract
from gan3d.core.types import ObjectFrames, RaySamples, SceneLatent
from gan3d.embedders.feature_decoders.giraffe_field import GiraffeFieldDecoder
from gan3d.embedders.giraffe_scene import giraffe_box_ranges, rotation_about_y
from gan3d.embedders.stochasticity_mappers.giraffe import GiraffeMapper

TINY = {"n_objects": 2, "object_z_dim": 4, "background_z_dim": 2}


def test_object_frame_moves_points_and_directions_as_by_hand():
    # s = (2, 1, 0.5), t = (1, 0, 0), a quarter turn about +y: p = (1, 0, 1) -> p - t = (0, 0, 1)
    # -> R_y(pi/2) (0, 0, 1) = (1, 0, 0) -> / s = (0.5, 0, 0); d = (0, 0, 1) -> (1, 0, 0) / 2 -> unit (1, 0, 0).
    frames = ObjectFrames(scale=torch.tensor([[[2.0, 1.0, 0.5]]]), translation=torch.tensor([[[1.0, 0.0, 0.0]]]),
                          rotation=rotation_about_y(torch.tensor([[math.pi / 2]])), box_padding=0.1)
    samples = RaySamples.along_rays(torch.tensor([[[1.0, 0.0, 0.0]]]), torch.tensor([[[0.0, 0.0, 1.0]]]),
                                    torch.tensor([1.0, 2.5]).view(1, 1, 2, 1))
    local = frames.instance(samples, 0)
    assert torch.allclose(local.points[0, 0, 0], torch.tensor([0.5, 0.0, 0.0]), atol=1e-6)
    assert torch.allclose(local.sample_directions[0, 0, 1], torch.tensor([1.0, 0.0, 0.0]), atol=1e-6)
    # The second point, (1, 0, 2.5), is (2.5 / 2 = 1.25, 0, 0) in the frame: outside the padded box.
    assert local.mask.view(-1).tolist() == [True, False]
    assert torch.equal(local.depths, samples.depths)  # compositing stays in world distances


def test_rotation_about_y_is_giraffes_z_rotation_in_our_axes():
    angle = torch.tensor(0.7)
    c, s = math.cos(0.7), math.sin(0.7)
    rz = torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])  # scipy Rot.from_euler('z', 0.7)
    m = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])  # (x, y, z) -> (x, z, -y)
    assert torch.allclose(rotation_about_y(angle), m @ rz @ m.T, atol=1e-6)
    ranges = giraffe_box_ranges([0.2, 0.16, 0.17], [0.25, 0.2, 0.21], [-0.22, -0.12, 0.0], [0.22, 0.1, 0.3])
    assert ranges == {"scale_min": [0.2, 0.17, 0.16], "scale_max": [0.25, 0.21, 0.2],
                      "translation_min": [-0.22, 0.0, -0.1], "translation_max": [0.22, 0.3, 0.12]}


def test_mapper_samples_transforms_within_the_configured_priors():
    mapper = GiraffeMapper(**TINY, scale_min=[0.2, 0.16, 0.16], scale_max=[0.25, 0.2, 0.2],
                           translation_min=[-0.22, 0.0, -0.12], translation_max=[0.22, 0.0, 0.12],
                           rotation_range=[0.4, 0.6], background_rotation_range=[0.25, 0.25])
    z = torch.randn(4096, mapper.z_dim) * 3  # wide draws still land inside
    latent = mapper(z)
    frames = latent.frames["main"]
    s, t = frames.scale, frames.translation
    assert (s >= torch.tensor([0.2, 0.16, 0.16]) - 1e-6).all() and (s <= torch.tensor([0.25, 0.2, 0.2]) + 1e-6).all()
    assert (t >= torch.tensor([-0.22, 0.0, -0.12]) - 1e-6).all() and (t <= torch.tensor([0.22, 0.0, 0.12]) + 1e-6).all()
    angle = torch.atan2(frames.rotation[..., 0, 2], frames.rotation[..., 0, 0]) % (2 * math.pi)  # R_y: [0, 2] = sin
    assert (angle >= 0.4 * 2 * math.pi - 1e-4).all() and (angle <= 0.6 * 2 * math.pi + 1e-4).all()
    # fix_scale_ratio: one draw for all axes, so every scale sits at the same fraction of its range.
    frac = (s - torch.tensor([0.2, 0.16, 0.16])) / torch.tensor([0.05, 0.04, 0.04])
    assert torch.allclose(frac[..., :1].expand_as(frac), frac, atol=1e-4)
    # Codes are z's own entries: object 0's shape code is z[:, :4], its appearance z[:, 4:8]; the background's
    # follow the objects' 2 * 15 entries. The background frame only rotates, a quarter turn here.
    codes = latent.codes["main"]
    assert torch.equal(codes[:, 0, 0], z[:, :4]) and torch.equal(codes[:, 0, 1], z[:, 4:8])
    assert torch.equal(latent.codes["background"][:, 0, 0], z[:, 30:32])
    bg = latent.frames["background"]
    assert torch.equal(bg.scale, torch.ones(4096, 1, 3)) and bg.box_padding is None
    assert torch.allclose(bg.rotation[0, 0], rotation_about_y(torch.tensor(math.pi / 2)), atol=1e-6)
    assert latent.frames["main"].box_padding == 0.1


def test_mapper_truncation_scales_codes_only_and_frame_edits_touch_one_object():
    mapper = GiraffeMapper(**TINY)
    z = torch.randn(3, mapper.z_dim)
    latent, truncated = mapper(z), mapper(z, truncation_psi=0.5)
    assert torch.allclose(truncated.codes["main"], latent.codes["main"] * 0.5)
    assert torch.allclose(truncated.codes["background"], latent.codes["background"] * 0.5)
    assert torch.equal(truncated.frames["main"].translation, latent.frames["main"].translation)
    edited = latent.with_frame("main", 1, translation=[0.1, 0.2, 0.3], rotation=rotation_about_y(torch.tensor(1.0)))
    assert torch.equal(edited.frames["main"].translation[:, 1], torch.tensor([0.1, 0.2, 0.3]).expand(3, 3))
    assert torch.equal(edited.frames["main"].translation[:, 0], latent.frames["main"].translation[:, 0])
    assert torch.equal(edited.codes["main"], latent.codes["main"])
    with pytest.raises(ValueError, match="instance index"):
        latent.with_frame("main", 2, translation=[0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="positive"):
        latent.with_frame("main", 0, scale=[0.0, 1.0, 1.0])
    # Batch operations: indexing, repeating and concatenating act on every tensor.
    both = SceneLatent.cat([latent[0], latent[2]])
    assert both.batch_size == 2 and torch.equal(both.codes["main"][1], latent.codes["main"][2])
    assert latent[1].repeat(4).frames["main"].rotation.shape == (4, 2, 3, 3)


def test_field_decoder_reads_its_instance_codes_and_refuses_other_latents():
    dec = GiraffeFieldDecoder(w_dim=4, hidden_dim=8, n_blocks=3, skips=[1], feature_dim=5)
    points, dirs = torch.randn(2, 3, 4, 3), nn.functional.normalize(torch.randn(2, 3, 4, 3), dim=-1)
    codes = torch.randn(2, 2, 4)
    field = dec(points, dirs, codes)
    assert field.features.shape == (2, 3, 4, 5) and field.density.shape == (2, 3, 4, 1)
    # The appearance code changes the features only: the density depends on the shape code alone.
    other = codes.clone()
    other[:, 1] += 1.0
    again = dec(points, dirs, other)
    assert torch.equal(again.density, field.density) and not torch.allclose(again.features, field.features)
    with pytest.raises(ValueError, match=r"\[B, 2, 4\]"):
        dec(points, dirs, torch.randn(2, 3, 4))
    with pytest.raises(ValueError, match="in_channels 3"):
        GiraffeFieldDecoder(in_channels=9)


@pytest.mark.parametrize("family", ["stochasticity_mapper", "feature_decoder"])
def test_contracts(family):
    module = {"stochasticity_mapper": GiraffeMapper(**TINY),
              "feature_decoder": GiraffeFieldDecoder(w_dim=4, hidden_dim=8, n_blocks=3, feature_dim=5)}[family]
    check_contract(family, module)
