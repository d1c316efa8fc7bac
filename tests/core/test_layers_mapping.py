"""Mapping network: input normalisation, w_avg tracking and truncation (StyleGAN sec. 2, 3)."""

import pytest
import torch

from gan3d.core.layers import MappingNetwork


def make(**kwargs):
    torch.manual_seed(0)
    return MappingNetwork(16, 25, 8, 5, num_layers=2, **kwargs)


def test_shapes_and_z_normalisation():
    net = make()
    z, c = torch.randn(3, 16), torch.randn(3, 25)
    ws = net(z, c)
    assert ws.shape == (3, 5, 8)
    assert torch.equal(ws[:, 0], ws[:, 4])  # one w broadcast to every layer
    torch.testing.assert_close(net(10 * z, c), ws)  # z is normalised to unit second moment
    assert not torch.allclose(net(z, torch.randn(3, 25)), ws)  # the condition matters


def test_truncation_psi_zero_one_and_cutoff():
    net = make()
    with torch.no_grad():
        net.w_avg.normal_()
    z, c = torch.randn(4, 16), torch.randn(4, 25)
    ws = net(z, c)
    torch.testing.assert_close(net(z, c, truncation_psi=0.0), net.w_avg.expand(4, 5, 8), atol=0, rtol=0)
    torch.testing.assert_close(net(z, c, truncation_psi=1.0), ws, atol=0, rtol=0)
    cut = net(z, c, truncation_psi=0.5, truncation_cutoff=2)
    torch.testing.assert_close(cut[:, :2], net.w_avg + 0.5 * (ws[:, :2] - net.w_avg))
    torch.testing.assert_close(cut[:, 2:], ws[:, 2:], atol=0, rtol=0)


def test_w_avg_updates_with_beta_only_when_asked():
    net = make(w_avg_beta=0.9)
    with torch.no_grad():
        net.w_avg.fill_(1.0)
    z, c = torch.randn(6, 16), torch.randn(6, 25)
    net(z, c)
    assert torch.all(net.w_avg == 1.0)
    w = net(z, c)[:, 0]
    net(z, c, update_w_avg=True)
    torch.testing.assert_close(net.w_avg, 0.9 * torch.ones(8) + 0.1 * w.mean(dim=0))


def test_label_only_mapping_without_broadcast_or_w_avg():
    net = MappingNetwork(0, 25, 32, None, w_avg_beta=None)
    assert not hasattr(net, "w_avg") and net(None, torch.randn(2, 25)).shape == (2, 32)
    with pytest.raises(ValueError, match="truncation needs w_avg"):
        net(None, torch.randn(2, 25), truncation_psi=0.5)


def test_bad_inputs_are_reported():
    net = make()
    with pytest.raises(ValueError, match=r"c must be \[B, 25\]"):
        net(torch.randn(2, 16))
    with pytest.raises(ValueError, match=r"z must be \[B, 16\]"):
        net(torch.randn(2, 15), torch.randn(2, 25))


def test_eg3d_mapping_parameter_count():
    # EG3D: z 512, c 25, w 512, --map-depth 2 (train.py). embed 25*512+512, fc0 (512+512)*512+512, fc1 512*512+512.
    net = MappingNetwork(512, 25, 512, 14, num_layers=2)
    expected = (25 * 512 + 512) + (1024 * 512 + 512) + (512 * 512 + 512)
    assert sum(p.numel() for p in net.parameters()) == expected == 800768
