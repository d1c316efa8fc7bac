#!/usr/bin/env python
"""Benchmark gan3d's methods: inference images per second, training seconds per kimg, peak memory.

    python tools/bench.py                                     # every installed method, recipe defaults
    python tools/bench.py --method eg3d pigan --resolution 64 --batch_size 4
    python tools/bench.py --method eg3d --variant eg3d:synthetic --set pigan:generator.num_importance=6
    python tools/bench.py --method eg3d pigan --batch_size 1 4 --no-train --official-src eg3d=PATH pigan=PATH
    python tools/run.py bench --method pigan --json out.json

For each method and each ``--batch_size``, in a fresh subprocess (so peak RSS of one method does not
hide another's), printing its progress (method, phase, call i of n) as it goes:

* inference: the EMA generator (``Trainer.G_ema``) without gradients, ``batch_size`` latents and
  poses per call; images per second from the median of ``--repeats`` timed calls after ``--warmup``.
* training: ``Trainer.train_step`` (D step, lazy R1, G step, lazy generator regularizer, EMA) on a
  small in-memory data set at the output resolution. Lazy regularizers run every N steps, so each
  kind of step that occurs in one regularization cycle (plain, R1, generator regularizer, both) is
  timed separately and weighted by how often it occurs: the result is the cycle-averaged cost.
  ``--train-warmup`` steps of the most frequent kind come first, then ``--train-repeats`` of each kind.
* memory: CUDA peak allocated bytes, or the process's peak RSS on CPU (``ru_maxrss``), read after
  inference and again after training.
* with ``--official-src``: the official implementation built from the user's checkout at the same
  configuration, on the same weights, timed against gan3d in the same process, interleaved (see
  ``tools/bench_official.py``); prints both and the ratio.

``--protocol quick`` (the default) times 3 inference calls after 1 warm-up and one training step of
each kind after one warm-up step, so that the CPU run of eg3d and pigan at 64 px finishes in a few
minutes; ``--protocol full`` is 2 warm-ups and 5 timed calls (and steps of each kind), the protocol
of the tables in docs/benchmarks.md. ``--warmup``, ``--repeats``, ``--train-warmup`` and
``--train-repeats`` override either.

``--resolution R`` makes the output image ``R`` px: methods without a fixed-size upsampler render at
``R``; an upsampler with ``image_resolution`` is set to ``R`` (the render resolution stays the
recipe's), and when it cannot produce ``R`` (EG3D's super-resolution only has 128, 256 and 512) the
identity upsampler replaces it and the volume is rendered at ``R``. The overrides used are printed
and saved. ``--set`` and ``--variant`` take ``METHOD:`` prefixes to apply to one method only.

Results print as a rich table and go to ``--json`` with the machine (CPU model, cores, threads, bf16
support, load average), the torch version and the whole configuration, so two runs can be compared.
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

logger = logging.getLogger("gan3d.bench")

#: Data-set size of the in-memory training set (enough for a few distinct batches).
DATASET_SIZE = 16

#: --protocol: (inference warm-up, inference repeats, training warm-up steps, training repeats per kind).
PROTOCOLS = {"quick": (1, 3, 1, 1), "full": (2, 5, 2, 5)}


def load_tool(name: str):
    """A sibling module of tools/ by path (tools/ is not a package; tools/run.py loads this file so too)."""
    import importlib.util

    module = sys.modules.get(f"gan3d_tools_{name}")
    if module is None:
        spec = importlib.util.spec_from_file_location(f"gan3d_tools_{name}", Path(__file__).with_name(f"{name}.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return module


def progress_reporter(method: str, batch: int) -> Callable[[str, int, int], None]:
    """``report(phase, i, n)``: one line per call on stderr, ``[bench] eg3d b4: infer 2/4``, which the
    parent passes through while it waits."""

    def report(phase: str, i: int, n: int) -> None:
        print(f"[bench] {method} b{batch}: {phase} {i}/{n}", file=sys.stderr, flush=True)

    return report


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
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "platform": platform.platform(),
    }
    if torch.cuda.is_available():
        info["cuda_device"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
    return info


# ---------------------------------------------------------------------------- configuration
def per_method(values: list[str] | None, method: str, methods: list[str]) -> list[str]:
    """The entries of ``values`` that apply to ``method``: unprefixed ones and ``method:...`` ones. A
    prefix naming another method, measured or merely installed, keeps the entry from ``method``."""
    known = set(methods)
    if any(value.partition(":")[1] for value in values or []):
        known |= set(installed_methods())
    out = []
    for value in values or []:
        head, sep, rest = value.partition(":")
        if sep and "=" not in head and head in known:
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


def camera_labels(recipe, registry, size: int):
    """``size`` camera labels ``[25]`` for the in-memory set, which a ``dataset`` pose sampler renders
    from: where the recipe's sampler declares a rig with view ranges (EpiGRAF: a sphere around its
    +-0.2 scene), cameras of that rig, uniform in its yaw and polar ranges; otherwise EG3D's FFHQ
    cameras (radius 2.7 about (0, 0, 0.2), yaw and polar spread 0.3 and 0.15)."""
    spec = recipe.modules.get("pose_sampler")
    rig = spec.kwargs.get("rig") if spec is not None and spec.name == "dataset" else None
    if rig and rig.get("yaw_range") and rig.get("polar_range"):
        sampler = registry.build("pose_sampler", "spherical", yaw_strategy="uniform", yaw_range=rig["yaw_range"],
                                 polar_strategy="uniform", polar_range=rig["polar_range"], radius=rig["radius"],
                                 pivot=rig["pivot"], orbit_center=spec.kwargs.get("orbit_center", (0.0, 0.0, 0.0)),
                                 focal=rig["focal"], principal_point=rig.get("principal_point", (0.5, 0.5)))
    else:
        sampler = registry.build("pose_sampler", "spherical", yaw_strategy="normal", yaw_stddev=0.3,
                                 polar_strategy="normal", polar_stddev=0.15)
    return sampler(size, device="cpu").label


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


def time_inference(G, batch: int, warmup: int, repeats: int, device, precision: str,
                   progress: Callable[[str, int, int], None] | None = None) -> tuple[list[float], list[float]]:
    """Wall and process-CPU seconds per call of ``G`` (no grad) on ``batch`` latents and poses, after
    ``warmup`` calls. CPU seconds (all threads) are kept because they vary less than wall time on a
    machine shared with other jobs."""
    import torch

    g = torch.Generator().manual_seed(1)
    times, cpu_times = [], []
    for i in range(warmup + repeats):
        if progress:
            progress("infer", i + 1, warmup + repeats)
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


def representative_steps(loss, cycle_cap: int = 64) -> dict[tuple[bool, bool], int]:
    """A training step index of each kind of :func:`step_kinds`, far from step 0 (keeping step-0
    special cases, first samples and warm-ups, out of the timing): a multiple of every interval plus
    the kind's first offset in the cycle keeps each index's kind."""
    r1 = getattr(loss, "r1_interval", 1) or 1
    greg = getattr(loss, "g_reg_interval", 0) or 0
    cycle = min(math.lcm(r1, max(greg, 1)), cycle_cap)
    base = math.lcm(r1, max(greg, 1)) * 1000
    steps: dict[tuple[bool, bool], int] = {}
    for step in range(cycle):
        key = (bool(loss.regularize_discriminator_now(step)), bool(greg and step % greg == 0))
        steps.setdefault(key, base + step)
    return steps


def time_training(trainer, warmup: int, repeats: int, device, precision: str,
                  progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
    """Seconds per kimg of ``trainer.train_step``, cycle-averaged over the lazy regularizers:
    ``warmup`` untimed steps of the most frequent kind, then ``repeats`` timed steps of each kind."""
    kinds = step_kinds(trainer.loss)
    cycle = sum(kinds.values())
    representative = representative_steps(trainer.loss)
    first = max(kinds, key=kinds.get)
    jobs = [(first, False)] * warmup + [(key, True) for _ in range(repeats) for key in representative]
    per_kind: dict[str, list[float]] = {}
    batch = trainer.cfg.batch_size
    for i, (key, timed) in enumerate(jobs):
        if progress:
            progress(f"train r1={key[0]},g_reg={key[1]}", i + 1, len(jobs))
        trainer.step = representative[key]
        _sync(device)
        t0 = time.perf_counter()
        with _autocast(device, precision):
            trainer.train_step()
        _sync(device)
        if timed:
            per_kind.setdefault(f"r1={key[0]},g_reg={key[1]}", []).append(time.perf_counter() - t0)
    medians = {k: statistics.median(v) for k, v in per_kind.items()}
    weights = {f"r1={k[0]},g_reg={k[1]}": n / cycle for k, n in kinds.items()}
    seconds_per_step = sum(medians[k] * weights[k] for k in medians)
    return {
        "seconds_per_kimg": seconds_per_step * 1000 / batch,
        "seconds_per_step": seconds_per_step,
        "step_kinds": {k: {"weight": weights[k], "median_s": medians[k], "seconds": per_kind[k]} for k in medians},
    }


def resolve_protocol(args) -> tuple[int, int, int, int]:
    """(inference warm-up, repeats, training warm-up, training repeats) of ``--protocol`` with the
    explicit options applied."""
    defaults = PROTOCOLS[args.protocol]
    chosen = (args.warmup, args.repeats, args.train_warmup, args.train_repeats)
    return tuple(d if c is None else c for c, d in zip(chosen, defaults, strict=True))


def bench_one(args, method: str, batch: int | None = None) -> dict[str, Any]:
    """Measure one method at one batch size in this process (the child side of :func:`main`)."""
    import torch

    from gan3d.core import get_registry
    from gan3d.core.trainer import Trainer

    batch = batch or args.batch_size[0]
    if args.threads:
        torch.set_num_threads(args.threads)
    warmup, repeats, train_warmup, train_repeats = resolve_protocol(args)
    progress = progress_reporter(method, batch)
    progress("build", 0, 1)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    variants = per_method(args.variant, method, args.method)
    variant = variants[-1] if variants else None
    recipe, overrides = build_recipe(method, variant, per_method(args.set, method, args.method), args.resolution,
                                     batch)
    registry = get_registry()
    torch.manual_seed(0)
    labels = camera_labels(recipe, registry, DATASET_SIZE)
    official_src = load_tool("bench_official").parse_sources(args.official_src, args.method).get(method)
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
        result: dict[str, Any] = {
            "method": method,
            "variant": recipe.variant,
            "overrides": overrides,
            "output_resolution": resolution,
            "render_resolution": trainer.G.render_resolution,
            "batch_size": batch,
            "device": str(device),
            "precision": args.precision,
            "compile": args.compile,
            "protocol": {"name": args.protocol, "warmup": warmup, "repeats": repeats,
                         "train_warmup": train_warmup, "train_repeats": train_repeats},
            "generator_parameters": sum(p.numel() for p in trainer.G.parameters()),
        }
        if official_src is not None:
            # Weights first: the official ones are copied into gan3d's networks before anything is timed.
            result["official"] = official_comparison(args, method, official_src, recipe, trainer, batch, device,
                                                     progress)
        if args.compile:
            G.forward = torch.compile(G.forward)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        if not args.official_only:
            times, cpu_times = time_inference(G, batch, warmup, repeats, device, args.precision, progress)
            result["inference"] = {
                "images_per_s": batch / statistics.median(times),
                "median_s": statistics.median(times),
                "seconds": times,
                "cpu_seconds_per_image": statistics.median(cpu_times) / batch,
            }
        result["peak_memory_mb"] = {"inference": _peak_memory_mb(device)}
        progress("image difference", 0, 1)
        result["image_difference_vs_fp32"] = image_difference(G, batch, device, args.precision)
        if args.train and not args.official_only:
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            result["training"] = time_training(trainer, train_warmup, train_repeats, device, args.precision, progress)
            result["peak_memory_mb"]["training"] = _peak_memory_mb(device)
    return result


def official_comparison(args, method: str, src: Path, recipe, trainer, batch: int, device,
                        progress) -> dict[str, Any]:
    """The ``--official-src`` comparison of one method (tools/bench_official.py); an error for a
    configuration the official code cannot run is recorded in the row, not raised."""
    official = load_tool("bench_official")
    adapter_cls = official.ADAPTERS.get(method)
    if adapter_cls is None:
        return {"error": f"no official adapter for {method} (tools/bench_official.py has: "
                         f"{', '.join(sorted(official.ADAPTERS))})"}
    warmup, repeats, train_warmup, train_repeats = resolve_protocol(args)
    try:
        adapter = adapter_cls(src, recipe, device, precision=args.official_precision)
        return official.compare(
            adapter, trainer, batch=batch, warmup=warmup, repeats=repeats, train_warmup=train_warmup,
            train_repeats=train_repeats, train=args.train, device=device, precision=args.precision,
            autocast=lambda precision: _autocast(device, precision), progress=progress,
            ours_kinds=step_kinds(trainer.loss), ours_steps=representative_steps(trainer.loss))
    except official.OfficialSourceError as e:
        logger.warning("%s", e)
        return {"error": str(e)}


# ---------------------------------------------------------------------------- the parent
def installed_methods() -> list[str]:
    from gan3d.core import get_registry

    return get_registry().names("method")


def _child_command(args, method: str, batch: int, out: str) -> list[str]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--method", *args.method, "--only", method,
           "--child_out", out, "--batch_size", str(batch), "--protocol", args.protocol,
           "--precision", args.precision, "--official-precision", args.official_precision]
    for flag, value in (("--warmup", args.warmup), ("--repeats", args.repeats), ("--train-warmup", args.train_warmup),
                        ("--train-repeats", args.train_repeats), ("--resolution", args.resolution),
                        ("--device", args.device), ("--threads", args.threads)):
        if value is not None:
            cmd += [flag, str(value)]
    for value in args.set or []:
        cmd += ["--set", value]
    for value in args.variant or []:
        cmd += ["--variant", value]
    if args.official_src:
        cmd += ["--official-src", *args.official_src]
    if args.compile:
        cmd.append("--compile")
    if not args.train:
        cmd.append("--no-train")
    if args.official_only:
        cmd.append("--official-only")
    return cmd


def run_child(cmd: list[str]) -> tuple[int, list[str]]:
    """Run one measuring child, passing its progress lines through to stderr as they come; its
    exit status and the last lines it wrote (for an error message)."""
    import collections

    tail: collections.deque[str] = collections.deque(maxlen=200)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, bufsize=1)
    assert proc.stderr is not None
    for line in proc.stderr:
        tail.append(line.rstrip("\n"))
        if line.startswith("[bench]") or line.startswith("WARNING"):
            print(line, end="", file=sys.stderr, flush=True)
    return proc.wait(), list(tail)


def _fmt(value: float | None, spec: str = ".3g") -> str:
    return "-" if value is None else format(value, spec)


def print_table(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    m = report["machine"]
    on = f"{m['cpu_model']}, {m['torch_threads']} threads"
    if report["config"].get("device") != "cpu" and m.get("cuda_device"):
        on = f"{m['cuda_device']} (CUDA {m.get('cuda')})"  # what the numbers measure on a GPU run
    load = m.get("load_average")
    title = f"gan3d bench: {on}, torch {m['torch']}" + (f", load {load[0]:.1f}" if load else "")
    table = Table(title=title)
    for col in ("method", "variant", "output px", "render px", "batch", "precision", "infer img/s",
                "train s/kimg", "peak MB infer", "peak MB train"):
        table.add_column(col, justify="left" if col in ("method", "variant", "precision") else "right")
    for r in report["results"]:
        if "error" in r:
            table.add_row(r["method"], "-", "-", "-", str(r.get("batch_size", "-")), "-", "[red]failed[/]", "-", "-",
                          "-")
            continue
        train = r.get("training")
        infer = r.get("inference")
        mem = r["peak_memory_mb"]
        table.add_row(r["method"], str(r["variant"]), str(r["output_resolution"]), str(r["render_resolution"]),
                      str(r["batch_size"]), r["precision"] + (" +compile" if r["compile"] else ""),
                      _fmt(infer["images_per_s"]) if infer else "-",
                      _fmt(train["seconds_per_kimg"], ".4g") if train else "-",
                      f"{mem['inference']:.0f}", f"{mem['training']:.0f}" if "training" in mem else "-")
    console = Console(width=max(Console().width, 170))
    console.print(table)
    official_rows = [r for r in report["results"] if "official" in r]
    if official_rows:
        table = Table(title="against the official code (same process, interleaved, medians)")
        for col in ("method", "batch", "precision gan3d / official", "gan3d s/img", "official s/img", "ratio",
                    "CPU ratio", "gan3d s/kimg", "official s/kimg", "ratio ", "images vs official"):
            table.add_column(col, justify="left" if col in ("method", "precision gan3d / official") else "right")
        for r in official_rows:
            o = r["official"]
            if "error" in o:
                table.add_row(r["method"], str(r["batch_size"]), "-", "-", "-", f"[red]{o['error']}[/]", "-", "-",
                              "-", "-", "-")
                continue
            inf, tr = o["inference"], o.get("training")
            images = o.get("image_vs_official")
            shown = (f"max |diff| {images['max_abs_diff']:.2g}, {images['psnr_db']:.1f} dB" if images
                     else "[red]weights not shared[/]")
            table.add_row(r["method"], str(inf["batch_size"]),
                          f"{r['precision']} / {o['official']['precision']}"
                          + (f" ({o['official_autocast']} autocast)" if o["official_autocast"] != "fp32" else ""),
                          _fmt(inf["gan3d_s_per_image"]), _fmt(inf["official_s_per_image"]),
                          f"[bold]{inf['ratio']:.2f}x[/]",
                          f"{inf['cpu_ratio']:.2f}x" if "cpu_ratio" in inf else "-",
                          _fmt(tr["gan3d"]["seconds_per_kimg"], ".4g") if tr else "-",
                          _fmt(tr["official"]["seconds_per_kimg"], ".4g") if tr else "-",
                          f"[bold]{tr['ratio']:.2f}x[/]" if tr else "-", shown)
        console.print(table)
        console.print("ratio = official time / gan3d time (above 1: gan3d is faster); CPU ratio: the same "
                      "with the process's CPU seconds (all threads), steadier on a shared machine", highlight=False)
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
    p.add_argument("--batch_size", "--batch-size", type=int, nargs="+", default=[4],
                   help="images per call and per step; several values give one row each")
    p.add_argument("--protocol", choices=sorted(PROTOCOLS), default="quick",
                   help="quick: 1 warm-up + 3 calls, 1 warm-up step + 1 step of each kind; full: 2 + 5 of each")
    p.add_argument("--warmup", type=int, default=None, help="untimed inference calls first (overrides --protocol)")
    p.add_argument("--repeats", type=int, default=None, help="timed inference calls (overrides --protocol)")
    p.add_argument("--train-warmup", type=int, default=None, help="untimed training steps first (overrides --protocol)")
    p.add_argument("--train-repeats", type=int, default=None,
                   help="timed training steps of each kind (overrides --protocol)")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                   help="bf16: torch.autocast (CPU: needs avx512_bf16/amx_bf16 to pay off)")
    p.add_argument("--compile", action="store_true", help="torch.compile the EMA generator's forward")
    p.add_argument("--train", action=argparse.BooleanOptionalAction, default=True, help="time training steps")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--official-src", "--official_src", nargs="+", default=None, metavar="[METHOD=]PATH",
                   help="checkouts of the official repositories (eg3d=PATH pigan=PATH): time the official code "
                        "against gan3d at the same configuration (tools/bench_official.py)")
    p.add_argument("--official-precision", choices=["default", "fp32"], default="default",
                   help="the official side's precision: its scripts' default (fp16 parts on CUDA) or fp32")
    p.add_argument("--official-only", action="store_true",
                   help="with --official-src: only the side-by-side rows (skip gan3d's own timing)")
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
        result = bench_one(args, args.only, args.batch_size[0])
        Path(args.child_out).write_text(json.dumps(result))
        return 0
    methods = args.method or installed_methods()
    args.method = methods
    if args.official_only and not args.official_src:
        raise SystemExit("tools/bench.py: --official-only needs --official-src")
    try:  # bad --official-src values fail before anything is measured
        load_tool("bench_official").parse_sources(args.official_src, methods)
    except ValueError as e:
        raise SystemExit(f"tools/bench.py: {e}") from None
    results = []
    for method in methods:
        for batch in args.batch_size:
            with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
                out = f.name
            try:
                code, tail = run_child(_child_command(args, method, batch, out))
                if code != 0 or not Path(out).stat().st_size:
                    last = [line for line in tail if not line.startswith("[bench]")][-1:] or ["no output"]
                    results.append({"method": method, "batch_size": batch, "error": last[0],
                                    "stderr": "\n".join(tail)[-4000:]})
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
