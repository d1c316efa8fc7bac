"""Side by side: gan3d's GRAF and EpiGRAF modules loaded with the official networks' weights give the
official outputs (CPU). Outside gan3d's code path; imports the official checkouts the user gives.

    python tools/official/graf_epigraf_parity.py graf /path/to/graf          # autonomousvision/graf c50d342
    python tools/official/graf_epigraf_parity.py epigraf /path/to/epigraf    # universome/epigraf bda8d47

GRAF: the official NeRF (``create_nerf`` at configs/default.yaml) and patch discriminator; their state
dicts load into ``graf_nerf`` and ``graf_patch`` under the same names; the same encoded points, view
directions and codes give the same colour and density, the same patches the same logits.

EpiGRAF: the official generator's mapping, tri-plane backbone and MLP load into ``stylegan2``, ``triplane``
(``plane_axes='epigraf'``, ``align_corners=True``) and ``eg3d_osg`` (EpiGRAF options), the official
discriminator's state dict into ``epigraf_patch`` unchanged; planes, fields at points given in both worlds
(gan3d's is EpiGRAF's turned a quarter about y), cameras and patch logits are compared. The tri-plane
backbone is built at 64 px here to stay fast (the code path is the one of 512 px).

Prints the largest absolute differences; exits with status 1 when one exceeds 1e-4.
"""

from __future__ import annotations

import argparse
import importlib
import math
import sys
import types
from argparse import Namespace
from pathlib import Path

import torch
import torch.nn.functional as F

TOLERANCE = 1e-4


def _stand_in(name: str, **attributes) -> None:
    """An empty module for ``name`` when it cannot be imported (names the networks never use)."""
    if name in sys.modules:
        return
    try:
        importlib.import_module(name)
    except ImportError:
        module = types.ModuleType(name)
        module.__dict__.update(attributes)
        sys.modules[name] = module
        parent, _, child = name.rpartition(".")
        if parent in sys.modules:
            setattr(sys.modules[parent], child, module)


def graf(root: Path) -> dict[str, float]:
    for name in ("torchsearchsorted", "matplotlib", "matplotlib.pyplot", "tqdm", "imageio"):
        _stand_in(name, searchsorted=None, tqdm=None)
    sys.path.insert(0, str(root))
    from graf.models.discriminator import Discriminator
    from submodules.nerf_pytorch.run_nerf_helpers_mod import get_embedder
    from submodules.nerf_pytorch.run_nerf_mod import create_nerf

    from gan3d.core.types import DiscriminatorInput
    from gan3d.embedders.feature_decoders.graf_nerf import GRAFNeRFDecoder
    from gan3d.methods.graf.discriminator import GRAFPatchDiscriminator

    sys.path.insert(0, str(Path(__file__).parent))
    from graf_parameter_counts import DEFAULT_NERF

    torch.manual_seed(0)
    kwargs, _, _, _ = create_nerf(Namespace(**DEFAULT_NERF))
    nerf = kwargs["network_fn"]
    ours = GRAFNeRFDecoder(in_channels=63)
    ours.load_state_dict(nerf.state_dict())
    embed, _ = get_embedder(10)
    embed_views, _ = get_embedder(4)
    points = torch.randn(2, 16, 8, 3)
    dirs = F.normalize(torch.randn(2, 16, 8, 3), dim=-1)
    z = torch.randn(2, 256)
    zz = z[:, None, None].expand(2, 16, 8, 256)
    flat = torch.cat([embed(points), zz[..., :128], embed_views(dirs), zz[..., 128:]], -1)  # run_network's layout
    with torch.no_grad():
        official = nerf(flat.reshape(-1, flat.shape[-1])).view(2, 16, 8, 4)
        field = ours(embed(points), dirs, z[:, None])
    d_official = Discriminator(nc=3, ndf=64, imsize=32).eval()
    d_ours = GRAFPatchDiscriminator().eval()
    d_ours.load_state_dict(d_official.state_dict())
    patches = torch.rand(4, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        logits = (d_official(patches.permute(0, 2, 3, 1).reshape(-1, 3)).flatten(),
                  d_ours(DiscriminatorInput(patches)).logits.flatten())
    return {
        "rgb (sigmoid)": float((torch.sigmoid(official[..., :3]) - field.features).abs().max()),
        "density (raw)": float((official[..., 3:] - field.density).abs().max()),
        "discriminator logits": float((logits[0] - logits[1]).abs().max()),
    }


def epigraf(root: Path) -> dict[str, float]:
    sys.path.insert(0, str(Path(__file__).parent))
    from epigraf_parameter_counts import Config, compose

    _stand_in("omegaconf", DictConfig=Config, OmegaConf=None)
    _stand_in("requests")
    sys.path.insert(0, str(root))
    from src.training.networks_discriminator import Discriminator
    from src.training.networks_epigraf import Generator, tri_plane_renderer
    from src.training.rendering import compute_cam2world_matrix

    from gan3d.core.types import DiscriminatorInput
    from gan3d.embedders.feature_decoders.osg import OSGDecoder
    from gan3d.embedders.point_embedders.triplane import TriplaneEmbedder
    from gan3d.embedders.stochasticity_mappers.stylegan2 import StyleGAN2Mapper
    from gan3d.methods.epigraf.camera_angles import epigraf_cameras
    from gan3d.methods.epigraf.discriminator import EpiGRAFPatchDiscriminator
    from gan3d.methods.epigraf.patches import to_patch_params

    torch.manual_seed(0)
    cfg = compose("ffhq512")
    g = cfg.generator
    g.tri_plane.res = 64
    G = Generator(cfg=g, z_dim=512, c_dim=0, w_dim=512, img_resolution=512, img_channels=3, channel_base=32768,
                  channel_max=512, fused_modconv_default="inference_only",
                  mapping_kwargs={"num_layers": 2, "camera_cond": False, "camera_cond_drop_p": 0.0,
                                  "camera_cond_noise_std": 0.0, "mean_camera_pose": torch.zeros(3)}).eval()
    state = G.state_dict()

    def part(prefix: str, renames: tuple = ()) -> dict:
        out = {}
        for key, value in state.items():
            if key.startswith(prefix) and "mean_camera_pose" not in key:
                key = key[len(prefix):]
                for old, new in renames:
                    key = key.replace(old, new)
                out[key] = value
        return out

    mapper = StyleGAN2Mapper(z_dim=512, w_dim=512, num_ws=G.num_ws, num_layers=2)
    mapper.network.load_state_dict(part("mapping."))
    embedder = TriplaneEmbedder(resolution=64, channels=32, box_warp=0.4, plane_axes="epigraf", align_corners=True,
                                conv_clamp=256.0, noise_mode="const").eval()
    embedder.backbone.load_state_dict(part("synthesis.tri_plane_decoder."))
    decoder = OSGDecoder(in_channels=32, hidden_dim=64, output_dim=3, hidden_activation="lrelu",
                         feature_activation="linear", density_channel="last")
    decoder.load_state_dict(part("synthesis.tri_plane_mlp.", (("model.0", "hidden"), ("model.1", "output"))))
    z = torch.randn(2, 512)
    with torch.no_grad():
        ws_official, ws = G.mapping(z, None), mapper(z)
        planes_official = G.synthesis.tri_plane_decoder(ws_official, noise_mode="const")
        planes = embedder.scene(ws)
        points_e = (torch.rand(2, 100, 3) * 2 - 1) * 0.2  # EpiGRAF's world
        points = torch.stack([-points_e[..., 2], points_e[..., 1], points_e[..., 0]], -1)  # gan3d's
        official = tri_plane_renderer(planes_official, points_e.view(2, 100, 1, 3), torch.zeros(2, 100, 3),
                                      G.synthesis.tri_plane_mlp, scale=0.2)
        field = decoder(embedder(points.view(2, 100, 1, 3), planes))
    angles = torch.tensor([[0.3, 1.2, 0.0], [-0.5, 1.9, 0.0]])
    c2w_official = compute_cam2world_matrix(angles, 1.0)
    cameras = epigraf_cameras(angles, radius=1.0, fov=12.0, image_resolution=512)
    turn = torch.tensor([[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    rotation = turn @ c2w_official[:, :3, :3] @ torch.diag(torch.tensor([1.0, -1.0, -1.0]))

    d_cfg = cfg.discriminator
    D = Discriminator(cfg=d_cfg, c_dim=0, img_resolution=64, img_channels=3, channel_base=16384, channel_max=512,
                      block_kwargs={"freeze_layers": 0}, mapping_kwargs={},
                      epilogue_kwargs={"mbstd_group_size": 4}).eval()
    d_ours = EpiGRAFPatchDiscriminator().eval()
    d_ours.load_state_dict(D.state_dict())
    image = torch.randn(4, 3, 64, 64)
    scales = torch.tensor([1.0, 0.5, 0.25, 0.125])
    offsets = torch.rand(4, 2) * (1 - scales[:, None])
    patch = to_patch_params(torch.cat([scales[:, None], offsets], 1), 512)
    with torch.no_grad():
        logits_official = D(image, torch.zeros(4, 0), camera_angles=torch.zeros(4, 3),
                            patch_params={"scales": torch.stack([scales, scales], 1), "offsets": offsets})
        logits = d_ours(DiscriminatorInput(image, patch=patch)).logits.flatten()
    return {
        "ws": float((ws_official - ws).abs().max()),
        "planes": float((planes_official.view_as(planes) - planes).abs().max()),
        "rgb": float((official[..., :3] - field.features.view(2, 100, 3)).abs().max()),
        "density": float((official[..., 3:] - field.density.view(2, 100, 1)).abs().max()),
        "camera rotation": float((rotation - cameras.cam2world[:, :3, :3]).abs().max()),
        "camera origin": float(((turn @ c2w_official[:, :3, 3:]).squeeze(-1) - cameras.origins).abs().max()),
        "discriminator logits": float((logits_official - logits).abs().max()),
        "focal (W=512)": abs(float(cameras.intrinsics[0, 0, 0]) - 511 / (1024 * math.tan(math.radians(6)))),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("method", choices=("graf", "epigraf"))
    parser.add_argument("checkout", type=Path, help="the official checkout of that method")
    args = parser.parse_args()
    results = (graf if args.method == "graf" else epigraf)(args.checkout.resolve())
    worst = 0.0
    for name, value in results.items():
        print(f"{name:>24}: max |difference| {value:.3g}")
        worst = max(worst, value)
    sys.exit(0 if worst <= TOLERANCE else 1)


if __name__ == "__main__":
    main()
