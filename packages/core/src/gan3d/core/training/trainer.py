"""The trainer: one loop for every method, driven by the recipe.

Each iteration runs a discriminator step (logistic loss, lazy R1), then a generator step, then an
EMA update of the generator copy used for samples and evaluation (the objective may swap the two
steps). Schedules (resolution, batch size, learning rates, progressive fade-in) come from
``recipe.training['stages']`` (:mod:`.config`); the job directory is checked and set up by
:mod:`.workdir`, real images come from :mod:`.data`, the EMA decay from :mod:`.ema`.

Runs on one process or under ``torchrun`` (gloo on CPUs, NCCL on GPUs): each rank takes its slice
of the global batch, gradients are averaged across ranks (:mod:`.distributed`), rank 0 writes the
logs and checkpoints.
"""

from __future__ import annotations

import copy
import inspect
import json
import logging
import math
import signal
import threading
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from ..checkpoint import CheckpointError, latest_checkpoint, load_checkpoint, save_checkpoint, state_dict_mismatch
from ..data.base import GanDataset
from ..generator import Generator, build_generator, build_module
from ..images import save_image_grid
from ..interfaces import Scheduled
from ..objective import LossInputs, Objective
from ..recipe import Recipe, RecipeError
from ..validation import MAX_SEED
from . import distributed
from .config import StageSchedule, TrainingConfig
from .data import ItemFailure, make_loader
from .ema import ema_beta, update_ema
from .workdir import JobLock, check_work_dir, new_job_id, prepare_work_dir, resume_point

__all__ = ["Trainer", "TrainingError", "TrainingInterrupted", "MAX_SEED"]

logger = logging.getLogger(__name__)


class TrainingError(RuntimeError):
    """Training cannot go on (a non-finite loss, say); the last good checkpoint is kept."""


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
        self.rank, self.world = distributed.rank_and_world()
        self.is_main = self.rank == 0
        self.device = torch.device(device)
        self.workers = workers
        # Recorded in job.json, so that a resumed run reads the same data.
        source = dataset.source if isinstance(dataset, GanDataset) else None
        self.data_source = str(Path(source).resolve()) if source else None
        self.progress = progress and self.is_main
        self.dataset = dataset
        if len(dataset) == 0:
            raise ValueError("the data set is empty")
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
            raise ValueError(f"seed must be an integer in [0, {MAX_SEED}], got {seed!r}")

        # Everything that can be checked without writing is checked first: a mistake costs no job directory.
        # (A new job is checked by rank 0 alone: it may have made the directory before another rank looks.)
        if self.is_main or resume:
            check_work_dir(self.work_dir, resume)
        self.recipe = recipe
        self.cfg = TrainingConfig.from_dict(recipe.training)
        self.schedule = StageSchedule(self.cfg)
        batches = [self.schedule.settings(i)["batch_size"] for i in range(len(self.schedule.stages))]
        if self.cfg.batch_size % self.world or any(b % self.world for b in batches):
            raise RecipeError(f"every batch size must be divisible by the {self.world} ranks")
        round_size = self.cfg.batch_gpu
        if round_size is not None and any((b // self.world) % round_size for b in batches
                                          if b // self.world > round_size):
            raise RecipeError(f"training.batch_gpu {round_size} must divide every stage's batch per rank that is "
                              f"larger ({sorted({b // self.world for b in batches})} on {self.world} rank(s))")

        torch.manual_seed(seed)  # the initial weights depend on the seed alone
        self.G: Generator = build_generator(recipe, registry).to(self.device)
        self.D: nn.Module = build_module(recipe, "discriminator", registry).to(self.device)
        if "loss" in recipe.modules:
            self.loss = build_module(recipe, "loss", registry).to(self.device)
            if not isinstance(self.loss, Objective):
                raise RecipeError(f"loss {recipe.modules['loss'].name!r} must be a gan3d.core.objective.Objective, "
                                  f"got {type(self.loss).__name__}")
        else:
            self.loss = Objective().to(self.device)
        labels = dataset.labels if isinstance(dataset, GanDataset) else None
        if labels is not None:
            self.G.pose_sampler.bind_dataset_poses(torch.as_tensor(labels, dtype=torch.float32).to(self.device))
        elif self.G.pose_sampler.needs_dataset_poses:
            raise RecipeError(f"pose sampler {recipe.modules['pose_sampler'].name!r} draws the data set's camera "
                              "labels, but the data set has none (give a set with labels, e.g. EG3D's dataset.json)")
        slots = self.G.slot_modules()
        unknown = [n for n in self.cfg.frozen_slots if n not in slots]
        if unknown:  # checked before the (possibly long) preparation below
            raise RecipeError(f"training.frozen_slots: the generator has no slot(s) {unknown}; "
                              f"slots: {', '.join(slots)}")
        unknown = [n for n in self.cfg.lr_multipliers if n not in slots]
        if unknown:
            raise RecipeError(f"training.lr_multipliers: the generator has no slot(s) {unknown}; "
                              f"slots: {', '.join(slots)}")
        self._check_stage_options()
        self._check_data_resolution()

        # The job directory: locked by rank 0 (which writes it; released by close(), when the trainer
        # is collected, a failed construction included, or when the process ends), then what it
        # continues from.
        self._lock = JobLock(self.work_dir) if self.is_main else None
        if self._lock is not None:
            self._lock.acquire()
            self._release_lock = weakref.finalize(self, self._lock.release, remove_new_dir=True)
        checkpoint, self.checkpoint_path, job_id = resume_point(self.work_dir, recipe, resume,
                                                                check=self.is_main or resume)
        self.job_id = job_id or new_job_id()
        if checkpoint is None:
            self._initialize_generator(seed)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        if self.world > 1:
            for module in (self.G, self.D, self.G_ema, self.loss):
                for t in list(module.parameters()) + list(module.buffers()):
                    dist.broadcast(t.data, src=0)

        r1_interval = self.loss.r1_interval or 1
        d_ratio = r1_interval / (r1_interval + 1) if self.cfg.lazy_reg_adam and r1_interval > 1 else 1.0
        g_interval = self.loss.g_reg_interval or 0
        g_ratio = g_interval / (g_interval + 1) if self.cfg.lazy_reg_adam and g_interval > 1 else 1.0
        self.d_ratio, self.g_ratio = d_ratio, g_ratio
        g_params = self._generator_param_groups(slots)
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
        self._saved_step = self.step if checkpoint is not None else None
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
            "meta": {"torch": str(torch.__version__), "world_size": self.world, "seed": self.seed, "job": self.job_id},
        }

    def _restore(self, state: dict[str, Any]) -> None:
        self._load_weights("G", self.G, state)
        self._load_weights("G_ema", self.G_ema, state)
        if state.get("meta", {}).get("imported"):
            # An official checkpoint brought in by tools/run.py import: weights only. Optimizers,
            # loss state and random draws start afresh, from step 0; a discriminator the file did
            # not have starts from its initialisation.
            if "D" in state:
                self._load_weights("D", self.D, state)
            else:
                logger.warning("the imported checkpoint has no discriminator; fine-tuning starts with a fresh one")
            logger.info("continuing from imported official weights (%s)", state["meta"].get("source", "?"))
            return
        self._load_weights("D", self.D, state)
        self._load_weights("loss", self.loss, state)
        for key, opt in (("G_opt", self.G_opt), ("D_opt", self.D_opt)):
            try:
                opt.load_state_dict(state[key])
            except (ValueError, KeyError, TypeError, RuntimeError) as exc:
                raise CheckpointError(f"{self.checkpoint_path}: its {key} optimizer state does not fit: "
                                      f"{' '.join(str(exc).split())[:300]}") from None
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
        saved_seed = state.get("meta", {}).get("seed") if isinstance(state.get("meta"), dict) else None
        if isinstance(saved_seed, int) and saved_seed != self.seed:  # the data order and sample grids follow it
            logger.warning("resuming with the job's seed %d (not %d)", saved_seed, self.seed)
            self.seed = saved_seed
        self.step = int(state["step"])
        self.nimg = int(state["nimg"])
        self.bad_steps = int(state.get("bad_steps", 0))

    def _load_weights(self, key: str, module: nn.Module, state: dict[str, Any]) -> None:
        mismatch = state_dict_mismatch(module, state[key])
        if mismatch:
            raise CheckpointError(f"{self.checkpoint_path}: its {key} weights do not fit the recipe's: {mismatch}")
        module.load_state_dict(state[key])

    def _prepare_work_dir(self, resume: bool) -> None:
        prepare_work_dir(self.work_dir, self.recipe, resume=resume, step=self.step, job_id=self.job_id,
                         seed=self.seed, data=self.data_source)

    def close(self) -> None:
        """Stop the data loader's workers, flush the TensorBoard writer and give the job directory's lock
        back (also done when the trainer is garbage collected or the process ends)."""
        self._stop_loader()
        if self._writer is not None:
            self._writer.flush()
            self._writer.close()
            self._writer = None
        if self._lock is not None:
            self._release_lock()

    def _check_stage_options(self) -> None:
        """Every ``generator.<option>`` and ``loss.<option>`` a stage sets is one :meth:`_apply_stage`
        accepts, with a value of the option's kind, so a mistake fails before the job directory is made."""
        options = inspect.signature(type(self.loss)).parameters
        for index in range(len(self.schedule.stages)):
            settings = self.schedule.settings(index)
            for key, value in settings["generator"].items():
                if key not in Generator.STAGE_OPTIONS:
                    raise RecipeError(f"training.stages[{index}]: a stage cannot set generator option {key!r}; it "
                                      f"can set {', '.join(Generator.STAGE_OPTIONS)}")
                _check_stage_value(index, f"generator.{key}", getattr(self.G, key), value)
            for key, value in settings["loss"].items():
                if key not in options:
                    raise RecipeError(f"training.stages[{index}]: the loss has no option {key!r}; its options: "
                                      f"{', '.join(options)}")
                default = options[key].default
                _check_stage_value(index, f"loss.{key}", None if default is inspect.Parameter.empty else default,
                                   value)

    def _check_data_resolution(self) -> None:
        """Real images smaller than the rendered image are refused (they would be upsampled, so the
        discriminator would compare blurred reals with sharp fakes); smaller than the final output
        image (after an upsampler) is allowed with a warning."""
        image = self.dataset[0][0]
        side = int(min(image.shape[-2:]))
        renders = [r for r in (self.schedule.settings(i)["resolution"] for i in range(len(self.schedule.stages)))
                   if r is not None] + [self.G.render_resolution]
        render = max(renders)
        if side < render:
            raise RecipeError(
                f"the data set's images are {side}x{side} but the generator renders {render}x{render}; real images "
                f"would be upsampled. Give a data set of at least {render} px, or render smaller (--resolution)"
            )
        out = max(self.output_resolution(r) for r in renders)
        if side < out:
            logger.warning("the data set's images are %dx%d but the generator's output is %dx%d: real images are "
                           "upsampled for the discriminator; a data set of %d px matches the method", side, side,
                           out, out, out)

    @property
    def writer(self):
        if self._writer is None and self.is_main and self._tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.work_dir / "events"), purge_step=self.step or None)
        return self._writer

    # ------------------------------------------------------------------ data
    def _batches(self, batch: int) -> Iterator:
        return make_loader(self.dataset, batch, seed=self.seed, nimg=self.nimg, rank=self.rank, world=self.world,
                           workers=self.workers, pin_memory=self.device.type == "cuda")

    def _stop_loader(self) -> None:
        """Drop the loader's iterator: PyTorch then shuts its worker processes down (they must not outlive
        a finished or failed run: a process that exits joins its children first)."""
        self._loader_iter = None
        self._loader_batch = None

    def _next_real(self, batch: int) -> tuple[Tensor, Tensor]:
        if self._loader_iter is None or self._loader_batch != batch:
            self._loader_iter = self._batches(batch)
            self._loader_batch = batch
        batch = next(self._loader_iter)
        if isinstance(batch, ItemFailure):
            raise batch.error
        images, labels = batch
        return images.to(self.device, non_blocking=True), labels.to(self.device, non_blocking=True)

    # ------------------------------------------------------------------ one iteration
    def _initialize_generator(self, seed: int) -> None:
        """Fresh weights: load ``training.init_from``'s slots, or run the method's own preparation
        (StyleSDF's sphere fit)."""
        init = self.cfg.init_from
        if init is not None and init.get("checkpoint"):
            path = init["checkpoint"]
            state = load_checkpoint(path)
            key = init.get("weights", "G_ema")
            if key not in state:
                raise CheckpointError(f"{path}: training.init_from wants its {key!r} weights, which it does not hold")
            try:
                loaded = self.G.load_slots(state[key], init["slots"], source=str(path))
            except ValueError as exc:
                raise CheckpointError(str(exc)) from None
            logger.info("training.init_from: loaded %d tensors of %s from %s", loaded, ", ".join(init["slots"]), path)
            return
        if init is not None:
            logger.warning("training.init_from has no checkpoint: slots %s start from the method's own initialisation; "
                           "give --set training.init_from.checkpoint=<checkpoint of the earlier stage>", init["slots"])
        self.loss.initialize_generator(self.G, generator=torch.Generator().manual_seed(seed))

    def _generator_param_groups(self, slots: dict[str, nn.Module]) -> list[dict[str, Any]]:
        """The generator optimizer's parameter groups: every trained parameter of G (and of the loss) at the
        generator learning rate, except the slots of ``training.lr_multipliers``, each in a group of its own
        whose ``lr_multiplier`` scales that rate; ``training.frozen_slots`` are left out."""
        frozen = {id(p) for name in self.cfg.frozen_slots for p in slots[name].parameters()}
        scaled = {id(p): name for name in self.cfg.lr_multipliers for p in slots[name].parameters()}
        base = [p for p in self.G.parameters() if id(p) not in frozen and id(p) not in scaled]
        groups: list[dict[str, Any]] = [{"params": base + list(self.loss.parameters()), "lr_multiplier": 1.0}]
        for name, factor in self.cfg.lr_multipliers.items():
            params = [p for p in slots[name].parameters() if id(p) not in frozen and scaled[id(p)] == name]
            if params:
                groups.append({"params": params, "lr_multiplier": float(factor), "slot": name,
                               "lr": self.cfg.g_lr * factor * self.g_ratio})
        return groups

    def _apply_stage(self, index: int, settings: dict[str, Any]) -> None:
        for group in self.G_opt.param_groups:
            group["lr"] = settings["g_lr"] * self.g_ratio * group.get("lr_multiplier", 1.0)
        for group in self.D_opt.param_groups:
            group["lr"] = settings["d_lr"] * self.d_ratio
        for key, value in settings["generator"].items():
            if key not in Generator.STAGE_OPTIONS:
                raise RecipeError(f"training.stages[{index}]: a stage cannot set generator option {key!r}; it can "
                                  f"set {', '.join(Generator.STAGE_OPTIONS)}")
            for G in (self.G, self.G_ema):
                setattr(G, key, value)
        options = inspect.signature(type(self.loss)).parameters
        for key, value in settings["loss"].items():
            if key not in options:
                raise RecipeError(f"training.stages[{index}]: the loss has no option {key!r}; its options: "
                                  f"{', '.join(options)}")
            setattr(self.loss, key, value)
        if settings["resolution"] is not None:
            for G in (self.G, self.G_ema):
                G.render_resolution = settings["resolution"]
        self._stage_index = index

    def output_resolution(self, render_resolution: int | None = None) -> int:
        """The side of the generator's output image at ``render_resolution`` (default: the current one)."""
        return self.G.output_resolution(render_resolution)

    def _sync_grads(self, parameters: list[nn.Parameter]) -> None:
        """Average the gradients over the ranks (one all-reduce of the flattened gradients)."""
        distributed.average_([p.grad for p in parameters if p.grad is not None], self.world)

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
        """Gradients on for the generator, except its ``training.frozen_slots``."""
        self.G.requires_grad_(True)
        slots = self.G.slot_modules()
        for name in self.cfg.frozen_slots:
            slots[name].requires_grad_(False)

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
        real, labels = self._next_real(batch)  # full resolution: the objective resizes or cuts patches
        data_time = time.perf_counter() - t0
        # Modules with schedules (pi-GAN's annealed density noise, patch scales, fade-ins) follow the progress,
        # before the output size is read: a progressive upsampler's side follows its fade-in (StyleNeRF).
        self._set_training_step()
        if self.loss.reset_optimizers_now(self.G, self.D, self.step, self.nimg / 1000):
            # A progressive schedule's phase change (VolumeGAN): both optimizers start afresh.
            for opt in (self.G_opt, self.D_opt):
                opt.state.clear()
            logger.info("optimizer states cleared at step %d (kimg %.3f), as the objective asks", self.step,
                        self.nimg / 1000)
        image_resolution = self.output_resolution()

        def draw_inputs() -> list[LossInputs]:
            """This rank's share of a fresh draw, split into the rounds of ``training.batch_gpu``."""
            z = torch.randn(batch, self.G.z_dim, generator=self.rng)[lo:hi].to(self.device)
            cams = self.G.pose_sampler(batch, device="cpu", generator=self.rng)[lo:hi].to(self.device)
            size = min(self.cfg.batch_gpu or per_rank, per_rank)
            return [LossInputs(real[i:i + size], labels[i:i + size], z[i:i + size], gen_cameras=cams[i:i + size],
                               resolution=self.G.render_resolution, image_resolution=image_resolution, alpha=alpha,
                               step=self.step, kimg=self.nimg / 1000, generator=None)
                    for i in range(0, per_rank, size)]

        logs: dict[str, float] = {}
        self._step_was_bad = False
        terms: dict[str, dict[str, Tensor]] = {}

        def run_rounds(compute, rounds: list[LossInputs], phase: str, key: str | None = None
                       ) -> tuple[dict[str, Tensor], bool]:
            """``compute(inputs)`` on each round, each round's loss backpropagated as it is (the rounds'
            gradients add up). Returns the terms averaged over the rounds ({} when ``compute`` has nothing to
            add) and True, or the first non-finite round's terms and False (the rounds after it are not run)."""
            total: dict[str, Tensor] = {}
            for inputs in rounds:
                out = compute(inputs)
                if key is not None:
                    terms[key] = out
                if not out:
                    return {}, True
                if not self._check_finite(out, phase):
                    return out, False
                out["loss"].backward()
                for k, v in out.items():
                    total[k] = total.get(k, 0) + v.detach().float()
            total = {k: v / len(rounds) for k, v in total.items()}
            if key is not None:
                terms[key] = total
            return total, True

        def discriminator_phase() -> None:
            self.G.requires_grad_(False)
            self.D.requires_grad_(True)
            self.D_opt.zero_grad(set_to_none=True)
            _, ok = run_rounds(lambda x: self.loss.discriminator_loss(self.G, self.D, x), draw_inputs(),
                               "discriminator", "D")
            if ok and self.loss.regularize_discriminator_now(self.step):
                if self.loss.d_reg_own_step:  # StyleGAN2-ADA's separate 'Dreg' phase
                    self._optimizer_step(self.D_opt, self.D, self.cfg.d_grad_clip)
                    self.D_opt.zero_grad(set_to_none=True)
                reg, ok = run_rounds(lambda x: self.loss.discriminator_regularizer(self.D, x), draw_inputs(), "R1")
                if ok and reg:
                    logs["r1"] = float(reg["r1"])
            if ok:
                self._optimizer_step(self.D_opt, self.D, self.cfg.d_grad_clip)

        def generator_phase() -> None:
            self.D.requires_grad_(False)
            self._make_generator_trainable()
            self.G_opt.zero_grad(set_to_none=True)
            g_inputs = draw_inputs()
            _, ok = run_rounds(lambda x: self.loss.generator_loss(self.G, self.D, x), g_inputs, "generator", "G")
            if not ok:
                return
            g_reg_now = self._g_reg_now()
            if g_reg_now and self.loss.g_reg_own_step:  # a separate 'Greg' phase
                self._optimizer_step(self.G_opt, self.G, self.cfg.g_grad_clip)
                self.G_opt.zero_grad(set_to_none=True)
            if g_reg_now:  # a non-finite round ends the regularizer's rounds; the gradients so far are stepped
                g_reg, ok = run_rounds(lambda x: self.loss.generator_regularizer(self.G, x), g_inputs,
                                       "generator regularizer")
                if ok:
                    logs.update({k: float(v) for k, v in g_reg.items() if k != "loss"})
            self._optimizer_step(self.G_opt, self.G, self.cfg.g_grad_clip)

        # The method's order: StyleGAN2-ADA (EG3D) and GIRAFFE update G first; pi-GAN and StyleSDF D first.
        first_g = self.loss.generator_step_first
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

    def _sync_buffers(self) -> None:
        """Average the floating-point buffers of G and D over the ranks. Running statistics such as
        the mapper's ``w_avg`` (a lerp towards the batch mean, linear in the batch) then equal those
        of one process seeing the global batch; constant buffers are unchanged."""
        distributed.average_([b for m in (self.G, self.D) for b in m.buffers() if b.is_floating_point()], self.world)

    def _g_reg_now(self) -> bool:
        interval = self.loss.g_reg_interval or 0
        return interval > 0 and self.step % interval == 0

    def _set_training_step(self) -> None:
        kimg = self.nimg / 1000
        for module in (self.G, self.G_ema, self.D, self.loss):
            for m in module.modules():
                if isinstance(m, Scheduled):
                    m.set_training_step(self.step, kimg)

    def _update_ema(self, batch: int) -> None:
        update_ema(self.G_ema, self.G, ema_beta(self.cfg, step=self.step, nimg=self.nimg, batch=batch))

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

    def save(self) -> Path | None:
        """Write a checkpoint (rank 0; the other ranks only hand over their RNG states)."""
        rank_rng = distributed.gather_rng_states(self.device, self.world)  # every rank joins
        self._saved_step = self.step  # on every rank: train() decides on the final save with it
        if not self.is_main:
            return None
        state = self.state_dict()
        state["rng"]["ranks"] = rank_rng
        return save_checkpoint(self.work_dir / "checkpoints", self.step, state, keep=self.cfg.keep_checkpoints)

    def train(self, kimg: float | None = None) -> dict[str, float]:
        """Train until ``kimg`` thousand real images have been shown (default the recipe's
        ``total_kimg``); returns the last step's scalars. The last step is always checkpointed.

        In the main thread of a single process, Ctrl-C (SIGINT) or SIGTERM (a cluster's preemption)
        finishes the current step, checkpoints it and raises :class:`TrainingInterrupted`; a second
        one stops at once (the newest complete checkpoint stays intact: checkpoints are written to a
        temporary file and renamed). Under ``torchrun`` an interrupt stops at once.
        """
        if kimg is not None and (isinstance(kimg, bool) or not isinstance(kimg, (int, float))
                                 or not math.isfinite(kimg) or kimg <= 0):
            raise ValueError(f"kimg must be a positive finite number, got {kimg!r}")
        total_nimg = int((kimg if kimg is not None else self.cfg.total_kimg) * 1000)
        if total_nimg <= 0:
            raise ValueError(f"kimg must be at least 0.001 (one image), got {kimg}")
        snap_nimg = max(1, int(self.cfg.snapshot_kimg * 1000))
        img_nimg = max(1, int(self.cfg.image_snapshot_kimg * 1000))
        start_time = time.perf_counter()
        logs: dict[str, float] = {}
        acc: dict[str, list[float]] = {}
        progress = None
        stop = _StopRequest(self)
        try:
            with stop:  # first: an interrupt from here on finishes the step and saves it
                if self.progress:
                    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

                    progress = Progress(
                        TextColumn("[bold]train"), BarColumn(),
                        TextColumn("{task.completed:.2f}/{task.total:.2f} kimg"),
                        TextColumn("{task.fields[speed]}"), TextColumn("{task.fields[losses]}"),
                        TimeElapsedColumn(), TimeRemainingColumn(), transient=False,
                    )
                    task = progress.add_task("train", total=total_nimg / 1000, completed=self.nimg / 1000,
                                             speed="", losses="")
                    progress.start()
                if self.is_main and self.step == 0:
                    self.save_samples(f"fakes-{self.step:09d}")
                while self.nimg < total_nimg and not stop.requested:
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
                    if self.is_main and (self.nimg // img_nimg > prev // img_nimg or self.nimg >= total_nimg):
                        self.save_samples(f"fakes-{self.step:09d}")
                    if self.nimg // snap_nimg > prev // snap_nimg or self.nimg >= total_nimg:
                        self.save()
                    if progress is not None:
                        losses = " ".join(f"{k}={logs[k]:.3f}" for k in ("G/loss", "D/loss") if k in logs)
                        progress.update(task, completed=self.nimg / 1000,
                                        speed=f"{1 / max(iter_time, 1e-9):.2f} it/s", losses=losses)
                if self._saved_step != self.step:  # the last step is always saved (an interrupt's too)
                    self.save()
                if stop.requested:
                    raise TrainingInterrupted(self._interrupt_message(stop.name, during=False), signum=stop.signum)
        except KeyboardInterrupt as exc:
            if isinstance(exc, TrainingInterrupted):
                raise
            raise TrainingInterrupted(self._interrupt_message(stop.name or "interrupted (Ctrl-C)", during=True),
                                      signum=stop.signum) from None
        finally:
            if progress is not None:
                progress.stop()
            self._stop_loader()
            if self._writer is not None:
                self._writer.flush()
                self._writer.close()
                self._writer = None
        return logs

    def _interrupt_message(self, what: str, *, during: bool) -> str:
        newest = latest_checkpoint(self.work_dir / "checkpoints")
        if during:
            head = f"{what}: stopped during step {self.step}"
            kept = (f"the newest complete checkpoint is {newest.name}" if newest is not None
                    else "no checkpoint was written yet (--resume starts the job again from step 0)")
        else:
            head = f"{what}: stopped after step {self.step}"
            kept = f"checkpoint {newest.name} holds it" if newest is not None else "nothing was saved"
        return f"{head}; {kept}; continue with --resume ({self.work_dir})"


def _check_stage_value(index: int, key: str, current: Any, value: Any) -> None:
    if not _same_kind(current, value):
        raise RecipeError(f"training.stages[{index}].{key} must be a {type(current).__name__} like "
                          f"{current!r}, got {value!r}")


def _same_kind(current: Any, value: Any) -> bool:
    """Whether a stage may set an attribute holding ``current`` to ``value``: numbers stay finite
    numbers (an int may replace a float), bools stay bools, other values keep their type."""
    if current is None:
        return True
    if isinstance(current, bool) or isinstance(value, bool):
        return isinstance(current, bool) and isinstance(value, bool)
    if isinstance(current, (int, float)):
        return isinstance(value, int if isinstance(current, int) else (int, float)) and math.isfinite(value)
    return isinstance(value, type(current))


class TrainingInterrupted(KeyboardInterrupt):
    """Training was stopped by Ctrl-C or SIGTERM; the message says what was saved and how to go on."""

    def __init__(self, message: str, *, signum: int | None = None) -> None:
        super().__init__(message)
        self.signum = signum if signum is not None else signal.SIGINT

    def __str__(self) -> str:
        return str(self.args[0])


class _StopRequest:
    """While active (``with``), the first SIGINT or SIGTERM asks the training loop to stop after
    the current step; a second one interrupts at once. Only in the main thread of a single process:
    under torchrun every rank must stop at the same step, so an interrupt stops at once there."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, trainer: Trainer) -> None:
        self.trainer = trainer  # its world size decides whether signals are handled
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str | None:
        return {signal.SIGINT: "interrupted (Ctrl-C)", signal.SIGTERM: "terminated (SIGTERM)"}.get(self.signum)

    def _handle(self, signum: int, frame) -> None:
        if self.signum is not None:  # the second one: stop now
            self._restore()
            if signum == signal.SIGTERM:
                signal.raise_signal(signal.SIGTERM)
            raise KeyboardInterrupt
        self.signum = signum
        logger.warning("%s: finishing the current step, then saving a checkpoint (press Ctrl-C again to stop at "
                       "once)", "Ctrl-C" if signum == signal.SIGINT else "SIGTERM")

    def __enter__(self) -> _StopRequest:
        if self.trainer.world == 1 and threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _restore(self) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous = {}

    def __exit__(self, *exc) -> None:
        self._restore()
