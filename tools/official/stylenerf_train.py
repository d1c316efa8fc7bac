"""Train the official StyleNeRF (facebookresearch/StyleNeRF 7f5610a) on a gan3d data set, on the CPU, at the
sizes of gan3d's ``stylenerf`` ``synthetic`` recipe. Outside gan3d's code path; imports the official checkout
the user gives (plus ``einops``, its requirement, from ``--pythonpath``).

    python tools/official/stylenerf_train.py /path/to/StyleNeRF --pythonpath /path/with/einops \\
        --out runs/official_stylenerf --seed 0 --kimg 12 --snapshot_kimg 2 6 8 12
    python tools/run.py import --method stylenerf --checkpoint runs/official_stylenerf/network-snapshot-000012.pkl \\
        --out official_12kimg.pt
    python tools/run.py eval --model official_12kimg.pt --test_pose --test_depth --estimator_weights ...
    python tools/official/stylenerf_train.py /path/to/StyleNeRF --pythonpath ... --check FILE.pkl
    python tools/official/stylenerf_train.py /path/to/StyleNeRF --pythonpath ... --gradients FILE.pkl --draws 16

What runs is the official training iteration, unchanged: ``training/loss.py``'s ``StyleGAN2Loss`` (non-saturating
loss, style mixing, path-length regularization on half the round, R1 on the reals, the NeRF path regularization
that ``NeRFSynthesisNetwork`` returns as ``reg_loss``, ``set_alpha`` with the ``curriculum`` in kimg), driven as
``training/training_loop.py`` drives it: the phases ``Gmain``, ``Greg`` (every 4), ``Dmain``, ``Dreg`` (every
16), Adam with the lazy-regularization ``mb_ratio`` on the learning rate and betas, rounds of ``batch_gpu``
(``run_train.py``: the spec's ``mbstd``) accumulated into each step, ``nan_to_num`` on the gradients, the reals
resized to the current resolution (``resize_real_early``, ``training/data_utils.resize_image``), the EMA with
half-life ``ema_kimg`` and the buffers copied, and snapshots pickled as its ``snapshot_data``. The loop itself
is written out here because the official one is CUDA-only (``torch.device('cuda')``, CUDA events).

The configuration is gan3d's ``synthetic`` recipe (sizes, samples, upsampler and discriminator widths, curriculum,
learning rate, batch, R1 gamma, EMA, and its world: the synthetic set's scaled by 1 / 2.7 onto NeRF++'s unit
sphere, cameras 1 from the origin, the background from radius 2, as the recipe's docstring explains), built by
``tools/bench_official.py``'s StyleNeRF adapter as ``conf/model/stylenerf_ffhq.yaml`` builds the FFHQ model (the
adapter refuses a recipe whose cameras are off that sphere), with two changes:

* float32 throughout (the official ``--fp32`` switches fp16 off in the same places; its upsampler blocks
  after the first are switched off by hand, as the bench adapter's ``fp32`` precision does); the recipe's
  ``conv_clamp`` 256 is kept;
* the data: the gan3d set's PNGs through ``EG3DDataset``, drawn at random with x-flips per image (the
  official ``ImageFolderDataset(xflip=True)`` with its ``InfiniteSampler``), as uint8 into the loop.

``--gradients`` compares one phase's expected gradients (``--phase Gmain`` or ``Dmain``) at a snapshot's training
weights (``G`` and ``D``, fully grown), with the randomness of training on: ``--draws`` batches of 4 (the same latents
and reals on both sides; each side draws its own cameras, noise, jitter, background latents, style mixing and
regularization pixels) through the official ``accumulate_gradients`` and through gan3d's objective on the import,
the official gradients renamed and turned into gan3d's frame as the importer does; per parameter tensor it prints
the cosine of the two sides' mean gradients beside the cosine between the two halves of the draws of each side
(how far the draws alone move a mean) and the ratio of their norms.

The snapshots (``network-snapshot-<kimg>.pkl``: ``G``, ``D``, ``G_ema``, ``augment_pipe``, ``training_set_kwargs``)
import with ``tools/run.py import --method stylenerf``. After writing each one (and alone with ``--check``) the
script renders its ``G_ema`` with the official forward and the gan3d import of the file at the same cameras,
latents and background latents (the bench's image comparison) and prints the largest and the median difference
beside those of the official network against itself with its parameters moved by float32 rounding: the import
and the frame conversion are right when the difference stays at that scale (seed 0, snapshots at 2 to 12 kimg:
medians 8e-7 to 1.6e-5 and largest 2.4e-4 to 5.5e-3, against the rounding's 2e-7 to 7e-7 and 3e-4 to 3.8e-3: a
few pixels where the importance pass moves a fine sample, as the bench's StyleNeRF row records; a wrong frame or
weight gives differences of order 1).
"""

from __future__ import annotations

import argparse
import copy
import json
import pickle
import sys
import time
import types
from pathlib import Path

import numpy as np
import torch

#: the median difference of the official and the imported renders of a trained snapshot: float rounding, as
#: amplified by the network (tests/methods' fidelity test of the untrained network: median about 1e-5).
TOLERANCE = 1e-4


def _official(root: Path, pythonpath: list[Path], recipe):
    """The bench adapter (which puts the checkout on the path, stubs what the official imports need and checks
    the recipe maps onto ``stylenerf_ffhq.yaml``) and the official modules the training step uses."""
    import importlib

    sys.path[:0] = [str(Path(__file__).resolve().parents[1]), *map(str, pythonpath)]
    from bench_official import OfficialSourceError, StyleNeRFOfficial, _stub_module

    try:
        adapter = StyleNeRFOfficial(root, recipe, torch.device("cpu"), precision="fp32")
        adapter.build(train=False)
    except OfficialSourceError as e:
        raise SystemExit(str(e)) from e

    def resize(img, height, width, interpolation):  # albumentations' resize is this cv2 call
        import cv2

        return cv2.resize(img, (width, height), interpolation=interpolation)

    # training/loss.py imports save_image (image grids only) from torchvision, which gan3d does not install;
    # training/data_utils.py imports albumentations for one resize.
    _stub_module("torchvision")
    _stub_module("torchvision.utils", save_image=None)
    _stub_module("albumentations")
    _stub_module("albumentations.geometric")
    _stub_module("albumentations.geometric.functional", resize=resize)
    sys.modules["albumentations"].geometric = sys.modules["albumentations.geometric"]
    sys.modules["albumentations.geometric"].functional = sys.modules["albumentations.geometric.functional"]
    return adapter, types.SimpleNamespace(
        loss=importlib.import_module("training.loss"), data_utils=importlib.import_module("training.data_utils"),
        networks=importlib.import_module("training.networks"), stylenerf=importlib.import_module("training.stylenerf"),
        misc=importlib.import_module("torch_utils.misc"))


def _fp32(G) -> None:
    """The upsampler blocks after the first compute in float16 whatever ``num_fp16_res`` says: switch them off."""
    for name in G.synthesis.block_names:
        getattr(G.synthesis, name).use_fp16 = False


def _discriminator(official, recipe):
    """``stylenerf_ffhq.yaml``'s ``D_kwargs`` at the recipe's sizes (fp32)."""
    d = recipe.modules["discriminator"].kwargs
    return official.stylenerf.Discriminator(
        c_dim=0, img_resolution=int(d["img_resolution"]), img_channels=3, architecture="skip",
        channel_base=float(d["channel_base"]) / 32768, channel_max=int(d["channel_max"]), num_fp16_res=0,
        conv_clamp=None if d.get("conv_clamp") is None else float(d["conv_clamp"]), progressive=True,
        lowres_head=int(d["lowres_head"]), upsample_type="bilinear", resize_real_early=True,
        epilogue_kwargs={"mbstd_group_size": int(d["mbstd_group_size"])})


def _check(adapter, G_ema, path: Path, recipe, strict: bool = True) -> dict[str, float]:
    """The official render of ``G_ema`` and gan3d's import of ``path`` at the same cameras, latents and
    background latents (the bench's image comparison), beside the official render of ``G_ema`` with its
    parameters moved by float32 rounding (each times ``1 +- 6e-8``): how far rounding alone moves this network's
    images. Past ``TOLERANCE`` (the median difference): exit status 1 (``strict``) or a warning."""
    import tempfile

    from gan3d.core.checkpoint import load_generator
    from gan3d.core.official.importer import write_imported_checkpoint
    from gan3d.methods.stylenerf.official import StyleNeRFImporter

    with tempfile.TemporaryDirectory() as tmp:
        ours, _ = load_generator(write_imported_checkpoint(StyleNeRFImporter().load(path), Path(tmp) / "imported.pt"))
    ours.eval()
    gen = torch.Generator().manual_seed(5)
    z = torch.randn(4, ours.z_dim, generator=gen)
    cameras = adapter.cameras(ours, 4, gen)
    rounded = copy.deepcopy(G_ema)
    with torch.no_grad():
        for p in rounded.parameters():
            p.mul_(1 + 6e-8 * torch.randn(p.shape, generator=gen).sign())
    renders = []
    for network in (G_ema, rounded):
        adapter.G = copy.deepcopy(network).eval().requires_grad_(False)
        _fp32(adapter.G)
        adapter._half_blocks = []
        with torch.no_grad(), adapter.deterministic(ours):
            renders.append(adapter.infer(z, cameras))
    with torch.no_grad(), adapter.deterministic(ours):
        mine = ours(z, cameras).image
    theirs = renders[0]
    diff, itself = (theirs - mine).abs(), (theirs - renders[1]).abs()
    out = {"max": float(diff.max()), "median": float(diff.median()), "rounding_max": float(itself.max()),
           "rounding_median": float(itself.median())}
    print(f"{path.name}: official vs imported render: largest difference {out['max']:.2e}, median "
          f"{out['median']:.1e} (the official network against itself with its parameters moved by float32 "
          f"rounding: {out['rounding_max']:.2e}, {out['rounding_median']:.1e}; image range "
          f"{float(theirs.min()):.2f}..{float(theirs.max()):.2f})", flush=True)
    if out["median"] > TOLERANCE:
        if strict:
            raise SystemExit(1)
        print(f"WARNING: median past {TOLERANCE}: the import of {path.name} does not render what was trained",
              flush=True)
    return out


def _official_loss(official, G, D, recipe):
    """The official ``StyleGAN2Loss`` of ``G`` and ``D`` with the recipe's loss options and fade-in curriculum."""
    loss_spec, up = recipe.modules["loss"].kwargs, recipe.modules["upsampler"].kwargs
    return official.loss.StyleGAN2Loss(
        device=torch.device("cpu"), G_mapping=G.mapping, G_synthesis=G.synthesis, D=D, augment_pipe=None,
        style_mixing_prob=float(loss_spec["style_mixing_prob"]), r1_gamma=float(loss_spec["r1_gamma"]),
        pl_batch_shrink=int(loss_spec["pl_batch_shrink"]), pl_decay=float(loss_spec["pl_decay"]),
        pl_weight=float(loss_spec["pl_weight"]), curriculum=[float(up["fade_start_kimg"]), float(up["fade_end_kimg"])])


def compare_mean_gradients(official: list[dict[str, torch.Tensor]], ours: list[dict[str, torch.Tensor]]
                           ) -> list[dict[str, float | str]]:
    """Per tensor named on both sides (and not zero on both): ``cross``, the cosine of the two sides' mean gradients;
    ``official_halves`` and ``ours_halves``, the cosine between the means of the first and the second half of one
    side's draws; ``norm_ratio``, ``|mean ours| / |mean official|``. Rows sorted by how far ``cross`` falls below
    the lower of the two halves' cosines (the suspects first)."""
    if len(official) != len(ours) or len(official) < 2:
        raise ValueError(f"need the same number (>= 2) of draws on both sides, got {len(official)} and {len(ours)}")
    half = len(official) // 2

    def mean(draws, key, part=slice(None)):
        return torch.stack([d[key].float() for d in draws[part]]).mean(0).flatten()

    def cos(a, b):
        return float(torch.nn.functional.cosine_similarity(a, b, dim=0, eps=1e-30))

    rows = []
    for key in [k for k in ours[0] if k in official[0]]:
        a, b = mean(official, key), mean(ours, key)
        if not (a.any() or b.any()):
            continue
        first, second = slice(0, half), slice(half, None)
        rows.append({"tensor": key, "cross": cos(a, b),
                     "official_halves": cos(mean(official, key, first), mean(official, key, second)),
                     "ours_halves": cos(mean(ours, key, first), mean(ours, key, second)),
                     "norm_ratio": float(b.norm() / a.norm().clamp_min(1e-30))})
    return sorted(rows, key=lambda r: r["cross"] - min(r["official_halves"], r["ours_halves"]))


def _gradients(adapter, official, recipe, path: Path, phase: str, draws: int, dataset
               ) -> tuple[list[dict[str, torch.Tensor]], list[dict[str, torch.Tensor]]]:
    """``draws`` gradients of ``phase`` per side at the training weights of snapshot ``path`` (module docstring)."""
    from gan3d.core.generator import build_generator, build_module
    from gan3d.core.interfaces import Scheduled
    from gan3d.core.objective import LossInputs
    from gan3d.methods.stylenerf.official import StyleNeRFImporter, generator_state

    with open(path, "rb") as f:
        data = pickle.load(f)
    G, D = data["G"].train(), data["D"].train()
    _fp32(G)
    up = recipe.modules["upsampler"].kwargs
    loss = _official_loss(official, G, D, recipe)
    kimg = max(float(up["fade_end_kimg"]), 0.0) + 1.0  # fully grown on both sides
    step = int(kimg * 1000) // int(recipe.training["batch_size"])
    loss.set_alpha(int(kimg * 1000))
    imported = StyleNeRFImporter().load(path)
    ours_G = build_generator(imported.recipe).train()
    ours_G.load_state_dict(imported.G)
    ours_D = build_module(imported.recipe, "discriminator").train()
    ours_D.load_state_dict(imported.D)  # the importer has dropped the official D.alpha
    objective = build_module(imported.recipe, "loss")
    for module in (ours_G, ours_D, objective):
        for m in module.modules():
            if isinstance(m, Scheduled):  # as the trainer sets the progress
                m.set_training_step(step, kimg)
    reals = _images(Path(dataset), int(up["image_resolution"]))
    batch, out = 4, {"official": [], "ours": []}
    for k in range(draws):
        gen = torch.Generator().manual_seed(1000 + k)
        img = reals[torch.randint(len(reals), (batch,), generator=gen)].float() / 127.5 - 1
        z = torch.randn(batch, G.z_dim, generator=gen)
        for side, (g_net, d_net) in (("official", (G, D)), ("ours", (ours_G, ours_D))):
            net = g_net if phase == "Gmain" else d_net
            g_net.requires_grad_(False)
            d_net.requires_grad_(False)
            net.requires_grad_(True)
            for p in net.parameters():
                p.grad = None
            if side == "official":
                loss.accumulate_gradients(phase=phase, real_img={"img": img.clone()}, real_c=torch.zeros(batch, 0),
                                          gen_z=z, gen_c=torch.zeros(batch, 0), fake_img=None, sync=False, gain=1)
            else:
                inputs = LossInputs(img.clone(), torch.zeros(batch, 25), z, gen_cameras=ours_G.pose_sampler(batch),
                                    resolution=ours_G.render_resolution, image_resolution=int(up["image_resolution"]),
                                    step=step, kimg=kimg)
                terms = (objective.generator_loss(ours_G, ours_D, inputs) if phase == "Gmain"
                         else objective.discriminator_loss(ours_G, ours_D, inputs))
                terms["loss"].backward()
            grads = {n: p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p)
                     for n, p in net.named_parameters()}
            if side == "official" and phase == "Gmain":
                grads = generator_state(grads, imported.recipe)
            out[side].append(grads)
    return out["official"], out["ours"]


def _images(folder: Path, size: int) -> torch.Tensor:
    """``[N, 3, size, size]`` uint8: every image of an EG3D-layout set, unflipped (graf_train.py's reader, back
    to the 8-bit values the official loop resizes and scales)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from graf_train import _images as images_in_signed_range

    return ((images_in_signed_range(folder, size) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, help="facebookresearch/StyleNeRF checkout")
    parser.add_argument("--pythonpath", type=Path, action="append", default=[],
                        help="extra import path (where einops is installed)")
    parser.add_argument("--out", type=Path, help="folder for network-snapshot-*.pkl (must not hold any)")
    parser.add_argument("--check", type=Path, default=None,
                        help="only compare this snapshot's official render with its gan3d import's")
    parser.add_argument("--gradients", type=Path, default=None,
                        help="only compare the official and gan3d expected gradients at this snapshot's weights")
    parser.add_argument("--phase", choices=["Gmain", "Dmain"], default="Gmain", help="with --gradients")
    parser.add_argument("--draws", type=int, default=16, help="with --gradients: batches of 4 per side (>= 2)")
    parser.add_argument("--dataset", type=Path, default=None, help="gan3d set (default: the synthetic head set)")
    parser.add_argument("--variant", default="synthetic", help="gan3d stylenerf recipe whose sizes are trained")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="recipe override")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kimg", type=float, default=12.0)
    parser.add_argument("--snapshot_kimg", type=float, nargs="+", default=[2, 6, 8, 12])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch_gpu", type=int, default=None,
                        help="images per round, accumulated into each step (default: the D's mbstd group, as "
                             "run_train.py's batch_gpu = spec.mbstd)")
    args = parser.parse_args(argv)
    if sum(x is not None for x in (args.out, args.check, args.gradients)) != 1:
        parser.error("give one of --out (train), --check (compare a snapshot's render) and --gradients (compare "
                     "its expected gradients)")
    if args.draws < 2:
        parser.error(f"--draws must be at least 2 (two halves to compare), got {args.draws}")

    from gan3d.core.data.synthetic_dataset import make_synthetic_dataset
    from gan3d.methods.stylenerf.recipe import stylenerf_recipe

    recipe = stylenerf_recipe(args.variant).overrides(args.set)
    adapter, official = _official(args.root.resolve(), args.pythonpath, recipe)
    torch.set_num_threads(args.threads)
    if args.check is not None:
        with open(args.check, "rb") as f:
            _check(adapter, pickle.load(f)["G_ema"], args.check, recipe)
        return
    if args.gradients is not None:
        torch.manual_seed(args.seed)
        np.random.seed(args.seed)
        rows = compare_mean_gradients(*_gradients(adapter, official, recipe, args.gradients, args.phase, args.draws,
                                                  args.dataset or make_synthetic_dataset()))
        print(f"{args.phase}, {args.draws} draws of 4 per side: {'tensor':50s} cross  official|official  "
              "gan3d|gan3d  |gan3d| / |official|")
        for r in rows:
            print(f"{r['tensor'][:70]:70s} {r['cross']:+.3f} {r['official_halves']:+.3f} {r['ours_halves']:+.3f} "
                  f"{r['norm_ratio']:.3f}")
        med = {k: float(np.median([r[k] for r in rows])) for k in ("cross", "official_halves", "ours_halves",
                                                                   "norm_ratio")}
        print(f"median over {len(rows)} tensors: cross {med['cross']:.3f}, official halves "
              f"{med['official_halves']:.3f}, gan3d halves {med['ours_halves']:.3f}, "
              f"norm ratio {med['norm_ratio']:.3f}")
        return
    args.out.mkdir(parents=True, exist_ok=True)
    if any(args.out.glob("network-snapshot-*.pkl")):
        raise SystemExit(f"{args.out}: holds snapshots already (nothing was overwritten); choose another --out")

    np.random.seed(args.seed)  # training_loop: random_seed * world_size + rank, one process
    torch.manual_seed(args.seed)
    G_kwargs = copy.deepcopy(adapter.cfg["G_kwargs"])
    G = official.networks.Generator(**G_kwargs).train().requires_grad_(False)
    _fp32(G)
    D = _discriminator(official, recipe).train().requires_grad_(False)
    G_ema = copy.deepcopy(G).eval()

    up, loss_spec, t = recipe.modules["upsampler"].kwargs, recipe.modules["loss"].kwargs, recipe.training
    loss = _official_loss(official, G, D, recipe)
    phases = []
    for name, module, lr, betas, interval in (
            ("G", G, t["g_lr"], t["g_betas"], int(loss_spec["pl_interval"])),
            ("D", D, t["d_lr"], t["d_betas"], int(loss_spec["r1_interval"]))):
        ratio = interval / (interval + 1)  # lazy regularization
        opt = torch.optim.Adam(module.parameters(), lr=float(lr) * ratio, betas=[b ** ratio for b in betas],
                               eps=1e-8)
        phases += [types.SimpleNamespace(name=name + "main", module=module, opt=opt, interval=1),
                   types.SimpleNamespace(name=name + "reg", module=module, opt=opt, interval=interval)]

    batch = int(t["batch_size"])
    batch_gpu = args.batch_gpu or int(recipe.modules["discriminator"].kwargs["mbstd_group_size"])  # spec.mbstd
    if batch % batch_gpu:
        raise SystemExit(f"batch {batch} is not a multiple of the rounds' size {batch_gpu} (the D's mbstd group)")
    ema_kimg = float(t["ema_kimg"])
    dataset = args.dataset or make_synthetic_dataset()
    reals = _images(Path(dataset), int(up["image_resolution"]))
    snapshots = sorted({int(round(k * 1000)) for k in args.snapshot_kimg})
    total = int(round(args.kimg * 1000))
    (args.out / "config.json").write_text(json.dumps({
        "recipe": args.variant, "set": args.set, "seed": args.seed,
        "G_kwargs": G_kwargs,
        "batch": batch, "batch_gpu": batch_gpu, "ema_kimg": ema_kimg, "dataset": str(dataset)}, indent=1, default=str))
    print(f"official StyleNeRF, {sum(p.numel() for p in G.parameters())} G / {sum(p.numel() for p in D.parameters())}"
          f" D parameters, {len(reals)} images, {total // batch} iterations of {batch}", flush=True)
    cur_nimg, batch_idx, start, done = 0, 0, time.time(), set()
    while cur_nimg < total:
        loss.set_alpha(cur_nimg)
        res = loss.resolution
        pick = torch.from_numpy(np.random.randint(len(reals), size=batch))
        img = reals[pick]
        flip = torch.from_numpy(np.random.rand(batch) < 0.5)
        img = torch.where(flip[:, None, None, None], img.flip(3), img)
        img = official.data_utils.resize_image(img, res)  # resize_real_early, on the uint8 images
        phase_real_img = [{"img": x} for x in (img.to(torch.float32) / 127.5 - 1).split(batch_gpu)]
        phase_real_c = torch.zeros(batch, 0).split(batch_gpu)
        all_gen_z = [z.split(batch_gpu) for z in torch.randn([len(phases) * batch, G.z_dim]).split(batch)]
        all_gen_c = [c.split(batch_gpu) for c in torch.zeros(len(phases) * batch, 0).split(batch)]
        report = {}
        for phase, phase_gen_z, phase_gen_c in zip(phases, all_gen_z, all_gen_c, strict=True):
            if batch_idx % phase.interval != 0:
                continue
            phase.opt.zero_grad(set_to_none=True)
            phase.module.requires_grad_(True)
            rounds = list(zip(phase_real_img, phase_real_c, phase_gen_z, phase_gen_c, strict=True))
            for round_idx, (real_img, real_c, gen_z, gen_c) in enumerate(rounds):
                losses = loss.accumulate_gradients(phase=phase.name, real_img=real_img, real_c=real_c, gen_z=gen_z,
                                                   gen_c=gen_c, fake_img=None, sync=round_idx == len(rounds) - 1,
                                                   gain=phase.interval, scaler=None)
                report.update({k: float(v.detach()) for k, v in losses.items()})
            phase.module.requires_grad_(False)
            if len(losses) > 0:
                for param in phase.module.parameters():
                    if param.grad is not None:
                        official.misc.nan_to_num(param.grad, nan=0, posinf=1e5, neginf=-1e5, out=param.grad)
                phase.opt.step()
        ema_beta = 0.5 ** (batch / max(ema_kimg * 1000, 1e-8))  # ema_rampup None
        with torch.no_grad():
            for p_ema, p in zip(G_ema.parameters(), G.parameters(), strict=True):
                p_ema.copy_(p.lerp(p_ema, ema_beta))
            for b_ema, b in zip(G_ema.buffers(), G.buffers(), strict=True):
                b_ema.copy_(b)
        cur_nimg += batch
        batch_idx += 1
        if batch_idx % 50 == 0:
            print(f"it {batch_idx} ({cur_nimg / 1000:.1f} kimg, {time.time() - start:.0f} s): alpha "
                  f"{loss.alpha:.2f} res {res} " + " ".join(f"{k} {v:.3f}" for k, v in sorted(report.items())),
                  flush=True)
        due = [s for s in snapshots if s not in done and cur_nimg >= s]
        if due or cur_nimg >= total:
            done.update(due)
            data = {"training_set_kwargs": {"class_name": "training.dataset.ImageFolderDataset", "path": str(dataset),
                                            "resolution": int(up["image_resolution"]), "xflip": True}}
            for name, module in (("G", G), ("D", D), ("G_ema", G_ema), ("augment_pipe", None)):
                data[name] = None if module is None else copy.deepcopy(module).eval().requires_grad_(False)
            path = args.out / f"network-snapshot-{cur_nimg // 1000:06d}.pkl"  # training_loop's name
            with open(path, "wb") as f:
                pickle.dump(data, f)
            print(f"wrote {path} ({cur_nimg / 1000:.2f} kimg)", flush=True)
            _check(adapter, data["G_ema"], path, recipe, strict=False)


if __name__ == "__main__":
    main()
