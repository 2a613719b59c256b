"""The training worker: a :class:`ml.jobs.training.TrainingJob` on a background thread."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import Signal

from ml.data.dataset import Dataset
from ml.jobs.training import TrainingJob
from ml.runs.project import Project
from ml.training.callbacks import Callback

from .base import Worker

#: Batch-level signals leave the worker at most this often (seconds): ~20 per second.
EMIT_INTERVAL = 0.2


class _SignalBridge(Callback):
    """Turn trainer hooks into the worker's signals, throttling the per-batch ones."""

    def __init__(self, worker: TrainingWorker):
        self.worker = worker
        self.pending: list[tuple[float, float, float]] = []
        self.last_emit = 0.0
        self.start = time.monotonic()
        self.epochs = 1
        self.first_epoch = 0
        self.steps_per_epoch = 1
        self.n_train = 0
        # Throughput over a sliding window of (time, samples trained in this fit) read-outs.
        self.window: list[tuple[float, int]] = []
        self.samples_done = 0

    def on_fit_begin(self, logs):
        self.start = time.monotonic()
        self.epochs = int(logs["epochs"])
        self.first_epoch = int(logs.get("first_epoch", 0))
        self.steps_per_epoch = int(logs["steps_per_epoch"])
        self.n_train = int(logs["n_train"])
        self.window, self.samples_done = [(self.start, 0)], 0
        self.worker.fit_started.emit(dict(logs))

    def on_batch_end(self, step, logs):
        if "loss" in logs:
            position = logs["epoch"] - 1 + logs["batch"] / logs["batches"]
            self.pending.append((position, logs["loss"], logs.get("lr", float("nan"))))
            done = (logs["epoch"] - 1 - self.first_epoch) * self.n_train + logs["samples"]
            self.window.append((time.monotonic(), done))
        now = time.monotonic()
        if now - self.last_emit >= EMIT_INTERVAL:
            self.last_emit = now
            self._flush(logs["epoch"], logs["batch"], logs["batches"])

    def on_epoch_end(self, epoch, logs):
        self._flush(logs["epoch"], self.steps_per_epoch, self.steps_per_epoch)
        self.worker.epoch_finished.emit(dict(logs))

    def _throughput(self) -> float:
        """Samples per second over the last ~3 seconds (0 before two read-outs)."""
        now = self.window[-1][0]
        while len(self.window) > 2 and now - self.window[1][0] >= 3.0:
            self.window.pop(0)
        (t0, s0), (t1, s1) = self.window[0], self.window[-1]
        return (s1 - s0) / (t1 - t0) if t1 > t0 else 0.0

    def _flush(self, epoch: int, batch: int, batches: int) -> None:
        if self.pending:
            self.worker.batches_logged.emit(np.asarray(self.pending, dtype=np.float64))
            self.pending = []
        span = max(self.epochs - self.first_epoch, 1)
        done = (epoch - 1 - self.first_epoch + batch / batches) / span
        elapsed = time.monotonic() - self.start
        eta = elapsed * (1 - done) / done if done > 0 else float("nan")
        self.worker.progress_changed.emit({"epoch": epoch, "epochs": self.epochs, "batch": batch,
                                           "batches": batches,
                                           "fraction": (epoch - 1 + batch / batches)
                                           / self.epochs,
                                           "elapsed": elapsed, "eta": eta,
                                           "samples_per_second": self._throughput()})


class TrainingWorker(Worker):
    """Train one run - or a queue of them: the folds of a cross-validation, the trials of a
    search - in the background.

    Signals carry plain dicts, floats and numpy arrays - never tensors. ``cancel()`` stops
    training after the current batch; the stopped run is still saved and delivered through
    ``finished`` (with ``status == "stopped"``). A queue reports each run it starts through
    ``stage_started`` and each finished run through ``run_recorded``, so the project lists
    them even if the queue is stopped later.
    """

    fit_started = Signal(dict)
    batches_logged = Signal(object)  # ndarray (k, 3): epoch position, loss, learning rate
    epoch_finished = Signal(dict)
    progress_changed = Signal(dict)
    message_logged = Signal(str)
    stage_started = Signal(str)  # "Fold 2 of 5", "Trial 3 of 20"
    run_recorded = Signal(object)  # RunResult of a fold or trial
    trial_finished = Signal(object)  # dict: the trial and the best so far
    run_started = Signal(object)  # RunRecord (status "running") once the run folder exists

    def __init__(self, project: Project | None, dataset: Dataset | None = None,
                 runs_dir: Path | None = None, *, resume: Path | None = None,
                 epochs: int | None = None, batch_size: int | None = None):
        super().__init__()
        if resume is not None:  # continue that run from its last checkpoint
            self.job = TrainingJob.resume(resume, epochs=epochs, batch_size=batch_size,
                                          dataset=dataset, callbacks=[_SignalBridge(self)],
                                          on_message=self.message_logged.emit,
                                          on_started=self.run_started.emit)
        elif project is not None:
            self.job = TrainingJob(project, dataset=dataset, runs_dir=runs_dir,
                                   callbacks=[_SignalBridge(self)],
                                   on_message=self.message_logged.emit,
                                   on_started=self.run_started.emit)

    @classmethod
    def cross_validation(cls, project: Project, k: int, dataset: Dataset | None = None,
                         runs_dir: Path | None = None) -> TrainingWorker:
        """A worker that trains the *k* folds of *project* one after another."""
        from ml.jobs.crossval import CrossValidation

        worker = cls(None)
        worker.job = CrossValidation(
            project, k, dataset=dataset, runs_dir=runs_dir, callbacks=[_SignalBridge(worker)],
            on_message=worker.message_logged.emit,
            on_fold=lambda i, n: worker.stage_started.emit(f"Fold {i + 1} of {n}"),
            on_fold_end=worker.run_recorded.emit, on_started=worker.run_started.emit)
        return worker

    @classmethod
    def search(cls, project: Project, space, *, trials: int | None, minutes: float | None,
               sampler: str = "tpe", pruning: bool = True, dataset: Dataset | None = None,
               runs_dir: Path | None = None) -> TrainingWorker:
        """A worker that runs an Optuna search (see :class:`ml.jobs.search.Search`)."""
        from dataclasses import asdict

        from ml.jobs.search import Search

        worker = cls(None)
        total = f" of {trials}" if trials else ""

        def trial_end(trial, result):
            best = result.best
            worker.trial_finished.emit({"trial": asdict(trial), "metric": result.metric,
                                        "best": best.number if best else None,
                                        "folder": str(result.folder)})
            if result.runs and result.runs[-1].run_dir.name == trial.run:
                worker.run_recorded.emit(result.runs[-1])

        worker.job = Search(project, space, trials=trials, minutes=minutes, sampler=sampler,
                            pruning=pruning, dataset=dataset, runs_dir=runs_dir,
                            callbacks=[_SignalBridge(worker)],
                            on_message=worker.message_logged.emit,
                            on_trial_begin=lambda n: worker.stage_started.emit(
                                f"Trial {n}{total}"),
                            on_trial_end=trial_end, on_started=worker.run_started.emit)
        return worker

    def cancel(self) -> None:
        super().cancel()
        self.job.set_paused(False)
        self.job.request_stop()

    def set_paused(self, paused: bool) -> None:
        """Hold or continue training (safe from the GUI thread)."""
        self.job.set_paused(paused)

    def work(self):
        return self.job.run()
