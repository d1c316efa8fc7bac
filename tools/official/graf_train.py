"""Train the official GRAF (autonomousvision/graf c50d342) on a gan3d data set, on the CPU, at the sizes of
gan3d's ``graf`` ``synthetic`` recipe. Outside gan3d's code path; imports the official checkout the user gives.

    python tools/official/graf_train.py /path/to/graf --out runs/official_graf --seed 0 --kimg 12 \\
        --snapshot_kimg 2 6 8 12
    python tools/run.py import --method graf --variant synthetic \\
        --checkpoint runs/official_graf/model_00001499.pt --out official_12kimg.pt
    python tools/run.py eval --model official_12kimg.pt --test_pose --test_depth --estimator_weights ...
    python tools/official/graf_train.py /path/to/graf --check runs/official_graf/model_00001499.pt

What runs is the official training step, unchanged: its ``Generator`` (nerf-pytorch's ``render`` with the
training kwargs: jittered depths, density noise), its ``FlexGridRaySampler`` patches with the scale annealing,
``ImgToPatch`` for the real patches, its spectrally normalized patch ``Discriminator``, GAN_stability's
``Trainer`` (BCE, R1 ``reg_type: real``, ``reg_param`` 10), RMSprop (alpha 0.99, eps 1e-8), ``MultiStepLR``,
``decrease_nerf_noise`` between the D and the G step and ``update_average`` (beta 0.999) after it, in
train.py's order. Only the configuration is gan3d's (the official code reads it from a YAML file; here it is
taken from the recipe, so both sides train the same sizes):

* the NeRF's depth, width and skip, the codes' sizes, the samples per ray, near and far, the patch size,
  the scale annealing, the discriminator's ndf, the learning rates, the batch size;
* the cameras: ``Generator.sample_pose`` is replaced by the recipe's pose sampler (the data set's normal
  yaw / polar prior about the pivot, where GRAF's configs draw ``u, v`` uniformly about the origin), its
  cam2world turned into GRAF's z-up world with OpenGL camera axes (``gan3d.methods.graf.official.graf_pose``,
  as ``tools/bench_official.py`` does);
* ``create_nerf`` hard-codes ``skips=[4]``; the NeRF class it builds is given the recipe's skips instead
  (the synthetic recipe's trunk has 4 layers, so a skip after layer 4 would not exist);
* the data: the gan3d set's PNGs, read once, with GRAF's transforms (``RandomHorizontalFlip`` where the
  recipe flips, ``ToTensor``, ``x * 2 - 1``) and a shuffling ``DataLoader`` with ``drop_last``.

Checkpoints are GAN_stability's format (``generator``, ``generator_test``, ``discriminator``, ``it``):
``tools/run.py import --method graf --variant synthetic`` reads them. After writing each one (and alone with
``--check``) the script renders the file's ``generator_test`` with the official test-time kwargs and the gan3d
import of the file at the same two cameras and codes, and prints the largest difference: the pose conversion
and the import are right when it is float rounding (1.4e-5 to 3.8e-5 at 12 kimg, three seeds; a mirrored
world gives 1.35).
"""

from __future__ import annotations

import argparse
import copy
import importlib
import json
import random
import sys
import time
import types
from pathlib import Path

import numpy as np
import torch

from gan3d.methods.graf.official import graf_pose

#: the official and the imported renders of a trained file: float32 rounding of the rays, magnified by the
#: highest octave (2^9) of the positional encoding (up to 3.8e-5 at 12 kimg).
TOLERANCE = 1e-4


def _official(root: Path):
    import torch._dynamo  # noqa: F401  (it scans sys.modules: before the stand-ins)

    sys.path.insert(0, str(Path(__file__).parent))
    from graf_epigraf_parity import _stand_in  # an empty module for each name that cannot be imported

    # progress bars, plots, image files and the hierarchical sampler's extension: the training step uses none
    for name, attributes in (("tqdm", {"tqdm": lambda it, *a, **k: it}), ("matplotlib", {}),
                             ("matplotlib.pyplot", {}), ("imageio", {}), ("torchsearchsorted", {"searchsorted": None})):
        _stand_in(name, **attributes)
    for path in (root, root / "submodules"):
        sys.path.insert(0, str(path))
    missing = [p for p in ("graf/models/generator.py", "graf/transforms.py", "graf/models/discriminator.py",
                           "submodules/nerf_pytorch/run_nerf_mod.py", "submodules/GAN_stability/gan_training/train.py")
               if not (root / p).is_file()]
    if missing:
        raise SystemExit(f"{root}: not an autonomousvision/graf checkout (missing {', '.join(missing)})")
    return types.SimpleNamespace(
        run_nerf=importlib.import_module("submodules.nerf_pytorch.run_nerf_mod"),
        generator=importlib.import_module("graf.models.generator"),
        transforms=importlib.import_module("graf.transforms"),
        discriminator=importlib.import_module("graf.models.discriminator"),
        helpers=importlib.import_module("submodules.nerf_pytorch.run_nerf_helpers_mod"),
        train=importlib.import_module("submodules.GAN_stability.gan_training.train"),
    )


def _config(recipe) -> dict:
    """configs/default.yaml's keys, filled from the gan3d recipe (asserting the parts that map one to one)."""
    m = {name: spec.kwargs for name, spec in recipe.modules.items()}
    names = {name: spec.name for name, spec in recipe.modules.items()}
    assert names["feature_decoder"] == "graf_nerf" and names["point_sampler"] == "uniform", names
    assert names["volume_renderer"] == "volume" and float(m["volume_renderer"].get("last_delta", 1e10)) == 1e10
    decoder, loss, t = m["feature_decoder"], m["loss"], recipe.training
    z_dim, appearance = int(m["stochasticity_mapper"]["z_dim"]), int(decoder["appearance_dim"])
    return {
        "nerf": {"i_embed": 0, "use_viewdirs": bool(decoder.get("use_viewdirs", True)),
                 "multires": int(m["point_embedder"]["num_frequencies"]),
                 "multires_views": int(decoder.get("num_view_frequencies", 4)),
                 "N_samples": int(m["point_sampler"]["num_samples"]), "N_importance": 0,
                 "netdepth": int(decoder["num_layers"]), "netwidth": int(decoder["hidden_dim"]),
                 "netdepth_fine": int(decoder["num_layers"]), "netwidth_fine": int(decoder["hidden_dim"]),
                 "perturb": 1.0, "raw_noise_std": float(m["volume_renderer"].get("noise_std", 1.0)),
                 "white_bkgd": bool(m["volume_renderer"].get("white_back", False)),
                 "feat_dim": z_dim, "feat_dim_appearance": appearance,
                 "chunk": min(32768, 1024 * int(t["batch_size"])), "netchunk": 65536},
        "skips": list(decoder.get("skips", [4])),
        "near": float(m["point_sampler"]["ray_start"]), "far": float(m["point_sampler"]["ray_end"]),
        "imsize": int(recipe.generator["render_resolution"]), "patch": int(loss["patch_size"]),
        "min_scale": float(loss["min_scale"]), "max_scale": float(loss.get("max_scale", 1.0)),
        "scale_anneal": float(loss["scale_anneal"]), "ndf": int(m["discriminator"]["ndf"]),
        "reg_param": float(loss["reg_param"]),
        "batch": int(t["batch_size"]), "lr_g": float(t["g_lr"]), "lr_d": float(t["d_lr"]),
        "milestones": [50000, 100000, 200000], "ema_beta": float(t["ema_beta"]), "xflip": bool(t["xflip"]),
    }


def _pose_sampler(recipe):
    from gan3d.samplers.spherical_pose_sampler import SphericalPoseSampler

    spec = recipe.modules["pose_sampler"]
    assert spec.name == "spherical", spec.name
    return SphericalPoseSampler(**spec.kwargs)


def _generator(official, cfg: dict, recipe, poses, focal: float):
    """graf/config.py ``build_models``' generator at ``cfg``, drawing its cameras from ``poses``."""
    base, recipe_skips = official.run_nerf.NeRF, cfg["skips"]

    class NeRF(base):  # create_nerf with the recipe's skips (its own are hard-coded [4])
        def __init__(self, *a, skips=None, **k):  # noqa: ARG002
            super().__init__(*a, skips=recipe_skips, **k)

    official.run_nerf.NeRF = NeRF
    try:
        render_train, render_test, params, named = official.run_nerf.create_nerf(argparse.Namespace(**cfg["nerf"]))
    finally:
        official.run_nerf.NeRF = base
    for kwargs in (render_train, render_test):
        kwargs.update(near=cfg["near"], far=cfg["far"])
    ray_sampler = official.transforms.FlexGridRaySampler(N_samples=cfg["patch"] ** 2, min_scale=cfg["min_scale"],
                                                          max_scale=cfg["max_scale"],
                                                          scale_anneal=cfg["scale_anneal"])
    size = cfg["imsize"]
    G = official.generator.Generator(size, size, focal, float(recipe.modules["pose_sampler"].kwargs["radius"]),
                                     ray_sampler=ray_sampler, render_kwargs_train=render_train,
                                     render_kwargs_test=render_test, parameters=params, named_parameters=named,
                                     chunk=cfg["nerf"]["chunk"], device="cpu")
    G.sample_pose = lambda: graf_pose(poses(1).cam2world)[0]  # the recipe's prior in place of u, v uniform
    return G


def _check(official, G, path: Path, variant: str, poses, size: int, focal: float, strict: bool = True) -> None:
    """The official test-time render of ``G`` (its weights replaced by ``path``'s ``generator_test``) and
    gan3d's import of ``path`` at the same two cameras and codes: they must agree to float rounding, or the
    imported model would not be the one trained (``strict``: exit status 1; else a warning, training goes on)."""
    import tempfile

    from gan3d.core.checkpoint import load_generator
    from gan3d.core.official.importer import write_imported_checkpoint
    from gan3d.methods.graf.official import GRAFImporter

    state = torch.load(path, map_location="cpu", weights_only=True)
    network = G.module_dict["generator"]
    saved = {k: v.clone() for k, v in network.state_dict().items()}
    network.load_state_dict(state["generator_test"])
    with tempfile.TemporaryDirectory() as tmp:
        ours, imported = load_generator(write_imported_checkpoint(GRAFImporter().load(path, variant=variant),
                                                           Path(tmp) / "imported.pt"))
    gen = torch.Generator().manual_seed(0)
    cameras = poses(2, generator=gen)
    z = torch.randn(2, int(imported.modules["stochasticity_mapper"].kwargs["z_dim"]), generator=gen)
    G.eval()
    try:
        with torch.no_grad():
            rays = [official.helpers.get_rays(size, size, focal, pose) for pose in graf_pose(cameras.cam2world)]
            rays = torch.cat([torch.stack([o.reshape(-1, 3), d.reshape(-1, 3)]) for o, d in rays], 1)
            theirs = G(z, rays=rays)[0].reshape(2, size, size, 3).permute(0, 3, 1, 2)
            mine = ours(z, cameras, resolution=size).image
    finally:
        G.train()
        network.load_state_dict(saved)
    difference = float((theirs - mine).abs().max())
    print(f"{path.name}: official vs imported render, largest difference {difference:.2e} "
          f"(image range {float(theirs.min()):.2f}..{float(theirs.max()):.2f})", flush=True)
    if difference > TOLERANCE:
        if strict:
            raise SystemExit(1)
        print(f"WARNING: above {TOLERANCE}: the import of {path.name} does not render what was trained", flush=True)


def _images(folder: Path, size: int) -> torch.Tensor:
    """``[N, 3, size, size]`` in ``[-1, 1]``: every image of an EG3D-layout set, unflipped (x-flips are drawn
    per step, as GRAF's ``RandomHorizontalFlip``)."""
    from gan3d.core.data import EG3DDataset

    data = EG3DDataset(folder)
    images = torch.stack([data[i][0] for i in range(len(data))])
    if images.shape[-2:] != (size, size):
        raise SystemExit(f"{folder}: {images.shape[-1]} x {images.shape[-2]} px images, the recipe renders {size}")
    return images


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, help="autonomousvision/graf checkout (with its submodules)")
    parser.add_argument("--out", type=Path, help="folder for model_<it>.pt (must not hold any)")
    parser.add_argument("--check", type=Path, default=None,
                        help="only compare this checkpoint's official render with its gan3d import's")
    parser.add_argument("--dataset", type=Path, default=None, help="gan3d set (default: the synthetic head set)")
    parser.add_argument("--variant", default="synthetic", help="gan3d graf recipe whose sizes are trained")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="recipe override")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kimg", type=float, default=12.0)
    parser.add_argument("--snapshot_kimg", type=float, nargs="+", default=[2, 6, 8, 12])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    if (args.out is None) == (args.check is None):
        parser.error("give one of --out (train) and --check (compare a checkpoint)")

    from gan3d.core.data.synthetic_dataset import make_synthetic_dataset
    from gan3d.methods.graf.recipe import graf_recipe
    recipe = graf_recipe(args.variant).overrides(args.set)
    cfg = _config(recipe)
    official = _official(args.root.resolve())
    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    np.random.seed(args.seed)  # run_nerf_mod seeds numpy with 0 on import
    torch.manual_seed(args.seed)

    size = cfg["imsize"]
    poses = _pose_sampler(recipe)
    focal = float(poses(1).intrinsics[0, 0, 0]) * size
    G = _generator(official, cfg, recipe, poses, focal)
    if args.check is not None:
        _check(official, G, args.check, args.variant, poses, size, focal)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    if any(args.out.glob("model_*.pt")):
        raise SystemExit(f"{args.out}: holds checkpoints already (nothing was overwritten); choose another --out")
    dataset = args.dataset or make_synthetic_dataset()
    reals = _images(Path(dataset), size)
    D = official.discriminator.Discriminator(nc=3, ndf=cfg["ndf"], imsize=cfg["patch"], hflip=False)
    G_test = copy.deepcopy(G)  # train.py: take_model_average
    G_test.parameters = lambda: G_test._parameters
    G_test.named_parameters = lambda: G_test._named_parameters
    official.train.update_average(G_test, G, 0.0)  # the copy starts equal (model_average_reinit is a no-op here)
    g_opt = torch.optim.RMSprop(G.parameters(), lr=cfg["lr_g"], alpha=0.99, eps=1e-8)
    d_opt = torch.optim.RMSprop(D.parameters(), lr=cfg["lr_d"], alpha=0.99, eps=1e-8)
    g_sched = torch.optim.lr_scheduler.MultiStepLR(g_opt, cfg["milestones"], gamma=0.5)
    d_sched = torch.optim.lr_scheduler.MultiStepLR(d_opt, cfg["milestones"], gamma=0.5)
    trainer = official.train.Trainer(G, D, g_opt, d_opt, gan_type="standard", reg_type="real",
                                     reg_param=cfg["reg_param"])
    img_to_patch = official.transforms.ImgToPatch(G.ray_sampler, (size, size, focal))

    batch = cfg["batch"]
    iterations = int(round(args.kimg * 1000 / batch))
    snapshots = {int(round(k * 1000 / batch)) - 1 for k in args.snapshot_kimg}
    y = torch.zeros(batch)
    z_dim = cfg["nerf"]["feat_dim"]
    (args.out / "config.json").write_text(json.dumps({"recipe": args.variant, "set": args.set, "seed": args.seed,
                                                      "config": cfg, "dataset": str(dataset)}, indent=1))
    print(f"official GRAF, {sum(p.numel() for p in G.parameters())} G / {sum(p.numel() for p in D.parameters())} "
          f"D parameters, {len(reals)} images, {iterations} iterations", flush=True)
    it, start = -1, time.time()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(reals), batch_size=batch, shuffle=True,
                                         drop_last=True)
    while it + 1 < iterations:
        for (x_real,) in loader:
            if it + 1 >= iterations:
                break
            it += 1
            if cfg["xflip"]:  # RandomHorizontalFlip, per image
                flip = torch.rand(batch) < 0.5
                x_real = torch.where(flip[:, None, None, None], x_real.flip(3), x_real)
            G.ray_sampler.iterations = it
            rgbs = img_to_patch(x_real)
            z = torch.randn(batch, z_dim)
            dloss, reg = trainer.discriminator_trainstep(rgbs, y=y, z=z)
            G.decrease_nerf_noise(it)
            z = torch.randn(batch, z_dim)
            gloss = trainer.generator_trainstep(y=y, z=z)
            official.train.update_average(G_test, G, beta=cfg["ema_beta"])
            g_sched.step()
            d_sched.step()
            if (it + 1) % 50 == 0:
                print(f"it {it + 1} ({(it + 1) * batch / 1000:.1f} kimg, {time.time() - start:.0f} s): "
                      f"g {gloss:.3f} d {dloss:.3f} reg {reg:.3f} scale {float(G.ray_sampler.scale):.2f}", flush=True)
            if it in snapshots:
                path = args.out / f"model_{it:08d}.pt"
                torch.save({"generator": G.module_dict["generator"].state_dict(),
                            "generator_test": G_test.module_dict["generator"].state_dict(),
                            "discriminator": D.state_dict(), "it": it}, path)
                print(f"wrote {path}", flush=True)
                _check(official, G_test, path, args.variant, poses, size, focal, strict=False)


if __name__ == "__main__":
    main()
