"""Build genforce/volumegan's official networks on a CPU and compare them with gan3d's.

Not part of gan3d's code path: a research tool that imports an official checkout the user points to
(checked against commit 34bca216f7d16c600982422f0268bd896a68b759 of genforce/volumegan). It

1. builds the official ``VolumeGANGenerator`` and ``VolumeGANDiscriminator`` at the released FFHQ-256
   configuration (``configs/volumegan_ffhq_config.py`` with ``scripts/training_demos/volumegan_ffhq256.sh``)
   and prints their parameter totals, per part;
2. with ``--compare``, converts the official weights into gan3d's VolumeGAN modules
   (:func:`gan3d.methods.volumegan.official.convert_official_state_dict`) and checks, on the same inputs,
   that the feature volume, the point MLP, the neural renderer (at every level of detail tested) and
   the discriminator give the same outputs.

The official code needs ``einops`` and ``easydict`` at import; ``easydict`` is replaced here by a
two-line stand-in when it is missing. Its CUDA ops are run with ``impl='ref'`` (their pure-PyTorch
reference paths), so no extension is compiled.

Usage::

    python tools/reference/volumegan_official.py --official /path/to/volumegan [--compare] [--json out.json]
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import sys
import types
from pathlib import Path

import torch

#: ``volumegan_ffhq256.sh``: ``--num_fp16_res=128`` turns on mixed precision, hence ``conv_clamp=256``
#: (``VolumeGANFFHQConfig.parse_options``); parameters do not depend on it.
CONV_CLAMP = 256


def _import_official(root: Path) -> tuple[type, type]:
    """The official generator and discriminator classes, imported without ``models/__init__.py``
    (which pulls in every model of the repository)."""
    root = root.resolve()
    if not (root / "models" / "volumegan_generator.py").is_file():
        raise SystemExit(f"--official {root}: no models/volumegan_generator.py there; "
                         "give a genforce/volumegan checkout")
    sys.path.insert(0, str(root))
    if "easydict" not in sys.modules:
        try:
            importlib.import_module("easydict")
        except ImportError:
            stand_in = types.ModuleType("easydict")

            class EasyDict(dict):
                __getattr__ = dict.__getitem__

            stand_in.EasyDict = EasyDict
            sys.modules["easydict"] = stand_in
    package = types.ModuleType("models")
    package.__path__ = [str(root / "models")]
    sys.modules["models"] = package
    generator = importlib.import_module("models.volumegan_generator").VolumeGANGenerator
    discriminator = importlib.import_module("models.volumegan_discriminator").VolumeGANDiscriminator
    return generator, discriminator


def official_networks(root: Path) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The official FFHQ-256 generator and discriminator (``VolumeGANFFHQConfig`` model kwargs)."""
    generator_cls, discriminator_cls = _import_official(root)
    ps_cfg = dict(num_steps=12, ray_start=0.8, ray_end=1.2, radius=1, horizontal_mean=math.pi / 2,
                  horizontal_stddev=0.3, vertical_mean=math.pi / 2, vertical_stddev=0.155,
                  camera_dist="gaussian", fov=12, perturb_mode=None)
    generator = generator_cls(
        resolution=256, nerf_res=32, z_dim=512, mapping_layers=8, fmaps_base=32 << 10, conv_clamp=CONV_CLAMP,
        rgb_init_res_out=False, embed_cfg=dict(input_dim=3, max_freq_log2=9, N_freqs=10),
        fg_cfg=dict(num_layers=4, hidden_dim=256, activation_type="lrelu"), bg_cfg=None, out_dim=512,
        ps_cfg=ps_cfg, hs_cfg=dict(clamp_mode="relu"), vr_cfg=dict(clamp_mode="relu"),
    )
    discriminator = discriminator_cls(resolution=256, image_channels=3, init_res=4, label_dim=0,
                                      architecture="resnet", fmaps_base=32 << 10, conv_clamp=CONV_CLAMP,
                                      mbstd_groups=4)
    return generator, discriminator


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def official_counts(generator: torch.nn.Module, discriminator: torch.nn.Module) -> dict[str, int]:
    nerf = generator.nerfmlp
    return {
        "G": count(generator),
        "G.mapping": count(generator.mapping),
        "G.nerfmlp.fv": count(nerf.fv),
        "G.nerfmlp.mlp": count(nerf.fg_mlps) + count(nerf.fg_density) + count(nerf.fg_color),
        "G.synthesis": count(generator.synthesis),
        "D": count(discriminator),
    }


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max())


def compare(generator: torch.nn.Module, discriminator: torch.nn.Module) -> tuple[dict[str, int], dict[str, float]]:
    """gan3d's parameter totals, and the largest absolute differences between official and gan3d
    outputs on shared inputs."""
    from gan3d.embedders.feature_decoders.volumegan_mlp import VolumeGANDecoder
    from gan3d.embedders.point_embedders.volume import VolumeEmbedder
    from gan3d.embedders.stochasticity_mappers.stylegan2 import StyleGAN2Mapper
    from gan3d.methods.volumegan.discriminator import VolumeGANDiscriminator
    from gan3d.methods.volumegan.official import convert_official_state_dict
    from gan3d.renderers.volumegan_renderer import VolumeGANNeuralRenderer

    torch.manual_seed(0)
    with torch.no_grad():  # give every official parameter a non-trivial value (zero inits hide mistakes)
        for p in list(generator.parameters()) + list(discriminator.parameters()):
            p.add_(torch.randn_like(p) * 0.1)
    states = convert_official_state_dict(generator.state_dict(), discriminator.state_dict())
    embedder = VolumeEmbedder()
    decoder = VolumeGANDecoder(in_channels=embedder.out_channels)
    renderer = VolumeGANNeuralRenderer(in_channels=512, conv_clamp=float(CONV_CLAMP))
    ours_d = VolumeGANDiscriminator(conv_clamp=float(CONV_CLAMP))
    mapper = StyleGAN2Mapper(num_ws=12, w_avg_beta=0.995)
    ours = {"G": sum(count(m) for m in (mapper, embedder, decoder, renderer)), "G.mapping": count(mapper),
            "G.nerfmlp.fv": count(embedder), "G.nerfmlp.mlp": count(decoder), "G.synthesis": count(renderer),
            "D": count(ours_d)}
    slots = ((mapper, "stochasticity_mapper"), (embedder, "point_embedder"), (decoder, "feature_decoder"),
             (renderer, "upsampler"), (ours_d, "discriminator"))
    for module, slot in slots:
        missing, unexpected = module.load_state_dict(states[slot], strict=False)
        missing = [k for k in missing if not k.endswith(("noise_const", "resample_filter", "lod"))]
        if missing or unexpected:
            raise SystemExit(f"{slot}: missing {missing}, unexpected {unexpected}")
    for module in (generator, discriminator, embedder, decoder, renderer, ours_d):
        module.eval()

    diffs: dict[str, float] = {}
    with torch.no_grad():
        batch = 2
        ws = torch.randn(batch, 12, 512)
        # Feature volume + point MLP on random points inside and outside the FFHQ box.
        points = torch.rand(batch, 4, 6, 3) * 0.5 - 0.25
        dirs = torch.nn.functional.normalize(torch.randn(batch, 4, 3), dim=-1)
        official = generator.nerfmlp(wp=ws[:, :4], pts=points.reshape(batch, 2, 2, 6, 3), dirs=dirs, impl="ref")
        volume = embedder.scene(ws[:, :1])
        diffs["feature_volume"] = _max_diff(volume, generator.nerfmlp.fv(ws[:, 0]))
        field = decoder(embedder(points, volume), None, ws[:, :4])
        diffs["mlp_density"] = _max_diff(field.density, official["sigma"].reshape(field.density.shape))
        diffs["mlp_features"] = _max_diff(field.features, official["rgb"].reshape(field.features.shape))
        # Neural renderer at each level of detail (3: the 32-px image, 2.5: halfway into 64 px, 0: all).
        features = torch.randn(batch, 512, 32, 32)
        for lod in (3.0, 2.5, 2.0, 1.25, 0.0):
            expected = generator.synthesis(features, ws[:, 4:], lod=lod, noise_mode="const", impl="ref")["image"]
            renderer.lod.fill_(lod)
            diffs[f"renderer_lod{lod}"] = _max_diff(renderer(features, ws[:, 4:]), expected)
            image = torch.randn(4, 3, 256, 256)
            ours_d.lod.fill_(lod)
            diffs[f"discriminator_lod{lod}"] = _max_diff(ours_d(image).logits,
                                                         discriminator(image, lod=lod, impl="ref")["score"])
    return ours, diffs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--official", type=Path, required=True, help="a genforce/volumegan checkout")
    parser.add_argument("--compare", action="store_true", help="also compare outputs with gan3d's modules")
    parser.add_argument("--json", type=Path, help="write the numbers to this file")
    args = parser.parse_args(argv)
    generator, discriminator = official_networks(args.official)
    result: dict[str, object] = {"counts": official_counts(generator, discriminator)}
    if args.compare:
        result["gan3d_counts"], result["max_abs_diff"] = compare(generator, discriminator)
    text = json.dumps(result, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
    sys.stdout.write(text + "\n")


if __name__ == "__main__":
    main()
