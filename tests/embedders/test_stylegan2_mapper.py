"""The stylegan2 stochasticity mapper around core's MappingNetwork: conditioning, truncation, errors."""

import pytest
import torch

from gan3d.embedders.stochasticity_mappers.stylegan2 import StyleGAN2Mapper


def test_shapes_and_attributes_for_eg3d_conditioning():
    torch.manual_seed(0)
    mapper = StyleGAN2Mapper(z_dim=16, c_dim=25, w_dim=8, num_ws=5, num_layers=2)
    assert (mapper.z_dim, mapper.c_dim, mapper.num_ws, mapper.w_dim) == (16, 25, 5, 8)
    z, c = torch.randn(3, 16), torch.randn(3, 25)
    ws = mapper(z, c)
    assert ws.shape == (3, 5, 8)
    torch.testing.assert_close(ws[:, 0], ws[:, 4])  # one w broadcast to every layer
    assert not torch.allclose(ws, mapper(z, c + 1))  # the condition matters


def test_c_scale_and_zero_condition_follow_eg3d_mapping():
    torch.manual_seed(0)
    plain = StyleGAN2Mapper(z_dim=8, c_dim=4, w_dim=8, num_ws=2, num_layers=2)
    scaled = StyleGAN2Mapper(z_dim=8, c_dim=4, w_dim=8, num_ws=2, num_layers=2, c_scale=2.0)
    zeroed = StyleGAN2Mapper(z_dim=8, c_dim=4, w_dim=8, num_ws=2, num_layers=2, zero_condition=True)
    scaled.load_state_dict(plain.state_dict())
    zeroed.load_state_dict(plain.state_dict())
    z, c = torch.randn(2, 8), torch.randn(2, 4)
    torch.testing.assert_close(scaled(z, c), plain(z, 2 * c))
    torch.testing.assert_close(zeroed(z, c), plain(z, torch.zeros_like(c)))


def test_truncation_and_running_mean():
    torch.manual_seed(0)
    mapper = StyleGAN2Mapper(z_dim=8, w_dim=8, num_ws=4, num_layers=2)
    z = torch.randn(6, 8)
    ws = mapper(z, update_w_avg=True)
    torch.testing.assert_close(mapper.w_avg, 0.002 * ws[:, 0].mean(0), atol=1e-6, rtol=0)  # from zeros, beta 0.998
    torch.testing.assert_close(mapper(z, truncation_psi=0.0), mapper.w_avg.expand(6, 4, 8))
    cut = mapper(z, truncation_psi=0.0, truncation_cutoff=1)
    torch.testing.assert_close(cut[:, 1:], ws[:, 1:])


def test_gradients_reach_every_parameter():
    mapper = StyleGAN2Mapper(z_dim=8, c_dim=3, w_dim=8, num_ws=2, num_layers=2)
    mapper(torch.randn(4, 8), torch.randn(4, 3)).square().sum().backward()
    for name, p in mapper.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_errors():
    with pytest.raises(ValueError, match="num_ws must be positive"):
        StyleGAN2Mapper(num_ws=0)
    with pytest.raises(ValueError, match="pass c"):
        StyleGAN2Mapper(z_dim=8, c_dim=25, w_dim=8, num_ws=2, num_layers=1)(torch.randn(1, 8))
    with pytest.raises(ValueError, match="unconditional"):
        StyleGAN2Mapper(z_dim=8, w_dim=8, num_ws=2, num_layers=1)(torch.randn(1, 8), torch.randn(1, 25))


def test_embed_and_layer_features_set_the_hidden_widths():
    mapper = StyleGAN2Mapper(z_dim=8, c_dim=25, w_dim=32, num_ws=2, num_layers=2, embed_features=16, layer_features=12)
    shapes = {k: tuple(v.shape) for k, v in mapper.state_dict().items() if k.endswith("weight")}
    # StyleGAN2 MappingNetwork: embed c -> 16, fc0 (z, embed) -> 12, last layer -> w_dim.
    assert shapes == {"network.embed.weight": (16, 25), "network.fc0.weight": (12, 24), "network.fc1.weight": (32, 12)}
    assert mapper(torch.randn(3, 8), torch.randn(3, 25)).shape == (3, 2, 32)
    default = StyleGAN2Mapper(z_dim=8, c_dim=25, w_dim=32, num_ws=2, num_layers=2)
    assert default.state_dict()["network.fc0.weight"].shape == (32, 40)  # 0: w_dim, as StyleGAN2's None
    with pytest.raises(ValueError, match="embed_features"):
        StyleGAN2Mapper(embed_features=-1)
