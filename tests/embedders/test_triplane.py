"""The tri-plane embedder with a tiny StyleGAN2 backbone: shapes, num_ws, sampling, gradients, errors."""

import pytest
import torch

from gan3d.embedders.point_embedders.triplane import TriplaneEmbedder
from gan3d.embedders.point_embedders.triplane_sampling import sample_from_planes

TINY = {"resolution": 16, "channels": 3, "w_dim": 16, "channel_base": 128, "channel_max": 8}


def test_scene_paints_three_planes_and_num_ws_is_the_backbones():
    torch.manual_seed(0)
    emb = TriplaneEmbedder(**TINY)
    assert emb.num_ws == emb.backbone.num_ws == 6  # 2 convs per block at 8 and 16, 1 at 4, + last toRGB
    assert emb.out_channels == 3 and emb.backbone.img_channels == 9
    ws = torch.randn(2, emb.num_ws + 2, 16)  # extra latents (for an upsampler) are ignored
    planes = emb.scene(ws)
    assert planes.shape == (2, 3, 3, 16, 16)


def test_forward_is_the_mean_of_the_three_plane_samples():
    torch.manual_seed(0)
    emb = TriplaneEmbedder(**TINY, box_warp=1.6, plane_axes="corrected")
    planes = torch.randn(2, 3, 3, 16, 16)
    pts = torch.rand(2, 4, 5, 3) - 0.5
    out = emb(pts, planes)
    expected = sample_from_planes(planes, pts.reshape(2, 20, 3), box_warp=1.6, plane_axes="corrected").mean(1)
    assert out.shape == (2, 4, 5, 3)
    torch.testing.assert_close(out, expected.reshape(2, 4, 5, 3))


def test_gradients_reach_every_backbone_parameter():
    torch.manual_seed(0)
    emb = TriplaneEmbedder(**TINY)
    ws = torch.randn(2, emb.num_ws, 16, requires_grad=True)
    pts = (torch.rand(2, 8, 6, 3) - 0.5) * 0.9
    emb(pts, emb.scene(ws)).square().sum().backward()
    for name, p in emb.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert ws.grad.abs().sum() > 0


def test_const_noise_makes_planes_deterministic():
    emb = TriplaneEmbedder(**TINY, noise_mode="const")
    ws = torch.randn(1, emb.num_ws, 16)
    torch.testing.assert_close(emb.scene(ws), emb.scene(ws))


def test_bad_options_and_inputs():
    with pytest.raises(ValueError, match="plane_axes must be one of"):
        TriplaneEmbedder(**TINY, plane_axes="fixed")
    with pytest.raises(ValueError, match="noise_mode"):
        TriplaneEmbedder(**TINY, noise_mode="off")
    with pytest.raises(ValueError, match="power of two"):
        TriplaneEmbedder(**{**TINY, "resolution": 12})
    emb = TriplaneEmbedder(**TINY)
    with pytest.raises(ValueError, match=r"needs ws \[B, >=6, 16\].*num_ws to at least 6"):
        emb.scene(torch.zeros(1, 5, 16))
    with pytest.raises(ValueError, match="scene must be planes"):
        emb(torch.zeros(1, 2, 2, 3), torch.zeros(1, 3, 4, 16, 16))


def test_backbone_fuses_modulated_convolutions_only_at_inference(monkeypatch):
    # EG3D trains with fused_modconv_default='inference_only': grouped per-sample convolutions when
    # generating, shared-weight convolutions in training; the planes are the same either way.
    import gan3d.core.layers.synthesis as synthesis

    calls = []
    original = synthesis.modulated_conv2d

    def spy(*args, fused=True, **kwargs):
        calls.append(fused)
        return original(*args, fused=fused, **kwargs)

    monkeypatch.setattr(synthesis, "modulated_conv2d", spy)
    torch.manual_seed(0)
    emb = TriplaneEmbedder(**TINY, noise_mode="const", memory_format="contiguous").double()
    ws = torch.randn(2, emb.num_ws, 16, dtype=torch.float64)
    trained = emb.train().scene(ws)
    assert calls and not any(calls)
    calls.clear()
    generated = emb.eval().scene(ws)
    assert calls and all(calls)
    torch.testing.assert_close(generated, trained, rtol=1e-10, atol=1e-10)
