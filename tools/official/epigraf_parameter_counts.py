"""Count the parameters of EpiGRAF's official networks at the released configurations (CPU).

Builds ``src/training/networks_epigraf.py`` ``Generator`` and ``src/training/networks_discriminator.py``
``Discriminator`` from a checkout of universome/epigraf that the user gives; nothing is downloaded.
Checked against commit bda8d4770209e87d7df4dac2528533b3872aa2d2.

    python tools/official/epigraf_parameter_counts.py /path/to/epigraf

The configuration is composed here as ``configs/config.yaml`` composes it with Hydra (``model/base.yaml``
+ ``model/epigraf.yaml``, ``training/base.yaml`` + ``training/patch_beta.yaml``, ``dataset/base.yaml``
+ ``dataset/<name>.yaml``) and ``src/train.py`` turns it into constructor arguments. The networks only
read the configuration through attribute access, so a small dict with attribute access stands in for
OmegaConf's ``DictConfig`` (omegaconf itself is not a gan3d dependency), and ``requests``
(dnnlib's download helper) gets an empty stand-in when it is not installed. The CUDA kernels of the
official code fall back to its own reference implementations on a CPU. Not imported by gan3d; the
printed counts are asserted in ``tests/methods/test_epigraf_counts.py``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import sys
import types
from pathlib import Path


class Config(dict):
    """A dict with attribute access: the part of OmegaConf's DictConfig the networks use."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    __setattr__ = dict.__setitem__


def _config(value):
    if isinstance(value, dict):
        return Config({k: _config(v) for k, v in value.items()})
    return value


#: configs/dataset/*.yaml: (resolution from the README/checkpoints, c_dim).
DATASETS = {
    "ffhq512": {"resolution": 512, "c_dim": 0, "cube_scale": 0.2},
    "cats256": {"resolution": 256, "c_dim": 0, "cube_scale": 0.2},
    "plants256": {"resolution": 256, "c_dim": 198, "cube_scale": 0.475},
    "food256": {"resolution": 256, "c_dim": 10, "cube_scale": 0.475},
}
PATCH_RESOLUTION = 64  # configs/training/base.yaml patch.resolution


def compose(dataset: str, d_camera_cond: bool = False) -> Config:
    data = DATASETS[dataset]
    patch = {"enabled": True, "patch_params_cond": True, "min_scale_trg": PATCH_RESOLUTION / data["resolution"],
             "max_scale": 1.0, "anneal_kimg": 10000, "resolution": PATCH_RESOLUTION, "mbstd_group_size": 4,
             "distribution": "beta", "alpha": 1.0, "beta_val_start": 0.001, "beta_val_end": 0.8}
    dataset_cfg = {"resolution": data["resolution"], "c_dim": data["c_dim"], "cube_scale": data["cube_scale"],
                   "white_back": dataset.startswith(("plants", "food")), "last_back": False,
                   "camera": {"fov": 12.0, "ray_start": 0.88, "ray_end": 1.12, "radius": 1.0, "dist": "custom"}}
    generator = {
        "fmaps": 1.0, "cmax": 512, "cbase": 32768, "optim": {"lr": 0.0025, "betas": [0.0, 0.99]},
        "patch": patch, "dataset": dataset_cfg, "w_dim": 512, "camera_cond": False, "camera_cond_drop_p": 0.0,
        "camera_cond_noise_std": 0.0, "camera_cond_spoof_p": 0.5, "map_depth": 2, "ema_multiplier": 0.3125,
        "backbone": "stylegan2", "num_ray_steps": 48, "clamp_mode": "softplus", "nerf_noise_std_init": 1.0,
        "nerf_noise_kimg_growth": 5000, "density_shift": 0.0, "use_noise": True,
        "tri_plane": {"res": 512, "feat_dim": 32, "fp32": True, "has_view_cond": False, "posenc_period_len": 0,
                      "mlp": {"n_layers": 2, "hid_dim": 64}},
        "bg_model": {"type": None},
    }
    discriminator = {
        "fmaps": 0.5, "cmax": 512, "cbase": 32768, "patch": patch, "mbstd_group_size": 4,
        "camera_cond": d_camera_cond, "camera_cond_drop_p": 0.5 if d_camera_cond else 0.0,
        "camera_cond_noise_std": 0.0, "camera_cond_raw": False, "hyper_mod": True,
        # model/epigraf.yaml: log2_divide(dataset.resolution, training.patch.resolution)
        "num_additional_start_blocks": int(math.log2(data["resolution"] // PATCH_RESOLUTION)),
        "optim": {"lr": 0.002, "betas": [0.0, 0.99]},
    }
    return _config({"generator": generator, "discriminator": discriminator, "dataset": dataset_cfg})


def count(module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("epigraf", type=Path, help="a checkout of universome/epigraf")
    args = parser.parse_args()
    root = args.epigraf.resolve()
    if not (root / "src" / "training" / "networks_epigraf.py").is_file():
        parser.error(f"{root} is not an EpiGRAF checkout (src/training/networks_epigraf.py missing)")
    # Imported by the official modules but not needed to build the networks: omegaconf (type hints),
    # requests (dnnlib's URL download helper).
    for name, attributes in (("omegaconf", {"DictConfig": Config, "OmegaConf": None}), ("requests", {})):
        try:
            importlib.import_module(name)
        except ImportError:
            sys.modules[name] = types.SimpleNamespace(**attributes)
    sys.path.insert(0, str(root))
    import torch  # noqa: E402
    from src.training.networks_discriminator import Discriminator  # noqa: E402
    from src.training.networks_epigraf import Generator  # noqa: E402

    results = {}
    for name, data in DATASETS.items():
        for d_camera_cond in (False, True):
            cfg = compose(name, d_camera_cond)
            g, d = cfg.generator, cfg.discriminator
            # src/train.py: G_kwargs / D_kwargs
            G = Generator(cfg=g, z_dim=512, c_dim=data["c_dim"], w_dim=512, img_resolution=data["resolution"],
                          img_channels=3, channel_base=int(g.cbase * g.fmaps), channel_max=g.cmax,
                          fused_modconv_default="inference_only",
                          mapping_kwargs={"num_layers": g.map_depth, "camera_cond": g.camera_cond,
                                          "camera_cond_drop_p": 0.0, "camera_cond_noise_std": 0.0,
                                          "mean_camera_pose": torch.tensor([0.0, math.pi / 2, 0.0])})
            D = Discriminator(cfg=d, c_dim=data["c_dim"], img_resolution=PATCH_RESOLUTION, img_channels=3,
                              channel_base=int(d.cbase * d.fmaps), channel_max=d.cmax,
                              block_kwargs={"freeze_layers": 0}, mapping_kwargs={},
                              epilogue_kwargs={"mbstd_group_size": d.mbstd_group_size})
            key = name + ("_d_camera_cond" if d_camera_cond else "")
            results[key] = {
                "generator": count(G), "discriminator": count(D), "num_ws": G.num_ws,
                "generator_by_part": {"mapping": count(G.mapping),
                                      "tri_plane_decoder": count(G.synthesis.tri_plane_decoder),
                                      "tri_plane_mlp": count(G.synthesis.tri_plane_mlp)},
                "discriminator_by_part": {k: count(getattr(D, k)) for k, _ in D.named_children()},
            }
            if name == "ffhq512" and not d_camera_cond:
                results[key]["discriminator_parameters"] = {n: list(p.shape) for n, p in D.named_parameters()}
                results[key]["discriminator_buffers"] = {n: list(b.shape) for n, b in D.named_buffers()}
                results[key]["generator_parameters"] = {n: list(p.shape) for n, p in G.named_parameters()
                                                        if not n.startswith("synthesis.tri_plane_decoder.b")}
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
