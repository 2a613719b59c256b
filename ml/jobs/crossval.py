"""k-fold cross-validation: k ordinary runs on rotating validation folds, summarised.

The test rows are held out of every fold (as in a single run); the other rows are dealt into k
folds (per class for classification), and fold *i* validates run *i*. Each fold is a complete
run folder inside the cross-validation's folder::

    RUNS/20261124-101500-iris-cv5/
      fold-1/ ... fold-5/     ordinary run folders (resumable, evaluable, exportable)
      crossval.json           each fold's metrics, and their mean and standard deviation
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data.dataset import Dataset
from ..errors import TrainDeskError
from ..runs.folder import RunError, new_run_dir, now_iso
from ..runs.project import Project
from ..system.fileio import atomic_write_json
from ..training.callbacks import Callback
from .training import JobQueue, RunResult, TrainingJob


@dataclass
class CrossValResult:
    """What :meth:`CrossValidation.run` returns."""

    folder: Path
    k: int
    task: str
    runs: list[RunResult] = field(default_factory=list)
    stopped: bool = False

    @property
    def metric(self) -> str:
        return "accuracy" if self.task == "classification" else "mae"

    def summary(self) -> dict:
        """Per-fold validation and test metrics, with mean and (sample) standard deviation."""
        val = [r.best_val_metric() for r in self.runs]
        test = [float(r.metrics["test"][self.metric]) for r in self.runs]
        return {"k": self.k, "task": self.task, "metric": self.metric,
                "completed": len(self.runs), "stopped": self.stopped,
                "folds": [{"fold": i + 1, "run": r.run_dir.name, "status": r.status,
                           "val": v, "test": t} for i, (r, v, t) in
                          enumerate(zip(self.runs, val, test))],
                "val": _mean_std(val), "test": _mean_std(test)}

    def describe(self) -> str:
        """One line: ``validation accuracy 0.953 +/- 0.021 over 5 folds``."""
        s = self.summary()
        if not self.runs:
            return "No fold finished."
        pct = self.metric == "accuracy"

        def fmt(d):
            return (f"{100 * d['mean']:.1f}% ± {100 * d['std']:.1f}" if pct
                    else f"{d['mean']:.4g} ± {d['std']:.2g}")
        name = "accuracy" if pct else "MAE"
        return (f"validation {name} {fmt(s['val'])}, test {name} {fmt(s['test'])} over "
                f"{len(self.runs)} of {self.k} folds")


def _mean_std(values: list[float]) -> dict:
    arr = np.asarray([v for v in values if math.isfinite(v)], np.float64)
    if not len(arr):
        return {"mean": math.nan, "std": math.nan}
    std = float(arr.std(ddof=1)) if len(arr) > 1 else 0.0
    return {"mean": float(arr.mean()), "std": std}


class CrossValidation(JobQueue):
    """Run *k* folds one after another (a background queue in the GUI).

    Parameters
    ----------
    project : Project
        Copied; its split gets ``folds = k`` and each fold's number.
    k : int
        Number of folds, 2 to 50.
    callbacks : iterable of Callback
        Given to every fold's trainer (``on_fit_begin`` marks each new fold).
    on_fold : callable, optional
        ``on_fold(i, k)`` before fold *i* (0-based) starts.
    on_fold_end : callable, optional
        ``on_fold_end(result)`` with each fold's :class:`~ml.jobs.training.RunResult`.
    on_started : callable, optional
        ``on_started(record)`` as each run's folder is made (see :class:`TrainingJob`).
    """

    def __init__(self, project: Project, k: int, *, dataset: Dataset | None = None,
                 runs_dir: Path | None = None, callbacks: Iterable[Callback] = (),
                 on_message: Callable[[str], None] | None = None,
                 on_fold: Callable[[int, int], None] | None = None,
                 on_fold_end: Callable[[RunResult], None] | None = None,
                 on_started: Callable | None = None):
        super().__init__(on_started)
        if not 2 <= int(k) <= 50:
            raise TrainDeskError(f"Cross-validation needs 2 to 50 folds (got {k}).")
        self.project = copy.deepcopy(project)
        self.project.data.split.folds, self.project.data.split.fold = int(k), 0
        self.project.validate()
        self.k = int(k)
        self.dataset = dataset
        self.runs_dir = Path(runs_dir) if runs_dir else project.runs_dir()
        self.callbacks = list(callbacks)
        self.on_message = on_message or (lambda m: None)
        self.on_fold = on_fold or (lambda i, k: None)
        self.on_fold_end = on_fold_end or (lambda r: None)
        self.folder: Path | None = None

    def run(self) -> CrossValResult:
        """Train the folds; write ``crossval.json`` after each one.

        Raises
        ------
        TrainDeskError
            For bad data or settings (raised by the first fold, before anything is trained).
        """
        say = self.on_message
        self.dataset = self._load(self.project, self.dataset, say)
        self.folder = folder = new_run_dir(self.runs_dir, f"{self.dataset.name}-cv{self.k}")
        group = folder.name
        result = None
        for i in range(self.k):
            if self._stop.is_set():
                break
            project = copy.deepcopy(self.project)
            project.data.split.fold = i
            self.on_fold(i, self.k)
            say(f"Fold {i + 1} of {self.k}: validating on the {_ordinal(i + 1)} fold.")
            job = self._enqueue(TrainingJob(project, dataset=self.dataset,
                                            run_dir=folder / f"fold-{i + 1}",
                                            callbacks=self.callbacks, on_message=say,
                                            group=group, label=f"fold {i + 1} of {self.k}"))
            run = job.run()
            if result is None:
                result = CrossValResult(folder=folder, k=self.k, task=run.evaluation.task)
            if run.status == "stopped":
                result.stopped = True
            result.runs.append(run)
            self._write(result)
            self.on_fold_end(run)
            if run.status == "stopped":
                break
        if result is None:
            raise RunError("Cross-validation was stopped before its first fold.")
        result.stopped = result.stopped or len(result.runs) < self.k
        self._write(result)
        say(f"Cross-validation: {result.describe()}.")
        return result

    def _write(self, result: CrossValResult) -> None:
        atomic_write_json(result.folder / "crossval.json",
                          _json_safe({"format": "traindesk-crossval", "version": 1,
                                      "updated": now_iso(), **result.summary()}),
                          error=RunError)


def _json_safe(value):
    """NaN (a fold without validation) becomes null: JSON has no NaN."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
