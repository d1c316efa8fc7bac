"""The trainer (kept for imports): the code lives in :mod:`gan3d.core.training`."""

from .training import StageSchedule, Trainer, TrainingConfig, TrainingError, WorkDirError

__all__ = ["TrainingConfig", "Trainer", "TrainingError", "WorkDirError", "StageSchedule"]
