"""Side by side: gan3d's StyleNeRF modules against the official ones, on the same weights and inputs.

Research tooling outside gan3d's code path (see ``stylenerf_official.py`` in this folder for the import
set-up; checked against facebookresearch/StyleNeRF commit ``7f5610a``). It builds small official
networks, copies their state dicts into gan3d's modules by the prefix renames the gan3d docstrings name,
runs both on the same inputs and prints the largest absolute difference of each comparison:

* the foreground ``NeRFBlock`` (modulated) and the background one (``z_dim > 0``) against
  ``feature_decoder`` ``stylenerf_mlp``;
* the upsampler blocks (nn_cat and pixelshuffle; training mode, so the magnitude EMA updates, and the
  per-pixel ``skip_up`` path) against ``upsampler`` ``stylenerf``;
* the discriminator at full resolution and, with the official progressive state, below it;
* NeRF++'s ``depth2pts_outside`` against the ``inverted_sphere`` sampler's distance and embedder
  coordinates.

Usage::

    python tools/reference/stylenerf_compare.py --official /path/to/StyleNeRF --pythonpath /path/with/einops
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from stylenerf_official import install_import_shims  # noqa: E402  (same folder)


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    if a.shape != b.shape:
        raise AssertionError(f"shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    return float((a - b).detach().abs().max())


def _load(ours: torch.nn.Module, official_state: dict, rename: tuple[str, str] = ("", "")) -> None:
    old, new = rename
    state = {new + k[len(old):]: v for k, v in official_state.items() if k.startswith(old)}
    missing, unexpected = ours.load_state_dict(state, strict=False)
    params = {n for n, _ in ours.named_parameters()}
    missing_params = [k for k in missing if k in params]
    # Buffers gan3d keeps elsewhere: the filters, and the official progressive ``alpha``.
    if missing_params or [k for k in unexpected if not k.endswith(("resample_filter", "alpha"))]:
        raise AssertionError(f"state dict mismatch: missing {missing_params}, unexpected {unexpected}")


def compare_nerf_blocks() -> dict[str, float]:
    from training.stylenerf import NeRFBlock

    from gan3d.embedders.feature_decoders.stylenerf_mlp import StyleNeRFDecoder

    out = {}
    torch.manual_seed(0)
    fg = NeRFBlock({"z_dim": 0, "w_dim": 16, "rgb_out_dim": 12, "hidden_size": 10, "n_blocks": 4,
                    "activation": "lrelu", "predict_rgb": True, "positional_encoding": "normal"}).train()
    ours = StyleNeRFDecoder(in_channels=60, hidden_dim=10, depth=4, output_dim=12, w_dim=16)
    _load(ours, fg.state_dict())
    points = torch.randn(2, 6 * 5, 3) * 0.2  # [B, (h w s), 3] with h=6, w=1, s=5
    ws = torch.randn(2, fg.num_ws, 16)
    feat, sigma = fg(points, None, ws=ws, shape=[2, 6, 1, 5])
    from gan3d.embedders.positional_encoding import PositionalEncoding
    enc = PositionalEncoding(in_channels=3, num_frequencies=10, include_input=False, multiply_by_pi=True)
    field = ours(enc(points.reshape(2, 6, 5, 3)), None, ws)
    out["fg features"] = _max_diff(field.features.reshape(2, 30, -1), feat)
    out["fg density"] = _max_diff(field.density.reshape(2, 30, 1), sigma)

    bg = NeRFBlock({"z_dim": 3, "w_dim": 16, "rgb_out_dim": 12, "hidden_size": 8, "n_blocks": 3,
                    "activation": "lrelu", "predict_rgb": True, "inverse_sphere": True,
                    "positional_encoding": "normal"}).train()
    ours_bg = StyleNeRFDecoder(in_channels=80 + 3, hidden_dim=8, depth=3, output_dim=12, modulated=False)
    _load(ours_bg, bg.state_dict())
    p4 = torch.rand(2, 30, 4)
    z = torch.randn(2, 3)
    feat, sigma = bg(p4, None, z, None, ws=None, shape=[2, 6, 1, 5])
    enc4 = PositionalEncoding(in_channels=4, num_frequencies=10, include_input=False, multiply_by_pi=True)
    inputs = torch.cat([enc4(p4), z[:, None].expand(2, 30, 3)], -1).reshape(2, 6, 5, 83)
    field = ours_bg(inputs, None, None)
    out["bg features"] = _max_diff(field.features.reshape(2, 30, -1), feat)
    out["bg density"] = _max_diff(field.density.reshape(2, 30, 1), sigma)
    return out


def compare_upsampler(mode: str) -> dict[str, float]:
    from training.stylenerf import Upsampler

    from gan3d.renderers.stylenerf_upsampler import StyleNeRFUpsampler

    out = {}
    torch.manual_seed(1)
    w_dim, in_res, out_res, feat = 8, 8, 32, 12
    kwargs = dict(kernel_size=1, upsample_mode=mode, use_noise=False, magnitude_ema_beta=0.999, conv_clamp=256,
                  architecture="skip")
    upsampler = Upsampler({"img_channels": 3, "in_res": in_res, "out_res": out_res, "channel_base": 256 / 32768,
                           "channel_max": 16})
    blocks_meta = upsampler.build_network(w_dim, feat, **kwargs)
    container = torch.nn.Module()
    for meta in blocks_meta:
        container.add_module(meta["name"], meta["block"])
    container.train()
    ours = StyleNeRFUpsampler(in_channels=3 + feat, in_resolution=in_res, image_resolution=out_res, w_dim=w_dim,
                              channel_base=256, channel_max=16, upsample_mode=mode).train()
    _load(ours, container.state_dict())
    blocks = [meta["block"] for meta in blocks_meta]
    x, img = torch.randn(2, feat, in_res, in_res) * 3, torch.randn(2, 3, in_res, in_res)
    ws = torch.randn(2, upsampler.num_ws, w_dim)
    split = upsampler.forward_ws_split(ws, blocks)
    fp32 = {"force_fp32": True}  # the official blocks run fp16 above the first; gan3d runs float32
    for step in range(2):  # twice: the magnitude EMA buffers move in training mode
        images = upsampler.forward_network(blocks, split, x, img, out_res, 1.0, **fp32)
        mine = ours(torch.cat([img, x], 1), ws, alpha=1.0)
        out[f"{mode} image (training step {step})"] = _max_diff(mine, images[-1])
    out[f"{mode} w_avg buffers"] = max(_max_diff(a, b) for (n, a), (_, b) in zip(
        sorted(container.state_dict().items()), sorted(ours.state_dict().items())) if n.endswith("w_avg"))
    px, pimg = torch.randn(2, feat, 4, 6), torch.randn(2, 3, 4, 6)
    # The official blocks add to the incoming image in place when they do not upsample: give them a copy.
    images = upsampler.forward_network(blocks, split, px, pimg.clone(), out_res, 1.0, skip_up=True, **fp32)
    out[f"{mode} per-pixel path"] = _max_diff(ours.pixelwise(torch.cat([pimg, px], 1), ws, alpha=1.0), images[-1])
    # Fading in, the official blend mixes two aliases of one tensor (NeRFSynthesisNetwork.forward): the last.
    images = upsampler.forward_network(blocks, split, px, pimg.clone(), 16, 0.25, skip_up=True, **fp32)
    out[f"{mode} per-pixel path fading in"] = _max_diff(ours.pixelwise(torch.cat([pimg, px], 1), ws, alpha=0.25),
                                                        images[-1])
    container.eval()
    ours.eval()
    images = upsampler.forward_network(blocks, split, x, img, 16, 0.25, **fp32)  # alpha 0.25 of 2 levels: 16 px
    out[f"{mode} fading in the first level (eval)"] = _max_diff(ours(torch.cat([img, x], 1), ws, alpha=0.25),
                                                                _blend_reference(images, img, 0.25, 2))
    return out


def _blend_reference(images: list[torch.Tensor], nerf_rgb: torch.Tensor, alpha: float, levels: int) -> torch.Tensor:
    """The official rgb_interp of NeRFSynthesisNetwork.forward for 0 < alpha < 1, written out."""
    import math

    import torch.nn.functional as F

    frac = math.modf(alpha * levels)[0]
    stack = [nerf_rgb, *images]
    previous, last = stack[-2], stack[-1]
    if previous.shape[-1] < last.shape[-1]:
        previous = F.interpolate(previous, size=last.shape[-2:], mode="bilinear", align_corners=False)
    return previous * (1 - frac) + last * frac


def compare_discriminator() -> dict[str, float]:
    from training.stylenerf import Discriminator

    from gan3d.methods.stylenerf.discriminator import StyleNeRFDiscriminator

    out = {}
    torch.manual_seed(2)
    official = Discriminator(c_dim=0, img_resolution=32, img_channels=3, architecture="skip",
                             channel_base=256 / 32768, channel_max=16, conv_clamp=256,
                             epilogue_kwargs={"mbstd_group_size": 2}, progressive=True, lowres_head=8,
                             upsample_type="bilinear", resize_real_early=True).eval()
    ours = StyleNeRFDiscriminator(img_resolution=32, lowres_head=8, channel_base=256, channel_max=16,
                                  mbstd_group_size=2).eval()
    _load(ours, official.state_dict())
    image = torch.randn(4, 3, 32, 32)
    c = torch.zeros(4, 0)
    out["D full resolution (alpha -1)"] = _max_diff(ours(image).logits, official(image, c)["logits"])
    # As training runs it: set_alpha(alpha) and set_resolution(<int>), images at the current resolution.
    official.set_alpha(0.5)
    official.set_resolution(16)
    small = torch.randn(4, 3, 16, 16)
    out["D mid fade (16 px)"] = _max_diff(ours(small).logits, official(small, c)["logits"])
    official.set_alpha(0.0)
    tiny = torch.randn(4, 3, 8, 8)
    out["D before fade (8 px)"] = _max_diff(ours(tiny).logits, official(tiny, c)["logits"])
    return out


def compare_background_points() -> dict[str, float]:
    from dnnlib.camera import depth2pts_outside

    from gan3d.embedders.point_embedders.inverted_sphere import inverted_sphere_coordinates
    from gan3d.samplers.inverted_sphere_sampler import distance_to_sphere

    torch.manual_seed(3)
    origins = torch.nn.functional.normalize(torch.randn(2, 5, 3), dim=-1) * 0.999
    directions = torch.nn.functional.normalize(-origins + 0.2 * torch.randn(2, 5, 3), dim=-1)
    inverse = torch.rand(2, 5, 4) * 0.5 + 0.1
    pts, depth_real = depth2pts_outside(origins[:, :, None].expand(2, 5, 4, 3),
                                        directions[:, :, None].expand(2, 5, 4, 3), inverse)
    t = distance_to_sphere(origins, directions, 1.0 / inverse)
    world = origins[:, :, None] + t[..., None] * directions[:, :, None]
    # depth2pts_outside's depth_real carries 1 / (s + 1e-6): about 1e-6 / s^2 from the exact distance.
    return {"NeRF++ depth (official adds 1e-6 to 1/r)": _max_diff(t, depth_real),
            "NeRF++ 4D point": _max_diff(inverted_sphere_coordinates(world), pts)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official", type=Path, required=True, help="facebookresearch/StyleNeRF checkout")
    parser.add_argument("--pythonpath", type=Path, action="append", default=[])
    args = parser.parse_args(argv)
    sys.path[:0] = [str(args.official), *map(str, args.pythonpath)]
    install_import_shims()
    results = {**compare_nerf_blocks(), **compare_upsampler("nn_cat"), **compare_upsampler("pixelshuffle"),
               **compare_discriminator(), **compare_background_points()}
    width = max(map(len, results))
    for name, diff in results.items():
        sys.stdout.write(f"{name:<{width}}  max |diff| = {diff:.3e}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
