#!/usr/bin/env python
"""gan3d's command line: train, evaluate, infer, describe, inspect plugins, make and check data.

    python tools/run.py plugins
    python tools/run.py train --method pigan                  # on the embedded synthetic set
    python tools/run.py describe --method eg3d
    python tools/run.py datasets make --preset head
    python tools/run.py datasets check PATH
    python tools/run.py eval --model CKPT --test_fid ...
    python tools/run.py infer --model CKPT --work_dir DIR --save_image --save_video --save_shape
    python tools/run.py import --method eg3d --checkpoint ffhq512-128.pkl --out ffhq512-128.pt
    python tools/run.py view --model CKPT                     # interactive viewer in the browser

Plugins add subcommands through the ``gan3d_add_commands`` hook. Heavy imports happen inside the
subcommands so that ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
from pathlib import Path

logger = logging.getLogger("gan3d.run")


# ---------------------------------------------------------------------------- helpers
def _console():
    from rich.console import Console

    return Console()


def _fail(message: str, status: int = 2) -> int:
    """Print ``error: MESSAGE`` as one line (never wrapped) and return the exit status."""
    from rich.markup import escape

    from gan3d.core.errors import one_line

    _console().print(f"[bold red]error:[/] {escape(one_line(message))}", highlight=False, markup=True,
                     soft_wrap=True)
    return status


class _ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line errors: ``error: tools/run.py train: argument --seed: ...`` and
    status 2, without the usage block (``--help`` shows it)."""

    def error(self, message: str):
        self.exit(2, f"error: {self.prog}: {' '.join(message.split())} (see {self.prog} --help)\n")


def _add_alias_options(parser: argparse.ArgumentParser, *names: str, **kwargs) -> None:
    """Add an option under its underscore spelling and the hyphenated alias (``--job_name`` and
    ``--job-name``), as users of the seed's scripts type the former."""
    flags = []
    for name in names:
        flags.append(name)
        alias = name.replace("_", "-")
        if alias != name and alias not in flags:
            flags.append(alias)
    parser.add_argument(*flags, **kwargs)


def seed_bool(text: str) -> bool:
    """The seed codebase's boolean values (Carver ``utils/parsing_utils.parse_bool``): true/false, yes/no,
    1/0, on/off, any case."""
    lowered = str(text).strip().lower()
    if lowered in ("true", "yes", "y", "1", "on", "t"):
        return True
    if lowered in ("false", "no", "n", "0", "off", "f"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _add_seed_flag(parser: argparse.ArgumentParser, *names: str, help: str | None = None) -> None:
    """A boolean option that takes the seed's spellings: a bare ``--save_image``, ``--save_image true``,
    ``--save_image=false`` (and the hyphenated alias)."""
    _add_alias_options(parser, *names, type=seed_bool, nargs="?", const=True, default=False, metavar="BOOL",
                       help=help)


#: Options of the seed codebase's train.py that every method here understands, when the method does not
#: declare an option of that name itself: ``--r1_gamma G`` (the R1 weight of the method's loss) and
#: ``--total_img N`` (run length in images; Carver's ``total_img``).
R1_KEYS = ("r1_gamma", "reg_param")


def _apply_seed_train_options(recipe, args):
    r1 = getattr(args, "seed_r1_gamma", None)
    if r1 is None:
        return recipe
    loss = recipe.modules.get("loss")
    key = next((k for k in R1_KEYS if loss is not None and k in loss.kwargs), None)
    if key is None:
        raise ValueError(f"--r1_gamma: the {recipe.method} loss has no R1 weight option ({', '.join(R1_KEYS)})")
    return recipe.override(f"loss.{key}={float(r1)}")


def _recipe_from_args(args, *, synthetic: bool = False):
    """The method's recipe (variant, then ``--set`` overrides)."""
    from gan3d.core import get_registry

    registry = get_registry()
    factory = registry.get("method", args.method)
    variant = getattr(args, "variant", None)
    options = getattr(args, "method_options", None) or {}
    if variant is None and synthetic:
        try:
            recipe = factory("synthetic", **options)
        except ValueError:
            recipe = factory(None, **options)
    else:
        recipe = factory(variant, **options)
    return _apply_seed_train_options(recipe.overrides(args.set), args)


def _parse_method_options(args, extra: list[str], parser: argparse.ArgumentParser) -> None:
    """Options a method declares itself (``factory.cli_options``), e.g. ablation3d's ``--ref_mode``."""
    args.method_options = {}
    if not extra:
        return
    if getattr(args, "command", None) not in ("train", "describe") or not getattr(args, "method", None):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    from gan3d.core import get_registry

    factory = get_registry().get("method", args.method)
    specs = getattr(factory, "cli_options", None) or []
    extra = _parse_seed_train_options(args, extra, {s["name"] for s in specs})
    if not extra:
        return
    if not specs:
        parser.error(f"unrecognized arguments: {' '.join(extra)} (method {args.method!r} takes no options of its own)")
    method_parser = _ArgumentParser(prog=f"tools/run.py {args.command} --method {args.method}")
    types = {"str": str, "int": int, "float": float}
    for spec in specs:
        kwargs = {"default": spec.get("default"), "help": spec.get("help")}
        dest = spec["name"].lstrip("-").replace("-", "_")
        if spec.get("type") == "bool":  # --flag, --flag true|false (the seed's spelling), --no-flag
            kwargs.update(type=seed_bool, nargs="?", const=True, metavar="BOOL")
            bare = spec["name"][2:]
            negations = dict.fromkeys([f"--no_{bare}", f"--no-{bare}", f"--no-{bare.replace('_', '-')}"])
            method_parser.add_argument(*negations, dest=dest, action="store_false", help=argparse.SUPPRESS)
        else:
            kwargs["type"] = types[spec.get("type", "str")]
            if spec.get("choices"):
                kwargs["choices"] = spec["choices"]
        flags = [spec["name"]] + ([spec["name"].replace("_", "-")] if "_" in spec["name"] else [])
        method_parser.add_argument(*flags, dest=dest, **kwargs)
    given = method_parser.parse_args(extra)
    # Only what the user typed is passed on: the factory's own defaults stay the defaults.
    typed = {a.lstrip("-").split("=")[0].replace("-", "_") for a in extra if a.startswith("--")}
    typed |= {t[3:] for t in typed if t.startswith("no_")}
    args.method_options = {k: v for k, v in vars(given).items() if k in typed}


def _parse_seed_train_options(args, extra: list[str], declared: set[str]) -> list[str]:
    """Take the seed's ``--r1_gamma`` and ``--total_img`` out of ``extra`` (unless the method declares
    them itself); returns what is left."""
    seed = argparse.ArgumentParser(add_help=False)
    if "--r1_gamma" not in declared:
        seed.add_argument("--r1_gamma", "--r1-gamma", dest="seed_r1_gamma", type=float, default=None)
    if "--total_img" not in declared:
        seed.add_argument("--total_img", "--total-img", dest="seed_total_img", type=lambda t: int(float(t))
                          if "_" not in t else int(t), default=None)
    given, rest = seed.parse_known_args(extra)
    args.seed_r1_gamma = getattr(given, "seed_r1_gamma", None)
    total = getattr(given, "seed_total_img", None)
    if total is not None:
        if getattr(args, "kimg", None) is not None:
            raise SystemExit("error: give --kimg or --total_img, not both")
        args.kimg = total / 1000
    return rest


# ---------------------------------------------------------------------------- plugins
def cmd_plugins(args) -> int:
    from rich.table import Table

    from gan3d.core import get_registry

    registry = get_registry()
    console = _console()
    entries = registry.entries()
    if args.json:
        print(json.dumps({
            "implementations": [{"family": e.family, "name": e.name, "distribution": e.distribution} for e in entries],
            "failures": [{"plugin": f.plugin, "distribution": f.distribution, "error": f.error}
                         for f in registry.failures],
        }, indent=2))
        return 0
    table = Table(title="gan3d plugins", show_lines=False)
    table.add_column("family", style="cyan")
    table.add_column("name", style="bold")
    table.add_column("distribution", style="green")
    for family in registry.families():
        for e in [e for e in entries if e.family == family]:
            table.add_row(family, e.name, e.distribution)
    console.print(table)
    plugins = registry.plugins()
    console.print(f"{len(entries)} implementations from {len(plugins)} plugins: "
                  + ", ".join(f"{n} ({d})" for n, d in sorted(plugins.items())))
    if registry.failures:
        failed = Table(title="plugins that failed to load", style="red")
        failed.add_column("plugin")
        failed.add_column("distribution")
        failed.add_column("error")
        for f in registry.failures:
            failed.add_row(f.plugin, f.distribution, f.error.splitlines()[0])
        console.print(failed)
        return 1
    return 0


# ---------------------------------------------------------------------------- describe
def describe_recipe(recipe) -> dict:
    """Per-slot implementation, distribution and parameter count of a recipe."""
    from gan3d.core import get_registry
    from gan3d.core.generator import build_generator, build_module

    registry = get_registry()
    from gan3d.core.recipe import split_slot

    G = build_generator(recipe, registry)
    rows = []
    for slot, module in G.slot_modules().items():  # field groups' slots included (background/feature_decoder)
        spec = recipe.modules[slot]
        family = split_slot(slot)[1]
        rows.append({"slot": slot, "name": spec.name, "distribution": registry.entry(family, spec.name).distribution,
                     "parameters": sum(p.numel() for p in module.parameters()), "network": "generator"})
        if slot in G.ws_layout and G.mapper.latent_kind == "ws":
            rows[-1]["latent_rows"] = [G.ws_layout[slot].start, G.ws_layout[slot].stop]
    g_total = sum(p.numel() for p in G.parameters())
    del G
    d_total = 0
    if "discriminator" in recipe.modules:
        spec = recipe.modules["discriminator"]
        D = build_module(recipe, "discriminator", registry)
        d_total = sum(p.numel() for p in D.parameters())
        rows.append({"slot": "discriminator", "name": spec.name,
                     "distribution": registry.entry("discriminator", spec.name).distribution,
                     "parameters": d_total, "network": "discriminator"})
        del D
    if "loss" in recipe.modules:
        spec = recipe.modules["loss"]
        rows.append({"slot": "loss", "name": spec.name, "distribution": registry.entry("loss", spec.name).distribution,
                     "parameters": 0, "network": "-"})
    return {"method": recipe.method, "variant": recipe.variant, "slots": rows,
            "generator_parameters": g_total, "discriminator_parameters": d_total}


def cmd_describe(args) -> int:
    from rich.table import Table

    recipe = _recipe_from_args(args)
    info = describe_recipe(recipe)
    if args.json:
        print(json.dumps({**info, "recipe": recipe.to_dict()}, indent=2))
        return 0
    table = Table(title=f"{recipe.method} ({recipe.variant or 'default'})")
    for col in ("slot", "implementation", "distribution", "parameters", "latent rows"):
        table.add_column(col, justify="right" if col == "parameters" else "left", no_wrap=True)
    for row in info["slots"]:
        rows = row.get("latent_rows")
        table.add_row(row["slot"], row["name"], row["distribution"], f"{row['parameters']:,}",
                      f"{rows[0]}-{rows[1]}" if rows and rows[1] > rows[0] else "")
    table.add_section()
    table.add_row("generator", "", "", f"{info['generator_parameters']:,}")
    table.add_row("discriminator", "", "", f"{info['discriminator_parameters']:,}")
    console = _console()
    console.print(table)
    console.print(f"generator options: {json.dumps(recipe.generator, sort_keys=True)}", highlight=False)
    console.print("module options: `--json` prints the whole recipe", highlight=False)
    return 0


# ---------------------------------------------------------------------------- datasets
def cmd_datasets(args) -> int:
    if args.action == "make":
        from gan3d.core.data import make_synthetic_dataset
        from gan3d.core.validation import check_folder

        if args.out:
            check_folder(args.out, "--out")
        # Only the values given: the others keep make_synthetic_dataset's defaults (512 views of 64 px).
        given = {k: v for k, v in (("num_images", args.num), ("resolution", args.resolution), ("seed", args.seed))
                 if v is not None}
        path = make_synthetic_dataset(args.out, preset=args.preset, **given)
        _console().print(f"synthetic data set ({args.preset}) at [bold]{path}[/]")
        return 0
    if args.action == "prepare":
        return _datasets_prepare(args)
    return _datasets_check(args)


def _progress_bar(description: str):
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(TextColumn(description), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TimeRemainingColumn(), console=_console(), transient=False)


def _method_given_for(args, *flags: str) -> None:
    """``--variant``/``--set`` (and ``flags``) describe how a method reads the data: without
    ``--method`` they would be ignored."""
    from gan3d.core.validation import OptionError

    loose = [flag for flag in ("--variant", "--set", *flags) if getattr(args, flag[2:])]
    if loose and not args.method:
        raise OptionError(f"{', '.join(loose)}: only used with --method (how that method reads the data); "
                          "give --method too")


def _datasets_prepare(args) -> int:
    from gan3d.core.data.prepare import prepare_dataset

    _method_given_for(args)
    preprocessing = None
    if args.method:
        recipe = _recipe_from_args(args)
        preprocessing = (recipe.data or {}).get("preprocessing") or []
    with _progress_bar("prepare") as bar:
        task = bar.add_task("prepare", total=None)
        report = prepare_dataset(args.src, args.out, args.resolution, transform=args.transform,
                                 preprocessing=preprocessing, labels_file=args.labels, workers=args.workers,
                                 compression=args.compression,
                                 progress=lambda done, total: bar.update(task, completed=done, total=total))
    from gan3d.core.data import Preprocessing

    console = _console()
    console.print(f"wrote [bold]{report.path}[/]: {report.num_images} images, "
                  f"{'camera labels' if report.labelled else 'no labels'}, sizes {report.sizes[:3]}"
                  + (f", {report.resumed_shards} shard(s) from an earlier run" if report.resumed_shards else ""),
                  highlight=False)
    console.print(f"applied: {Preprocessing(report.steps).describe()}", highlight=False)
    return 0


def _datasets_check(args) -> int:
    from gan3d.core.data import check_dataset

    _method_given_for(args, "--labels")
    console = _console()
    if args.method:  # read every item as the method would train on it
        recipe = _recipe_from_args(args)
        dataset = open_dataset_for(recipe, args.path, labels_file=args.labels)
        with _progress_bar("check") as bar:
            task = bar.add_task("check", total=dataset.num_raw_images)
            for index in range(dataset.num_raw_images):
                dataset[index]
                bar.update(task, completed=index + 1)
        console.print(f"{dataset!r}: every image read as {recipe.method} ({recipe.variant or 'default'}) "
                      f"trains on it", highlight=False, markup=False)
        return 0
    with _progress_bar("check") as bar:
        task = bar.add_task("check", total=None)
        report = check_dataset(args.path, progress=lambda done, total: bar.update(task, completed=done, total=total))
    console.print(report)
    return 0


# ---------------------------------------------------------------------------- train
def _init_distributed(device: str) -> tuple[int, int]:
    """Join the process group when started by torchrun (RANK/WORLD_SIZE set); returns (rank, world)."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return 0, 1
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        if device.startswith("cuda"):  # before the group forms: NCCL binds each rank to the current device
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group(backend=backend)
    return dist.get_rank(), dist.get_world_size()


def _training_resolution(recipe) -> int:
    """The side of the real images at the recipe's last stage: what its ``"training"`` preprocessing
    steps resize to. The generator is built on the meta device (no memory, no weights) to ask its
    upsampler (``Upsampler.out_resolution``), as the trainer does."""
    import torch

    from gan3d.core import get_registry
    from gan3d.core.generator import build_generator

    with torch.device("meta"):
        G = build_generator(recipe, get_registry())
    staged = [s["resolution"] for s in recipe.training.get("stages") or [] if s.get("resolution")]
    render = staged[-1] if staged else G.render_resolution
    return int(G.output_resolution(render))


def open_dataset_for(recipe, path, *, labels_file=None):
    """The data set ``recipe`` trains on at ``path``, read as its ``data`` section says (labels,
    official preprocessing), with ``training.xflip``."""
    from gan3d.core.data import Preprocessing, open_training_dataset

    steps = Preprocessing((recipe.data or {}).get("preprocessing"), "recipe data.preprocessing")
    resolution = _training_resolution(recipe) if steps.needs_resolution else None
    return open_training_dataset(path, recipe.data, resolution=resolution,
                                 xflip=bool(recipe.training.get("xflip", False)), labels_file=labels_file,
                                 method=recipe.method)


def cmd_train(args) -> int:
    """``train``; an interrupt at any moment ends in one line that says what the job holds."""
    try:
        return _train(args)
    except KeyboardInterrupt as exc:
        from gan3d.core.trainer import TrainingInterrupted

        if isinstance(exc, TrainingInterrupted):
            raise
        raise TrainingInterrupted(_job_state("interrupted (Ctrl-C)", getattr(args, "job_dir", None))) from None


def _job_state(what: str, job: Path | None) -> str:
    """``what``, then what the job directory ``job`` holds now and how to go on."""
    from gan3d.core.checkpoint import latest_checkpoint

    if job is None or not (job / "recipe.json").is_file():
        return f"{what}; nothing was written"
    newest = latest_checkpoint(job / "checkpoints")
    held = f"the newest checkpoint is {newest.name}" if newest else "no checkpoint yet (it starts again from step 0)"
    return f"{what}; {held}; continue with --resume ({job})"


def _train(args) -> int:
    import torch

    from gan3d.core.data import default_dataset_path
    from gan3d.core.trainer import Trainer
    from gan3d.core.training.workdir import check_work_dir, job_recipe, read_job

    # Every option was checked by _check_options; the job directory and the recipe are checked here,
    # before anything is built or written, so a mistake costs no work directory.
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    rank, world = _init_distributed(device)
    if device == "cuda" and world > 1:
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    synthetic = args.dataset is None
    default_name = f"{args.method}-{'synthetic' if synthetic else Path(args.dataset).stem}"
    work_dir = args.job_dir = Path(args.root_work_dir) / (args.job_name or default_name)
    if args.resume:
        recipe, ckpt = job_recipe(work_dir)
        job = read_job(work_dir)
        if recipe is None:  # killed before it wrote its recipe: the job starts anew from the command line
            recipe = _recipe_from_args(args, synthetic=synthetic)
        else:
            for flag, typed, kept in (("--method", args.method, recipe.method),
                                      ("--variant", args.variant, recipe.variant),
                                      ("--seed", args.seed, job.get("seed", args.seed))):
                if _given(args, flag) and typed != kept:
                    return _fail(f"--resume: {work_dir} is a job of {flag[2:]} {kept!r}, not {typed!r}; a resumed "
                                 f"run keeps its {flag[2:]} (leave out {flag}, or start a new job under another "
                                 "--job_name)")
            if ckpt is not None:  # weights exist: only the training section may change
                for assignment in args.set or []:
                    if not assignment.replace("-", "_").startswith("training."):
                        return _fail(f"--set {assignment}: a resumed run keeps its modules; only training.* can "
                                     "change")
                if args.method_options:
                    return _fail(f"--resume: a resumed run keeps its modules; leave out "
                                 f"{', '.join(args.method_options)}")
            recipe = recipe.overrides(args.set)
    else:
        check_work_dir(work_dir, resume=False)
        recipe = _recipe_from_args(args, synthetic=synthetic)
    from gan3d.core.training import TrainingConfig

    TrainingConfig.from_dict(recipe.training)  # the training section in full, before it is edited below
    if args.batch_size is not None:
        recipe = recipe.override(f"training.batch_size={args.batch_size}")
        stages = [{k: v for k, v in s.items() if k != "batch_size"} for s in recipe.training.get("stages", [])]
        recipe.training["stages"] = stages
    if args.resolution is not None:
        # A fixed-resolution run: the stages keep their other settings.
        recipe = recipe.override(f"generator.render_resolution={args.resolution}")
        recipe.training["stages"] = [{k: v for k, v in s.items() if k != "resolution"}
                                     for s in recipe.training.get("stages", [])]
    seed = args.seed
    if args.resume:  # the job's own data set and seed, unless given
        data = job.get("data")
        if synthetic and data:
            if not Path(data).exists():
                return _fail(f"--resume: the job's data set {data} (from {work_dir / 'job.json'}) is gone; give "
                             "--dataset PATH")
            args.dataset, synthetic = data, False
        elif data and Path(args.dataset).resolve() != Path(data).resolve():
            logger.warning("--resume: the job trained on %s; it continues on --dataset %s", data, args.dataset)
        seed = job.get("seed", seed)
    dataset_path = Path(args.dataset) if args.dataset else default_dataset_path()
    if rank == 0 and synthetic:
        _console().print(f"training [bold]{recipe.method}[/] ({recipe.variant or 'default'}) on the embedded "
                         f"synthetic set {dataset_path}")
    dataset = open_dataset_for(recipe, dataset_path, labels_file=args.labels)
    if rank == 0:
        logger.info("data: %r", dataset)
    trainer = Trainer(recipe, dataset, work_dir, resume=args.resume, seed=seed, device=device,
                      workers=args.workers)
    target = args.kimg if args.kimg is not None else trainer.cfg.total_kimg
    if rank == 0 and trainer.nimg >= int(target * 1000):
        _console().print(f"the job is already at {trainer.nimg / 1000:.3f} kimg (>= {target} kimg): nothing to "
                         "train; give a larger --kimg to go on")
    trainer.train(kimg=args.kimg)
    if rank == 0:
        _console().print(f"done: {trainer.step} steps, {trainer.nimg / 1000:.3f} kimg; "
                         f"work directory [bold]{work_dir}[/]")
    if world > 1:
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()
    return 0


# ---------------------------------------------------------------------------- eval
def _job_dir_of(model: str) -> Path:
    """Where outputs of a checkpoint go by default: its job directory when it lies in one
    (``JOB/checkpoints/checkpoint-*.pt``), else the folder it lies in."""
    path = Path(model).resolve()
    return path.parent.parent if path.parent.name == "checkpoints" else path.parent


def _fresh_path(path: Path) -> Path:
    """``path``, or ``stem-1.json``, ``stem-2.json``... when it exists: a report is never overwritten."""
    candidate, i = path, 0
    while candidate.exists():
        i += 1
        candidate = path.with_name(f"{path.stem}-{i}{path.suffix}")
    return candidate


def cmd_eval(args) -> int:
    """Under torchrun every rank loads the model and renders its share of each metric's batches (the
    metrics gather what they need, so the numbers are the one-process ones); rank 0 alone prints,
    trains the DE/PE estimator (``--train_estimator``: the others wait, then read the file it wrote)
    and writes the report."""
    import torch
    from rich.table import Table

    from gan3d.core import get_registry
    from gan3d.core.checkpoint import checkpoint_step, load_checkpoint, load_generator
    from gan3d.core.data import EG3DDataset, default_dataset_path

    wanted = [m for m, flag in (("fid", args.test_fid), ("kid", args.test_kid), ("identity", args.test_identity),
                                ("reprojection", args.test_reprojection_error), ("depth", args.test_depth),
                                ("pose", args.test_pose)) if flag]
    if not wanted:
        return _fail("nothing to evaluate: give one or more of --test_fid --test_kid --test_identity "
                     "--test_reprojection_error --test_depth --test_pose")
    if args.out and not Path(args.out).is_dir():
        from gan3d.core.validation import check_folder

        check_folder(str(Path(args.out).parent), "--out")
    # The weight files the metrics need, named by this command's own flags, before any work.
    for metrics, flag, what in ((("fid", "kid"), "--inception_weights", "pytorch-fid's Inception weights "
                                 "(pt_inception-2015-12-05-6726825d.pth)"),
                                (("identity",), "--arcface_weights", "the arcface_torch IResNet-100 backbone.pth")):
        needed = [m for m in metrics if m in wanted]
        value = getattr(args, flag[2:])
        if needed and not value:
            return _fail(f"--test_{needed[0]} needs {what}: give {flag} FILE (nothing is downloaded)")
        if needed:
            from gan3d.core.validation import check_file

            check_file(value, flag, "weight file")
    if args.estimator_weights:
        from gan3d.core.validation import check_file

        check_file(args.estimator_weights, "--estimator_weights", "weight file")
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    rank, world = _init_distributed(device)
    if device == "cuda" and world > 1:
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    if rank != 0:
        logging.disable(logging.INFO)  # rank 0 tells the story; the others speak only of warnings and errors
    registry = get_registry()
    G, recipe = load_generator(args.model, device=device)
    step = checkpoint_step(load_checkpoint(args.model))
    dataset_path = Path(args.dataset) if args.dataset else default_dataset_path()
    if bool({"depth", "pose"} & set(wanted)) and args.estimator_weights is None and args.train_estimator:
        dataset = EG3DDataset(dataset_path, load_depth=True)
    else:  # the images the method trained on: any format, through its preprocessing
        dataset = open_dataset_for(recipe, dataset_path)
    if dataset.labels is not None:
        G.pose_sampler.bind_dataset_poses(torch.as_tensor(dataset.labels, dtype=torch.float32).to(device))
    work_dir = _job_dir_of(args.model)
    console = _console()
    say = console.print if rank == 0 else (lambda *_, **__: None)

    estimator_weights = args.estimator_weights
    if {"depth", "pose"} & set(wanted) and not estimator_weights:
        if not args.train_estimator:
            return _fail("--test_depth/--test_pose need a depth and pose estimator: give --estimator_weights FILE, "
                         "or --train_estimator to train gan3d's own on the data set (which must carry depth)")
        from gan3d.evaluators.metrics.estimators import save_depth_pose_net, train_depth_pose_net

        if not dataset.has_depth:
            return _fail(f"{dataset_path}: --train_estimator needs a data set with depth maps "
                         "(the synthetic set has them)")
        say("training the depth/pose estimator on the data set ...")
        if rank == 0:
            net = train_depth_pose_net(dataset, steps=args.estimator_steps, seed=args.seed, device=device)
            estimator_weights = str(save_depth_pose_net(net, _fresh_path(work_dir / "depth_pose_net.pth")))
        if world > 1:  # the others wait for rank 0's file (the job directory is shared, as the checkpoint is)
            import torch.distributed as dist

            box = [estimator_weights]
            dist.broadcast_object_list(box, src=0)
            estimator_weights = box[0]
        dataset = EG3DDataset(dataset_path)

    options = {
        "fid": {"inception_weights": args.inception_weights or "", "num_gen": args.fake_num,
                "num_real": args.real_num, "batch_size": args.batch_size, "truncation_psi": args.truncation_psi},
        "kid": {"inception_weights": args.inception_weights or "", "num_gen": args.fake_num,
                "num_real": args.real_num, "batch_size": args.batch_size, "truncation_psi": args.truncation_psi},
        "identity": {"arcface_weights": args.arcface_weights or "", "align_face": args.align_face,
                     "landmark_weights": args.landmark_weights or "", "num_samples": args.fake_num,
                     "batch_size": args.batch_size, "truncation_psi": args.truncation_psi},
        "reprojection": {"num_samples": args.fake_num, "batch_size": args.batch_size,
                         "truncation_psi": args.truncation_psi},
        "depth": {"estimator": "trained", "estimator_options": {"weights": estimator_weights or ""},
                  "num_samples": args.fake_num, "batch_size": args.batch_size, "truncation_psi": args.truncation_psi},
        "pose": {"estimator": "trained", "estimator_options": {"weights": estimator_weights or ""},
                 "num_samples": args.fake_num, "batch_size": args.batch_size, "truncation_psi": args.truncation_psi},
    }
    # Build every evaluator first: a missing weight file or a bad option fails before any work.
    evaluators = {name: registry.build("evaluator", name, **options[name]) for name in wanted}
    results: dict[str, float] = {}
    for name, evaluator in evaluators.items():
        say(f"evaluating {name} ...")
        results.update(evaluator.evaluate(G, dataset=dataset, device=device, seed=args.seed))
    if world > 1:
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()
    if rank != 0:
        return 0
    report = {"model": str(args.model), "method": recipe.method, "variant": recipe.variant, "step": step,
              "dataset": str(dataset_path), "fake_num": args.fake_num, "seed": args.seed, "results": results,
              "estimator_weights": estimator_weights}
    not_finite = [k for k, v in results.items() if not math.isfinite(v)]
    if not_finite:  # JSON has no NaN: such a metric is written as null, and said so
        logger.warning("metric(s) %s came out non-finite; the report writes them as null", ", ".join(not_finite))
        report["results"] = {k: (v if math.isfinite(v) else None) for k, v in results.items()}
    out = Path(args.out) if args.out else work_dir / f"eval-{step:09d}.json"
    if out.is_dir():  # a folder: the report goes into it
        out = out / f"eval-{step:09d}.json"
    out = _fresh_path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
    table = Table(title=f"{recipe.method} at step {step}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in results.items():
        table.add_row(k, f"{v:.6g}")
    console.print(table)
    console.print(f"report: [bold]{out}[/]")
    return 0


# ---------------------------------------------------------------------------- infer
def cmd_infer(args) -> int:
    import torch

    from gan3d.core.checkpoint import load_generator
    from gan3d.evaluators.visualizers import run_inference

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if not (args.save_image or args.save_video or args.save_shape or args.edit):
        args.save_image = True  # the cheap default when nothing is asked for
    G, recipe = load_generator(args.model, device=device)
    work_dir = Path(args.work_dir) if args.work_dir else _job_dir_of(args.model)
    paths = []
    if args.save_image or args.save_video or args.save_shape:
        paths += run_inference(G, work_dir, save_image=args.save_image, save_video=args.save_video,
                               save_shape=args.save_shape, shape_res=args.shape_res,
                               density_level=args.density_level, num=args.num,
                               truncation_psi=args.truncation_psi, seed=args.seed, device=device,
                               precision=args.precision)
    if args.edit:
        from gan3d.evaluators.visualizers.object_edit import write_object_edit
        from gan3d.evaluators.visualizers.output_paths import fresh_subdirectory

        edit_dir = fresh_subdirectory(work_dir, "edit")
        try:
            paths += write_object_edit(G, edit_dir, edits=args.edit, seed=args.seed, num=args.num,
                                       object_index=args.object_index, num_steps=args.edit_steps,
                                       truncation_psi=args.truncation_psi, video=args.save_video or args.edit_video,
                                       device=device)
        except BaseException:
            if not any(edit_dir.iterdir()):  # a refused edit leaves no empty folder behind
                edit_dir.rmdir()
            raise
    console = _console()
    console.print(f"{recipe.method}: wrote {len(paths)} files into [bold]{paths[0].parent}[/]")
    for p in paths:
        console.print(f"  {p}", highlight=False)
    return 0


# ---------------------------------------------------------------------------- import
def cmd_import(args) -> int:
    """An officially released checkpoint -> a gan3d checkpoint, read without running its code."""
    from gan3d.core import get_registry
    from gan3d.core.official.importer import write_imported_checkpoint

    registry = get_registry()
    available = registry.names("importer")
    if args.method not in available:
        return _fail(f"--method {args.method}: gan3d cannot import its released checkpoints; importers: "
                     f"{', '.join(available) or 'none installed'}")
    importer = registry.get("importer", args.method)()
    imported = importer.load(Path(args.checkpoint), variant=args.variant)
    if args.set:
        imported.recipe = imported.recipe.overrides(args.set)
    out = write_imported_checkpoint(imported, args.out, overwrite=args.overwrite, registry=registry)
    console = _console()
    recipe = imported.recipe
    console.print(f"{recipe.method} ({recipe.variant or 'default'}): imported [bold]{args.checkpoint}[/] "
                  f"({importer.formats}) into [bold]{out}[/]", highlight=False)
    console.print(f"  G_ema: {'yes' if imported.G_ema is not None else 'no (G is used)'}, "
                  f"discriminator: {'yes' if imported.D is not None else 'no'}; "
                  f"render: python tools/run.py infer --model {out}", highlight=False)
    return 0


# ---------------------------------------------------------------------------- view
def cmd_view(args) -> int:
    import torch

    from gan3d.evaluators.viewer import ViewerServer, ViewRenderer

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    renderer = ViewRenderer.load(args.model, device=device, preview_resolution=args.preview_resolution)
    try:
        server = ViewerServer(renderer, host=args.host, port=args.port)
    except OSError as error:
        return _fail(f"cannot listen on {args.host}:{args.port}: {error.strerror or error}")
    console = _console()
    console.print(f"{renderer.method}: viewer at [bold]{server.url}[/] (Ctrl+C stops it)", highlight=False)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        console.print("viewer stopped")
    finally:
        server.server_close()
    return 0


# ---------------------------------------------------------------------------- bench
def _bench_module():
    """tools/bench.py, loaded by path (tools/ is not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("gan3d_tools_bench", Path(__file__).with_name("bench.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cmd_bench(args) -> int:
    from gan3d.core.validation import check_folder

    check_folder(str(Path(args.json).parent), "--json")
    bench = _bench_module()
    if not args.child_out:  # each method is measured in a subprocess: a mistake fails here, in one line
        from gan3d.core import get_registry
        from gan3d.core.registry import check_kwargs

        registry = get_registry()
        methods = args.method or bench.installed_methods()
        if args.official_only and not args.official_src:
            raise ValueError("--official-only needs --official-src (the official checkouts to time against)")
        bench.load_tool("bench_official").parse_sources(args.official_src, methods)  # a ValueError: one line
        for method in methods:
            variants = bench.per_method(args.variant, method, methods)
            recipe, _ = bench.build_recipe(method, variants[-1] if variants else None,
                                           bench.per_method(args.set, method, methods), args.resolution,
                                           args.batch_size[0])
            for slot, spec in recipe.modules.items():
                check_kwargs(registry.get(slot, spec.name), spec.kwargs, f"{slot} {spec.name!r}")
    return bench.run(args)


# ---------------------------------------------------------------------------- parser
def build_parser(with_plugin_commands: bool = True) -> argparse.ArgumentParser:
    parser = _ArgumentParser(
        prog="tools/run.py", description="gan3d: 3D-aware GANs from interchangeable modules",
        epilog="Installed plugins may add commands of their own: `tools/run.py COMMAND --help` for any of them.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("plugins", help="list installed implementations by family, with their distribution")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_plugins)

    def method_options(p: argparse.ArgumentParser, default: str | None = "pigan") -> None:
        p.add_argument("--method", default=default, required=default is None, help="registered method name")
        p.add_argument("--variant", default=None, help="named configuration of the method (e.g. ffhq512)")
        p.add_argument("--set", action="append", metavar="KEY=VALUE",
                       help="override a recipe entry, e.g. point_embedder.resolution=64 (repeatable)")

    p = sub.add_parser("describe", help="the assembled recipe: each slot, its implementation and parameter count")
    method_options(p, default=None)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_describe)

    p = sub.add_parser("train", help="train a method (default: pi-GAN on the embedded synthetic set)")
    method_options(p)
    p.add_argument("--dataset", default=None,
                   help="images: a folder (searched recursively), zip, tar or LMDB, with or without EG3D camera "
                        "labels; read through the method's official preprocessing (default: the embedded "
                        "synthetic set)")
    p.add_argument("--labels", default=None, metavar="DATASET_JSON",
                   help="camera labels in EG3D's dataset.json format, for a data set that has none of its own")
    _add_alias_options(p, "--job_name", default=None, help="work directory name (default: METHOD-DATASET)")
    _add_alias_options(p, "--root_work_dir", default="work_dirs", help="where job directories go")
    p.add_argument("--resume", action="store_true", help="continue the job from its newest checkpoint")
    p.add_argument("--kimg", type=float, default=None, help="run length in thousands of images (default: recipe)")
    _add_alias_options(p, "--batch_size", type=int, default=None, help="global batch size (all stages)")
    p.add_argument("--resolution", type=int, default=None, help="fixed render resolution (drops staged ones)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda if available)")
    p.add_argument("--workers", type=int, default=0, help="data-loader processes")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="metrics of a trained model (FID, KID, ID, RE, DE, PE)")
    p.add_argument("--model", required=True, help="checkpoint file")
    p.add_argument("--dataset", default=None, help="EG3D-format data set (default: the embedded synthetic set)")
    for flag, what in (("--test_fid", "FID"), ("--test_kid", "KID"), ("--test_identity", "identity consistency"),
                       ("--test_reprojection_error", "reprojection error"), ("--test_depth", "depth error"),
                       ("--test_pose", "pose error")):
        _add_seed_flag(p, flag, help=f"{what} (bare, or true/false as the seed spells it)")
    _add_alias_options(p, "--fake_num", type=int, default=1000, help="generated samples per metric")
    _add_alias_options(p, "--real_num", type=int, default=50000, help="real images for FID/KID (at most the set)")
    _add_alias_options(p, "--batch_size", type=int, default=8)
    _add_alias_options(p, "--truncation_psi", type=float, default=1.0)
    _add_alias_options(p, "--inception_weights", default=None, help="pytorch-fid's pt_inception-2015-12-05 file")
    _add_alias_options(p, "--arcface_weights", default=None, help="arcface_torch backbone.pth (IResNet-100)")
    _add_seed_flag(p, "--align_face", help="ID: align faces by five landmarks to ArcFace's template first, as the "
                   "seed does (needs --landmark_weights)")
    _add_alias_options(p, "--landmark_weights", default=None,
                       help="folder of MTCNN's pnet.pt, rnet.pt, onet.pt (facenet-pytorch) for --align_face")
    _add_alias_options(p, "--estimator_weights", default=None, help="depth/pose estimator weights (DE, PE)")
    _add_seed_flag(p, "--train_estimator",
                       help="train gan3d's depth/pose estimator on the data set (needs depth maps) for DE/PE")
    _add_alias_options(p, "--estimator_steps", type=int, default=2000)
    p.add_argument("--out", default=None, help="JSON report (default: JOB/eval-STEP.json; never overwritten)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("infer", help="images, orbit videos and shapes of a trained model")
    p.add_argument("--model", required=True, help="checkpoint file (work_dirs/JOB/checkpoints/checkpoint-*.pt)")
    _add_alias_options(p, "--work_dir", default=None, help="output folder (default: the job directory); "
                       "each call writes a fresh infer-NNN subfolder")
    _add_seed_flag(p, "--save_image", help="image grid (with raw images and depth); bare, or true/false")
    _add_seed_flag(p, "--save_video", help="orbit video per latent (MP4); bare, or true/false")
    _add_seed_flag(p, "--save_shape", help="marching-cubes mesh per latent (PLY, OBJ); bare, or true/false")
    _add_alias_options(p, "--shape_res", type=int, default=256, help="grid side for shapes")
    _add_alias_options(p, "--density_level", type=float, default=10.0,
                       help="iso-level for density fields (EG3D's 10); SDF fields use their zero level set")
    p.add_argument("--edit", nargs="+", default=None, metavar="EDIT",
                   help="controllable generation: image strips (and with --edit_video, MP4s) that change one "
                        "thing: translate_x translate_y translate_z rotate scale (one object of a compositional "
                        "method such as GIRAFFE, --object_index), camera_yaw camera_polar (any method)")
    _add_alias_options(p, "--object_index", type=int, default=0, help="the object --edit moves")
    _add_alias_options(p, "--edit_steps", type=int, default=8, help="images per edit strip")
    _add_seed_flag(p, "--edit_video", help="an MP4 per edit too")
    p.add_argument("--num", type=int, default=4, help="number of latents")
    _add_alias_options(p, "--truncation_psi", type=float, default=0.7)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None)
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                   help="bf16: images and videos under bfloat16 autocast (faster on CPUs with AMX or AVX512-BF16 "
                        "and on GPUs; shapes stay fp32; see docs/benchmarks.md)")
    p.set_defaults(func=cmd_infer)

    p = sub.add_parser("import", help="an officially released checkpoint -> a gan3d checkpoint (no code is run)",
                       description="Read a method's released weights (EG3D network pickles, pi-GAN generator.pth, "
                                   "StyleSDF .pt ...) with a restricted unpickler that runs nothing from the file, "
                                   "and write a gan3d checkpoint for infer, eval, train --resume and load_generator.")
    p.add_argument("--method", required=True, help="registered method whose format the file is in (eg3d, pigan, ...)")
    p.add_argument("--checkpoint", required=True, help="the official file")
    p.add_argument("--out", required=True, help="gan3d checkpoint to write (never overwritten without --overwrite)")
    p.add_argument("--variant", default=None,
                   help="the method's named configuration, where the file does not say (e.g. celeba)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a recipe entry of the imported network (e.g. training.batch_size=8; repeatable)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("view", help="an interactive viewer in the browser: orbit, seeds, truncation, depth, exports")
    p.add_argument("--model", required=True, help="checkpoint file (work_dirs/JOB/checkpoints/checkpoint-*.pt)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    p.add_argument("--port", type=int, default=0, help="port (default 0: any free port; the URL is printed)")
    _add_alias_options(p, "--preview_resolution", type=int, default=0,
                       help="render side while the camera moves (default: half the model's render resolution)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda if available)")
    p.set_defaults(func=cmd_view)

    p = sub.add_parser("datasets", help="make the embedded synthetic set, prepare or check a user's set")
    dsub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    m = dsub.add_parser("make", help="render the synthetic multi-view set (cached)")
    m.add_argument("--preset", default="head", choices=["head", "head_right", "car"])
    m.add_argument("--out", default=None, help="output folder (default: the cache)")
    m.add_argument("--num", type=int, default=None, help="number of views")
    m.add_argument("--resolution", type=int, default=None)
    m.add_argument("--seed", type=int, default=0)
    c = dsub.add_parser("check", help="read every image of a data set (folder, zip, tar, LMDB; EG3D format or "
                                      "raw); with --method, through that method's preprocessing")
    c.add_argument("path")
    c.add_argument("--method", default=None, help="read the set as this method trains on it")
    c.add_argument("--variant", default=None)
    c.add_argument("--set", action="append", metavar="KEY=VALUE", help="recipe override (repeatable)")
    c.add_argument("--labels", default=None, metavar="DATASET_JSON", help="camera labels from this file")
    r = dsub.add_parser("prepare", help="convert a folder, zip, tar or LMDB of images into one zip "
                                        "(EG3D dataset_tool's role): parallel, resumable")
    r.add_argument("src", help="the raw images (searched recursively), with an optional EG3D dataset.json")
    r.add_argument("out", help="the zip to write (never overwritten)")
    r.add_argument("--resolution", type=int, required=True, help="output side in pixels")
    r.add_argument("--labels", default=None, metavar="DATASET_JSON",
                   help="EG3D camera labels for the source images (names relative to SRC)")
    r.add_argument("--transform", default="center-crop", choices=["center-crop", "scale"],
                   help="dataset_tool's: the centred square then LANCZOS (default), or LANCZOS to RxR")
    r.add_argument("--method", default=None,
                   help="apply this method's own preprocessing instead (its steps before the first random one)")
    r.add_argument("--variant", default=None)
    r.add_argument("--set", action="append", metavar="KEY=VALUE", help="recipe override (repeatable)")
    r.add_argument("--workers", type=int, default=None, help="converting processes (default: every CPU)")
    r.add_argument("--compression", type=int, default=0, help="PNG level 0-9 (dataset_tool: 0)")
    p.set_defaults(func=cmd_datasets)

    p = sub.add_parser("bench", parents=[_bench_module().build_parser(add_help=False)],
                       help="images/s, s/kimg and peak memory of methods (tools/bench.py)")
    p.set_defaults(func=cmd_bench)

    if with_plugin_commands:
        from gan3d.core import get_registry

        registry = get_registry()
        registry.call_hook("gan3d_add_commands", subparsers=sub, registry=registry)
    return parser


BUILTIN_COMMANDS = {"plugins", "describe", "train", "datasets", "eval", "infer", "bench", "import", "view"}


def _needs_plugin_commands(argv: list[str]) -> bool:
    """Plugin subcommands are loaded (which imports every plugin) only when the command is not a
    built-in one, so that `--help` and the built-ins start fast."""
    command = next((a for a in argv if not a.startswith("-")), None)
    return command is not None and command not in BUILTIN_COMMANDS


def _given(args, flag: str) -> bool:
    """Whether ``flag`` (either spelling) was typed on the command line, not left to its default."""
    spellings = {flag, flag.replace("_", "-")}
    return any(tok in spellings or tok.split("=", 1)[0] in spellings for tok in getattr(args, "argv", []))


def _option_checks() -> dict:
    """``dest -> check(value, flag)`` for every option whose value can be wrong whatever the command:
    one table, so each option means the same in every command (and in plugins' commands)."""
    from gan3d.core import validation as v

    positive = v.check_positive_int
    return {
        "seed": v.check_seed,
        "kimg": v.check_kimg,
        "batch_size": positive,
        "resolution": lambda x, f: positive(x, f, what=" (pixels)"),
        "workers": lambda x, f: v.check_non_negative_int(x, f, what=" (0: load in the main process)"),
        "device": v.check_device,
        "fake_num": positive, "real_num": positive, "num": positive, "estimator_steps": positive,
        "edit_steps": lambda x, f: positive(x, f, minimum=2),
        "shape_res": lambda x, f: positive(x, f, minimum=2),
        "object_index": v.check_non_negative_int,
        "repeats": positive, "warmup": v.check_non_negative_int, "threads": positive,
        "train_repeats": positive, "train_warmup": v.check_non_negative_int,
        "truncation_psi": v.check_finite, "density_level": v.check_finite,
        "port": lambda x, f: v.check_int_in(x, f, 0, 65535, what=" (0: any free port)"),
        "preview_resolution": lambda x, f: v.check_non_negative_int(x, f, what=" (0: the default)"),
        "compression": lambda x, f: v.check_int_in(x, f, 0, 9, what=" (PNG compression level)"),
        "method": lambda x, f: v.check_name(x, f, "a method name (tools/run.py plugins lists them)"),
        "variant": lambda x, f: v.check_name(x, f, "a variant name"),
        "labels": lambda x, f: v.check_file(x, f, "labels file"),
        "landmark_weights": lambda x, f: v.check_file(x, f, "weight file"),
        "job_name": v.check_job_name,
        "root_work_dir": v.check_folder, "work_dir": v.check_folder,
    }


def _check_options(args) -> None:
    """Run the option checks on every value the command line set (lists: each element)."""
    checks = _option_checks()
    for dest, value in vars(args).items():
        check = checks.get(dest)
        if check is None or value is None or isinstance(value, bool):
            continue
        for item in value if isinstance(value, list) else [value]:
            check(item, f"--{dest}")


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit status. Errors print one line (see :func:`_handle`);
    ``GAN3D_DEBUG=1`` (or ``-v``) re-raises them so the traceback shows."""
    from gan3d.core.errors import debug_enabled

    argv = sys.argv[1:] if argv is None else argv
    debug = debug_enabled() or "-v" in argv or "--verbose" in argv
    try:
        parser = build_parser(with_plugin_commands=_needs_plugin_commands(argv))
        args, extra = parser.parse_known_args(argv)
        _parse_method_options(args, extra, parser)
        args.argv = list(argv)
        logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                            format="%(levelname)s %(name)s: %(message)s")
        if not getattr(args, "func", None):
            parser.print_help()
            return 1
        _check_options(args)
        return int(args.func(args) or 0)
    except SystemExit:
        raise
    except BaseException as exc:  # KeyboardInterrupt included: one line, and what was saved
        if debug or not isinstance(exc, Exception | KeyboardInterrupt):
            raise
        try:
            return _handle(exc)
        except KeyboardInterrupt:  # a further Ctrl-C while the line is printed
            return 130


def _handle(exc: BaseException) -> int:
    """One line for any error and its exit status: 2 for bad input (its own message), 128 + N for
    signal N (what was saved), 1 for a bug (with how to get the traceback); see gan3d.core.errors."""
    from gan3d.core.errors import user_message

    message, status = user_message(exc)
    if isinstance(exc, KeyboardInterrupt):
        from rich.markup import escape

        _console().print(f"[bold yellow]{escape(message)}[/]", highlight=False, soft_wrap=True)
        return status
    return _fail(message, status)


if __name__ == "__main__":
    sys.exit(main())
