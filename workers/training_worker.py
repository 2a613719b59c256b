"""The training worker: a :class:`ml.pipeline.TrainingJob` on a background thread."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import Signal

from ml.data.dataset import Dataset
from ml.pipeline import RunResult, TrainingJob
from ml.project import Project
from ml.training.callbacks import Callback

from .base import Worker

#: Batch-level signals leave the worker at most this often (seconds): ~20 per second.
EMIT_INTERVAL = 0.05


class _SignalBridge(Callback):
    """Turn trainer hooks into the worker's signals, throttling the per-batch ones."""

    def __init__(self, worker: "TrainingWorker"):
        self.worker = worker
        self.pending: list[tuple[float, float]] = []
        self.last_emit = 0.0
        self.start = time.monotonic()
        self.epochs = 1
        self.steps_per_epoch = 1

    def on_fit_begin(self, logs):
        self.start = time.monotonic()
        self.epochs = int(logs["epochs"])
        self.steps_per_epoch = int(logs["steps_per_epoch"])
        self.worker.fit_started.emit(dict(logs))

    def on_batch_end(self, step, logs):
        if "loss" in logs:
            position = logs["epoch"] - 1 + logs["batch"] / logs["batches"]
            self.pending.append((position, logs["loss"]))
        now = time.monotonic()
        if now - self.last_emit >= EMIT_INTERVAL:
            self.last_emit = now
            self._flush(logs["epoch"], logs["batch"], logs["batches"])

    def on_epoch_end(self, epoch, logs):
        self._flush(logs["epoch"], self.steps_per_epoch, self.steps_per_epoch)
        self.worker.epoch_finished.emit(dict(logs))

    def _flush(self, epoch: int, batch: int, batches: int) -> None:
        if self.pending:
            self.worker.batches_logged.emit(np.asarray(self.pending, dtype=np.float64))
            self.pending = []
        done = (epoch - 1 + batch / batches) / self.epochs
        elapsed = time.monotonic() - self.start
        eta = elapsed * (1 - done) / done if done > 0 else float("nan")
        self.worker.progress_changed.emit({"epoch": epoch, "epochs": self.epochs, "batch": batch,
                                           "batches": batches, "fraction": done,
                                           "elapsed": elapsed, "eta": eta})


class TrainingWorker(Worker):
    """Train one run in the background.

    Signals carry plain dicts, floats and numpy arrays - never tensors. ``cancel()`` stops
    training after the current batch; the stopped run is still saved and delivered through
    ``finished`` (with ``status == "stopped"``).
    """

    fit_started = Signal(dict)
    batches_logged = Signal(object)  # ndarray (k, 2): epoch position, loss
    epoch_finished = Signal(dict)
    progress_changed = Signal(dict)
    message_logged = Signal(str)

    def __init__(self, project: Project | None, dataset: Dataset | None = None,
                 runs_dir: Path | None = None, *, resume: Path | None = None,
                 epochs: int | None = None):
        super().__init__()
        if resume is not None:  # continue that run from its last checkpoint
            self.job = TrainingJob.resume(resume, epochs=epochs, dataset=dataset,
                                          callbacks=[_SignalBridge(self)],
                                          on_message=self.message_logged.emit)
        else:
            self.job = TrainingJob(project, dataset=dataset, runs_dir=runs_dir,
                                   callbacks=[_SignalBridge(self)],
                                   on_message=self.message_logged.emit)

    def cancel(self) -> None:
        super().cancel()
        self.job.set_paused(False)
        self.job.request_stop()

    def set_paused(self, paused: bool) -> None:
        """Hold or continue training (safe from the GUI thread)."""
        self.job.set_paused(paused)

    def work(self) -> RunResult:
        return self.job.run()
