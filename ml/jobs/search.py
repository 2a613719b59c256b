"""Hyperparameter search with Optuna: every trial is an ordinary run, hopeless ones are pruned.

The user ticks what to search (learning rate, batch size, width, depth, dropout, weight decay,
optimizer) and gives a budget in trials and/or minutes. Each trial trains the project with the
sampled settings into its own run folder inside the search's folder; a median pruner stops a
trial whose validation metric is below the median of earlier trials at the same epoch. The study
lives in memory (no database); ``search.json`` is rewritten after every trial::

    RUNS/20261124-101500-iris-search/
      trial-001/ ... trial-020/    ordinary run folders
      search.json                  every trial's settings, value and state; the best one
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..data.dataset import Dataset
from ..errors import TrainDeskError, TrainingError
from ..runs.folder import RunError, new_run_dir, now_iso
from ..runs.project import OPTIMIZERS, Project
from ..system.fileio import atomic_write_json
from ..training.callbacks import Callback
from .training import JobQueue, RunResult, TrainingJob

#: What can be searched: name -> (label, default range or choices).
PARAMETERS: dict[str, tuple[str, Any]] = {
    "lr": ("Learning rate", (1e-4, 1e-1)),
    "batch_size": ("Batch size", [16, 32, 64, 128, 256]),
    "width": ("Width (units or channels of the first layer)", (16, 512)),
    "depth": ("Depth (hidden or convolution layers)", (1, 4)),
    "dropout": ("Dropout", (0.0, 0.5)),
    "weight_decay": ("Weight decay", (1e-6, 1e-2)),
    "optimizer": ("Optimizer", list(OPTIMIZERS)),
}
SAMPLERS = ("tpe", "random")


@dataclass
class SearchSpace:
    """The ticked parameters and their ranges (defaults: :data:`PARAMETERS`)."""

    params: list[str] = field(default_factory=lambda: ["lr", "batch_size", "dropout",
                                                       "weight_decay"])
    ranges: dict[str, Any] = field(default_factory=dict)

    def range(self, name: str) -> Any:
        return self.ranges.get(name, PARAMETERS[name][1])

    def validate(self, project: Project) -> None:
        """Raises TrainDeskError for an unknown parameter, an empty choice or a bad range."""
        if not self.params:
            raise TrainDeskError("Tick at least one setting to search.")
        for name in self.params:
            if name not in PARAMETERS:
                raise TrainDeskError(f"Unknown search setting {name!r}; use some of "
                                     f"{', '.join(PARAMETERS)}.")
            bounds = self.range(name)
            if isinstance(PARAMETERS[name][1], list):
                if not bounds:
                    raise TrainDeskError(f"Give at least one {PARAMETERS[name][0].lower()} to "
                                         f"try.")
            elif not (len(bounds) == 2 and bounds[0] <= bounds[1]):
                raise TrainDeskError(f"The {PARAMETERS[name][0].lower()} range must go from a "
                                     f"lower to a higher value.")
            elif name in ("lr", "weight_decay") and bounds[0] <= 0:
                raise TrainDeskError(f"The {PARAMETERS[name][0].lower()} range is searched on a "
                                     f"log scale; start it above 0.")
        if ({"width", "depth"} & set(self.params)) and project.model.layers:
            raise TrainDeskError("Width and depth apply to presets; this model's layers were "
                                 "edited by hand. Untick width and depth, or use a preset.")

    def suggest(self, trial) -> dict[str, Any]:
        """Sample one set of values from an Optuna trial."""
        values: dict[str, Any] = {}
        for name in self.params:
            bounds = self.range(name)
            if isinstance(PARAMETERS[name][1], list):
                values[name] = trial.suggest_categorical(name, list(bounds))
            elif name in ("lr", "weight_decay"):
                values[name] = trial.suggest_float(name, float(bounds[0]), float(bounds[1]),
                                                   log=True)
            elif name == "width":
                values[name] = trial.suggest_int(name, int(bounds[0]), int(bounds[1]), log=True)
            elif name == "depth":
                values[name] = trial.suggest_int(name, int(bounds[0]), int(bounds[1]))
            else:
                values[name] = trial.suggest_float(name, float(bounds[0]), float(bounds[1]))
        return values


def apply_params(project: Project, values: dict[str, Any]) -> None:
    """Put a trial's (or the best) values into *project*'s model and training settings."""
    training, model = project.training, project.model
    for name in ("lr", "weight_decay", "optimizer"):
        if name in values:
            setattr(training, name, type(getattr(training, name))(values[name]))
    if "batch_size" in values:
        training.batch_size = int(values["batch_size"])
    if "dropout" in values:
        model.dropout = float(values["dropout"])
    if "width" in values or "depth" in values:
        width = int(values.get("width", model.hidden[0] if model.hidden else 64))
        depth = int(values.get("depth", len(model.hidden) or 1))
        # Tapering layers, as the presets are drawn: 256, 128, 64 ...
        model.hidden = [max(4, width // 2 ** i) for i in range(depth)]
        base = int(values.get("width", model.conv_channels[0] if model.conv_channels else 32))
        conv_depth = int(values.get("depth", len(model.conv_channels) or 2))
        model.conv_channels = [min(1024, base * 2 ** i) for i in range(conv_depth)]


@dataclass
class Trial:
    """One trial, as reported."""

    number: int
    params: dict[str, Any]
    state: str  # complete | pruned | failed | stopped
    value: float | None = None
    run: str = ""
    epochs: int = 0
    seconds: float = 0.0
    error: str = ""


@dataclass
class SearchResult:
    folder: Path
    metric: str
    direction: str  # maximize | minimize
    trials: list[Trial] = field(default_factory=list)
    runs: list[RunResult] = field(default_factory=list)
    stopped: bool = False

    @property
    def best(self) -> Trial | None:
        done = [t for t in self.trials if t.state == "complete" and t.value is not None]
        if not done:
            return None
        pick = max if self.direction == "maximize" else min
        return pick(done, key=lambda t: t.value)

    def to_dict(self) -> dict:
        best = self.best
        return {"format": "traindesk-search", "version": 1, "updated": now_iso(),
                "metric": self.metric, "direction": self.direction, "stopped": self.stopped,
                "best": asdict(best) if best else None,
                "trials": [asdict(t) for t in self.trials]}


class _Pruning(Callback):
    """Report the validation metric after each epoch; stop the run if Optuna prunes it."""

    def __init__(self, trial, key: str):
        self.trial, self.key = trial, key
        self.pruned = False

    def on_epoch_end(self, epoch, logs):
        value = logs.get(self.key)
        if value is None or not math.isfinite(value):
            return
        self.trial.report(float(value), int(logs["epoch"]))
        if self.trial.should_prune():
            self.pruned = True
            self.trainer.should_stop = True


class Search(JobQueue):
    """Run a study in the calling thread (the GUI's background queue runs it in a worker).

    Parameters
    ----------
    project : Project
        Copied; each trial trains a copy with the sampled values applied.
    space : SearchSpace
    trials : int, optional
        The budget in trials; *minutes* bounds the wall time (no new trial starts after it).
    sampler : {"tpe", "random"}
    pruning : bool
        Median pruner on the validation metric (after 3 trials and 2 epochs).
    callbacks : iterable of Callback
        Given to every trial's trainer.
    on_trial_end : callable, optional
        ``on_trial_end(trial, result)`` after each trial, with the :class:`Trial` and the
        :class:`SearchResult` so far.
    on_started : callable, optional
        ``on_started(record)`` as each run's folder is made (see :class:`TrainingJob`).
    """

    def __init__(self, project: Project, space: SearchSpace, *, trials: int | None = 20,
                 minutes: float | None = None, sampler: str = "tpe", pruning: bool = True,
                 dataset: Dataset | None = None, runs_dir: Path | None = None,
                 out: Path | None = None, callbacks: Iterable[Callback] = (),
                 on_message: Callable[[str], None] | None = None,
                 on_trial_begin: Callable[[int], None] | None = None,
                 on_trial_end: Callable[[Trial, SearchResult], None] | None = None,
                 on_started: Callable | None = None):
        super().__init__(on_started)
        project.validate()
        space.validate(project)
        if sampler not in SAMPLERS:
            raise TrainDeskError(f"Unknown sampler {sampler!r}; use tpe or random.")
        if trials is None and minutes is None:
            raise TrainDeskError("Give the search a budget: a number of trials or minutes.")
        if trials is not None and not 1 <= int(trials) <= 10_000:
            raise TrainDeskError(f"The number of trials must be from 1 to 10000 (got {trials}).")
        if minutes is not None and not (minutes > 0 and math.isfinite(minutes)):
            raise TrainDeskError("The time budget must be a positive number of minutes.")
        self.project = copy.deepcopy(project)
        self.space = space
        self.n_trials = None if trials is None else int(trials)
        self.minutes = minutes
        self.sampler = sampler
        self.pruning = pruning
        self.dataset = dataset
        self.runs_dir = Path(runs_dir) if runs_dir else project.runs_dir()
        self.out = Path(out) if out else None
        self.callbacks = list(callbacks)
        self.on_message = on_message or (lambda m: None)
        self.on_trial_begin = on_trial_begin or (lambda n: None)
        self.on_trial_end = on_trial_end or (lambda t, r: None)

    def _folder(self) -> Path:
        """The search's folder: exactly *out* (which must not hold a search or a run yet), or
        a new one under the runs folder."""
        if self.out is None:
            return new_run_dir(self.runs_dir, f"{self.dataset.name}-search")
        if (self.out / "search.json").exists() or (self.out / "run.json").exists():
            raise RunError(f"{self.out} already holds a search or a run. Choose an empty "
                           f"folder.")
        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunError(f"Could not create {self.out}: {exc.strerror or exc}.") from None
        return self.out

    def run(self) -> SearchResult:
        """Run the study and return every trial; the best is ``result.best``.

        Raises
        ------
        TrainDeskError
            For bad data or settings, found before the first trial trains.
        """
        import optuna

        optuna.logging.set_verbosity(optuna.logging.ERROR)  # trials report themselves
        say = self.on_message
        self.dataset = self._load(self.project, self.dataset, say)
        from ..data.dataset import resolve

        task = resolve(self.dataset, self.project.data).task  # bad settings stop here
        metric = "accuracy" if task == "classification" else "mae"
        direction = "maximize" if task == "classification" else "minimize"
        folder = self._folder()
        result = SearchResult(folder=folder, metric=metric, direction=direction)
        study = self._make_study(direction)
        deadline = None if self.minutes is None else time.monotonic() + 60 * self.minutes

        def objective(trial):
            return self._trial(trial, study, result, metric)

        def budget(study, frozen):
            if self._stop.is_set() or (deadline is not None and time.monotonic() > deadline):
                study.stop()

        study.optimize(objective, n_trials=self.n_trials, callbacks=[budget],
                       gc_after_trial=False)
        result.stopped = self._stop.is_set()
        self._write(result)
        best = result.best
        if best is not None:
            say(f"Best: trial {best.number}, validation {metric} {best.value:.4f} with "
                + ", ".join(f"{k} {_show(v)}" for k, v in best.params.items()) + ".")
        return result

    def _make_study(self, direction: str):
        """The optuna study: TPE or random sampling (seeded), median pruning if asked."""
        import optuna

        seed = int(self.project.training.seed)
        sampler = (optuna.samplers.TPESampler(seed=seed) if self.sampler == "tpe"
                   else optuna.samplers.RandomSampler(seed=seed))
        pruner = (optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2)
                  if self.pruning else optuna.pruners.NopPruner())
        return optuna.create_study(direction=direction, sampler=sampler, pruner=pruner)

    def _trial(self, trial, study, result: SearchResult, metric: str) -> float:
        """Train one trial's run and record it; its best validation *metric* (NaN if failed)."""
        import optuna

        folder, say = result.folder, self.on_message
        number = trial.number + 1
        values = self.space.suggest(trial)
        project = copy.deepcopy(self.project)
        apply_params(project, values)
        pruning = _Pruning(trial, "val_" + metric)
        shown = ", ".join(f"{k} {_show(v)}" for k, v in values.items())
        say(f"Trial {number}: {shown}.")
        self.on_trial_begin(number)
        entry = Trial(number=number, params=values, state="failed")
        try:
            job = self._enqueue(TrainingJob(project, dataset=self.dataset,
                                            run_dir=folder / f"trial-{number:03d}",
                                            callbacks=[pruning, *self.callbacks],
                                            on_message=lambda m: None, group=folder.name,
                                            label=f"trial {number}"))
            run = job.run()
        except TrainingError as exc:  # e.g. a learning rate so high the loss diverged
            entry.error = str(exc)
            entry.run = f"trial-{number:03d}"
            self._finish(entry, result, f"Trial {number} failed: {exc}")
            return math.nan
        entry.run, entry.epochs = run.run_dir.name, run.fit.epochs_completed
        entry.seconds = round(run.fit.seconds, 2)
        entry.value = run.best_val_metric()
        result.runs.append(run)
        if pruning.pruned:
            entry.state = "pruned"
            run.label = f"trial {number} (pruned)"
            self._finish(entry, result, f"Trial {number} pruned after epoch "
                         f"{entry.epochs}: its validation {metric} was below the median "
                         f"of earlier trials.")
            raise optuna.TrialPruned()
        if run.status == "stopped":
            entry.state = "stopped"
            self._finish(entry, result, f"Trial {number} stopped.")
            study.stop()
            return entry.value
        entry.state = "complete"
        self._finish(entry, result, f"Trial {number}: validation {metric} "
                     f"{entry.value:.4f}.")
        return entry.value

    def _finish(self, entry: Trial, result: SearchResult, message: str) -> None:
        result.trials.append(entry)
        self._write(result)
        self.on_message(message)
        self.on_trial_end(entry, result)

    def _write(self, result: SearchResult) -> None:
        doc = result.to_dict()
        for trial in doc["trials"] + ([doc["best"]] if doc["best"] else []):
            if trial["value"] is not None and not math.isfinite(trial["value"]):
                trial["value"] = None
        atomic_write_json(result.folder / "search.json", doc, error=RunError)


def _show(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
