"""The trainer (kept for imports): the code lives in :mod:`gan3d.core.training`."""

from .training import StageSchedule, Trainer, TrainingConfig, TrainingError, TrainingInterrupted, WorkDirError

__all__ = ["TrainingConfig", "Trainer", "TrainingError", "TrainingInterrupted", "WorkDirError", "StageSchedule"]
