"""Training: one loop for every method (:class:`Trainer`), split by concern.

- :mod:`.config`: the recipe's ``training`` section (:class:`TrainingConfig`) and its stages;
- :mod:`.workdir`: the job directory (start, resume, its lock and identity, set-up);
- :mod:`.data`: the resumable stream of real batches;
- :mod:`.ema`: the generator's moving average;
- :mod:`.distributed`: what the ranks share under ``torchrun``;
- :mod:`.trainer`: the :class:`Trainer` itself.
"""

from .config import StageSchedule, TrainingConfig
from .trainer import MAX_SEED, Trainer, TrainingError, TrainingInterrupted
from .workdir import JobLock, WorkDirError

__all__ = ["TrainingConfig", "Trainer", "TrainingError", "TrainingInterrupted", "WorkDirError", "StageSchedule",
           "JobLock", "MAX_SEED"]
