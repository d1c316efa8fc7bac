"""VolumeGAN's point MLP (``feature_decoder`` ``volumegan_mlp``)."""

import math

import pytest
import torch
import torch.nn.functional as F

from gan3d.core.registry import get_registry
from gan3d.core.testing import check_contract
from gan3d.embedders.feature_decoders.volumegan_mlp import VolumeGANDecoder

#: genforce/volumegan NeRFSynthesisNetwork's MLP at the FFHQ config (fg_mlps + fg_density + fg_color), counted by
#: building the official network (tools/reference/volumegan_official.py).
OFFICIAL_FFHQ256_PARAMETERS = 796_512


def test_parameter_count_equals_the_official_ffhq256_mlp():
    decoder = VolumeGANDecoder()
    assert sum(p.numel() for p in decoder.parameters()) == OFFICIAL_FFHQ256_PARAMETERS
    assert (decoder.num_ws, decoder.ws_from_previous, decoder.out_channels) == (4, 1, 512)


def test_hand_computed_single_layer():
    """One modulated layer: styles s = A w + 1-init bias, weights W s demodulated, leaky ReLU times sqrt(2),
    then plain equalized-lr heads."""
    torch.manual_seed(0)
    dec = VolumeGANDecoder(in_channels=3, hidden_dim=2, num_layers=1, output_dim=3, w_dim=4)
    with torch.no_grad():
        for p in dec.parameters():
            p.copy_(torch.randn_like(p))
    x = torch.randn(1, 2, 1, 3)
    w = torch.randn(1, 1, 4)
    field = dec(x, None, w)
    layer = dec.layers[0]
    style = w[0, 0] @ layer.affine.weight.T / math.sqrt(4) + layer.affine.bias
    weight = layer.weight[:, :, 0, 0] * style  # [O, I]
    weight = weight / weight.square().sum(1, keepdim=True).add(1e-8).sqrt()
    hidden = F.leaky_relu(x[0, :, 0] @ weight.T + layer.bias, 0.2) * math.sqrt(2)  # [2 points, 2]
    density = hidden @ dec.density_head.weight.T / math.sqrt(2) + dec.density_head.bias
    feats = hidden @ dec.feature_head.weight.T / math.sqrt(2) + dec.feature_head.bias
    torch.testing.assert_close(field.density[0, :, 0], density, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(field.features[0, :, 0], feats, atol=1e-5, rtol=1e-5)


def test_layer_i_reads_row_i_and_every_row_matters():
    torch.manual_seed(0)
    dec = VolumeGANDecoder(in_channels=5, hidden_dim=8, num_layers=3, output_dim=4, w_dim=6)
    ws = torch.randn(2, 3, 6, requires_grad=True)
    field = dec(torch.randn(2, 4, 3, 5), None, ws)
    (field.features.square().sum() + field.density.square().sum()).backward()
    assert (ws.grad.abs().sum(-1) > 0).all()
    # Swapping rows 1 and 2 changes the output: rows are per layer, not shared.
    with torch.no_grad():
        feats = torch.randn(1, 4, 3, 5)
        ws = torch.randn(1, 3, 6)
        swapped = ws[:, [0, 2, 1]]
        assert not torch.allclose(dec(feats, None, ws).features, dec(feats, None, swapped).features)


def test_contract_and_registration():
    dec = get_registry().build("feature_decoder", "volumegan_mlp", in_channels=7, hidden_dim=8, num_layers=2,
                               output_dim=5, w_dim=4)
    field = check_contract("feature_decoder", dec)
    assert field.kind == "density"


def test_bad_inputs_are_refused():
    dec = VolumeGANDecoder(in_channels=5, hidden_dim=8, num_layers=2, output_dim=4, w_dim=6)
    with pytest.raises(ValueError, match="expected in_channels=5"):
        dec(torch.randn(1, 2, 3, 4), None, torch.randn(1, 2, 6))
    with pytest.raises(ValueError, match="exactly its 2 latent rows"):
        dec(torch.randn(1, 2, 3, 5), None, torch.randn(1, 12, 6))
    with pytest.raises(ValueError, match="output_dim must be >= 3"):
        VolumeGANDecoder(output_dim=2)
    with pytest.raises(ValueError, match="num_layers must be positive"):
        VolumeGANDecoder(num_layers=0)
