"""One training job from a project to a finished run folder - shared by the GUI and the CLI."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.dataset import Dataset, DataSummary, PreparedData, load_dataset, prepare
from ..data.health import health_record
from ..data.rowhash import row_hashes
from ..data.streaming import ImageFiles
from ..errors import Cancelled, DataError, NothingToDo, OutOfMemory, RunError, TrainDeskError
from ..evaluation import yardstick
from ..evaluation.evaluate import Evaluation, evaluate_arrays
from ..labels import default_run_name
from ..models import backbones
from ..models.presets import build_spec
from ..models.spec import TrainDeskNet, build_model
from ..models.tabular import fit_to_inputs
from ..runs.folder import (
    REFIT_CHECKPOINT,
    RunFolder,
    config_dict,
    data_fingerprint,
    now_iso,
    project_from_config,
)
from ..runs.project import Project, RunRecord
from ..runs.weights import state_digest
from ..system.device import describe_device, select_device
from ..system.resources import traindesk_home
from ..training import distributed
from ..training.callbacks import Callback, FreezeLoaded
from ..training.checkpoint import RunWriter
from ..training.trainer import FitResult, Trainer, loss_for
from ..training.transfer import body_names
from . import refit


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
    name: str = ""

    def record(self) -> RunRecord:
        """The entry for the project's list of runs."""
        return RunRecord(id=self.run_dir.name, path=str(self.run_dir), created=now_iso(),
                         status=self.status, task=self.evaluation.task, model=self.model_name,
                         metrics=dict(self.metrics.get("test", {})), group=self.group,
                         label=self.label, epochs=self.fit.epochs_completed,
                         seconds=round(self.fit.seconds, 2), name=self.name)

    def best_val_metric(self) -> float:
        """The validation metric (accuracy or MAE) of the epoch whose weights were kept."""
        key = "val_" + ("accuracy" if self.evaluation.task == "classification" else "mae")
        kept = [h for h in self.fit.history if h.get("epoch") == self.fit.best_epoch]
        entry = kept[-1] if kept else (self.fit.history[-1] if self.fit.history else {})
        return float(entry.get(key, float("nan")))


@dataclass
class _Setup:
    """What a job has ready before its run folder exists."""

    dataset: Dataset
    prepared: PreparedData
    spec: Any
    net: TrainDeskNet
    transfer: Any
    device: Any
    device_label: str
    fingerprint: dict


def _rank_facts(setup: _Setup, checkpoint: dict | None) -> dict[str, str]:
    """What every process of a group must share: the data, its split, the checkpoint."""
    rows = setup.prepared.rows
    split = hashlib.blake2b(digest_size=16)
    for part in sorted(rows):
        split.update(part.encode())
        split.update(np.ascontiguousarray(rows[part], dtype=np.int64).tobytes())
    return {"data": str(setup.fingerprint.get("sha256", "")), "data_split": split.hexdigest(),
            "checkpoint": state_digest(checkpoint) if checkpoint is not None else ""}


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
    name : str
        The run's human name (kept in ``run.json``); empty: one like "Run 3 · small MLP",
        numbered after the runs the project and its runs folder already hold.
    on_started : callable, optional
        ``on_started(record)`` with a :class:`~ml.runs.project.RunRecord` (status ``running``)
        once the run folder holds the run's description, before the first epoch.
    """

    def __init__(self, project: Project, *, dataset: Dataset | None = None,
                 runs_dir: Path | None = None, run_dir: Path | None = None,
                 callbacks: Iterable[Callback] = (),
                 on_message: Callable[[str], None] | None = None,
                 group: str = "", label: str = "", name: str = "",
                 on_started: Callable[[RunRecord], None] | None = None):
        project.validate()
        self.on_started = on_started or (lambda record: None)
        self.group, self.label = group, label
        self.name = " ".join(str(name).split())
        self.project = copy.deepcopy(project)
        self.dataset = dataset
        self.runs_dir = Path(runs_dir) if runs_dir else project.runs_dir()
        self.run_dir = Path(run_dir) if run_dir else None
        self.callbacks = list(callbacks)
        self.on_message = on_message or (lambda msg: None)
        self.trainer: Trainer | None = None
        self._stop = threading.Event()
        self._pause = threading.Event()  # shared with the trainer once it exists
        #: The run being continued (see :meth:`resume`), and the settings it changes.
        self._resume: RunFolder | None = None
        self._changes: dict[str, tuple[Any, str]] = {}
        #: The out-of-memory error of the last attempt, if any (the GUI offers a retry).
        self.out_of_memory: OutOfMemory | None = None
        #: Automatic retries after out-of-memory: ``{"epoch", "from", "to"}`` each.
        self.oom_retries: list[dict] = []
        #: The finished final fit (``run.json``'s ``refit``; see :mod:`ml.jobs.refit`).
        self.refit: dict | None = None

    # -- resuming -------------------------------------------------------------------------------
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
        NothingToDo
            If the run has finished every epoch asked for (resuming it again is a no-op).
        RunError
            For a folder that is not a run, is from a newer TrainDesk, or cannot be resumed.
        """
        folder = RunFolder.open(run_dir)
        info = folder.info
        derived = info.get("derived_from")
        if isinstance(derived, dict):  # its loss and masks are not a plain run's
            how = "pruning" if derived.get("method") == "prune" else "distillation"
            raise RunError(f"Run {folder.name} was made by {how} from run "
                           f"{derived.get('run', '?')}; it cannot be resumed. Make it again "
                           f"(Export step, 'Make it smaller'), with more epochs if needed.")
        project = project_from_config(folder.settings(), folder.name)
        _refuse_finished(folder, None if epochs is None else int(epochs))
        job = cls(project, dataset=dataset, run_dir=folder.path, callbacks=callbacks,
                  on_message=on_message, on_started=on_started,
                  group=str(info.get("group", "")), label=str(info.get("label", "")),
                  name=str(info.get("name") or ""))
        job._resume = folder
        if epochs is not None:
            job._change("training.epochs", int(epochs), "resumed with more epochs")
        if batch_size is not None:  # e.g. smaller after running out of memory
            job._change("training.batch_size", int(batch_size), "resumed with another batch size")
        return job

    def _change(self, setting: str, value: Any, why: str) -> None:
        """Set *setting* for this job; a resumed run records it in its run.json."""
        section, _, key = setting.partition(".")
        setattr(getattr(self.project, section), key, value)
        self._changes[setting] = (value, why)

    # -- control --------------------------------------------------------------------------------
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

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    # -- the run, step by step ------------------------------------------------------------------
    def run(self) -> RunResult:
        """Run the job; the run folder ends ``finished``, ``stopped`` or ``failed``.

        Raises
        ------
        TrainDeskError
            For bad data or settings (the message says what to change).
        """
        main = distributed.is_main()  # under torchrun only rank 0 writes files and talks
        say = self.on_message if main else (lambda message: None)
        setup = self._set_up(say)
        folder, checkpoint = self._open_folder(setup)
        transfer = None if checkpoint is not None else setup.transfer  # already in its weights
        run_info = self._describe(setup, folder, checkpoint, transfer, main, say)
        classic = self._start_yardstick(setup, main)
        try:
            fit, net = self._train(setup, folder, checkpoint, transfer, run_info, main, say)
            fit, net = self._final_fit(setup, folder, fit, net, main, say)
            if backbones.is_lora(net):
                if main:
                    folder.save_adapter(*backbones.lora_state(net))
                backbones.merge_lora(net)
            if main:
                folder.save_weights(net)
            evaluation = self._evaluate(setup, net)
            if classic is not None and not fit.stopped:
                self._finish_yardstick(classic, folder, evaluation, say)
        except BaseException as exc:
            if main:
                _mark_failed(folder, exc)
            raise
        finally:
            if classic is not None:
                classic.close()  # ended with the run, whatever became of it
        return self._wrap_up(setup, folder, fit, net, evaluation, main, say)

    def _start_yardstick(self, setup: _Setup, main: bool) -> yardstick.Background | None:
        """Start fitting the classic model this run is compared with (see
        :mod:`ml.evaluation.yardstick`): rank 0 only, not for the trials of a search or the
        folds of a cross-validation (their summary compares), and not when switched off."""
        if not (main and self.project.training.yardstick) or self.group:
            return None
        return yardstick.Background.start(getattr(setup.dataset, "frame", None), setup.prepared,
                                          seed=self.project.data.split.seed)

    def _finish_yardstick(self, classic: yardstick.Background, folder: RunFolder,
                          evaluation: Evaluation, say: Callable[[str], None]) -> None:
        key = "accuracy" if evaluation.task == "classification" else "r2"
        result = classic.finish(evaluation.metrics[key], self._stop.is_set, say)
        if result is not None:
            yardstick.write(folder.path, result)
            evaluation.yardstick = result
            say(result.text())

    def _set_up(self, say: Callable[[str], None]) -> _Setup:
        """Load and prepare the data and build the network: everything that can be refused is
        checked here, before any folder is made or progress is shown."""
        project = self.project
        dataset = self.dataset
        if dataset is None:
            say(f"Loading {project.data.source} ...")
            dataset = load_dataset(project.data.source, project.data.read_options)
        backbone = _backbone(project)
        try:
            prepared = prepare(dataset, project.data, progress=_throttled(say),
                               should_stop=self._stop.is_set, backbone=backbone)
        except DataError:
            if self._stop.is_set():  # the user pressed Stop while the data was being prepared
                raise Cancelled() from None
            raise
        if self._stop.is_set():
            raise Cancelled()
        pre = prepared.preprocessor
        spec = build_spec(project.model, pre.model_input(), pre.n_outputs, prepared.task)
        loss_for(prepared.task, project.training.loss)
        net, transfer = self._initial_net(spec, prepared)
        if transfer is not None:
            say(f"Transfer learning: {transfer.describe()}")
        device = (distributed.device() if distributed.current()
                  else select_device(project.training.device))
        _say_data(prepared, say)
        return _Setup(dataset=dataset, prepared=prepared, spec=spec, net=net, transfer=transfer,
                      device=device, device_label=describe_device(device).label,
                      fingerprint=data_fingerprint(project.data.source))

    def _initial_net(self, spec, prepared: PreparedData):
        """The network before training: seeded initial weights, number embeddings' bins set
        from the training inputs, plus any transferred weights."""
        torch.manual_seed(self.project.training.seed)  # the initial weights belong to the seed
        pre = prepared.preprocessor
        net = build_model(spec, pre.feature_mean, pre.feature_std)
        fit_to_inputs(net, prepared.x["train"])
        if net.has_backbone:
            backbones.load_pretrained(net, spec.layers)
        transfer = None
        if self.project.model.init_from:
            from ..training.transfer import start_from

            transfer = start_from(net, self.project.model.init_from)
        if net.has_backbone:
            _set_mode(net, self.project.model)
        return net, transfer

    def _open_folder(self, setup: _Setup) -> tuple[RunFolder, dict | None]:
        """The run folder and, when resuming, its last checkpoint. A new folder is made by
        rank 0, which tells the others (its error too, so none waits)."""
        if self._resume is not None:
            folder = self._resume
            checkpoint = self._resumable_checkpoint(folder, setup)
        else:
            made: tuple[str, str] = ("", "")
            if distributed.is_main():
                try:
                    made = (str(self._new_folder(setup).path), "")
                except RunError as exc:
                    made = ("", str(exc))
            made = distributed.broadcast(made)
            if made[1]:
                raise RunError(made[1])
            folder, checkpoint = RunFolder(Path(made[0])), None
        self.run_dir = folder.path
        return folder, checkpoint

    def _new_folder(self, setup: _Setup) -> RunFolder:
        """The run folder: the one asked for (which must not hold a run) or a new one."""
        if self.run_dir is None:
            return RunFolder.create(self.runs_dir, f"{setup.dataset.name}-{setup.spec.name}")
        return RunFolder.claim(self.run_dir)

    def _resumable_checkpoint(self, folder: RunFolder, setup: _Setup) -> dict:
        """The resumed run's last checkpoint, checked against the data as it is now."""
        try:
            checkpoint = folder.load_checkpoint()
        except RunError as exc:
            raise RunError(f"Run {folder.name} cannot be resumed: {exc}") from None
        if checkpoint is None:
            raise RunError(f"Run {folder.name} has no checkpoint yet (it stopped before its "
                           f"first epoch ended); start it again instead.")
        if not isinstance(checkpoint, dict) or "training" not in checkpoint:
            raise RunError(f"Run {folder.name} was saved by an older TrainDesk without the "
                           f"training state; it cannot be resumed.")
        old = folder.started_config.get("data_fingerprint")
        if old and old != setup.fingerprint:
            raise RunError(f"The data of run {folder.name} ({self.project.data.source}) has "
                           f"changed since it was trained; resuming would mix two datasets.")
        try:
            rows = folder.split_rows()
        except RunError:
            rows = None
        if rows is not None and not _same_rows(rows, setup.prepared.rows):
            raise RunError(f"The data of run {folder.name} no longer splits the same way; it "
                           f"cannot be resumed.")
        # The classes in the order the network's outputs learnt them: a TrainDesk that orders
        # labels differently would otherwise go on training with every class swapped.
        learnt = list(folder.preprocessor().class_names or [])
        if learnt != list(setup.prepared.preprocessor.class_names or []):
            raise RunError(f"Run {folder.name} learnt its classes in another order than this "
                           f"TrainDesk reads them from the data; it cannot be resumed. Train "
                           f"it again.")
        return checkpoint

    def _describe(self, setup: _Setup, folder: RunFolder, checkpoint: dict | None, transfer,
                  main: bool, say: Callable[[str], None]) -> dict:
        """Write what the run is (a new run's description, or a resumed run's status and
        changed settings) and list it as running; return its run.json fields."""
        project, prepared = self.project, setup.prepared
        run_info = {"id": folder.name, "status": "running", "task": prepared.task,
                    "model": setup.spec.name, "device": setup.device_label,
                    "dataset": setup.dataset.name}
        if self.group:
            run_info.update(group=self.group, label=self.label)
        if checkpoint is None and not self.name:
            self.name = default_run_name(self._run_number(), setup.spec.name, self.label,
                                         backbone=project.model.backbone)
        if self.name:  # a resumed run written before names keeps its readable fallback
            run_info["name"] = self.name
        if transfer is not None:
            run_info["transfer"] = {"source": transfer.source, "loaded": len(transfer.loaded),
                                    "new": transfer.new, "frozen_epochs":
                                    project.model.freeze_epochs}
        group = distributed.current()
        if group is not None:
            run_info["processes"] = group.world
            run_info["ranks_agree"] = distributed.agree(_rank_facts(setup, checkpoint))
            say(f"Training in {group.world} processes ({group.backend}); each takes "
                f"1/{group.world} of every batch of {project.training.batch_size}.")
        if main and checkpoint is None:
            config = config_dict(project)
            config["data_fingerprint"] = setup.fingerprint
            config["resolved"] = {"target": prepared.summary.target, "task": prepared.task,
                                  "features": prepared.summary.features}
            run_info["created"] = now_iso()
            folder.start(config=config, rows=prepared.rows, preprocessor=prepared.preprocessor,
                         spec=setup.spec, info=run_info, x_test=prepared.x["test"],
                         row_hashes=split_row_hashes(setup.dataset, prepared))
            # The data's health as it was trained on, kept with the run: its report then says
            # what this run's check found (or that it failed), not what a later check finds.
            folder.record_measurement("health", health_record(setup.dataset, project.data,
                                                              prepared.summary))
            say(f"Run folder: {folder.path}")
        elif main:
            for setting, (value, why) in self._changes.items():
                folder.change(setting, value, why)
            folder.update(**run_info)
            say(f"Resuming {folder.name} after epoch {checkpoint['epoch']} of "
                f"{project.training.epochs}.")
        if main:
            # Listed as running from now on: after a crash the project still knows the run.
            self.on_started(RunRecord(id=folder.name, path=str(folder.path),
                                      created=folder.info.get("created", now_iso()),
                                      status="running", task=prepared.task,
                                      model=setup.spec.name, group=self.group,
                                      label=self.label, name=self.name))
        return run_info

    def _run_number(self) -> int:
        """The number of a new run: one more than the runs the project lists or its runs
        folder holds (whichever knows more; a headless run has no project list)."""
        try:
            on_disk = sum(1 for entry in self.runs_dir.iterdir() if RunFolder.is_run(entry))
        except OSError:
            on_disk = 0
        return max(len(self.project.runs), on_disk) + 1

    def _train(self, setup: _Setup, folder: RunFolder, checkpoint: dict | None, transfer,
               run_info: dict, main: bool, say: Callable[[str], None]):
        """Fit the network; after running out of memory, retry with half the batch from the
        last checkpoint (or from the start) while the settings allow. Returns ``(fit, net)``."""
        project, prepared, net = self.project, setup.prepared, setup.net
        if net.has_backbone and project.model.train_mode == "probe":
            return self._probe(setup, folder, checkpoint, main, say)
        augment, weights = _augmenter(project, prepared, say), _class_weights(project, prepared)
        if checkpoint is None and _warm_start(net, project):
            self._warm_head(setup, say)
        extra = _freeze(net, transfer, project) + _unfreeze(net, project)
        while True:
            history = list(checkpoint["history"]) if checkpoint is not None else []
            writers = [RunWriter(folder, history), *self.callbacks] if main else []
            trainer = Trainer(net, prepared.task, _first_fit_config(project, folder, checkpoint),
                              callbacks=[*extra, *writers],
                              target_scale=prepared.preprocessor.target_std,
                              device=setup.device, augment=augment, class_weights=weights)
            trainer.paused = self._pause
            self.trainer = trainer
            if self._stop.is_set():
                trainer.should_stop = True
            try:
                return trainer.fit(prepared.x["train"], prepared.y["train"], prepared.x["val"],
                                   prepared.y["val"], resume=checkpoint), net
            except OutOfMemory as oom:
                self.out_of_memory = oom
                if (not project.training.oom_retry or oom.batch_size <= 1
                        or self._stop.is_set()):
                    raise
            checkpoint = self._halve_batch(folder, main, say)
            if checkpoint is None:  # nothing saved yet: the same fresh start as before
                net, _ = self._initial_net(setup.spec, prepared)
                extra = _freeze(net, transfer, project) + _unfreeze(net, project)

    def _final_fit(self, setup: _Setup, folder: RunFolder, fit: FitResult, net: TrainDeskNet,
                   main: bool, say: Callable[[str], None]) -> tuple[FitResult, TrainDeskNet]:
        """Train the network again on the training and validation rows for the epochs the
        first fit's validation chose (:mod:`ml.jobs.refit`). Returns the first fit and the
        final network; when stopped, the first fit (marked stopped) and its best network."""
        project, prepared = self.project, setup.prepared
        epochs = refit.refit_epochs(project, prepared, fit, grouped=bool(self.group),
                                    from_scratch=not (net.has_backbone or project.model.init_from))
        if not epochs:
            return fit, net
        x = np.concatenate([prepared.x["train"], prepared.x["val"]])
        y = np.concatenate([prepared.y["train"], prepared.y["val"]])
        record = {"epochs": epochs, "rows": len(y), "status": "running",
                  "budget": project.training.epochs}
        resume = refit.resumable(folder, epochs) if self._resume is not None else None
        if main:
            folder.update(refit=record)
        say(f"Final fit: training again on all {len(y):,} training and validation rows for "
            f"{epochs} epoch{'s' if epochs != 1 else ''} (the count validation chose), so the "
            f"model learns from every row but the test rows ...")
        final, _ = self._initial_net(setup.spec, prepared)  # the same start as the first fit
        trainer = Trainer(final, prepared.task, refit.refit_config(project.training, epochs),
                          callbacks=[refit.RefitWriter(folder, epochs, say)] if main else [],
                          target_scale=prepared.preprocessor.target_std, device=setup.device,
                          class_weights=_class_weights(project, prepared))
        trainer.paused = self._pause
        self.trainer = trainer
        if self._stop.is_set():
            trainer.should_stop = True
        second = trainer.fit(x, y, resume=resume)
        if second.stopped:
            if main:
                folder.update(refit={**record, "status": "stopped"})
            return dataclasses.replace(fit, stopped=True), net
        if main:
            folder.update(refit={**record, "status": "done", "seconds": second.seconds})
            folder.drop_checkpoint(REFIT_CHECKPOINT)
        self.refit = {**record, "status": "done", "seconds": second.seconds}
        return fit, final

    def _probe(self, setup: _Setup, folder: RunFolder, checkpoint: dict | None, main: bool,
               say: Callable[[str], None]):
        """Linear probe: the frozen backbone's features (cached on disk), then the head trained
        on them alone; the trained head goes back under the backbone. Returns ``(fit, net)``."""
        from ..training.pretrained import put_head

        project, net = self.project, setup.net
        history = list(checkpoint["history"]) if checkpoint is not None else []
        writers = [RunWriter(folder, history), *self.callbacks] if main else []
        say(f"Linear probe: training the head on {int(net.spec.layers[0]['feature_dim'])} "
            f"features per example (the backbone stays as it is; augmentation is not used).")
        fit, head = self._fit_head(setup, project.training, writers, checkpoint, say)
        put_head(net, head)
        return fit, net

    def _fit_head(self, setup: _Setup, training, callbacks: list, checkpoint: dict | None,
                  say: Callable[[str], None]):
        """Train the head of the setup's network on the frozen backbone's features of the
        training and validation splits (computed once, then read from the cache). Returns
        ``(fit, head)``; the head is a network of its own."""
        from ..training.pretrained import features, head_network

        prepared, net = setup.prepared, setup.net
        cache = traindesk_home() / "cache" / "features"
        said = []

        def progress(fraction: float, message: str) -> None:
            if not said:
                said.append(True)
                say(f"{message} (once: they are cached for the next run) ...")

        feats = {part: features(net, prepared.x[part], device=setup.device, cache_dir=cache,
                                progress=progress, should_stop=self._stop.is_set)
                 for part in ("train", "val")}
        head = head_network(net)
        trainer = Trainer(head, prepared.task, training, callbacks=callbacks,
                          target_scale=prepared.preprocessor.target_std, device=setup.device,
                          class_weights=_class_weights(self.project, prepared))
        trainer.paused = self._pause
        self.trainer = trainer
        if self._stop.is_set():
            trainer.should_stop = True
        fit = trainer.fit(feats["train"], prepared.y["train"], feats["val"], prepared.y["val"],
                          resume=checkpoint)
        return fit, head

    def _warm_head(self, setup: _Setup, say: Callable[[str], None]) -> None:
        """Fine-tuning and LoRA start from a trained head: a linear probe on the cached features
        first (seconds), so the backbone's first unfrozen epochs are not spent undoing what a
        random head's gradients tell them (linear probing, then fine-tuning: Kumar et al., ICLR
        2022)."""
        from ..models.presets import backbone_schedule
        from ..training.pretrained import put_head

        schedule = backbone_schedule("probe", len(setup.prepared.y["train"]))
        training = dataclasses.replace(self.project.training, **schedule)
        say(f"Training the head on the backbone's features first ({schedule['epochs']} quick "
            f"epochs), then the backbone itself ...")
        fit, head = self._fit_head(setup, training, [], None, say)
        if fit.stopped:
            raise Cancelled()
        put_head(setup.net, head)

    def _halve_batch(self, folder: RunFolder, main: bool,
                     say: Callable[[str], None]) -> dict | None:
        """Record an out-of-memory retry with half the batch; return the checkpoint to go on
        from (``None``: from the start)."""
        oom = self.out_of_memory
        smaller = oom.smaller_batch
        self.oom_retries.append({"epoch": oom.epoch, "from": oom.batch_size, "to": smaller})
        self.project.training.batch_size = smaller
        if main:
            folder.change("training.batch_size", smaller, "out of memory: half the batch")
            folder.update(oom_retries=list(self.oom_retries))
        checkpoint = folder.load_checkpoint()
        where = (f"from epoch {checkpoint['epoch'] + 1}" if checkpoint is not None
                 else "from the start")
        say(f"Out of memory with batches of {oom.batch_size}: retrying {where} with batches "
            f"of {smaller}.")
        return checkpoint

    def _evaluate(self, setup: _Setup, net: TrainDeskNet) -> Evaluation:
        prepared = setup.prepared
        x = prepared.x["test"]
        examples = (x if prepared.summary.kind == "image" else
                    setup.dataset.frame.iloc[prepared.rows["test"]].reset_index(drop=True))
        if net.has_backbone and self.project.model.train_mode == "probe":
            # The backbone is as it was: its cached features of the test split through the
            # head give the whole network's outputs, and a rerun no backbone pass at all.
            from ..training.pretrained import features, head_network

            x = features(net, x, device=setup.device, should_stop=self._stop.is_set,
                         cache_dir=traindesk_home() / "cache" / "features")
            net = head_network(net)
        return evaluate_arrays(net, prepared.preprocessor, x, prepared.y["test"], "test split",
                               examples)

    def _wrap_up(self, setup: _Setup, folder: RunFolder, fit: FitResult, net: TrainDeskNet,
                 evaluation: Evaluation, main: bool, say: Callable[[str], None]) -> RunResult:
        """Write the test metrics and the final status; say how it went."""
        status = "stopped" if fit.stopped else "finished"
        task = setup.prepared.task
        keys = ("accuracy", "f1_macro") if task == "classification" else ("mae", "rmse", "r2")
        metrics = {
            "task": task,
            "test": {k: evaluation.metrics[k] for k in keys},
            "n_test": evaluation.n,
            "train_seconds": fit.seconds,
            "samples_per_second": fit.samples_per_second,
            "device": fit.device,
            "epochs_completed": fit.epochs_completed,
            "best_epoch": fit.best_epoch,
            "early_stopped": fit.early_stopped,
            "status": status,
            "batch_size": self.project.training.batch_size,
            "oom_retries": list(self.oom_retries),
        }
        if self.refit is not None:
            metrics["refit"] = dict(self.refit)
        if main:
            folder.write_metrics(metrics)
            folder.update(status=status, epochs_completed=fit.epochs_completed,
                          best_epoch=fit.best_epoch)
            early = (" (early stopping: the validation loss stopped improving)"
                     if fit.early_stopped else "")
            final = (f", then {self.refit['epochs']} on all {self.refit['rows']:,} training "
                     f"and validation rows in {self.refit['seconds']:.1f} s" if self.refit else "")
            say(f"Training {status} after {fit.epochs_completed} epoch(s) in "
                f"{fit.seconds:.1f} s{early}{final}.")
        return RunResult(run_dir=folder.path, status=status, metrics=metrics, fit=fit,
                         evaluation=evaluation, net=net, prepared=setup.prepared,
                         model_name=setup.spec.name, group=self.group, label=self.label,
                         name=self.name)

    # -- the learning-rate test -----------------------------------------------------------------
    def find_lr(self, *, should_stop: Callable[[], bool] | None = None,
                progress: Callable[[float, str], None] | None = None, **options):
        """The learning-rate range test (:func:`ml.training.lrfinder.find_lr`) on this job's
        prepared training split and initial network; no run folder is made and the project is
        not changed. *options* (``start``, ``end``, ``steps``) go to the finder.

        Raises
        ------
        TrainDeskError
            For data or settings a run would refuse, or a curve that cannot be read.
        """
        from ..training.lrfinder import find_lr

        setup = self._set_up(self.on_message)
        prepared, project = setup.prepared, self.project

        def stop() -> bool:
            return self._stop.is_set() or bool(should_stop and should_stop())

        net, x, augment = setup.net, prepared.x["train"], _augmenter(project, prepared,
                                                                      lambda message: None)
        if net.has_backbone and project.model.train_mode in ("probe", "finetune"):
            # The head learns first over a frozen backbone (a probe, and fine-tuning's first
            # epochs): test the head on the backbone's cached features - seconds, not minutes.
            from ..training.pretrained import features, head_network

            x = features(net, x, device=setup.device, should_stop=stop, progress=progress,
                         cache_dir=traindesk_home() / "cache" / "features")
            net, augment = head_network(net), None
        return find_lr(net, prepared.task, project.training, x, prepared.y["train"],
                       device=setup.device, should_stop=stop, progress=progress,
                       class_weights=_class_weights(project, prepared), augment=augment,
                       **options)


def _backbone(project: Project):
    """The pretrained backbone the project names (its files checked), or None."""
    if not project.model.backbone:
        return None
    return backbones.resolve(project.model.backbone)


def _set_mode(net: TrainDeskNet, model) -> None:
    """Prepare a backbone network for its way of training (frozen for a probe, adapters for
    LoRA; fine-tuning freezes and unfreezes as it goes)."""
    if model.train_mode == "probe":
        backbones.freeze_backbones(net)
    elif model.train_mode == "lora":
        backbones.add_lora(net, model.lora_rank)


def _warm_start(net: TrainDeskNet, project: Project) -> bool:
    """Whether the run trains a backbone's head on cached features before the backbone
    itself: fine-tuning and LoRA, unless the head comes from an earlier run."""
    return (net.has_backbone and project.model.train_mode in ("finetune", "lora")
            and not project.model.init_from)


def _unfreeze(net: TrainDeskNet, project: Project) -> list[Callback]:
    """Fine-tuning a backbone: head first, then gradual unfreezing."""
    if not net.has_backbone or project.model.train_mode != "finetune":
        return []
    from ..training.pretrained import GradualUnfreeze

    return [GradualUnfreeze(project.model.head_epochs)]


def _first_fit_config(project: Project, folder: RunFolder, checkpoint: dict | None):
    """The first fit's settings. A run that got to its final fit (then stopped or was killed)
    had ended its first fit at the checkpoint's epoch, early stopping included: it is not
    trained further, unless the epoch budget changed since."""
    record = folder.info.get("refit") if checkpoint is not None else None
    if (isinstance(record, dict) and record.get("status") in ("running", "stopped")
            and record.get("budget") == project.training.epochs):
        return dataclasses.replace(project.training, epochs=int(checkpoint["epoch"]))
    return project.training


def _refuse_finished(folder: RunFolder, epochs: int | None) -> None:
    """Refuse to resume a run that has nothing left to train.

    A finished run (its every epoch, or stopped early by early stopping) raises
    :class:`NothingToDo` unless *epochs* asks for more than it has trained. A run killed after
    its last checkpoint but before its wrap-up (final weights, test metrics, status) is not
    finished: resuming it finishes it without training more.
    """
    done = folder.info.get("epochs_completed")
    if not isinstance(done, int) or isinstance(done, bool):
        done = len(folder.read_history())
    if folder.status == "finished" and (epochs is None or epochs <= done):
        raise NothingToDo(f"Run {folder.name} has already trained {done} epochs; nothing to "
                          f"do. Give more epochs (e.g. --epochs {done + 10}) to extend it.")
    if epochs is not None and epochs < done:
        raise RunError(f"Run {folder.name} has already trained {done} epochs; give more "
                       f"epochs (e.g. {done + 10}) to extend it.")


def _mark_failed(folder: RunFolder, exc: BaseException) -> None:
    reason = str(exc) if isinstance(exc, TrainDeskError) else f"{type(exc).__name__}: {exc}"
    try:
        folder.update(status="failed", error=reason)
    except TrainDeskError:
        pass  # the original error matters more than this one


def _say_data(prepared: PreparedData, say: Callable[[str], None]) -> None:
    """The progress lines that describe the prepared data."""
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


def _augmenter(project: Project, prepared: PreparedData, say: Callable[[str], None]):
    if prepared.summary.kind != "image":
        return None
    from ..data.augment import Augmenter, AugmentSettings

    settings = AugmentSettings.from_dict(project.data.augment)
    if not settings.enabled:
        return None
    say(f"Augmenting training images: {settings.describe()}.")
    return Augmenter(settings, seed=project.training.seed)


def _class_weights(project: Project, prepared: PreparedData) -> list[float] | None:
    if project.training.class_weights == "balanced" and prepared.task == "classification":
        return balanced_class_weights(prepared.y["train"], prepared.preprocessor.n_outputs)
    return None


def _freeze(net: TrainDeskNet, transfer, project: Project) -> list[Callback]:
    """Keep transferred layers frozen for the first epochs, if asked."""
    if transfer is None or project.model.freeze_epochs <= 0:
        return []
    return [FreezeLoaded(body_names(net, transfer), project.model.freeze_epochs)]


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


def split_row_hashes(dataset: Dataset, prepared: PreparedData) -> dict | None:
    """Hashes of the training and validation rows' feature and target values, so that an
    evaluation on another file can tell how many of its rows were trained on; None for images
    (their rows are files, and a copy of a picture is not the same row)."""
    if dataset.kind == "image" or prepared.summary.image_shape:
        return None
    columns = [*prepared.summary.features, prepared.summary.target]
    frame = dataset.frame
    return {"columns": columns,
            **{part: row_hashes(frame.iloc[prepared.rows[part]], columns)
               for part in ("train", "val")}}


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
    from ..models.presets import DEFAULT_LR, resolve_preset, suggest_settings, suggested_lr

    if summary is None:
        summary = resolve(dataset, project.data)
    share = 1.0 - project.data.split.val_fraction - project.data.split.test_fraction
    from ..data.dataset import estimate_model_input

    model_input = estimate_model_input(dataset, summary, project.data)
    model, schedule = suggest_settings(int(summary.n_rows * share), model_input)
    # What to start from is the user's choice, not part of a suggested network.
    model.init_from, model.freeze_epochs = project.model.init_from, project.model.freeze_epochs
    # The rate follows the model unless the user chose one: it is the old model's suggestion or
    # the project's default (a new project's "auto" model already resolves to the new preset).
    old_lr = suggested_lr(resolve_preset(project.model, model_input))
    if project.training.lr in (old_lr, DEFAULT_LR):
        project.training.lr = suggested_lr(model.preset)
    project.model = model
    project.training.batch_size = schedule["batch_size"]
    project.training.epochs = schedule["epochs"]
    project.training.early_stopping = bool(schedule.get("early_stopping", False))
    project.training.patience = int(schedule.get("patience", project.training.patience))
