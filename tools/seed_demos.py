#!/usr/bin/env python
"""The seed codebase's training demos on gan3d: ``./scripts/training_demos/<demo>.sh NUM_GPUS DATA [OPTIONS]``.

Carver (qiuyu96/Carver, on bytedance/Hammer) documents one script per released demo,
``scripts/training_demos/<method>_<dataset>.sh <NUM_GPUS> <PATH_TO_DATA> [OPTIONS]``, each launching
its ``train.py`` on ``NUM_GPUS`` GPUs with the demo's settings and a default ``--job_name``. Here each
script is a link to ``scripts/training_demos/_launch.sh``, which runs this file with the script's
name; the demo maps onto::

    torchrun --nproc_per_node NUM_GPUS tools/run.py train --method M [--variant V] --dataset DATA \\
        --job_name JOB [PRESET...] [OPTIONS...]

``PRESET`` are the few options that make our recipe the demo's where the demo is not a published
configuration as it stands; ``OPTIONS`` are passed on unchanged after them, so they win (``--job_name``,
``--root_work_dir``, ``--set KEY=VALUE``, the seed's ``--r1_gamma``/``--total_img``, a method's own
options such as ablation3d's ``--ref_mode``). ``--batch_size`` is gan3d's global batch (Carver's is per
GPU). ``GAN3D_DRY_RUN=1`` prints the command instead of running it.

A new demo is one line in :data:`DEMOS` and one link
(``ln -s _launch.sh scripts/training_demos/<demo>.sh``); :data:`NOT_YET` lists the seed demos whose
methods are not in gan3d yet.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Demo:
    """One seed demo: what it trains and how.

    Attributes:
        method, variant: the registered method and its named configuration (``None``: the default).
        job_name: Carver's default ``--job_name`` for the demo (its script's value).
        title: what the demo trains, for the help text.
        preset: extra ``tools/run.py train`` options that make the recipe the demo's.
        note: where the demo and gan3d differ, said in the help.
    """

    method: str
    variant: str | None
    job_name: str
    title: str
    preset: tuple[str, ...] = field(default_factory=tuple)
    note: str = ""


#: Carver FFHQ zips hold 256-px faces; its ImageDataset resizes them (cv2 INTER_AREA) to the training size.
_CARVER_RESIZE = json.dumps([{"op": "resize", "size": "training", "filter": "area"}])
_NO_WEIGHTS = ("Carver starts this demo from --weight_path=pretrained_model.pth, restoring generator, EMA and "
               "discriminator; gan3d's training.init_from loads generator slots only (--set "
               "'training.init_from={\"checkpoint\": \"CKPT\", \"slots\": [...]}'), so by default this "
               "trains from scratch.")

#: Carver's scripts/training_demos/*.sh, script name -> demo. Job names are the scripts' --job_name.
DEMOS: dict[str, Demo] = {
    "eg3d_ffhq512": Demo("eg3d", "ffhq512", "eg3d_ffhq512", "EG3D on FFHQ-512",
                         ("--resolution", "64"), "Carver's demo renders at 64 px throughout "
                         "(--rendering_resolution_initial=64, no final); the ffhq512 variant's 64 -> 128 "
                         "fine-tune stages are dropped by --resolution 64."),
    "eg3d_afhq512": Demo("eg3d", "afhq512", "eg3d_afhq_512_128_bs4", "EG3D on AFHQ Cats 512", (), _NO_WEIGHTS),
    "eg3d_cats256": Demo("eg3d", "ffhq512", "eg3d_cats_256_64_bs4", "EG3D on Cats at 256 (GRAM's Cats set)",
                         ("--resolution", "64", "--set", "upsampler.image_resolution=256", "--set",
                          "discriminator.img_resolution=256", "--set", "loss.r1_gamma=1.0"),
                         "Not a published EG3D configuration: Carver's FFHQ settings at 256 px (gamma 1, "
                         "render 64, FFHQ's ray range) on GRAM's Cats poses converted to EG3D labels "
                         "(Carver: --pose_meta=cats_processed/dataset.json; give --labels PATH if they are not "
                         "the set's own dataset.json). Carver's --use_ada=true has no gan3d equivalent (no ADA)."),
    "eg3d_shapenet_cars128": Demo("eg3d", "shapenet128", "eg3d_shapenet_cars_128_64_bs4", "EG3D on ShapeNet Cars"),
    "eg3d_ffhq512_64_finetune_128": Demo(
        "eg3d", "ffhq512", "eg3d_512_64_finetune_128", "EG3D on FFHQ-512, render 64 -> 128 fine-tune",
        ("--set", "training.g_lr=0.002", "--set", "loss.blur_init_sigma=0.0", "--set", "loss.gpc_reg_fade_kimg=0.0"),
        _NO_WEIGHTS + " The ffhq512 variant's staged 64 -> 128 schedule is kept."),
    "ablation3d": Demo("ablation3d", None, "ablation3d", "the point-embedder ablation on FFHQ-256"),
    "giraffe_ffhq256": Demo("giraffe", "ffhq256", "giraffe_ffhq_256", "GIRAFFE on FFHQ-256"),
    "pigan_ffhq64": Demo("pigan", "celeba", "pigan_ffhq64", "pi-GAN on FFHQ at 64",
                         ("--set", f"data.preprocessing={_CARVER_RESIZE}"),
                         "pi-GAN has no FFHQ configuration; Carver trains its CelebA settings (gamma 0.2, "
                         "lr 6e-5/2e-4) on FFHQ resized to 64 px, as this does."),
    "stylesdf_ffhq64": Demo("stylesdf", "ffhq_volume", "stylesdf_ffhq64_200k", "StyleSDF's volume renderer on FFHQ"),
    "stylesdf_full_ffhq1024": Demo("stylesdf", "ffhq_full", "stylesdf_ffhq1024", "StyleSDF's full pipeline, FFHQ-1024",
                                   (), "Carver's full pipeline starts from the volume renderer's weights "
                                   "(--sphere_init_path, a trained volume stage); gan3d cannot load them into a "
                                   "new job yet (training.init_from, issue 15), and the recipe keeps the volume "
                                   "renderer frozen, so run the volume demo first and resume from it."),
    "volumegan_ffhq256": Demo("volumegan", "ffhq256", "volumegan_ffhq_256", "VolumeGAN on FFHQ-256", (),
                              "The demo's --num_fp16_res=128 (mixed precision) is not carried over: gan3d trains in "
                              "float32 with the same conv_clamp 256."),
    "epigraf_ffhq512": Demo("epigraf", "ffhq512", "epigraf", "EpiGRAF on FFHQ-512", (),
                            "The official configuration (64-px patches, gamma 0.1, batch 64 = Carver's 8 per GPU on "
                            "8 GPUs). The set carries EpiGRAF's camera_angles in dataset.json (label format "
                            "'epigraf'); Carver conditions its generator on the pose (pose_dim 3), the official "
                            "EpiGRAF does not, and neither does this demo. No ADA in gan3d (Carver's demo turns it "
                            "off too)."),
    "gram_ffhq256": Demo("gram", "ffhq256", "gram_256_bs4", "GRAM on FFHQ-256",
                         ("--set", "data.label_format=eg3d", "--set", f"data.preprocessing={_CARVER_RESIZE}"),
                         "Carver trains on an EG3D-format FFHQ zip (camera labels in dataset.json, whose viewing "
                         "angles GRAM's real-pose loss reads), as this does; GRAM's own set (aligned images with "
                         "Deep3DFaceRecon .mat poses) trains with --set data.label_format=gram_ffhq. "
                         "Carver's --total_img=25_000_000 is longer than GRAM's 150k iterations of 32 (4.8M, the "
                         "recipe's; pass --total_img 25000000 for Carver's); its AMP and StyleGAN-style EMA "
                         "(g_ema_img 10k) are not GRAM's (torch_ema 0.999) and not used."),
    "stylenerf_ffhq256": Demo("stylenerf", "ffhq256", "stylenerf_256", "StyleNeRF on FFHQ-256", (),
                              "Carver's settings are StyleNeRF's paper256 spec, the variant's; Carver shows its "
                              "discriminator reals resized nearest, gan3d as StyleNeRF (Lanczos)."),
}

#: Carver's graf_ffhq128.sh: --resize_size=320 --crop_size=256 (datasets/image_dataset.py: cv2 INTER_AREA resize
#: to 320, centre crop 256, then INTER_AREA to the 128-px resolution).
_CARVER_GRAF_FFHQ = json.dumps([{"op": "resize", "size": [320, 320], "filter": "area"},
                                {"op": "center_crop", "size": 256},
                                {"op": "resize", "size": "training", "filter": "area"}])
DEMOS["graf_ffhq128"] = Demo(
    "graf", "celeba128", "graf_ffhq_128", "GRAF on FFHQ at 128 (32-px patches)",
    ("--set", f"data.preprocessing={_CARVER_GRAF_FFHQ}"),
    "GRAF has no FFHQ configuration; this trains its celebA 128 configuration (cameras fov 10, radius 9.5-10.5, "
    "azimuth 0-90 and polar 70-85 degrees) on FFHQ with Carver's preprocessing (resize 320, centre crop 256, "
    "resize 128). Carver's GRAF trains with Adam and an R1 of gamma 20 on the patch (1024x GRAF's); gan3d keeps "
    "GRAF's RMSprop, lr halvings and R1 (reg_param 10, which --r1_gamma sets).")

#: Seed demos whose methods other helpers are adding; each becomes one DEMOS line (see the README).
NOT_YET: dict[str, str] = {
}


def launcher() -> list[str]:
    """``torchrun``, or the same launcher through this Python when the script is not on PATH."""
    found = shutil.which("torchrun")
    return [found] if found else [sys.executable, "-m", "torch.distributed.run"]


def command(name: str, gpus: str, data: str, options: list[str]) -> list[str]:
    """The documented command of demo ``name``."""
    demo = DEMOS[name]
    variant = ["--variant", demo.variant] if demo.variant else []
    return [*launcher(), "--nproc_per_node", str(gpus), str(ROOT / "tools" / "run.py"), "train",
            "--method", demo.method, *variant, "--dataset", data, "--job_name", demo.job_name, *demo.preset,
            *options]


def usage(name: str, script: str) -> str:
    demo = DEMOS[name]
    return (f"This script launches a job of training {demo.title} (gan3d method {demo.method!r}"
            f"{', variant ' + repr(demo.variant) if demo.variant else ''}).\n\n"
            "Note: the settings are the demo's; pass additional options, which overwrite them, if needed.\n"
            + (f"Note: {demo.note}\n" if demo.note else "")
            + f"\nUsage: {script} GPUS DATASET [OPTIONS]\n\nExample: {script} 8 /data/ffhq256.zip [--help]\n")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print(f"usage: seed_demos.py DEMO GPUS DATASET [OPTIONS]; demos: {', '.join(DEMOS)}", file=sys.stderr)
        return 2
    name, args = argv[0], argv[1:]
    script = f"./scripts/training_demos/{name}.sh"
    if name not in DEMOS:
        later = f" ({NOT_YET[name]}: its method is not in gan3d yet)" if name in NOT_YET else ""
        print(f"error: no demo {name!r}{later}; demos: {', '.join(DEMOS)}", file=sys.stderr)
        return 2
    if len(args) < 2:  # the seed's scripts print their usage and exit 0
        print(usage(name, script))
        return 0
    gpus, data, options = args[0], args[1], args[2:]
    if not gpus.isdigit() or int(gpus) < 1:
        print(f"error: GPUS must be a positive number of processes, got {gpus!r}\n\n{usage(name, script)}",
              file=sys.stderr)
        return 2
    cmd = command(name, gpus, data, options)
    if options and options[-1] in ("--help", "-h"):  # Carver's dist_train.sh: help for the command
        print(usage(name, script))
        print("Runs:\n  " + shlex.join(cmd[:-1]) + "\n\nOptions of `tools/run.py train` "
              "(and the method's own, listed by `tools/run.py describe --method " + DEMOS[name].method + "`):\n")
        sys.stdout.flush()
        return subprocess.call([sys.executable, str(ROOT / "tools" / "run.py"), "train", "--help"])
    print("+ " + shlex.join(cmd), flush=True)
    if os.environ.get("GAN3D_DRY_RUN"):
        return 0
    return subprocess.call(cmd, cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main())
