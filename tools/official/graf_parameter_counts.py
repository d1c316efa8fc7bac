"""Count the parameters of GRAF's official networks at the released configurations (CPU).

Builds the generator NeRF (``submodules/nerf_pytorch/run_nerf_mod.py`` ``create_nerf``) and the patch
discriminator (``graf/models/discriminator.py``) from a checkout of autonomousvision/graf that the
user gives; nothing is downloaded. Checked against commit c50d342fb567aec335b92e3f867c54b4dc4e1d09.

    python tools/official/graf_parameter_counts.py /path/to/graf

Every released config (carla, celebA, celebAHQ, cats) keeps the network options of
``configs/default.yaml`` (restated below), so one count serves them all. The official code imports a
compiled ``torchsearchsorted`` extension (hierarchical sampling, unused at the released configs,
``N_importance: 0``) and plotting packages; where those are not installed, empty stand-in modules
take their place so that the networks can be built. Not imported by gan3d; the printed counts are
asserted in ``tests/methods/test_graf_counts.py``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import types
from argparse import Namespace
from pathlib import Path

#: configs/default.yaml (nerf, z_dist, ray_sampler, discriminator sections) and graf/config.py build_models.
DEFAULT_NERF = dict(i_embed=0, use_viewdirs=True, multires=10, multires_views=4, N_samples=64, N_importance=0,
                    netdepth=8, netwidth=256, netdepth_fine=8, netwidth_fine=256, perturb=1.0, raw_noise_std=1.0,
                    chunk=1024 * 8, netchunk=65536, white_bkgd=True, feat_dim=256, feat_dim_appearance=128)
PATCH_SAMPLES = 1024  # ray_sampler.N_samples: a 32 x 32 patch
NDF = 64


def _stand_in(name: str) -> None:
    """An empty module for ``name`` when it cannot be imported (only names never used to build nets)."""
    if name in sys.modules:
        return
    try:
        importlib.import_module(name)
    except ImportError:
        module = types.ModuleType(name)
        module.searchsorted = None
        module.tqdm = None
        sys.modules[name] = module


def count(module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("graf", type=Path, help="a checkout of autonomousvision/graf (with its submodules)")
    args = parser.parse_args()
    root = args.graf.resolve()
    if not (root / "submodules" / "nerf_pytorch" / "run_nerf_mod.py").is_file():
        parser.error(f"{root} is not a GRAF checkout with submodules (submodules/nerf_pytorch/run_nerf_mod.py missing)")
    for name in ("torchsearchsorted", "matplotlib", "matplotlib.pyplot", "tqdm", "imageio"):
        _stand_in(name)
    sys.path.insert(0, str(root))
    from graf.models.discriminator import Discriminator  # noqa: E402
    from submodules.nerf_pytorch.run_nerf_mod import create_nerf  # noqa: E402

    _, _, params, named = create_nerf(Namespace(**DEFAULT_NERF))
    generator = sum(p.numel() for p in params)
    network = {name: tuple(p.shape) for name, p in named}
    disc = Discriminator(nc=3, ndf=NDF, imsize=int(PATCH_SAMPLES ** 0.5), hflip=False)
    print(json.dumps({
        "generator": generator,
        "discriminator": count(disc),
        "generator_parameters": network,
        "discriminator_parameters": {n: tuple(p.shape) for n, p in disc.named_parameters()},
    }, indent=1))


if __name__ == "__main__":
    main()
