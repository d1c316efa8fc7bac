"""Side-by-side check of gan3d's GRAM modules against the official networks (not part of gan3d).

Imports an official checkout of microsoft/GRAM that the user points to (checked at commit
5a5ac8e11306f976ac5a85e23344d0cdba0125ca), loads the official weights into gan3d's modules by the
prefix renames the modules' docstrings list, and prints the largest differences of their outputs on
random inputs (CPU, float32)::

    python tools/official/gram_side_by_side.py --official /path/to/GRAM

* radiance: ``GramRF`` (its ``mapping_network`` -> the ``pigan`` mapper, the rest -> ``gram_radiance``);
  GRAM applies softplus inside the network, gan3d in the renderer, so the raw density is compared
  after softplus;
* crossings: ``GramSample.get_intersections`` vs ``level_set_crossings`` on the ``manifold`` sampler's
  field, on 64 samples along rays from (0, 0, 1), FFHQ's 23 levels;
* discriminator: ``GramDiscriminator(256)`` vs ``gram`` (the pose head's two rows swapped: GRAM emits
  (phi, theta), gan3d (theta, phi)).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F


def renamed(state: dict, renames: list[tuple[str, str]]) -> dict:
    out = {}
    for key, value in state.items():
        for old, new in renames:
            key = key.replace(old, new)
        out[key] = value
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--official", required=True, type=Path, help="a checkout of microsoft/GRAM")
    args = parser.parse_args()
    if not (args.official / "generators" / "representations" / "gram.py").is_file():
        raise SystemExit(f"--official {args.official}: no generators/representations/gram.py; point it at GRAM")
    sys.path.insert(0, str(args.official))
    from discriminators.discriminators import GramDiscriminator  # noqa: PLC0415  (official)
    from generators.representations.gram import GramRF, GramSample  # noqa: PLC0415  (official)

    from gan3d.core.types import DiscriminatorInput
    from gan3d.embedders.feature_decoders.gram_radiance import GRAMRadianceDecoder
    from gan3d.embedders.stochasticity_mappers.pigan import PiGANMappingNetwork
    from gan3d.methods.gram.discriminator import GRAMDiscriminator
    from gan3d.methods.gram.official import discriminator_state as official_discriminator_state
    from gan3d.samplers.manifold_point_sampler import ManifoldScalarField, level_set_crossings

    torch.manual_seed(0)
    official_rf = GramRF(z_dim=256, hidden_dim=256, normalize=0.24)
    state = official_rf.state_dict()
    mapper = PiGANMappingNetwork(w_avg_samples=0)
    mapper.load_state_dict({k.removeprefix("mapping_network."): v for k, v in state.items()
                            if k.startswith("mapping_network.")}, strict=False)  # w_avg: ours only
    decoder = GRAMRadianceDecoder()
    decoder_state = {k: v for k, v in state.items() if not k.startswith("mapping_network.")}
    decoder.load_state_dict(renamed(decoder_state, [
        ("network.", "film_layers."), ("color_layer.0.", "color_film."), ("output_sigma.", "density_heads."),
        ("output_color.", "color_heads."),
    ]))
    z = torch.randn(2, 256)
    points = torch.randn(2, 50, 3) * 0.1
    directions = F.normalize(torch.randn(2, 50, 3), dim=-1)
    with torch.no_grad():
        reference = official_rf(points, z, directions)
        field = decoder((points * (2 / 0.24)).view(2, 50, 1, 3), directions.view(2, 50, 1, 3), mapper(z))
    print(f"radiance: rgb {(reference[..., :3] - field.features.view(2, 50, 3)).abs().max():.3g}, "
          f"sigma {(reference[..., 3:] - F.softplus(field.density.view(2, 50, 1))).abs().max():.3g}")

    official_field = GramSample(hidden_dim_sample=128, layer_num_sample=3, center=(0, 0, -1.5))
    ours = ManifoldScalarField(hidden_dim=128)
    ours.load_state_dict(official_field.state_dict())
    rays = F.normalize(torch.randn(2, 30, 3) * 0.05 + torch.tensor([0.0, 0.0, -1.0]), dim=-1)
    samples = torch.tensor([0.0, 0.0, 1.0]) + torch.linspace(0.88, 1.12, 64).view(1, 1, 64, 1) * rays[:, :, None]
    levels = torch.linspace(23, 8, 23)
    with torch.no_grad():
        crossings, _, valid = official_field.get_intersections(samples, levels)
        found = level_set_crossings(samples, ours(samples), levels)
    print(f"crossings: points {(crossings - found.points).abs().max():.3g}, "
          f"validity equal {torch.equal(valid.bool(), found.valid)} ({valid.mean():.2f} valid)")

    official_d = GramDiscriminator(256)
    d = GRAMDiscriminator(img_resolution=256)
    d.load_state_dict(official_discriminator_state(official_d.state_dict()))  # the importer's map
    image = torch.randn(2, 3, 256, 256)
    with torch.no_grad():
        logits, pose = official_d(image)
        out = d(DiscriminatorInput(image))
    print(f"discriminator: logits {(logits - out.logits).abs().max():.3g}, "
          f"pose {(pose[:, [1, 0]] - out.pose).abs().max():.3g}")


if __name__ == "__main__":
    main()
