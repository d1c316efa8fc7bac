"""The trainer: one loop for every method, driven by the recipe.

Each iteration runs a discriminator step (logistic loss, lazy R1), then a generator step, then an
EMA update of the generator copy used for samples and evaluation. Schedules (resolution, batch
size, learning rates, progressive fade-in) come from ``recipe.training['stages']``. The work
directory holds ``recipe.json``, ``log.json`` (JSON Lines), TensorBoard events, sample grids and
checkpoints; it is never overwritten: an existing job directory is only continued with
``resume=True``.

Runs on one process or under ``torchrun`` (gloo on CPUs, NCCL on GPUs): each rank takes its slice
of the global batch, gradients are averaged across ranks, rank 0 writes the logs and checkpoints.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from .checkpoint import atomic_write_bytes, latest_checkpoint, load_checkpoint, recipe_of, save_checkpoint
from .generator import Generator, build_generator, build_module
from .images import save_image_grid
from .objective import LossInputs, Objective
from .recipe import Recipe, RecipeError

__all__ = ["TrainingConfig", "Trainer", "TrainingError", "WorkDirError", "StageSchedule"]

logger = logging.getLogger(__name__)


class TrainingError(RuntimeError):
    """Training cannot go on (a non-finite loss, say); the last good checkpoint is kept."""


class WorkDirError(RuntimeError):
    """The work directory cannot be used as asked (exists without --resume, nothing to resume)."""


@dataclass
class TrainingConfig:
    """The ``training`` section of a recipe.

    Attributes:
        batch_size: global batch (split across ranks).
        g_lr, d_lr: Adam learning rates; g_betas, d_betas: Adam betas.
        ema_beta: fixed EMA decay per step (pi-GAN: 0.999); when ``None`` the decay follows
            StyleGAN2: ``0.5 ** (batch / (ema_kimg * 1000))`` with optional ``ema_rampup``.
        ema_warmup: with ``ema_beta``, use ``min(ema_beta, (1 + t) / (10 + t))`` at the ``t``-th
            update (torch_ema's warm-up, which pi-GAN's training uses).
        total_kimg: run length in thousands of real images.
        stages: schedule entries, each with ``until_step`` or ``until_kimg`` and any of
            ``resolution``, ``batch_size``, ``g_lr``, ``d_lr``, ``fade_steps`` and
            ``generator.<option>`` overrides. The last stage lasts until the end.
        g_grad_clip, d_grad_clip: gradient-norm clipping (0: none).
        snapshot_kimg, image_snapshot_kimg: how often to checkpoint and to write sample grids.
        log_every: steps between ``log.json`` lines.
        xflip: mirror the data set (images and camera labels).
        max_bad_steps: non-finite steps to skip before stopping (0: stop at the first).
        keep_checkpoints: complete checkpoints kept on disk.
        frozen_modules: generator parts left untrained (names of :class:`Generator` submodules:
            ``mapper``, ``embedder``, ``decoder``, ``renderer``, ``upsampler``...), e.g. StyleSDF's
            volume renderer under its 2D decoder; not in the optimizer and no gradients computed.
        lazy_reg_adam: adjust Adam for lazy R1 as StyleGAN2 does (lr and betas scaled by
            ``interval / (interval + 1)``) when the R1 interval is above 1.
        optimizer: ``'adam'`` (betas from ``g_betas``/``d_betas``) or ``'rmsprop'`` (GIRAFFE;
            PyTorch's defaults, alpha 0.99, eps 1e-8).
    """

    batch_size: int = 32
    g_lr: float = 0.0025
    d_lr: float = 0.0025
    g_betas: list[float] = field(default_factory=lambda: [0.0, 0.99])
    d_betas: list[float] = field(default_factory=lambda: [0.0, 0.99])
    ema_beta: float | None = None
    ema_kimg: float = 10.0
    ema_rampup: float | None = None
    ema_warmup: bool = False
    total_kimg: float = 25000.0
    stages: list[dict[str, Any]] = field(default_factory=list)
    g_grad_clip: float = 0.0
    d_grad_clip: float = 0.0
    snapshot_kimg: float = 50.0
    image_snapshot_kimg: float = 10.0
    log_every: int = 10
    xflip: bool = False
    max_bad_steps: int = 0
    keep_checkpoints: int = 2
    lazy_reg_adam: bool = True
    optimizer: str = "adam"
    frozen_modules: list[str] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingConfig:
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise RecipeError(f"unknown training option(s) {unknown}; known: {', '.join(known)}")
        cfg = cls(**data)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        def positive(name: str) -> None:
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                raise RecipeError(f"training.{name} must be a positive number, got {value!r}")

        for name in ("batch_size", "g_lr", "d_lr", "total_kimg", "snapshot_kimg", "image_snapshot_kimg",
                     "log_every", "ema_kimg"):
            positive(name)
        if not isinstance(self.batch_size, int):
            raise RecipeError(f"training.batch_size must be an integer, got {self.batch_size!r}")
        if self.optimizer not in ("adam", "rmsprop"):
            raise RecipeError(f"training.optimizer must be 'adam' or 'rmsprop', got {self.optimizer!r}")
        if self.ema_beta is not None and not 0 <= self.ema_beta < 1:
            raise RecipeError(f"training.ema_beta must be in [0, 1), got {self.ema_beta}")
        for name in ("g_betas", "d_betas"):
            betas = getattr(self, name)
            if len(betas) != 2 or not all(0 <= b < 1 for b in betas):
                raise RecipeError(f"training.{name} must be two numbers in [0, 1), got {betas!r}")
        StageSchedule(self)  # validates the stages


class StageSchedule:
    """Which stage applies at a step, and its settings merged over the base configuration."""

    STAGE_KEYS = {"until_step", "until_kimg", "resolution", "batch_size", "g_lr", "d_lr", "fade_steps"}
    PREFIXES = ("generator.", "loss.")

    def __init__(self, cfg: TrainingConfig) -> None:
        self.cfg = cfg
        self.stages = [dict(s) for s in cfg.stages] or [{}]
        for i, stage in enumerate(self.stages):
            for key, value in stage.items():
                if key not in self.STAGE_KEYS and not key.startswith(self.PREFIXES):
                    raise RecipeError(f"training.stages[{i}] has unknown key {key!r}; known: "
                                      f"{', '.join(sorted(self.STAGE_KEYS))}, generator.<option>, loss.<option>")
                if key in ("resolution", "batch_size", "until_step", "fade_steps") and (
                        not isinstance(value, int) or isinstance(value, bool) or value < 0
                        or (value == 0 and key in ("resolution", "batch_size"))):
                    raise RecipeError(f"training.stages[{i}].{key} must be a positive integer, got {value!r}")
            if i < len(self.stages) - 1 and not ({"until_step", "until_kimg"} & set(stage)):
                raise RecipeError(f"training.stages[{i}] needs until_step or until_kimg (only the last may omit it)")

    def index(self, step: int, kimg: float) -> int:
        for i, stage in enumerate(self.stages[:-1]):
            if "until_step" in stage and step < stage["until_step"]:
                return i
            if "until_kimg" in stage and kimg < stage["until_kimg"]:
                return i
        return len(self.stages) - 1

    def settings(self, index: int) -> dict[str, Any]:
        stage = self.stages[index]
        return {
            "batch_size": stage.get("batch_size", self.cfg.batch_size),
            "g_lr": stage.get("g_lr", self.cfg.g_lr),
            "d_lr": stage.get("d_lr", self.cfg.d_lr),
            "resolution": stage.get("resolution"),
            "fade_steps": stage.get("fade_steps", 0),
            "generator": {k.split(".", 1)[1]: v for k, v in stage.items() if k.startswith("generator.")},
            "loss": {k.split(".", 1)[1]: v for k, v in stage.items() if k.startswith("loss.")},
        }


class _BatchIndices(torch.utils.data.Sampler):
    """Endless, resumable stream of per-rank batches: global step ``t`` takes stream items
    ``[start + t*B, start + (t+1)*B)`` of a sequence of seeded permutations, and rank ``r`` the
    ``r``-th contiguous slice of them."""

    def __init__(self, size: int, batch: int, seed: int, start: int, rank: int, world: int) -> None:
        self.size, self.batch, self.seed, self.start, self.rank, self.world = size, batch, seed, start, rank, world
        self.per_rank = batch // world

    def _perm(self, epoch: int) -> Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.size, generator=g)

    def __iter__(self) -> Iterator[list[int]]:
        pos = self.start
        epoch, perm = -1, None
        while True:
            lo = pos + self.rank * self.per_rank
            out = []
            for k in range(lo, lo + self.per_rank):
                e = k // self.size
                if e != epoch:
                    epoch, perm = e, self._perm(e)
                out.append(int(perm[k % self.size]))
            yield out
            pos += self.batch


def _user_files(work_dir: Path) -> list[Path]:
    """What a job directory holds, less the temporary files a killed atomic write leaves."""
    return [p for p in work_dir.iterdir() if not (p.name.startswith(".") and p.name.endswith(".tmp"))]


def _saved_recipe(work_dir: Path) -> Recipe | None:
    """The recipe a job directory was started with, or ``None`` when it has no readable one."""
    try:
        return Recipe.from_json((work_dir / "recipe.json").read_text(), source=str(work_dir / "recipe.json"))
    except (OSError, RecipeError):
        return None


class _ItemFailure:
    """A data set error caught inside a loader worker, carried to the main process as a value so
    that it is raised there with its own message (torch would wrap it in the worker's traceback)."""

    def __init__(self, error: Exception) -> None:
        self.error = error


class _CatchingDataset(torch.utils.data.Dataset):
    """Wraps a data set so that its bad-input errors (``ValueError``, ``OSError``: a corrupt image,
    a missing file) reach the trainer as :class:`_ItemFailure` items instead of worker tracebacks."""

    def __init__(self, dataset: torch.utils.data.Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        try:
            return self.dataset[index]
        except (ValueError, OSError) as error:
            return _ItemFailure(error)


def _collate(items: list) -> tuple[Tensor, Tensor] | _ItemFailure:
    failures = [it for it in items if isinstance(it, _ItemFailure)]
    if failures:
        return failures[0]
    images = torch.stack([torch.as_tensor(it[0]) for it in items])
    labels = torch.stack([torch.as_tensor(it[1], dtype=torch.float32) for it in items])
    return images, labels


def _resize(images: Tensor, resolution: int) -> Tensor:
    if images.shape[-1] == resolution and images.shape[-2] == resolution:
        return images
    return F.interpolate(images, size=(resolution, resolution), mode="bilinear", align_corners=False,
                         antialias=images.shape[-1] > resolution)


class Trainer:
    """Trains a recipe on a data set into a work directory.

    Args:
        recipe: the method recipe (``training`` section read as :class:`TrainingConfig`).
        dataset: yields ``(image [3, H, W] in [-1, 1], label [25], ...)``; needs ``labels [N, 25]``
            when the pose sampler draws data-set poses.
        work_dir: the job directory; must not exist unless ``resume``.
        resume: continue from the newest checkpoint in ``work_dir``.
        seed: seeds latents, poses, data order; a resumed run restores the saved states.
        device: ``'cpu'``, ``'cuda'``...; workers: data-loader processes.

    Example:
        >>> Trainer(recipe, dataset, "work_dirs/pigan-demo").train(kimg=1)      # doctest: +SKIP
    """

    def __init__(
        self,
        recipe: Recipe,
        dataset: torch.utils.data.Dataset,
        work_dir: Path | str,
        *,
        resume: bool = False,
        seed: int = 0,
        device: str | torch.device = "cpu",
        workers: int = 0,
        registry=None,
        progress: bool = True,
        tensorboard: bool = True,
    ) -> None:
        self.work_dir = Path(work_dir)
        self.rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
        self.world = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
        self.is_main = self.rank == 0
        self.device = torch.device(device)
        self.workers = workers
        self.progress = progress and self.is_main
        self.dataset = dataset
        if len(dataset) == 0:
            raise ValueError("the data set is empty")

        checkpoint = None
        if resume:
            ckpt_path = latest_checkpoint(self.work_dir / "checkpoints")
            if ckpt_path is None:
                # A job killed before its first checkpoint (its recipe.json, or only the temporary
                # file of that write, is there) starts again from step 0; its log is emptied below.
                saved = _saved_recipe(self.work_dir) if (self.work_dir / "recipe.json").exists() else (
                    recipe if self.work_dir.is_dir() and not _user_files(self.work_dir) else None)
                if saved is None:
                    raise WorkDirError(f"--resume: no checkpoint in {self.work_dir / 'checkpoints'} to continue from")
                logger.warning("--resume: %s has no checkpoint yet; starting the job again from step 0",
                               self.work_dir)
                source = self.work_dir / "recipe.json"
            else:
                checkpoint = load_checkpoint(ckpt_path)
                saved = recipe_of(checkpoint, ckpt_path)
                source = ckpt_path
            if saved.to_dict() | {"training": None} != recipe.to_dict() | {"training": None}:
                raise WorkDirError(
                    f"--resume: the recipe differs from the one in {source} outside the training section; "
                    "a resumed run keeps its modules (start a new job to change them)"
                )
            self.checkpoint_path = ckpt_path
        elif self.work_dir.exists() and _user_files(self.work_dir):
            raise WorkDirError(
                f"work directory {self.work_dir} already exists; pass --resume to continue it, "
                "or choose another --job_name (nothing was overwritten)"
            )
        self.recipe = recipe
        self.cfg = TrainingConfig.from_dict(recipe.training)
        self.schedule = StageSchedule(self.cfg)
        if self.cfg.batch_size % self.world or any(
                self.schedule.settings(i)["batch_size"] % self.world for i in range(len(self.schedule.stages))):
            raise RecipeError(f"every batch size must be divisible by the {self.world} ranks")

        torch.manual_seed(seed)  # the initial weights depend on the seed alone
        self.G: Generator = build_generator(recipe, registry).to(self.device)
        self.D: nn.Module = build_module(recipe, "discriminator", registry).to(self.device)
        if "loss" in recipe.modules:
            self.loss: Objective = build_module(recipe, "loss", registry).to(self.device)
        else:
            self.loss = Objective().to(self.device)
        labels = getattr(dataset, "labels", None)
        if labels is not None:
            self.G.pose_sampler.bind_dataset_poses(torch.as_tensor(labels, dtype=torch.float32).to(self.device))
        children = dict(self.G.named_children())
        unknown = [n for n in self.cfg.frozen_modules if n not in children]
        if unknown:  # checked before the (possibly long) preparation below
            raise RecipeError(f"training.frozen_modules: the generator has no module(s) {unknown}; "
                              f"modules: {', '.join(children)}")
        if checkpoint is None:  # a method's one-off preparation of fresh weights (StyleSDF's sphere fit)
            self.loss.initialize_generator(self.G, generator=torch.Generator().manual_seed(seed))
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        if self.world > 1:
            for module in (self.G, self.D, self.G_ema, self.loss):
                for t in list(module.parameters()) + list(module.buffers()):
                    dist.broadcast(t.data, src=0)

        r1_interval = getattr(self.loss, "r1_interval", 1) or 1
        d_ratio = r1_interval / (r1_interval + 1) if self.cfg.lazy_reg_adam and r1_interval > 1 else 1.0
        g_interval = getattr(self.loss, "g_reg_interval", 0) or 0
        g_ratio = g_interval / (g_interval + 1) if self.cfg.lazy_reg_adam and g_interval > 1 else 1.0
        self.d_ratio, self.g_ratio = d_ratio, g_ratio
        g_params = [p for name, p in self.G.named_parameters()
                    if name.split(".")[0] not in self.cfg.frozen_modules] + list(self.loss.parameters())
        if self.cfg.optimizer == "rmsprop":
            self.G_opt = torch.optim.RMSprop(g_params, lr=self.cfg.g_lr * g_ratio, alpha=0.99, eps=1e-8)
            self.D_opt = torch.optim.RMSprop(self.D.parameters(), lr=self.cfg.d_lr * d_ratio, alpha=0.99, eps=1e-8)
        else:
            self.G_opt = torch.optim.Adam(g_params, lr=self.cfg.g_lr * g_ratio,
                                          betas=tuple(b ** g_ratio for b in self.cfg.g_betas), eps=1e-8)
            self.D_opt = torch.optim.Adam(self.D.parameters(), lr=self.cfg.d_lr * d_ratio,
                                          betas=tuple(b ** d_ratio for b in self.cfg.d_betas), eps=1e-8)

        self.step = 0
        self.nimg = 0
        self.bad_steps = 0
        self.rng = torch.Generator(device="cpu").manual_seed(seed)
        self.seed = seed
        torch.manual_seed(seed + self.rank)
        if checkpoint is not None:
            self._restore(checkpoint)
        self._stage_index: int | None = None
        self._loader_iter: Iterator | None = None
        self._loader_batch = None
        self._writer = None
        self._tensorboard = tensorboard
        if self.is_main:
            self._prepare_work_dir(resume)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {
            "recipe": self.recipe.to_json(),
            "kimg": self.nimg / 1000,
            "nimg": self.nimg,
            "bad_steps": self.bad_steps,
            "G": self.G.state_dict(),
            "G_ema": self.G_ema.state_dict(),
            "D": self.D.state_dict(),
            "loss": self.loss.state_dict(),
            "G_opt": self.G_opt.state_dict(),
            "D_opt": self.D_opt.state_dict(),
            "rng": {"trainer": self.rng.get_state(), "torch": torch.get_rng_state()},
            "meta": {"torch": str(torch.__version__), "world_size": self.world, "seed": self.seed},
        }

    def _restore(self, state: dict[str, Any]) -> None:
        self.G.load_state_dict(state["G"])
        self.G_ema.load_state_dict(state["G_ema"])
        self.D.load_state_dict(state["D"])
        self.loss.load_state_dict(state["loss"])
        self.G_opt.load_state_dict(state["G_opt"])
        self.D_opt.load_state_dict(state["D_opt"])
        self.rng.set_state(state["rng"]["trainer"])
        ranks = state["rng"].get("ranks")
        if ranks is not None and len(ranks) == self.world:
            torch.set_rng_state(ranks[self.rank]["cpu"])
            if "cuda" in ranks[self.rank] and self.device.type == "cuda":
                torch.cuda.set_rng_state(ranks[self.rank]["cuda"], self.device)
        elif self.world == 1:
            torch.set_rng_state(state["rng"]["torch"])
        else:  # saved with another number of ranks: each rank's noise starts afresh from its seed
            logger.warning("resuming %d ranks from a checkpoint of %s; module noise is re-seeded",
                           self.world, len(ranks) if ranks else "unknown")
        self.step = int(state["step"])
        self.nimg = int(state["nimg"])
        self.bad_steps = int(state.get("bad_steps", 0))

    def _prepare_work_dir(self, resume: bool) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        # recipe.json first: a job killed at any later point has it, so --resume can take the job up.
        recipe_path = self.work_dir / "recipe.json"
        atomic_write_bytes(recipe_path, lambda f: f.write(self.recipe.to_json().encode()))
        (self.work_dir / "checkpoints").mkdir(exist_ok=True)
        (self.work_dir / "samples").mkdir(exist_ok=True)
        for stale in self.work_dir.glob(".*.tmp"):  # temporary files of a killed run's atomic writes
            stale.unlink(missing_ok=True)
        log_path = self.work_dir / "log.json"
        if resume and log_path.exists():
            # Keep only complete lines up to the checkpoint's step: a run killed after its last
            # checkpoint leaves later lines (and maybe half a line) that the resumed run rewrites.
            kept = []
            for line in log_path.read_text().splitlines(keepends=True):
                if not line.endswith("\n"):
                    break
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    break
                if entry.get("step", 0) <= self.step:
                    kept.append(line)
            atomic_write_bytes(log_path, lambda f: f.write("".join(kept).encode()))

    @property
    def writer(self):
        if self._writer is None and self.is_main and self._tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.work_dir / "events"), purge_step=self.step or None)
        return self._writer

    # ------------------------------------------------------------------ data
    def _batches(self, batch: int) -> Iterator:
        sampler = _BatchIndices(len(self.dataset), batch, self.seed, self.nimg, self.rank, self.world)
        # The loader gets its own generator: creating an iterator draws a worker seed from it, and
        # drawing from the global RNG instead would make a resumed run diverge from an uninterrupted one.
        loader = torch.utils.data.DataLoader(
            _CatchingDataset(self.dataset), batch_sampler=sampler, num_workers=self.workers, collate_fn=_collate,
            pin_memory=self.device.type == "cuda", persistent_workers=False,
            generator=torch.Generator().manual_seed(self.seed * 1_000_003 + self.nimg + self.rank),
        )
        return iter(loader)

    def _next_real(self, batch: int) -> tuple[Tensor, Tensor]:
        if self._loader_iter is None or self._loader_batch != batch:
            self._loader_iter = self._batches(batch)
            self._loader_batch = batch
        batch = next(self._loader_iter)
        if isinstance(batch, _ItemFailure):
            raise batch.error
        images, labels = batch
        return images.to(self.device, non_blocking=True), labels.to(self.device, non_blocking=True)

    # ------------------------------------------------------------------ one iteration
    def _apply_stage(self, index: int, settings: dict[str, Any]) -> None:
        for group in self.G_opt.param_groups:
            group["lr"] = settings["g_lr"] * self.g_ratio
        for group in self.D_opt.param_groups:
            group["lr"] = settings["d_lr"] * self.d_ratio
        for key, value in settings["generator"].items():
            for G in (self.G, self.G_ema):
                if not hasattr(G, key):
                    raise RecipeError(f"training.stages[{index}]: the generator has no option {key!r}")
                setattr(G, key, value)
        for key, value in settings["loss"].items():
            if not hasattr(self.loss, key):
                raise RecipeError(f"training.stages[{index}]: the loss has no option {key!r}")
            setattr(self.loss, key, value)
        if settings["resolution"] is not None:
            for G in (self.G, self.G_ema):
                G.render_resolution = settings["resolution"]
        self._stage_index = index

    def output_resolution(self) -> int:
        """The side of the generator's output image at the current render resolution."""
        up = self.G.upsampler
        fixed = getattr(up, "out_resolution", None)
        if fixed:
            return int(fixed)
        scale = getattr(up, "scale_factor", 1)
        return int(self.G.render_resolution * scale)

    def _sync_grads(self, parameters: list[nn.Parameter]) -> None:
        """Average the gradients over the ranks (one all-reduce of the flattened gradients)."""
        if self.world == 1:
            return
        params = [p for p in parameters if p.grad is not None]
        if not params:
            return
        flat = torch.cat([p.grad.flatten() for p in params])
        dist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for p in params:
            n = p.numel()
            p.grad.copy_(flat[offset:offset + n].view_as(p.grad))
            offset += n

    def _check_finite(self, terms: dict[str, Tensor], phase: str) -> bool:
        bad = [k for k, v in terms.items() if not torch.isfinite(v.detach()).all()]
        if not bad:
            return True
        if not self._step_was_bad:  # a step counts once, however many of its phases failed
            self.bad_steps += 1
            self._step_was_bad = True
        if self.bad_steps > self.cfg.max_bad_steps:
            raise TrainingError(
                f"non-finite {phase} loss at step {self.step} (kimg {self.nimg / 1000:.3f}): "
                f"{', '.join(f'{k}={terms[k].item()}' for k in bad)}; the last good checkpoint in "
                f"{self.work_dir / 'checkpoints'} is kept (raise training.max_bad_steps to skip such steps)"
            )
        logger.warning("skipping step %d: non-finite %s loss (%s)", self.step, phase, ", ".join(bad))
        return False

    def _make_generator_trainable(self) -> None:
        """Gradients on for the generator, except its ``training.frozen_modules``."""
        self.G.requires_grad_(True)
        for name in self.cfg.frozen_modules:
            getattr(self.G, name).requires_grad_(False)

    def _optimizer_step(self, opt: torch.optim.Optimizer, module: nn.Module, clip: float) -> None:
        # Every parameter the optimizer steps is averaged (the loss's own parameters ride with G's).
        self._sync_grads([p for group in opt.param_groups for p in group["params"]])
        if clip > 0:
            torch.nn.utils.clip_grad_norm_(module.parameters(), clip)
        opt.step()

    def train_step(self) -> dict[str, float]:
        """One discriminator step and one generator step; returns the logged scalars."""
        index = self.schedule.index(self.step, self.nimg / 1000)
        settings = self.schedule.settings(index)
        if index != self._stage_index:
            self._apply_stage(index, settings)
        batch = settings["batch_size"]
        per_rank = batch // self.world
        lo, hi = self.rank * per_rank, (self.rank + 1) * per_rank
        if settings["fade_steps"]:
            start = self.schedule.stages[index - 1].get("until_step", 0) if index else 0
            alpha = min(1.0, (self.step - start) / settings["fade_steps"])
        else:
            alpha = 1.0

        t0 = time.perf_counter()
        real, labels = self._next_real(batch)
        real = _resize(real, self.output_resolution())
        data_time = time.perf_counter() - t0

        def draw_inputs() -> LossInputs:
            z = torch.randn(batch, self.G.z_dim, generator=self.rng)[lo:hi].to(self.device)
            cams = self.G.pose_sampler(batch, device="cpu", generator=self.rng)[lo:hi].to(self.device)
            return LossInputs(real, labels, z, gen_cameras=cams, resolution=self.G.render_resolution,
                              alpha=alpha, step=self.step, kimg=self.nimg / 1000, generator=None)

        # Modules with step-dependent schedules (pi-GAN's annealed density noise) follow the step.
        for module in self.G.modules():
            if module is not self.G and hasattr(module, "set_training_step"):
                module.set_training_step(self.step)
        logs: dict[str, float] = {}
        self._step_was_bad = False
        terms: dict[str, dict[str, Tensor]] = {}

        def discriminator_phase() -> None:
            self.G.requires_grad_(False)
            self.D.requires_grad_(True)
            self.D_opt.zero_grad(set_to_none=True)
            d_terms = terms["D"] = self.loss.discriminator_loss(self.G, self.D, draw_inputs())
            ok = self._check_finite(d_terms, "discriminator")
            if ok:
                d_terms["loss"].backward()
                if self.loss.regularize_discriminator_now(self.step):
                    if getattr(self.loss, "d_reg_own_step", False):  # StyleGAN2-ADA's separate 'Dreg' phase
                        self._optimizer_step(self.D_opt, self.D, self.cfg.d_grad_clip)
                        self.D_opt.zero_grad(set_to_none=True)
                    reg = self.loss.discriminator_regularizer(self.D, draw_inputs())
                    if reg:
                        ok = self._check_finite(reg, "R1")
                        if ok:
                            reg["loss"].backward()
                            logs["r1"] = float(reg["r1"])
            if ok:
                self._optimizer_step(self.D_opt, self.D, self.cfg.d_grad_clip)

        def generator_phase() -> None:
            self.D.requires_grad_(False)
            self._make_generator_trainable()
            self.G_opt.zero_grad(set_to_none=True)
            g_inputs = draw_inputs()
            g_terms = terms["G"] = self.loss.generator_loss(self.G, self.D, g_inputs)
            if self._check_finite(g_terms, "generator"):
                g_terms["loss"].backward()
                g_reg_now = self._g_reg_now()
                if g_reg_now and getattr(self.loss, "g_reg_own_step", False):  # a separate 'Greg' phase
                    self._optimizer_step(self.G_opt, self.G, self.cfg.g_grad_clip)
                    self.G_opt.zero_grad(set_to_none=True)
                g_reg = self.loss.generator_regularizer(self.G, g_inputs) if g_reg_now else {}
                if g_reg and self._check_finite(g_reg, "generator regularizer"):
                    g_reg["loss"].backward()
                    logs.update({k: float(v) for k, v in g_reg.items() if k != "loss"})
                self._optimizer_step(self.G_opt, self.G, self.cfg.g_grad_clip)

        # The method's order: StyleGAN2-ADA (EG3D) and GIRAFFE update G first; pi-GAN and StyleSDF D first.
        first_g = getattr(self.loss, "generator_step_first", False)
        for phase in (generator_phase, discriminator_phase) if first_g else (discriminator_phase, generator_phase):
            phase()
        d_terms, g_terms = terms["D"], terms["G"]
        # Both trainable between steps (the frozen modules stay frozen).
        self.D.requires_grad_(True)
        self._make_generator_trainable()

        self._sync_buffers()
        self._update_ema(batch)
        self.step += 1
        self.nimg += batch
        for prefix, terms in (("D", d_terms), ("G", g_terms)):
            for k, v in terms.items():
                logs[f"{prefix}/{k}" if k == "loss" else k] = float(v.detach())
        logs.update(alpha=alpha, batch_size=batch, resolution=self.G.render_resolution, data_time=data_time,
                    g_lr=self.G_opt.param_groups[0]["lr"], d_lr=self.D_opt.param_groups[0]["lr"])
        if self.world > 1:
            keys = sorted(k for k in logs if k not in ("alpha", "batch_size", "resolution"))
            vals = torch.tensor([logs[k] for k in keys], dtype=torch.float64, device=self.device)  # NCCL: on GPU
            dist.all_reduce(vals)
            logs.update({k: float(v) / self.world for k, v in zip(keys, vals)})
        return logs

    @torch.no_grad()
    def _sync_buffers(self) -> None:
        """Average the floating-point buffers of G and D over the ranks. Running statistics such as
        the mapper's ``w_avg`` (a lerp towards the batch mean, linear in the batch) then equal those
        of one process seeing the global batch; constant buffers are unchanged."""
        if self.world == 1:
            return
        buffers = [b for m in (self.G, self.D) for b in m.buffers() if b.is_floating_point()]
        if not buffers:
            return
        flat = torch.cat([b.flatten() for b in buffers])
        dist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for b in buffers:
            b.copy_(flat[offset:offset + b.numel()].view_as(b))
            offset += b.numel()

    def _g_reg_now(self) -> bool:
        interval = getattr(self.loss, "g_reg_interval", 0) or 0
        return interval > 0 and self.step % interval == 0

    @torch.no_grad()
    def _update_ema(self, batch: int) -> None:
        if self.cfg.ema_beta is not None:
            beta = self.cfg.ema_beta
            if self.cfg.ema_warmup:
                t = self.step + 1
                beta = min(beta, (1 + t) / (10 + t))
        else:
            ema_nimg = self.cfg.ema_kimg * 1000
            if self.cfg.ema_rampup is not None:
                ema_nimg = min(ema_nimg, self.nimg * self.cfg.ema_rampup)
            beta = 0.5 ** (batch / max(ema_nimg, 1e-8))
        for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters()):
            p_ema.copy_(p.detach().lerp(p_ema, beta))
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
            b_ema.copy_(b)

    # ------------------------------------------------------------------ the loop
    def _log(self, entry: dict[str, Any]) -> None:
        line = json.dumps(entry, sort_keys=True) + "\n"
        with open(self.work_dir / "log.json", "a") as f:
            f.write(line)
            f.flush()
        if self.writer is not None:
            for k, v in entry.items():
                if isinstance(v, (int, float)) and k != "step":
                    self.writer.add_scalar(k, v, entry["step"])

    def save_samples(self, name: str) -> Path:
        """A grid of the EMA generator's images at fixed latents and poses."""
        g = torch.Generator().manual_seed(self.seed + 12345)
        n = 16
        z = torch.randn(n, self.G.z_dim, generator=g).to(self.device)
        cams = self.G_ema.pose_sampler(n, device="cpu", generator=g).to(self.device)
        with torch.no_grad():
            out = self.G_ema(z, cams, generator=g)
        return save_image_grid(out.image, self.work_dir / "samples" / f"{name}.png", nrow=4)

    def _rank_rng_states(self) -> list[dict[str, Tensor]]:
        """Every rank's global RNG states (CPU, and CUDA on a GPU), gathered to all ranks; each
        rank draws its own module noise (stratified jitter, density noise) from them."""
        mine = {"cpu": torch.get_rng_state()}
        if self.device.type == "cuda":
            mine["cuda"] = torch.cuda.get_rng_state(self.device)
        if self.world == 1:
            return [mine]
        gathered: list[Any] = [None] * self.world
        dist.all_gather_object(gathered, mine)  # every rank calls save(), so every rank joins
        return gathered

    def save(self) -> Path | None:
        """Write a checkpoint (rank 0; the other ranks only hand over their RNG states)."""
        rank_rng = self._rank_rng_states()
        if not self.is_main:
            return None
        state = self.state_dict()
        state["rng"]["ranks"] = rank_rng
        return save_checkpoint(self.work_dir / "checkpoints", self.step, state, keep=self.cfg.keep_checkpoints)

    def train(self, kimg: float | None = None) -> dict[str, float]:
        """Train until ``kimg`` thousand real images have been shown (default the recipe's
        ``total_kimg``); returns the last step's scalars."""
        total_nimg = int((kimg if kimg is not None else self.cfg.total_kimg) * 1000)
        if total_nimg <= 0:
            raise ValueError(f"kimg must be positive, got {kimg}")
        snap_nimg = int(self.cfg.snapshot_kimg * 1000)
        img_nimg = int(self.cfg.image_snapshot_kimg * 1000)
        start_time = time.perf_counter()
        logs: dict[str, float] = {}
        acc: dict[str, list[float]] = {}
        progress = None
        if self.progress:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            progress = Progress(
                TextColumn("[bold]train"), BarColumn(), TextColumn("{task.completed:.2f}/{task.total:.2f} kimg"),
                TextColumn("{task.fields[speed]}"), TextColumn("{task.fields[losses]}"),
                TimeElapsedColumn(), TimeRemainingColumn(), transient=False,
            )
            task = progress.add_task("train", total=total_nimg / 1000, completed=self.nimg / 1000, speed="", losses="")
            progress.start()
        if self.is_main and self.step == 0:
            self.save_samples(f"fakes-{self.step:09d}")
        try:
            while self.nimg < total_nimg:
                t0 = time.perf_counter()
                logs = self.train_step()
                iter_time = time.perf_counter() - t0
                for k, v in logs.items():
                    acc.setdefault(k, []).append(v)
                prev = self.nimg - logs["batch_size"]
                if self.is_main and (self.step % self.cfg.log_every == 0 or self.nimg >= total_nimg):
                    entry = {k: sum(v) / len(v) for k, v in acc.items()}
                    entry.update(step=self.step, kimg=self.nimg / 1000, iter_time=iter_time,
                                 run_time=time.perf_counter() - start_time)
                    self._log(entry)
                    acc.clear()
                if self.is_main and img_nimg and (self.nimg // img_nimg > prev // img_nimg or self.nimg >= total_nimg):
                    self.save_samples(f"fakes-{self.step:09d}")
                if snap_nimg and (self.nimg // snap_nimg > prev // snap_nimg or self.nimg >= total_nimg):
                    self.save()
                if progress is not None:
                    losses = " ".join(f"{k}={logs[k]:.3f}" for k in ("G/loss", "D/loss") if k in logs)
                    progress.update(task, completed=self.nimg / 1000, speed=f"{1 / max(iter_time, 1e-9):.2f} it/s",
                                    losses=losses)
        finally:
            if progress is not None:
                progress.stop()
            if self._writer is not None:
                self._writer.flush()
                self._writer.close()
                self._writer = None
        return logs
