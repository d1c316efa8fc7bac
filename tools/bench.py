#!/usr/bin/env python
"""Benchmark gan3d's methods: inference images per second, training seconds per kimg, peak memory.

    python tools/bench.py                                     # every installed method, recipe defaults
    python tools/bench.py --method eg3d pigan --resolution 64 --batch_size 4
    python tools/bench.py --method eg3d --variant eg3d:synthetic --set pigan:generator.num_importance=6
    python tools/run.py bench --method pigan --json out.json

For each method, in a fresh subprocess (so peak RSS of one method does not hide another's):

* inference: the EMA generator (``Trainer.G_ema``) without gradients, ``batch_size`` latents and
  poses per call; images per second from the median of ``--repeats`` timed calls after ``--warmup``.
* training: ``Trainer.train_step`` (D step, lazy R1, G step, lazy generator regularizer, EMA) on a
  small in-memory data set at the output resolution. Lazy regularizers run every N steps, so each
  kind of step that occurs in one regularization cycle (plain, R1, generator regularizer, both) is
  timed separately and weighted by how often it occurs: the result is the cycle-averaged cost.
* memory: CUDA peak allocated bytes, or the process's peak RSS on CPU (``ru_maxrss``), read after
  inference and again after training.

``--resolution R`` makes the output image ``R`` px: methods without a fixed-size upsampler render at
``R``; an upsampler with ``image_resolution`` is set to ``R`` (the render resolution stays the
recipe's), and when it cannot produce ``R`` (EG3D's super-resolution only has 128, 256 and 512) the
identity upsampler replaces it and the volume is rendered at ``R``. The overrides used are printed
and saved. ``--set`` and ``--variant`` take ``METHOD:`` prefixes to apply to one method only.

Results print as a rich table and go to ``--json`` with the machine (CPU model, cores, threads, bf16
support), the torch version and the whole configuration, so two runs can be compared.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger("gan3d.bench")

#: Data-set size of the in-memory training set (enough for a few distinct batches).
DATASET_SIZE = 16


# ---------------------------------------------------------------------------- machine
def machine_info() -> dict[str, Any]:
    """CPU model (lscpu, else /proc/cpuinfo), cores, threads used by torch, bf16 flags, torch build."""
    import torch

    model, flags = None, set()
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
        fields = {k.strip(): v.strip() for k, v in fields.items()}
        model = fields.get("Model name")
        flags = set(fields.get("Flags", "").split())
    except (OSError, subprocess.SubprocessError):
        pass
    if model is None and Path("/proc/cpuinfo").exists():
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    info = {
        "cpu_model": model or platform.processor() or "unknown",
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch_threads": torch.get_num_threads(),
        "avx512_bf16": "avx512_bf16" in flags,
        "amx_bf16": "amx_bf16" in flags,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "ld_preload": os.environ.get("LD_PRELOAD", ""),
        "platform": platform.platform(),
    }
    if torch.cuda.is_available():
        info["cuda_device"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
    return info


# ---------------------------------------------------------------------------- configuration
def per_method(values: list[str] | None, method: str, methods: list[str]) -> list[str]:
    """The entries of ``values`` that apply to ``method``: unprefixed ones and ``method:...`` ones."""
    out = []
    for value in values or []:
        head, sep, rest = value.partition(":")
        if sep and "=" not in head and head in methods:
            if head == method:
                out.append(rest)
        else:
            out.append(value)
    return out


def resolution_overrides(recipe, resolution: int, registry) -> list[str]:
    """``KEY=VALUE`` overrides that make ``recipe``'s output image ``resolution`` px (see module doc)."""
    overrides = []
    up = recipe.modules["upsampler"]
    if "image_resolution" in up.kwargs:
        try:
            registry.build("upsampler", up.name, **{**up.kwargs, "image_resolution": resolution})
            overrides.append(f"upsampler.image_resolution={resolution}")
        except ValueError:
            overrides += ["upsampler=identity", f"generator.render_resolution={resolution}"]
    else:
        overrides.append(f"generator.render_resolution={resolution}")
    disc = recipe.modules.get("discriminator")
    if disc is not None and "img_resolution" in disc.kwargs:
        overrides.append(f"discriminator.img_resolution={resolution}")
    return overrides


def build_recipe(method: str, variant: str | None, sets: list[str], resolution: int | None,
                 batch_size: int) -> tuple[Any, list[str]]:
    """The method's recipe with ``--variant``, ``--resolution`` and ``--set`` applied, and the overrides."""
    from gan3d.core import get_registry

    registry = get_registry()
    recipe = registry.get("method", method)(variant)
    overrides = resolution_overrides(recipe, resolution, registry) if resolution else []
    overrides += list(sets) + [f"training.batch_size={batch_size}"]
    recipe = recipe.overrides(overrides)
    # A fixed configuration: stages would change the resolution and batch size under the timer.
    recipe.training["stages"] = [{k: v for k, v in s.items() if k not in ("resolution", "batch_size")}
                                 for s in recipe.training.get("stages", [])]
    return recipe, overrides


def _generator_default(option: str):
    import inspect

    from gan3d.core.generator import Generator

    return inspect.signature(Generator).parameters[option].default


def in_memory_dataset(size: int, resolution: int, labels):
    """``size`` random images ``[3, R, R]`` in ``[-1, 1]`` with camera labels ``[25]`` (any pose
    sampler's draws): what the trainer reads, without touching the disk. A :class:`GanDataset`, so
    that the labels are declared (EG3D's ``dataset`` pose sampler draws them)."""
    from gan3d.core.data.base import GanDataset

    class InMemoryDataset(GanDataset):
        source = "bench (random images in memory)"

        def __init__(self) -> None:
            import torch

            g = torch.Generator().manual_seed(0)
            self.images = torch.rand(size, 3, resolution, resolution, generator=g) * 2 - 1
            self.labels = labels

        def __len__(self) -> int:
            return len(self.images)

        def __getitem__(self, index: int):
            return self.images[index], self.labels[index]

    return InMemoryDataset()


# ---------------------------------------------------------------------------- measuring
def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_memory_mb(device) -> float:
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _autocast(device, precision: str):
    import torch

    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def time_inference(G, batch: int, warmup: int, repeats: int, device, precision: str) -> tuple[list[float], list[float]]:
    """Wall and process-CPU seconds per call of ``G`` (no grad) on ``batch`` latents and poses, after
    ``warmup`` calls. CPU seconds (all threads) are kept because they vary less than wall time on a
    machine shared with other jobs."""
    import torch

    g = torch.Generator().manual_seed(1)
    times, cpu_times = [], []
    for i in range(warmup + repeats):
        z = torch.randn(batch, G.z_dim, generator=g).to(device)
        cams = G.pose_sampler(batch, device="cpu", generator=g).to(device)
        _sync(device)
        t0, c0 = time.perf_counter(), time.process_time()
        with torch.no_grad(), _autocast(device, precision):
            G(z, cams)
        _sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
            cpu_times.append(time.process_time() - c0)
    return times, cpu_times


def image_difference(G, batch: int, device, precision: str) -> dict[str, float] | None:
    """Max abs difference and PSNR (images in [-1, 1], peak-to-peak 2) of ``precision`` against fp32
    at the same latents, poses and random draws; ``None`` for fp32."""
    import torch

    if precision == "fp32":
        return None
    images = []
    for prec in ("fp32", precision):
        g = torch.Generator().manual_seed(2)
        z = torch.randn(batch, G.z_dim, generator=g).to(device)
        cams = G.pose_sampler(batch, device="cpu", generator=g).to(device)
        torch.manual_seed(3)
        with torch.no_grad(), _autocast(device, prec):
            images.append(G(z, cams, generator=torch.Generator().manual_seed(4)).image.float())
    diff = (images[0] - images[1]).abs()
    mse = float(diff.square().mean())
    return {"max_abs_diff": float(diff.max()), "psnr_db": 10 * math.log10(4 / mse) if mse > 0 else float("inf")}


def step_kinds(loss, cycle_cap: int = 64) -> dict[tuple[bool, bool], int]:
    """How often each kind of training step (R1 due, generator regularizer due) occurs in one cycle
    of the lazy-regularization intervals: ``{(r1, g_reg): count}``."""
    r1 = getattr(loss, "r1_interval", 1) or 1
    greg = getattr(loss, "g_reg_interval", 0) or 0
    cycle = min(math.lcm(r1, max(greg, 1)), cycle_cap)
    kinds: dict[tuple[bool, bool], int] = {}
    for step in range(cycle):
        key = (bool(loss.regularize_discriminator_now(step)), bool(greg and step % greg == 0))
        kinds[key] = kinds.get(key, 0) + 1
    return kinds


def time_training(trainer, warmup: int, repeats: int, device, precision: str) -> dict[str, Any]:
    """Seconds per kimg of ``trainer.train_step``, cycle-averaged over the lazy regularizers."""
    kinds = step_kinds(trainer.loss)
    cycle = sum(kinds.values())
    r1 = getattr(trainer.loss, "r1_interval", 1) or 1
    greg = getattr(trainer.loss, "g_reg_interval", 0) or 0
    representative = {}
    for step in range(cycle):
        key = (bool(trainer.loss.regularize_discriminator_now(step)), bool(greg and step % greg == 0))
        representative.setdefault(key, step)
    # Step indices far from 0 keep step-0 special cases (first samples, warm-ups) out of the timing;
    # a multiple of every interval keeps each index's kind.
    base = math.lcm(r1, max(greg, 1)) * 1000
    per_kind: dict[str, list[float]] = {}
    batch = trainer.cfg.batch_size
    for i in range(warmup + repeats):
        for key, offset in representative.items():
            trainer.step = base + offset
            _sync(device)
            t0 = time.perf_counter()
            with _autocast(device, precision):
                trainer.train_step()
            _sync(device)
            if i >= warmup:
                per_kind.setdefault(f"r1={key[0]},g_reg={key[1]}", []).append(time.perf_counter() - t0)
    medians = {k: statistics.median(v) for k, v in per_kind.items()}
    weights = {f"r1={k[0]},g_reg={k[1]}": n / cycle for k, n in kinds.items()}
    seconds_per_step = sum(medians[k] * weights[k] for k in medians)
    return {
        "seconds_per_kimg": seconds_per_step * 1000 / batch,
        "seconds_per_step": seconds_per_step,
        "step_kinds": {k: {"weight": weights[k], "median_s": medians[k], "seconds": per_kind[k]} for k in medians},
    }


def bench_one(args, method: str) -> dict[str, Any]:
    """Measure one method in this process (the child side of :func:`main`)."""
    import torch

    from gan3d.core import get_registry
    from gan3d.core.trainer import Trainer

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    variants = per_method(args.variant, method, args.method)
    variant = variants[-1] if variants else None
    recipe, overrides = build_recipe(method, variant, per_method(args.set, method, args.method), args.resolution,
                                     args.batch_size)
    registry = get_registry()
    torch.manual_seed(0)
    labels = registry.build("pose_sampler", "spherical", yaw_strategy="normal", yaw_stddev=0.3,
                            polar_strategy="normal", polar_stddev=0.15)(DATASET_SIZE, device="cpu").label
    with tempfile.TemporaryDirectory(prefix="gan3d-bench-") as work:
        # The output resolution needs a built generator; a one-image set at the render resolution (the
        # trainer refuses real images smaller than the rendered ones) is enough to build it.
        render = int(recipe.generator.get("render_resolution", _generator_default("render_resolution")))
        probe = Trainer(recipe, in_memory_dataset(1, render, labels[:1]), Path(work) / "probe", device=device,
                        progress=False, tensorboard=False)
        resolution = probe.output_resolution()
        del probe
        dataset = in_memory_dataset(DATASET_SIZE, resolution, labels)
        trainer = Trainer(recipe, dataset, Path(work) / "job", device=device, progress=False, tensorboard=False)
        G = trainer.G_ema
        if args.compile:
            G.forward = torch.compile(G.forward)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        times, cpu_times = time_inference(G, args.batch_size, args.warmup, args.repeats, device, args.precision)
        inference_peak = _peak_memory_mb(device)
        difference = image_difference(G, args.batch_size, device, args.precision)
        result: dict[str, Any] = {
            "method": method,
            "variant": recipe.variant,
            "overrides": overrides,
            "output_resolution": resolution,
            "render_resolution": trainer.G.render_resolution,
            "batch_size": args.batch_size,
            "device": str(device),
            "precision": args.precision,
            "compile": args.compile,
            "inference": {
                "images_per_s": args.batch_size / statistics.median(times),
                "median_s": statistics.median(times),
                "seconds": times,
                "cpu_seconds_per_image": statistics.median(cpu_times) / args.batch_size,
            },
            "peak_memory_mb": {"inference": inference_peak},
            "image_difference_vs_fp32": difference,
            "generator_parameters": sum(p.numel() for p in trainer.G.parameters()),
        }
        if args.train:
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            result["training"] = time_training(trainer, args.warmup, args.repeats, device, args.precision)
            result["peak_memory_mb"]["training"] = _peak_memory_mb(device)
    return result


# ---------------------------------------------------------------------------- the parent
def installed_methods() -> list[str]:
    from gan3d.core import get_registry

    return get_registry().names("method")


def _child_command(args, method: str, out: str) -> list[str]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--method", *args.method, "--only", method,
           "--child_out", out, "--batch_size", str(args.batch_size), "--warmup", str(args.warmup),
           "--repeats", str(args.repeats), "--precision", args.precision]
    if args.resolution:
        cmd += ["--resolution", str(args.resolution)]
    for value in args.set or []:
        cmd += ["--set", value]
    for value in args.variant or []:
        cmd += ["--variant", value]
    if args.device:
        cmd += ["--device", args.device]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    if args.compile:
        cmd.append("--compile")
    if not args.train:
        cmd.append("--no-train")
    return cmd


def print_table(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    m = report["machine"]
    on = f"{m['cpu_model']}, {m['torch_threads']} threads"
    if report["config"].get("device") != "cpu" and m.get("cuda_device"):
        on = f"{m['cuda_device']} (CUDA {m.get('cuda')})"  # what the numbers measure on a GPU run
    table = Table(title=f"gan3d bench: {on}, torch {m['torch']}")
    for col in ("method", "variant", "output px", "render px", "batch", "precision", "infer img/s",
                "train s/kimg", "peak MB infer", "peak MB train"):
        table.add_column(col, justify="left" if col in ("method", "variant", "precision") else "right")
    for r in report["results"]:
        if "error" in r:
            table.add_row(r["method"], "-", "-", "-", "-", "-", "[red]failed[/]", "-", "-", "-")
            continue
        train = r.get("training")
        mem = r["peak_memory_mb"]
        table.add_row(r["method"], str(r["variant"]), str(r["output_resolution"]), str(r["render_resolution"]),
                      str(r["batch_size"]), r["precision"] + (" +compile" if r["compile"] else ""),
                      f"{r['inference']['images_per_s']:.3g}",
                      f"{train['seconds_per_kimg']:.4g}" if train else "-",
                      f"{mem['inference']:.0f}", f"{mem['training']:.0f}" if "training" in mem else "-")
    console = Console(width=max(Console().width, 150))
    console.print(table)
    for r in report["results"]:
        if "error" in r:
            console.print(f"[red]{r['method']} failed:[/] {r['error']}", highlight=False)
        elif r.get("image_difference_vs_fp32"):
            d = r["image_difference_vs_fp32"]
            console.print(f"{r['method']}: {r['precision']} vs fp32 max |diff| {d['max_abs_diff']:.3g}, "
                          f"PSNR {d['psnr_db']:.1f} dB", highlight=False)


def build_parser(add_help: bool = True) -> argparse.ArgumentParser:
    """The options (``add_help=False`` to use it as a parent of ``tools/run.py bench``)."""
    p = argparse.ArgumentParser(prog="tools/bench.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, add_help=add_help)
    p.add_argument("--method", nargs="+", default=None, help="methods to measure (default: every installed one)")
    p.add_argument("--variant", action="append", metavar="[METHOD:]VARIANT", help="named configuration")
    p.add_argument("--set", action="append", metavar="[METHOD:]KEY=VALUE", help="recipe override (repeatable)")
    p.add_argument("--resolution", type=int, default=None, help="output image side (default: the recipe's)")
    p.add_argument("--batch_size", "--batch-size", type=int, default=4, help="images per call and per step")
    p.add_argument("--warmup", type=int, default=2, help="untimed calls (and steps) first")
    p.add_argument("--repeats", type=int, default=5, help="timed calls (and steps of each kind)")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                   help="bf16: torch.autocast (CPU: needs avx512_bf16/amx_bf16 to pay off)")
    p.add_argument("--compile", action="store_true", help="torch.compile the EMA generator's forward")
    p.add_argument("--train", action=argparse.BooleanOptionalAction, default=True, help="time training steps")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--json", default="bench.json", help="where to write the results")
    p.add_argument("--only", default=None, help=argparse.SUPPRESS)
    p.add_argument("--child_out", default=None, help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return run(args, argv)


def run(args: argparse.Namespace, argv: list[str] | None = None) -> int:
    """Measure the methods ``args`` name (parsed by :func:`build_parser`); 1 if any failed."""
    if args.child_out:
        result = bench_one(args, args.only)
        Path(args.child_out).write_text(json.dumps(result))
        return 0
    methods = args.method or installed_methods()
    args.method = methods
    results = []
    for method in methods:
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
            out = f.name
        try:
            proc = subprocess.run(_child_command(args, method, out), capture_output=True, text=True)
            if proc.returncode != 0 or not Path(out).stat().st_size:
                tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
                results.append({"method": method, "error": tail[0], "stderr": proc.stderr[-4000:]})
            else:
                results.append(json.loads(Path(out).read_text()))
        finally:
            Path(out).unlink(missing_ok=True)
    config = {k: v for k, v in vars(args).items() if k in vars(build_parser().parse_args([])) and
              k not in ("only", "child_out")}
    report = {"machine": machine_info() | ({"torch_threads": args.threads} if args.threads else {}),
              "config": config, "command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
              "results": results}
    Path(args.json).write_text(json.dumps(report, indent=2))
    print_table(report)
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
