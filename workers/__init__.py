"""Qt adapters that run :mod:`ml` jobs on background threads and report through signals."""

from .base import FunctionWorker, TaskRunner, Worker
from .training_worker import TrainingWorker

__all__ = ["FunctionWorker", "TaskRunner", "TrainingWorker", "Worker"]
