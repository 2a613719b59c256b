"""One training job from a project to a finished run folder - shared by the GUI and the CLI."""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..data.dataset import Dataset, DataSummary, PreparedData, load_dataset, prepare
from ..data.streaming import ImageFiles
from ..errors import Cancelled, DataError, OutOfMemory, TrainDeskError
from ..evaluation.evaluate import Evaluation, evaluate_arrays
from ..models.presets import build_spec
from ..models.spec import TrainDeskNet, build_model
from ..models.transfer import body_names
from ..runs.folder import (
    RunError,
    config_dict,
    data_fingerprint,
    new_run_dir,
    now_iso,
    project_from_config,
    write_run_info,
    write_run_start,
)
from ..runs.project import Project, RunRecord
from ..runs.weights import load_checkpoint, save_weights
from ..system.device import describe_device, select_device
from ..system.fileio import atomic_write_json
from ..training import distributed
from ..training.callbacks import Callback, FreezeLoaded
from ..training.checkpoint import RunWriter
from ..training.trainer import FitResult, Trainer, loss_for


@dataclass
class RunResult:
    """The outcome of a :class:`TrainingJob`."""

    run_dir: Path
    status: str  # finished | stopped
    metrics: dict
    fit: FitResult
    evaluation: Evaluation
    net: TrainDeskNet = field(repr=False)
    prepared: PreparedData = field(repr=False)
    model_name: str = ""
    group: str = ""
    label: str = ""

    def record(self) -> RunRecord:
        """The entry for the project's list of runs."""
        return RunRecord(id=self.run_dir.name, path=str(self.run_dir), created=now_iso(),
                         status=self.status, task=self.evaluation.task, model=self.model_name,
                         metrics=dict(self.metrics.get("test", {})), group=self.group,
                         label=self.label, epochs=self.fit.epochs_completed,
                         seconds=round(self.fit.seconds, 2))

    def best_val_metric(self) -> float:
        """The validation metric (accuracy or MAE) of the epoch whose weights were kept."""
        key = "val_" + ("accuracy" if self.evaluation.task == "classification" else "mae")
        kept = [h for h in self.fit.history if h.get("epoch") == self.fit.best_epoch]
        entry = kept[-1] if kept else (self.fit.history[-1] if self.fit.history else {})
        return float(entry.get(key, float("nan")))


class TrainingJob:
    """Prepare the data, build the model, train, save and evaluate - one run.

    Parameters
    ----------
    project : Project
        Its settings are copied at construction; later edits do not affect the job.
    dataset : Dataset, optional
        An already loaded dataset (the GUI has one); else it is loaded from the project.
    runs_dir : Path, optional
        Where to create the run folder (default: the project's runs folder).
    run_dir : Path, optional
        Use exactly this folder (created if needed; must be empty of a previous run).
    callbacks : iterable of Callback
        Passed to the :class:`Trainer`.
    on_message : callable, optional
        Receives progress messages (one line each) for a log.
    group, label : str
        For runs made together: the cross-validation's or search's folder, and e.g. "fold 2
        of 5" (kept in ``run.json`` and the project's list).
    on_started : callable, optional
        ``on_started(record)`` with a :class:`~ml.runs.project.RunRecord` (status ``running``) once
        the run folder holds the run's description, before the first epoch.
    """

    def __init__(self, project: Project, *, dataset: Dataset | None = None,
                 runs_dir: Path | None = None, run_dir: Path | None = None,
                 callbacks: Iterable[Callback] = (),
                 on_message: Callable[[str], None] | None = None,
                 group: str = "", label: str = "",
                 on_started: Callable[[RunRecord], None] | None = None):
        project.validate()
        self.on_started = on_started or (lambda record: None)
        self.group, self.label = group, label
        self.project = copy.deepcopy(project)
        self.dataset = dataset
        self.runs_dir = Path(runs_dir) if runs_dir else project.runs_dir()
        self.run_dir = Path(run_dir) if run_dir else None
        self.callbacks = list(callbacks)
        self.on_message = on_message or (lambda msg: None)
        self.trainer: Trainer | None = None
        self._stop = threading.Event()
        self._pause = threading.Event()  # shared with the trainer once it exists
        self._resume: Path | None = None
        self._resume_status = ""  # the resumed run's status in run.json
        #: The out-of-memory error of the last attempt, if any (the GUI offers a retry).
        self.out_of_memory: OutOfMemory | None = None
        #: Automatic retries after out-of-memory: ``{"epoch", "from", "to"}`` each.
        self.oom_retries: list[dict] = []

    @classmethod
    def resume(cls, run_dir: str | Path, *, epochs: int | None = None,
               batch_size: int | None = None, dataset: Dataset | None = None,
               callbacks: Iterable[Callback] = (),
               on_message: Callable[[str], None] | None = None,
               on_started: Callable[[RunRecord], None] | None = None) -> TrainingJob:
        """A job that continues the run in *run_dir* from its last checkpoint - after Stop, a
        crash or a kill - up to *epochs* in all (default: the run's own; more extends it),
        optionally with another *batch_size* (e.g. smaller after running out of memory).

        Raises
        ------
        RunError
            For a folder that is not a run or has no checkpoint.
        """
        run_dir = Path(run_dir)
        try:
            config = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RunError(f"{run_dir} is not a run folder (no config.json).") from None
        except (OSError, ValueError) as exc:
            raise RunError(f"The settings of run {run_dir.name} cannot be read ({exc}).") \
                from None
        project = project_from_config(config, run_dir.name)
        if epochs is not None:
            project.training.epochs = int(epochs)
        if batch_size is not None:  # e.g. smaller after running out of memory
            project.training.batch_size = int(batch_size)
        job = cls(project, dataset=dataset, run_dir=run_dir, callbacks=callbacks,
                  on_message=on_message, on_started=on_started)
        job._resume = run_dir
        job._resume_config = config
        try:  # a fold or a trial stays one after resuming
            info = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
            job.group, job.label = str(info.get("group", "")), str(info.get("label", ""))
            job._resume_status = str(info.get("status", ""))
        except (OSError, ValueError, AttributeError):
            info = {}
        derived = info.get("derived_from") if isinstance(info, dict) else None
        if isinstance(derived, dict):  # its loss and masks are not a plain run's
            how = "pruning" if derived.get("method") == "prune" else "distillation"
            raise RunError(f"Run {run_dir.name} was made by {how} from run "
                           f"{derived.get('run', '?')}; it cannot be resumed. Make it again "
                           f"(Export step, 'Make it smaller'), with more epochs if needed.")
        return job

    def request_stop(self) -> None:
        """Stop after the current batch (or before training starts). Safe from any thread."""
        self._stop.set()
        if self.trainer is not None:
            self.trainer.should_stop = True

    def set_paused(self, paused: bool) -> None:
        """Hold training after the current batch (True) or go on (False). Safe from any
        thread; a pause asked for before training starts holds it at the first batch."""
        if paused:
            self._pause.set()
        else:
            self._pause.clear()

    def _initial_net(self, spec, pre):
        """The network before training: seeded initial weights, plus any transferred ones."""
        torch.manual_seed(self.project.training.seed)  # the initial weights belong to the seed
        net = build_model(spec, pre.feature_mean, pre.feature_std)
        transfer = None
        if self.project.model.init_from:
            from ..models.transfer import start_from

            transfer = start_from(net, self.project.model.init_from)
        return net, transfer

    def _new_folder(self, dataset_name: str, model_name: str) -> Path:
        """The run folder: the one asked for (which must not hold a run) or a new one."""
        if self.run_dir is None:
            return new_run_dir(self.runs_dir, f"{dataset_name}-{model_name}")
        run_dir = self.run_dir
        if (run_dir / "run.json").exists():
            raise RunError(f"{run_dir} already holds a run. Choose an empty folder.")
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunError(f"Could not create {run_dir}: {exc.strerror or exc}.") from None
        return run_dir

    @staticmethod
    def _last_checkpoint(run_dir: Path) -> dict | None:
        path = run_dir / "checkpoint.pt"
        if not path.is_file():
            return None
        return load_checkpoint(path)

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def _load_checkpoint(self, prepared: PreparedData, fingerprint: dict) -> dict:
        """The resumed run's last checkpoint, checked against the data as it is now."""
        run_dir = self._resume
        path = run_dir / "checkpoint.pt"
        if not path.is_file():
            raise RunError(f"Run {run_dir.name} has no checkpoint yet (it stopped before its "
                           f"first epoch ended); start it again instead.")
        try:
            checkpoint = load_checkpoint(path)
        except RunError as exc:
            raise RunError(f"Run {run_dir.name} cannot be resumed: {exc}") from None
        if not isinstance(checkpoint, dict) or "training" not in checkpoint:
            raise RunError(f"Run {run_dir.name} was saved by an older TrainDesk without the "
                           f"training state; it cannot be resumed.")
        old = self._resume_config.get("data_fingerprint")
        if old and old != fingerprint:
            raise RunError(f"The data of run {run_dir.name} ({self.project.data.source}) has "
                           f"changed since it was trained; resuming would mix two datasets.")
        try:
            with np.load(run_dir / "split.npz") as saved:
                rows = {k: saved[k] for k in saved.files}
        except (OSError, ValueError):
            rows = None
        if rows is not None and not _same_rows(rows, prepared.rows):
            raise RunError(f"The data of run {run_dir.name} no longer splits the same way; it "
                           f"cannot be resumed.")
        done = int(checkpoint["epoch"])
        epochs = self.project.training.epochs
        # Killed after its last epoch's checkpoint but before it was wrapped up (final weights,
        # test metrics, status): resuming finishes it without training more.
        unfinished = done == epochs and self._resume_status != "finished"
        if done >= epochs and not unfinished:
            raise RunError(f"Run {run_dir.name} has already trained {done} epochs; give more "
                           f"epochs (e.g. {done + 10}) to extend it.")
        return checkpoint

    def run(self) -> RunResult:
        """Run the job; the run folder ends ``finished``, ``stopped`` or ``failed``.

        Raises
        ------
        TrainDeskError
            For bad data or settings (the message says what to change).
        """
        project = self.project
        group = distributed.current()
        main = distributed.is_main()  # under torchrun only rank 0 writes files and talks
        say = self.on_message if main else (lambda message: None)
        dataset = self.dataset
        if dataset is None:
            say(f"Loading {project.data.source} ...")
            dataset = load_dataset(project.data.source, project.data.read_options)
        try:
            prepared = prepare(dataset, project.data, progress=_throttled(say),
                               should_stop=self._stop.is_set)
        except DataError:
            if self._stop.is_set():  # the user pressed Stop while the data was being prepared
                raise Cancelled() from None
            raise
        if self._stop.is_set():
            raise Cancelled()
        pre = prepared.preprocessor
        # Everything that can be refused is checked before the first progress line.
        spec = build_spec(project.model, pre.model_input(), pre.n_outputs, prepared.task)
        loss_for(prepared.task, project.training.loss)
        net, transfer = self._initial_net(spec, pre)
        if transfer is not None:
            say(f"Transfer learning: {transfer.describe()}")
        device = distributed.device() if group else select_device(project.training.device)
        info = describe_device(device)
        say(f"Data: {prepared.summary.n_rows} rows -> {len(prepared.y['train'])} train, "
            f"{len(prepared.y['val'])} validation, {len(prepared.y['test'])} test; task "
            f"{prepared.task}.")
        for warning in prepared.summary.warnings:
            say(f"Note: {warning}")
        if isinstance(prepared.x["train"], ImageFiles):
            from ..training.loading import default_workers

            size = prepared.x["train"].nbytes + prepared.x["val"].nbytes
            workers = default_workers()
            how = (f"{workers} worker process(es) decode the next batches" if workers
                   else "each batch is decoded as it is needed")
            say(f"Images are decoded while training ({size / 2**30:.1f} GiB decoded would not "
                f"be held in memory): {how}.")

        fingerprint = data_fingerprint(project.data.source)  # before any folder is created
        checkpoint = None
        if self._resume is not None:
            checkpoint = self._load_checkpoint(prepared, fingerprint)
            run_dir = self._resume
        else:
            # Rank 0 makes the folder and tells the others (its error too, so none waits).
            made: tuple[str, str] = ("", "")
            if main:
                try:
                    made = (str(self._new_folder(dataset.name, spec.name)), "")
                except RunError as exc:
                    made = ("", str(exc))
            made = distributed.broadcast(made)
            if made[1]:
                raise RunError(made[1])
            run_dir = Path(made[0])
        self.run_dir = run_dir
        if transfer is not None and checkpoint is not None:
            transfer = None  # the checkpoint's weights already hold what was transferred
        config = config_dict(project)
        config["data_fingerprint"] = fingerprint
        config["resolved"] = {"target": prepared.summary.target, "task": prepared.task,
                              "features": prepared.summary.features}
        run_info = {"id": run_dir.name, "created": now_iso(), "status": "running",
                    "task": prepared.task, "model": spec.name, "device": info.label,
                    "dataset": dataset.name}
        if self.group:
            run_info.update(group=self.group, label=self.label)
        if transfer is not None:
            run_info["transfer"] = {"source": transfer.source, "loaded": len(transfer.loaded),
                                    "new": transfer.new, "frozen_epochs":
                                    project.model.freeze_epochs}
        if group is not None:
            run_info["processes"] = group.world
            say(f"Training in {group.world} processes ({group.backend}); each takes "
                f"1/{group.world} of every batch of {project.training.batch_size}.")
        if main and checkpoint is None:
            write_run_start(run_dir, config=config, rows=prepared.rows, preprocessor=pre,
                            spec=spec, info=run_info, x_test=prepared.x["test"])
            say(f"Run folder: {run_dir}")
        elif main:
            try:
                earlier = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                earlier = {}
            run_info = {**(earlier if isinstance(earlier, dict) else {}), **run_info,
                        "id": run_dir.name, "status": "running"}
            atomic_write_json(run_dir / "config.json", config, error=RunError)
            write_run_info(run_dir, run_info)
            say(f"Resuming {run_dir.name} after epoch {checkpoint['epoch']} of "
                f"{project.training.epochs}.")
        if main:
            # Listed as running from now on: after a crash the project still knows the run.
            self.on_started(RunRecord(id=run_dir.name, path=str(run_dir),
                                      created=run_info.get("created", now_iso()),
                                      status="running", task=prepared.task, model=spec.name,
                                      group=self.group, label=self.label))
        augment = None
        if prepared.summary.kind == "image":
            from ..data.augment import Augmenter, AugmentSettings

            settings = AugmentSettings.from_dict(project.data.augment)
            if settings.enabled:
                augment = Augmenter(settings, seed=project.training.seed)
                say(f"Augmenting training images: {settings.describe()}.")
        weights = None
        if project.training.class_weights == "balanced" and prepared.task == "classification":
            weights = balanced_class_weights(prepared.y["train"], pre.n_outputs)
        extra = []
        if transfer is not None and project.model.freeze_epochs > 0:
            extra.append(FreezeLoaded(body_names(net, transfer), project.model.freeze_epochs))
        try:
            while True:
                history = list(checkpoint["history"]) if checkpoint is not None else []
                writers = [RunWriter(run_dir, history), *self.callbacks] if main else []
                trainer = Trainer(net, prepared.task, project.training,
                                  callbacks=[*extra, *writers],
                                  target_scale=pre.target_std, device=device, augment=augment,
                                  class_weights=weights)
                trainer.paused = self._pause
                self.trainer = trainer
                if self._stop.is_set():
                    trainer.should_stop = True
                try:
                    fit = trainer.fit(prepared.x["train"], prepared.y["train"],
                                      prepared.x["val"], prepared.y["val"], resume=checkpoint)
                    break
                except OutOfMemory as oom:
                    self.out_of_memory = oom
                    if (not project.training.oom_retry or oom.batch_size <= 1
                            or self._stop.is_set()):
                        raise
                # Retry with half the batch from the last checkpoint (or from the start).
                oom = self.out_of_memory
                smaller = oom.smaller_batch
                self.oom_retries.append({"epoch": oom.epoch, "from": oom.batch_size,
                                         "to": smaller})
                project.training.batch_size = smaller
                config["training"]["batch_size"] = smaller
                run_info["oom_retries"] = list(self.oom_retries)
                if main:
                    atomic_write_json(run_dir / "config.json", config, error=RunError)
                    write_run_info(run_dir, run_info)
                checkpoint = self._last_checkpoint(run_dir)
                if checkpoint is None:  # nothing saved yet: the same fresh start as before
                    net, _ = self._initial_net(spec, pre)
                    if extra:
                        extra = [FreezeLoaded(body_names(net, transfer),
                                              project.model.freeze_epochs)]
                where = (f"from epoch {checkpoint['epoch'] + 1}" if checkpoint is not None
                         else "from the start")
                say(f"Out of memory with batches of {oom.batch_size}: retrying {where} with "
                    f"batches of {smaller}.")
            if main:
                save_weights(run_dir, net)
            examples = (None if prepared.summary.kind == "image" else
                        dataset.frame.iloc[prepared.rows["test"]].reset_index(drop=True))
            evaluation = evaluate_arrays(net, pre, prepared.x["test"], prepared.y["test"],
                                         "test split", examples)
        except BaseException as exc:
            reason = str(exc) if isinstance(exc, TrainDeskError) else f"{type(exc).__name__}: {exc}"
            try:
                if main:
                    write_run_info(run_dir, {**run_info, "status": "failed", "error": reason})
            except TrainDeskError:
                pass  # the original error matters more than this one
            raise
        status = "stopped" if fit.stopped else "finished"
        keys = (("accuracy", "f1_macro") if prepared.task == "classification"
                else ("mae", "rmse", "r2"))
        metrics = {
            "task": prepared.task,
            "test": {k: evaluation.metrics[k] for k in keys},
            "n_test": evaluation.n,
            "train_seconds": fit.seconds,
            "samples_per_second": fit.samples_per_second,
            "device": fit.device,
            "epochs_completed": fit.epochs_completed,
            "best_epoch": fit.best_epoch,
            "early_stopped": fit.early_stopped,
            "status": status,
            "batch_size": project.training.batch_size,
            "oom_retries": list(self.oom_retries),
        }
        if not main:
            return RunResult(run_dir=run_dir, status=status, metrics=metrics, fit=fit,
                             evaluation=evaluation, net=net, prepared=prepared,
                             model_name=spec.name, group=self.group, label=self.label)
        atomic_write_json(run_dir / "metrics.json", metrics, error=RunError)
        write_run_info(run_dir, {**run_info, "status": status,
                                 "epochs_completed": fit.epochs_completed,
                                 "best_epoch": fit.best_epoch})
        early = (" (early stopping: the validation loss stopped improving)"
                 if fit.early_stopped else "")
        say(f"Training {status} after {fit.epochs_completed} epoch(s) in {fit.seconds:.1f} s"
            f"{early}.")
        return RunResult(run_dir=run_dir, status=status, metrics=metrics, fit=fit,
                         evaluation=evaluation, net=net, prepared=prepared, model_name=spec.name,
                         group=self.group, label=self.label)


class JobQueue:
    """Base of runs made one after another (cross-validation folds, search trials): Stop and
    Pause reach the run in progress, and a stopped queue starts no more runs."""

    def __init__(self, on_started: Callable[[RunRecord], None] | None = None):
        self.job: TrainingJob | None = None
        self._stop = threading.Event()
        self._paused = False
        self.on_started = on_started

    def request_stop(self) -> None:
        """Stop the run in progress after its current batch and start no more. Safe from any
        thread."""
        self._stop.set()
        if self.job is not None:
            self.job.request_stop()

    def set_paused(self, paused: bool) -> None:
        self._paused = paused
        if self.job is not None:
            self.job.set_paused(paused)

    def _enqueue(self, job: TrainingJob) -> TrainingJob:
        """Make *job* the current one, paused or stopped as the queue is."""
        self.job = job
        if self.on_started is not None:
            job.on_started = self.on_started
        job.set_paused(self._paused)
        if self._stop.is_set():
            job.request_stop()
        return job

    def _load(self, project: Project, dataset: Dataset | None,
              say: Callable[[str], None]) -> Dataset:
        if dataset is not None:
            return dataset
        say(f"Loading {project.data.source} ...")
        return load_dataset(project.data.source, project.data.read_options)


def _same_rows(a: dict, b: dict) -> bool:
    return set(a) == set(b) and all(np.array_equal(np.asarray(a[k]), np.asarray(b[k]))
                                    for k in a)


def balanced_class_weights(y: np.ndarray, n_classes: int) -> list[float]:
    """``n / (k * count_c)`` per class, as scikit-learn's ``class_weight="balanced"``; a class
    absent from training gets weight 1."""
    counts = np.bincount(np.asarray(y, dtype=np.int64), minlength=n_classes).astype(np.float64)
    present = counts > 0
    weights = np.ones(n_classes)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return [float(w) for w in weights]


def _throttled(say: Callable[[str], None]) -> Callable[[float, str], None]:
    """Turn fine-grained progress into a message every 10%, for logs that people read."""
    last = [-1]

    def report(fraction: float, message: str) -> None:
        step = int(fraction * 10)
        if step != last[0]:
            last[0] = step
            say(f"{message} ({fraction:.0%})" if 0 < fraction < 1 else message)
    return report


def apply_suggestions(project: Project, dataset: Dataset,
                      summary: DataSummary | None = None) -> None:
    """Set the project's model and schedule to what suits *dataset* (data settings are kept).

    Pass *summary* when it was just resolved, to save resolving the data a second time.

    Raises
    ------
    TrainDeskError
        If the data settings do not resolve against the dataset.
    """
    from ..data.dataset import resolve
    from ..models.presets import resolve_preset, suggest_settings, suggested_lr

    if summary is None:
        summary = resolve(dataset, project.data)
    share = 1.0 - project.data.split.val_fraction - project.data.split.test_fraction
    from ..data.dataset import estimate_model_input

    model_input = estimate_model_input(dataset, summary, project.data)
    model, schedule = suggest_settings(int(summary.n_rows * share), model_input)
    # What to start from is the user's choice, not part of a suggested network.
    model.init_from, model.freeze_epochs = project.model.init_from, project.model.freeze_epochs
    old_lr = suggested_lr(resolve_preset(project.model, model_input))
    if project.training.lr == old_lr:
        project.training.lr = suggested_lr(model.preset)
    project.model = model
    project.training.batch_size = schedule["batch_size"]
    project.training.epochs = schedule["epochs"]
