"""pi-GAN mapping network: ws layout, init, truncation, running mean, errors."""

import pytest
import torch

from gan3d.embedders.stochasticity_mappers.pigan import PiGANMappingNetwork


def small(**kw):
    return PiGANMappingNetwork(**{"z_dim": 16, "hidden_dim": 32, "num_ws": 3, "film_dim": 8, "w_avg_samples": 500,
                                  **kw})


def test_default_shapes_follow_pigan():
    mapper = PiGANMappingNetwork(w_avg_samples=0)
    assert (mapper.z_dim, mapper.c_dim, mapper.num_ws, mapper.w_dim) == (256, 0, 9, 512)
    assert mapper.network[-1].out_features == 2 * 9 * 256
    assert mapper(torch.randn(2, 256)).shape == (2, 9, 512)


def test_ws_packs_frequencies_then_phase_shifts_per_layer():
    torch.manual_seed(0)
    mapper = small()
    z = torch.randn(4, 16)
    raw = mapper.network(z)  # pi-GAN: [all frequencies | all phase shifts]
    freqs, phases = raw[:, : 3 * 8], raw[:, 3 * 8:]
    ws = mapper(z)
    for i in range(3):
        torch.testing.assert_close(ws[:, i, :8], freqs[:, i * 8:(i + 1) * 8])
        torch.testing.assert_close(ws[:, i, 8:], phases[:, i * 8:(i + 1) * 8])


def test_kaiming_leaky_init_and_quarter_last_layer():
    torch.manual_seed(0)
    mapper = PiGANMappingNetwork(z_dim=256, hidden_dim=256, num_ws=4, film_dim=64, w_avg_samples=0)
    gain = (2 / (1 + 0.2 ** 2)) ** 0.5
    linears = [m for m in mapper.network if isinstance(m, torch.nn.Linear)]
    for layer in linears[:-1]:
        assert abs(layer.weight.std().item() / (gain / 256 ** 0.5) - 1) < 0.05
    assert abs(linears[-1].weight.std().item() / (0.25 * gain / 256 ** 0.5) - 1) < 0.05
    assert all(isinstance(m, torch.nn.LeakyReLU) and m.negative_slope == 0.2
               for m in mapper.network if not isinstance(m, torch.nn.Linear))


def test_truncation_to_w_avg():
    torch.manual_seed(0)
    mapper = small()
    z = torch.randn(3, 16)
    ws = mapper(z)
    torch.testing.assert_close(mapper(z, truncation_psi=0.0), mapper.w_avg.expand(3, -1, -1))
    half = mapper(z, truncation_psi=0.5, truncation_cutoff=2)
    torch.testing.assert_close(half[:, :2], mapper.w_avg[:2] + 0.5 * (ws[:, :2] - mapper.w_avg[:2]))
    torch.testing.assert_close(half[:, 2:], ws[:, 2:])


def test_w_avg_is_the_mean_over_draws_and_tracks_a_running_mean():
    torch.manual_seed(0)
    mapper = small(w_avg_samples=0)
    assert mapper.w_avg.abs().sum() == 0
    gen = torch.Generator().manual_seed(3)
    avg = mapper.estimate_w_avg(2000, generator=gen).clone()
    z = torch.randn(2000, 16, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(avg, mapper(z).mean(0), atol=1e-5, rtol=0)
    # update_w_avg: w_avg <- beta * w_avg + (1 - beta) * batch mean (StyleGAN2's w_avg_beta).
    z2 = torch.randn(5, 16)
    ws = mapper(z2, update_w_avg=True)
    torch.testing.assert_close(mapper.w_avg, 0.995 * avg + 0.005 * ws.detach().mean(0), atol=1e-6, rtol=0)


def test_construction_estimates_w_avg_without_drawing_from_the_global_rng():
    torch.manual_seed(1)
    plain = small(w_avg_samples=0)
    after_plain = torch.rand(3)
    torch.manual_seed(1)
    estimated = small(w_avg_samples=300)
    after_estimated = torch.rand(3)
    torch.testing.assert_close(after_plain, after_estimated)
    torch.testing.assert_close(plain.network[0].weight, estimated.network[0].weight)
    assert estimated.w_avg.abs().sum() > 0


def test_gradients_reach_every_parameter():
    mapper = small()
    mapper(torch.randn(4, 16)).square().sum().backward()
    for name, p in mapper.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_errors():
    with pytest.raises(ValueError, match="num_ws must be positive"):
        small(num_ws=0)
    with pytest.raises(ValueError, match="w_avg_beta"):
        small(w_avg_beta=1.0)
    mapper = small()
    with pytest.raises(ValueError, match=r"z must be \[B, 16\]"):
        mapper(torch.randn(2, 15))
    with pytest.raises(ValueError, match="unconditional"):
        mapper(torch.randn(2, 16), torch.randn(2, 25))
