"""GRAF's conditional NeRF decoder and the identity mapper: the official layout (parameter names, shapes,
count), the forward pass against a literal re-statement of NeRF.forward, gradients, bad input."""

import math

import pytest
import torch
import torch.nn.functional as F

from gan3d.embedders.feature_decoders.graf_nerf import GRAFNeRFDecoder
from gan3d.embedders.point_embedders.coordinate import CoordinateEmbedder
from gan3d.embedders.positional_encoding import PositionalEncoding
from gan3d.embedders.stochasticity_mappers.identity import IdentityMapper

#: tools/official/graf_parameter_counts.py on autonomousvision/graf c50d342 (configs/default.yaml network).
OFFICIAL_GRAF_GENERATOR = 677_764
OFFICIAL_SHAPES = {
    "pts_linears.0.weight": (256, 191), "pts_linears.4.weight": (256, 256), "pts_linears.5.weight": (256, 447),
    "pts_linears.7.weight": (256, 256), "views_linears.0.weight": (128, 411), "feature_linear.weight": (256, 256),
    "alpha_linear.weight": (1, 256), "rgb_linear.weight": (3, 128), "rgb_linear.bias": (3,),
}


def reference_forward(dec: GRAFNeRFDecoder, x_enc, d, z):
    """NeRF.forward (run_nerf_helpers_mod.py) with run_network's input layout, written with explicit cats."""
    b, r, s, _ = x_enc.shape
    z = z[:, None, None, :].expand(b, r, s, z.shape[-1])
    input_pts = torch.cat([x_enc, z[..., : dec.shape_dim]], -1)
    input_views = torch.cat([PositionalEncoding(in_channels=3, num_frequencies=4)(d), z[..., dec.shape_dim:]], -1)
    h = input_pts
    for i, layer in enumerate(dec.pts_linears):
        h = F.relu(layer(h))
        if i in dec.skips:
            h = torch.cat([input_pts, h], -1)
    alpha = dec.alpha_linear(h)
    h = torch.cat([dec.feature_linear(h), input_views], -1)
    h = F.relu(dec.views_linears[0](h))
    return torch.sigmoid(dec.rgb_linear(h)), alpha


def test_published_configuration_matches_the_official_network():
    embedder = CoordinateEmbedder(num_frequencies=10)  # multires 10, include_input, no rescaling
    dec = GRAFNeRFDecoder(in_channels=embedder.out_channels)
    mapper = IdentityMapper(z_dim=256)
    assert embedder.out_channels == 63
    total = sum(p.numel() for m in (mapper, embedder, dec) for p in m.parameters())
    assert total == OFFICIAL_GRAF_GENERATOR
    shapes = {n: tuple(p.shape) for n, p in dec.named_parameters()}
    for name, shape in OFFICIAL_SHAPES.items():
        assert shapes[name] == shape, name
    assert len(shapes) == 24  # 8 trunk layers + 4 heads, weight and bias each: the official key set


def test_forward_equals_nerf_with_concatenated_codes():
    torch.manual_seed(0)
    dec = GRAFNeRFDecoder(in_channels=63, w_dim=24, appearance_dim=10, hidden_dim=32, num_layers=6, skips=[2])
    x = CoordinateEmbedder(num_frequencies=10)(torch.randn(2, 5, 3, 3), None)
    d = F.normalize(torch.randn(2, 5, 3, 3), dim=-1)
    z = torch.randn(2, 24)
    field = dec(x, d, z[:, None])
    rgb, alpha = reference_forward(dec, x, d, z)
    assert field.kind == "density" and dec.out_channels == 3
    torch.testing.assert_close(field.features, rgb, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(field.density, alpha, rtol=1e-5, atol=1e-6)
    assert 0 < float(field.features.detach().min()) and float(field.features.detach().max()) < 1


@pytest.mark.parametrize("use_viewdirs,appearance_dim", [(True, 10), (False, 0)])
def test_inference_in_chunks_equals_the_reference(monkeypatch, use_viewdirs, appearance_dim):
    """Without autograd the points go through in chunks (here 7 of 15 per sample: two full chunks and a
    short one); the field is the explicit-concatenation NeRF's, as with autograd."""
    torch.manual_seed(1)
    dec = GRAFNeRFDecoder(in_channels=63, w_dim=24, appearance_dim=appearance_dim, hidden_dim=32, num_layers=6,
                          skips=[2], use_viewdirs=use_viewdirs)
    x = CoordinateEmbedder(num_frequencies=10)(torch.randn(2, 5, 3, 3), None)
    d = F.normalize(torch.randn(2, 5, 3, 3), dim=-1)
    z = torch.randn(2, 24)
    with torch.no_grad():
        whole = dec(x, d, z[:, None])
        monkeypatch.setattr(GRAFNeRFDecoder, "inference_chunk", 7)
        chunked = dec(x, d, z[:, None])
    torch.testing.assert_close(chunked.features, whole.features, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(chunked.density, whole.density, rtol=1e-6, atol=1e-7)
    if use_viewdirs:
        rgb, alpha = reference_forward(dec, x, d, z)
        torch.testing.assert_close(chunked.features, rgb, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(chunked.density, alpha, rtol=1e-5, atol=1e-6)
    assert chunked.features.shape == (2, 5, 3, 3) and chunked.density.shape == (2, 5, 3, 1)


def test_only_the_first_latent_row_is_read_and_codes_change_the_field():
    torch.manual_seed(1)
    dec = GRAFNeRFDecoder(in_channels=9, w_dim=8, appearance_dim=4, hidden_dim=16, num_layers=3, skips=[0])
    x, d = torch.randn(1, 4, 2, 9), F.normalize(torch.randn(1, 4, 2, 3), dim=-1)
    z = torch.randn(1, 2, 8)
    base = dec(x, d, z)
    torch.testing.assert_close(dec(x, d, torch.cat([z[:, :1], torch.randn(1, 1, 8)], 1)).density, base.density)
    app = z.clone()
    app[..., 4:] += 1.0  # the appearance code moves the colour, never the density
    moved = dec(x, d, app)
    torch.testing.assert_close(moved.density, base.density)
    assert not torch.allclose(moved.features, base.features)
    shape = z.clone()
    shape[..., :4] += 1.0
    assert not torch.allclose(dec(x, d, shape).density, base.density)


def test_gradients_reach_every_parameter():
    dec = GRAFNeRFDecoder(in_channels=9, w_dim=8, appearance_dim=4, hidden_dim=16, num_layers=4, skips=[1])
    field = dec(torch.randn(2, 3, 2, 9), F.normalize(torch.randn(2, 3, 2, 3), dim=-1), torch.randn(2, 1, 8))
    (field.features.sum() + field.density.sum()).backward()
    for name, p in dec.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_without_view_directions_or_appearance_code():
    dec = GRAFNeRFDecoder(in_channels=9, w_dim=8, appearance_dim=0, hidden_dim=16, num_layers=3, skips=[],
                          use_viewdirs=False)
    assert hasattr(dec, "output_linear") and not hasattr(dec, "rgb_linear")
    field = dec(torch.randn(1, 2, 3, 9), torch.zeros(1, 2, 3, 3), torch.randn(1, 1, 8))
    assert field.features.shape == (1, 2, 3, 3) and field.density.shape == (1, 2, 3, 1)
    # CUB: no view directions but an appearance code: the colour branch reads the code alone.
    cub = GRAFNeRFDecoder(in_channels=9, w_dim=8, appearance_dim=4, hidden_dim=16, num_layers=3, skips=[],
                          use_viewdirs=False)
    assert cub.views_linears[0].in_features == 16 + 4


def test_bad_inputs_are_named():
    dec = GRAFNeRFDecoder(in_channels=9, w_dim=8, appearance_dim=4, hidden_dim=16, num_layers=3, skips=[])
    with pytest.raises(ValueError, match="features must be"):
        dec(torch.randn(1, 2, 3, 8), torch.zeros(1, 2, 3, 3), torch.randn(1, 1, 8))
    with pytest.raises(ValueError, match="ws must be"):
        dec(torch.randn(1, 2, 3, 9), torch.zeros(1, 2, 3, 3), torch.randn(1, 1, 7))
    with pytest.raises(ValueError, match="appearance_dim"):
        GRAFNeRFDecoder(w_dim=8, appearance_dim=9)
    with pytest.raises(ValueError, match="skips"):
        GRAFNeRFDecoder(num_layers=3, skips=[2])


def test_identity_mapper():
    mapper = IdentityMapper(z_dim=6, num_ws=3)
    z = torch.randn(2, 6)
    ws = mapper(z)
    assert ws.shape == (2, 3, 6) and mapper.w_dim == 6 and not list(mapper.parameters())
    torch.testing.assert_close(ws[:, 2], z)
    # Truncation pulls towards the mean of z ~ N(0, I), 0: psi z (only the first truncation_cutoff rows).
    torch.testing.assert_close(mapper(z, truncation_psi=0.7), 0.7 * ws)
    cut = mapper(z, truncation_psi=0.5, truncation_cutoff=1)
    torch.testing.assert_close(cut[:, 0], 0.5 * z)
    torch.testing.assert_close(cut[:, 1:], ws[:, 1:])
    with pytest.raises(ValueError, match="z must be"):
        mapper(torch.randn(2, 5))
    with pytest.raises(ValueError, match="unconditional"):
        mapper(z, torch.randn(2, 25))
    assert math.isclose(mapper(z, None, truncation_psi=1.0).sum(), 3 * z.sum(), rel_tol=1e-6)
