"""The ``training`` section of a recipe: the run's settings and its stage schedule."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from ..recipe import RecipeError

__all__ = ["TrainingConfig", "StageSchedule", "is_number"]


@dataclass
class TrainingConfig:
    """The ``training`` section of a recipe.

    Attributes:
        batch_size: global batch (split across ranks).
        batch_gpu: samples in one round (``None``: one round of the rank's whole batch). Each phase
            (D main, R1, G main, G regularizer) splits the rank's batch into rounds of this many, each
            a full forward and backward with its own draws and running-statistic updates (minibatch-std
            groups, style-mixing cutoff, path-length mean, ``w_avg``), and the rounds' gradients are
            summed before the one optimizer step, as StyleGAN2-ADA's loop does with ``--batch-gpu``
            (EG3D's, StyleNeRF's and EpiGRAF's too; their ranks' gradients are averaged, their rounds'
            summed). A stage's per-rank batch must be a multiple of it, or smaller (then one round).
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
        keep_checkpoints: complete checkpoints kept on disk (0: all).
        frozen_slots: generator slots left untrained (``stochasticity_mapper``, ``point_embedder``,
            ``feature_decoder``, ``volume_renderer``, ``background/feature_decoder``...), e.g. StyleSDF's
            volume renderer under its 2D decoder; not in the optimizer and no gradients computed.
        init_from: ``{"checkpoint": PATH, "slots": [...], "weights": "G_ema"}``: before the first step
            (never on resume), load those slots' weights from another job's checkpoint (StyleSDF's full
            pipeline starts from its volume-renderer stage, ``train_full_pipeline.py`` loading ``g_ema``);
            the method's own preparation (:meth:`~gan3d.core.objective.Objective.initialize_generator`)
            is then skipped. ``None``: no such loading.
        lazy_reg_adam: adjust Adam for lazy R1 as StyleGAN2 does (lr and betas scaled by
            ``interval / (interval + 1)``) when the R1 interval is above 1.
        optimizer: ``'adam'`` (betas from ``g_betas``/``d_betas``) or ``'rmsprop'`` (GIRAFFE;
            PyTorch's defaults, alpha 0.99, eps 1e-8).
        lr_multipliers: ``{slot: factor}``: the parameters of these generator slots train at ``factor``
            times the generator learning rate (in every stage), in optimizer groups of their own, e.g.
            ``{"point_sampler": 0.1}`` for GRAM CARLA's manifold predictor (``sampling_network_lr`` 2e-6
            beside ``gen_lr`` 2e-5). Empty: one learning rate for the whole generator.
    """

    batch_size: int = 32
    batch_gpu: int | None = None
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
    frozen_slots: list[str] = field(default_factory=list)
    init_from: dict[str, Any] | None = None
    lr_multipliers: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingConfig:
        if not isinstance(data, dict):
            raise RecipeError(f"the training section must be a mapping of options, got {type(data).__name__}")
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise RecipeError(f"unknown training option(s) {unknown}; known: {', '.join(known)}")
        cfg = cls(**data)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        """Raise :class:`RecipeError` naming the first option whose value cannot be trained with."""
        for name in ("batch_size", "g_lr", "d_lr", "total_kimg", "snapshot_kimg", "image_snapshot_kimg",
                     "log_every", "ema_kimg"):
            if not is_number(getattr(self, name), positive=True):
                raise RecipeError(f"training.{name} must be a positive number, got {getattr(self, name)!r}")
        for name in ("batch_size", "log_every"):
            if not isinstance(getattr(self, name), int):
                raise RecipeError(f"training.{name} must be an integer, got {getattr(self, name)!r}")
        if self.batch_gpu is not None and (isinstance(self.batch_gpu, bool) or not isinstance(self.batch_gpu, int)
                                           or self.batch_gpu < 1):
            raise RecipeError(f"training.batch_gpu must be a positive integer or null (one round of the whole "
                              f"batch), got {self.batch_gpu!r}")
        for name in ("g_grad_clip", "d_grad_clip"):
            value = getattr(self, name)
            if not is_number(value) or value < 0:
                raise RecipeError(f"training.{name} must be a number >= 0 (0: no clipping), got {value!r}")
        for name in ("max_bad_steps", "keep_checkpoints"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise RecipeError(f"training.{name} must be an integer >= 0, got {value!r}")
        for name in ("xflip", "ema_warmup", "lazy_reg_adam"):
            if not isinstance(getattr(self, name), bool):
                raise RecipeError(f"training.{name} must be true or false, got {getattr(self, name)!r}")
        if self.optimizer not in ("adam", "rmsprop"):
            raise RecipeError(f"training.optimizer must be 'adam' or 'rmsprop', got {self.optimizer!r}")
        if self.ema_beta is not None and not (is_number(self.ema_beta) and 0 <= self.ema_beta < 1):
            raise RecipeError(f"training.ema_beta must be in [0, 1), got {self.ema_beta!r}")
        if self.ema_rampup is not None and not is_number(self.ema_rampup, positive=True):
            raise RecipeError(f"training.ema_rampup must be a positive number or null, got {self.ema_rampup!r}")
        for name in ("g_betas", "d_betas"):
            betas = getattr(self, name)
            if not isinstance(betas, (list, tuple)) or len(betas) != 2 or not all(
                    is_number(b) and 0 <= b < 1 for b in betas):
                raise RecipeError(f"training.{name} must be two numbers in [0, 1), got {betas!r}")
        if not isinstance(self.frozen_slots, list) or not all(isinstance(x, str) for x in self.frozen_slots):
            raise RecipeError(f"training.frozen_slots must be a list of slot names, got {self.frozen_slots!r}")
        multipliers = self.lr_multipliers
        if not isinstance(multipliers, dict) or not all(
                isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0
                for k, v in multipliers.items()):
            raise RecipeError(f"training.lr_multipliers must map generator slot names to positive factors, e.g. "
                              f"{{\"point_sampler\": 0.1}}; got {multipliers!r}")
        if self.init_from is not None:
            init = self.init_from
            known = {"checkpoint", "slots", "weights"}
            if not isinstance(init, dict) or set(init) - known or not isinstance(init.get("checkpoint", ""), str):
                raise RecipeError(f"training.init_from must be {{'checkpoint': PATH, 'slots': [...], 'weights': "
                                  f"'G_ema' or 'G'}}, got {init!r}")
            slots = init.get("slots", [])
            if not isinstance(slots, list) or not slots or not all(isinstance(x, str) for x in slots):
                raise RecipeError(f"training.init_from.slots must be a non-empty list of slot names, got {slots!r}")
            if init.get("weights", "G_ema") not in ("G_ema", "G"):
                raise RecipeError(f"training.init_from.weights must be 'G_ema' or 'G', got {init.get('weights')!r}")
        if not isinstance(self.stages, list) or not all(isinstance(st, dict) for st in self.stages):
            raise RecipeError(f"training.stages must be a list of mappings, got {self.stages!r:.200}")
        StageSchedule(self)  # validates the stages


def is_number(value: Any, *, positive: bool = False) -> bool:
    """A finite int or float (not a bool), above 0 when ``positive``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return False
    return value > 0 if positive else True


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
                if key == "until_kimg" and not (is_number(value) and value >= 0):
                    raise RecipeError(f"training.stages[{i}].until_kimg must be a number >= 0, got {value!r}")
                if key in ("g_lr", "d_lr") and not is_number(value, positive=True):
                    raise RecipeError(f"training.stages[{i}].{key} must be a positive number, got {value!r}")
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
