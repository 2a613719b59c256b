"""Step 3 - Train: start, pause, stop and resume; live curves, throughput, resource meters and a
log; the run history; cross-validation and hyperparameter search in the background."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSignalBlocker, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QFont
from PySide6.QtWidgets import (
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMenu,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ml.errors import Cancelled
from ml.evaluation.baseline import baseline_of, headline_notes, never_predicted
from ml.jobs.training import RunResult
from ml.labels import metric_label
from ml.runs.folder import RunFolder
from ml.system.monitor import SystemMonitor
from ml.training.trainer import monitored
from workers.base import TaskRunner
from workers.training_worker import TrainingWorker

from .. import dialogs
from ..state import ProjectState
from ..theme import mute
from ..widgets.common import MessageBanner, format_bytes, format_duration
from ..widgets.plots import LiveCurvesWidget
from ..widgets.runs_panel import RunsPanel
from ..widgets.search_panel import SearchDialog, SearchResultsPanel


class TrainPage(QWidget):
    """Run the training worker and show what happens, live."""

    run_finished = Signal(object)  # RunResult (each fold and trial too)
    run_listed = Signal()  # a run started and is in the project's list (status "running")
    edit_requested = Signal()  # a run's settings were cloned: show the Model page

    def __init__(self, state: ProjectState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.runner = TaskRunner(self)
        self.runner.finished.connect(self._on_run_finished)
        self.runner.errored.connect(self._on_run_errored)
        self._worker: TrainingWorker | None = None
        self._kind = "run"  # run | crossval | search
        self._started = 0.0
        self._device = "cpu"

        self._build_buttons()
        top, info = self._build_status_rows()
        self._build_tabs()

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(info)
        layout.addWidget(self.banner)
        layout.addWidget(self.tabs, 1)

        self._build_timers()
        self._eta = float("nan")
        self._throughput = 0.0
        self._shown_progress = 0.0
        self._epoch_text = ""
        self._stage = ""
        self._offer: QMessageBox | None = None
        state.steps_changed.connect(self._update_buttons)
        state.current_run_changed.connect(self._update_buttons)
        state.model_changed.connect(self._update_buttons)
        self._update_buttons()

    def _build_buttons(self) -> None:
        """Start, Stop, Pause, Resume, the More menu and presenter mode."""
        self.start_button = QPushButton("▶  Start training")
        self.start_button.setObjectName("startButton")
        self.stop_button = QPushButton("■  Stop")
        self.stop_button.setObjectName("stopButton")
        self.stop_button.setEnabled(False)
        self.pause_button = QPushButton("Pause")
        self.pause_button.setObjectName("pauseButton")
        self.pause_button.setCheckable(True)
        self.pause_button.setEnabled(False)
        self.pause_button.setToolTip("Hold training after the current batch; press again to "
                                     "go on (Ctrl+P)")
        self.pause_button.toggled.connect(self._on_pause_toggled)
        self.resume_button = QPushButton("▷  Resume")
        self.resume_button.setObjectName("resumeButton")
        self.resume_button.setToolTip("Continue the last stopped run from its last completed "
                                      "epoch (a finished run: train it for more epochs)")
        self.resume_button.setEnabled(False)
        self.resume_button.clicked.connect(self.resume_training)
        self.more_button = QToolButton()
        self.more_button.setObjectName("moreButton")
        self.more_button.setText("More ▾")
        self.more_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.more_button)
        self.crossval_action = QAction("Cross-validate (k folds)…", self)
        self.crossval_action.setToolTip("Train k runs, each validating on another part of the "
                                        "data, and report the mean and spread")
        self.crossval_action.triggered.connect(self.ask_cross_validation)
        self.search_action = QAction("Search for better settings…", self)
        self.search_action.triggered.connect(self.ask_search)
        menu.addAction(self.crossval_action)
        menu.addAction(self.search_action)
        self.more_button.setMenu(menu)
        self.presenter_button = QPushButton("Presenter mode")
        self.presenter_button.setObjectName("presenterButton")
        self.presenter_button.setCheckable(True)
        self.presenter_button.setToolTip("Large fonts, thick lines and plain captions, for a "
                                         "projector")
        self.presenter_button.toggled.connect(self.set_presenter)
        for button in (self.start_button, self.stop_button, self.pause_button,
                       self.resume_button, self.more_button):
            font = button.font()
            font.setPointSize(12)
            font.setBold(True)
            button.setFont(font)
            button.setMinimumHeight(38)
        # The shortcuts live on the window's Training menu, so they work from every step (a
        # button's own shortcut would clash with the menu's and neither would fire).
        self.start_button.setToolTip("Start training (Ctrl+Enter)")
        self.stop_button.setToolTip("Stop after the current batch and keep the model so far "
                                    "(Ctrl+.)")
        self.start_button.clicked.connect(self.start_training)
        self.stop_button.clicked.connect(self.stop_training)

    def _build_status_rows(self) -> tuple[QVBoxLayout, QHBoxLayout]:
        """The buttons with progress and time, then device and meters."""
        self.progress = QProgressBar()
        self.progress.setObjectName("trainProgress")
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(True)
        self.progress.setFormat("")
        self.progress.setMinimumHeight(26)
        self.time_label = QLabel("Not started")
        self.time_label.setObjectName("timeLabel")
        self.time_label.setMinimumWidth(220)  # no jitter as the times grow
        self.device_label = QLabel("")
        mute(self.device_label)
        self.device_label.setWordWrap(True)
        self.meters_label = QLabel("")
        self.meters_label.setObjectName("metersLabel")
        self.meters_label.setTextFormat(Qt.TextFormat.RichText)
        self.banner = MessageBanner()
        self.banner.setObjectName("trainBanner")
        # The progress bar has a row of its own: beside the buttons it had no room for its
        # "Training finished after 12 epochs" at the window's minimum width.
        buttons, progress = QHBoxLayout(), QHBoxLayout()
        for w in (self.start_button, self.stop_button, self.pause_button, self.resume_button,
                  self.more_button):
            buttons.addWidget(w)
        buttons.addStretch(1)
        progress.addWidget(self.progress, 1)
        progress.addWidget(self.time_label)
        top = QVBoxLayout()
        top.addLayout(buttons)
        top.addLayout(progress)
        info = QHBoxLayout()
        info.addWidget(self.device_label, 1)
        info.addWidget(self.meters_label)
        info.addWidget(self.presenter_button)
        return top, info

    def _build_tabs(self) -> None:
        """Live (curves over the log), Runs and Search."""
        self.curves = LiveCurvesWidget()
        self.curves.setObjectName("liveCurves")
        self.log = QPlainTextEdit()
        self.log.setObjectName("trainLog")
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(5000)
        mono = QFont("monospace")
        mono.setStyleHint(QFont.StyleHint.Monospace)
        self.log.setFont(mono)
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(self.curves)
        self.splitter.addWidget(self.log)
        self.splitter.setStretchFactor(0, 4)
        self.splitter.setStretchFactor(1, 1)
        self.runs_panel = RunsPanel(self.state)
        self.runs_panel.rerun_requested.connect(self.rerun)
        self.runs_panel.resume_requested.connect(self.resume_run)
        self.runs_panel.clone_requested.connect(lambda _: self.edit_requested.emit())
        self.search_panel = SearchResultsPanel()
        self.search_panel.use_best.connect(self.use_search_result)
        self.tabs = QTabWidget()
        self.tabs.setObjectName("trainTabs")
        self.tabs.addTab(self.splitter, "Live")
        self.tabs.addTab(self.runs_panel, "Runs")
        self.tabs.addTab(self.search_panel, "Search")

    def _build_timers(self) -> None:
        """The clock and the meters' timer."""
        # Elapsed time keeps ticking between progress signals; the meters read once a second.
        self.clock = QTimer(self)
        self.clock.setInterval(500)
        self.clock.timeout.connect(self._tick)
        self.monitor = SystemMonitor()
        self.meter_timer = QTimer(self)
        self.meter_timer.setInterval(1000)
        self.meter_timer.timeout.connect(self.update_meters)

    # -- control --------------------------------------------------------------------------------
    def is_training(self) -> bool:
        return self.runner.is_running()

    def resumable_run(self):
        """The current run when it can be continued: stopped (or cut off) with a checkpoint,
        or finished with fewer epochs than are now set."""
        run = self.state.current_run
        if run is None or not RunFolder(run.path).has_checkpoint:
            return None
        if run.record.status == "finished":
            done = len(RunFolder(run.path).read_history())
            return run if done < self.state.project.training.epochs else None
        return run

    def _dataset_for(self, source: str):
        state = self.state
        return state.dataset if state.dataset is not None and \
            state.dataset.source == source else None

    @Slot()
    def resume_training(self) -> None:
        """Continue the current run from its last checkpoint (up to the epochs set now)."""
        run = self.resumable_run()
        if self.is_training() or run is None:
            return
        state = self.state
        self._launch(TrainingWorker(None, self._dataset_for(state.project.data.source),
                                    resume=run.path, epochs=state.project.training.epochs),
                     state.spec.task if state.spec is not None else run.record.task)

    @Slot(object)
    def resume_run(self, record) -> None:
        """Continue a run of the Runs tab (stopped, failed or interrupted) to its own epochs."""
        if self.is_training():
            return
        self._launch(TrainingWorker(None, self._dataset_for(self.state.project.data.source),
                                    resume=Path(record.path)), record.task or "classification")
        self.tabs.setCurrentIndex(0)

    @Slot()
    def start_training(self) -> None:
        state = self.state
        if self.is_training() or state.spec is None or state.dataset is None:
            return
        self._launch(TrainingWorker(state.project, state.dataset, state.project.runs_dir()),
                     state.spec.task)

    @Slot(object)
    def rerun(self, settings) -> None:
        """Train again with a run's settings (the project's own settings are not changed)."""
        if self.is_training():
            return
        settings.path = self.state.project.path  # runs go beside the project, as usual
        task = settings.data.task or (self.state.spec.task if self.state.spec else "")
        self._launch(TrainingWorker(settings, self._dataset_for(settings.data.source),
                                    self.state.project.runs_dir()), task)
        self.tabs.setCurrentIndex(0)

    @Slot()
    def ask_cross_validation(self) -> None:
        if self.is_training() or self.state.spec is None or self.state.dataset is None:
            return
        k, ok = QInputDialog.getInt(
            self, "Cross-validate", "Folds (k runs, each validating on another k-th of the "
            "rows that are not test rows):", 5, 2, 50)
        if ok:
            self.start_cross_validation(k)

    def start_cross_validation(self, k: int) -> None:
        state = self.state
        if self.is_training() or state.spec is None or state.dataset is None:
            return
        worker = TrainingWorker.cross_validation(state.project, k, state.dataset,
                                                 state.project.runs_dir())
        self._launch(worker, state.spec.task, kind="crossval")

    @Slot()
    def ask_search(self) -> None:
        if self.is_training() or self.state.spec is None or self.state.dataset is None:
            return
        dialog = SearchDialog(self.state.project, self)
        if dialog.exec():
            self.start_search(**dialog.settings())

    def start_search(self, space, trials=None, minutes=None, sampler="tpe",
                     pruning=True) -> None:
        state = self.state
        if self.is_training() or state.spec is None or state.dataset is None:
            return
        worker = TrainingWorker.search(state.project, space, trials=trials, minutes=minutes,
                                       sampler=sampler, pruning=pruning, dataset=state.dataset,
                                       runs_dir=state.project.runs_dir())
        self.search_panel.start()
        self._launch(worker, state.spec.task, kind="search")

    @Slot(dict)
    def use_search_result(self, params: dict) -> None:
        """Put the best trial's values into the project's settings."""
        from ml.jobs.search import apply_params

        if self.is_training():
            return
        project = self.state.project
        apply_params(project, params)
        self.state.update_training()  # refresh the model, the pages and the dirty flag
        shown = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                          for k, v in params.items())
        self.banner.show_message(f"The project now uses the best trial's settings: {shown}. "
                                 f"Start training to train with them.", "ok")

    def _launch(self, worker: TrainingWorker, task: str, kind: str = "run") -> None:
        state = self.state
        self._close_offer()
        self._kind = kind
        self.banner.clear_message()
        self.curves.reset()
        self.curves.set_metric("accuracy" if task == "classification" else "mae")
        self.curves.set_monitor(*monitored(state.project.training.monitor, task))
        self.log.clear()
        self.progress.setValue(0)
        self.progress.setFormat("Preparing …")
        worker.fit_started.connect(self._on_fit_started)
        worker.batches_logged.connect(self._on_batches_logged)
        worker.epoch_finished.connect(self._on_epoch_finished)
        worker.progress_changed.connect(self._on_progress)
        worker.message_logged.connect(self._on_message)
        worker.stage_started.connect(self._on_stage)
        worker.run_recorded.connect(self._on_run_recorded)
        worker.run_started.connect(self._on_run_started)
        worker.trial_finished.connect(self.search_panel.add_trial)
        self._worker = worker
        self._started = time.monotonic()
        self._eta = float("nan")
        self._throughput = 0.0
        self._epoch_text = ""
        self._stage = ""
        self.runner.start(worker)
        self.clock.start()
        self.meter_timer.start()
        state.set_training(True)
        self._update_buttons()
        if kind == "search":
            self.tabs.setCurrentWidget(self.search_panel)
        else:
            self.tabs.setCurrentIndex(0)

    @Slot(bool)
    def _on_pause_toggled(self, paused: bool) -> None:
        worker = self._worker
        if worker is None:
            return
        worker.set_paused(paused)
        self.pause_button.setText("Continue" if paused else "Pause")
        if paused:
            self.progress.setFormat(f"{self._epoch_text or 'Training'} · paused")
            self._on_message("Paused after the current batch; press Continue to go on.")
        else:
            self._on_message("Continuing.")

    @Slot()
    def stop_training(self) -> None:
        """Stop after the current batch; the stopped run is still saved and shown."""
        if self.is_training():
            self.runner.request_stop()
            self.stop_button.setEnabled(False)
            self.progress.setFormat("Stopping …")
            self._on_message("Stop requested: finishing the current batch.")

    def stop_and_wait(self, timeout_ms: int = 60_000) -> bool:
        """Stop training and wait until the stopped run has been saved and recorded."""
        if not self.is_training():
            return True
        self.stop_training()
        return self.runner.wait_for_result(timeout_ms)

    def shutdown(self, timeout_ms: int = 30_000) -> bool:
        """Cancel anything still running and wait for the thread (the window is closing)."""
        return self.runner.shutdown(timeout_ms)

    @Slot(bool)
    def set_presenter(self, on: bool) -> None:
        """Presenter mode: big curves and captions, the log hidden, larger progress text."""
        if self.presenter_button.isChecked() != on:
            with QSignalBlocker(self.presenter_button):
                self.presenter_button.setChecked(on)
        self.curves.set_presenter(on)
        self.log.setVisible(not on)
        for widget in (self.progress, self.time_label, self.meters_label, self.banner):
            font = widget.font()
            font.setPointSize(15 if on else 10)
            widget.setFont(font)
        self.progress.setMinimumHeight(40 if on else 26)
        if on:
            self.tabs.setCurrentIndex(0)

    # -- worker signals -------------------------------------------------------------------------
    @Slot(dict)
    def _on_fit_started(self, info: dict) -> None:
        self._device = info.get("device_type", "cpu")
        self.device_label.setText(
            f"Training on {info['device']} · {info['n_train']:,} samples · batch "
            f"{info['batch_size']} · {info['params']:,} parameters · mixed precision "
            f"{info['amp']}")
        self.progress.setFormat((f"{self._stage} · " if self._stage else "") + "Epoch 1 …")
        # Each fit draws its own curves (a fold, a trial, a retry with half the batch), and a
        # resumed one first shows the epochs its run trained before the stop.
        self.curves.reset()
        self.curves.replay_epochs(info.get("earlier_epochs") or [])
        self.curves.set_planned_epochs(info["epochs"])

    @Slot(str)
    def _on_stage(self, text: str) -> None:
        self._stage = text
        self._on_message(f"— {text} —")

    @Slot(object)
    def _on_run_started(self, record) -> None:
        """List the run as running at once: if the app is killed, the project (saved by the
        window) still knows it, and Resume in the Runs tab continues it."""
        self.runs_panel.active_path = record.path
        self.state.add_run(record, make_current=False)
        self.run_listed.emit()

    @Slot(object)
    def _on_run_recorded(self, result: RunResult) -> None:
        """A fold or trial finished: list it now, so a stopped queue keeps what it did."""
        self.state.add_run(result.record(), result.evaluation, make_current=False)
        self.run_finished.emit(result)

    @Slot(object)
    def _on_batches_logged(self, points: np.ndarray) -> None:
        self.curves.add_batches(points)

    @Slot(dict)
    def _on_epoch_finished(self, logs: dict) -> None:
        before = self.curves.overfitting
        self.curves.add_epoch(logs)
        keys = ("loss", "accuracy", "mae", "val_loss", "val_accuracy", "val_mae")
        parts = [f"{k} {logs[k]:.4f}" for k in keys if k in logs]
        self._on_message(f"epoch {logs['epoch']:>3}  " + "  ".join(parts) +
                         f"  lr {logs.get('lr', float('nan')):.3g}"
                         f"  ({logs['epoch_seconds']:.2f} s)")
        note = self.curves.overfitting
        if note is not None and before is None:  # say it once, when it first shows
            self._on_message(note["message"])

    @Slot(dict)
    def _on_progress(self, info: dict) -> None:
        now = time.monotonic()
        self._throughput = info.get("samples_per_second", 0.0)  # the meters read it anytime
        if now - self._shown_progress < 0.2 and info["batch"] < info["batches"]:
            return  # 5 updates a second read as smooth; repaints take CPU from training
        self._shown_progress = now
        self.progress.setValue(int(1000 * info["fraction"]))
        self._epoch_text = f"Epoch {info['epoch']}/{info['epochs']}"
        stage = f"{self._stage} · " if self._stage else ""
        self.progress.setFormat(f"{stage}{self._epoch_text} · batch {info['batch']}/"
                                f"{info['batches']} · {100 * info['fraction']:.0f}%")
        self._eta = info["eta"]
        self._tick()

    @Slot(str)
    def _on_message(self, text: str) -> None:
        self.log.appendPlainText(text)

    @Slot()
    def _tick(self) -> None:
        elapsed = time.monotonic() - self._started
        self.time_label.setText(f"Elapsed {format_duration(elapsed, clock=True)} · ETA "
                                f"{format_duration(self._eta, clock=True)}")

    @Slot()
    def update_meters(self) -> None:
        """Throughput, CPU and memory - and the GPU's use and memory when training on one."""
        reading = self.monitor.sample(self._device)
        parts = []
        if self.is_training() and self._throughput > 0:
            parts.append(f"<b>{self._throughput:,.0f}</b> samples/s")
        if "cpu_percent" in reading:
            parts.append(f"CPU {reading['cpu_percent']:.0f}%")
            parts.append(f"RAM {format_bytes(reading['ram_bytes'])}")
        if "gpu_bytes" in reading:
            util = reading.get("gpu_percent")
            parts.append("GPU " + (f"{util:.0f}% · " if util is not None else "")
                         + f"{format_bytes(reading['gpu_bytes'])} of "
                         + format_bytes(reading["gpu_total"]))
        self.meters_label.setText(" · ".join(parts))

    @Slot(object)
    def _on_run_finished(self, result) -> None:
        kind = self._kind
        self._end()
        if kind == "crossval":
            self._crossval_finished(result)
            return
        if kind == "search":
            self._search_finished(result)
            return
        self.progress.setValue(1000 if result.status == "finished" else self.progress.value())
        task = result.evaluation.task
        test = result.metrics["test"]
        headline = (f"test accuracy {100 * test['accuracy']:.1f}%, macro F1 {test['f1_macro']:.3f}"
                    if task == "classification" else
                    f"test MAE {test['mae']:.4g}, RMSE {test['rmse']:.4g}, R² {test['r2']:.3f}")
        best = result.fit.best_epoch
        best_text = f" Weights from the best validation epoch ({best})." if (
            self.state.project.training.restore_best and best) else ""
        final = result.metrics.get("refit")
        if final:
            best_text = (f" Validation chose {final['epochs']} epochs; the final model then "
                         f"trained for them on all {final['rows']:,} training and validation "
                         f"rows.")
        retries = result.metrics.get("oom_retries") or []
        oom_text = (f" It ran out of memory and went on with batches of "
                    f"{retries[-1]['to']}." if retries else "")
        verb = "finished" if result.status == "finished" else "stopped"
        self.progress.setFormat(f"Training {verb} after {result.fit.epochs_completed} epochs")
        notes, kind = self._baseline_notes(result)
        self.banner.show_message(f"Training {verb}: {headline}.{notes}{best_text}{oom_text} Go "
                                 f"on to Evaluate.", kind)
        self._on_message(f"Saved “{result.record().title}” to {result.run_dir}")
        self.state.add_run(result.record(), result.evaluation)
        self.run_finished.emit(result)

    @staticmethod
    def _baseline_notes(result) -> tuple[str, str]:
        """The rare-class and baseline sentences for the banner, and its colour: a warning
        when the model is barely better than ignoring its inputs."""
        notes = headline_notes(result.evaluation)
        base = baseline_of(result.evaluation)
        close = (base is not None and base.close) or bool(never_predicted(result.evaluation))
        return "".join(f" {n}" for n in notes), "warning" if close else "ok"

    def _crossval_finished(self, result) -> None:
        summary = result.summary()
        self.progress.setValue(1000 if not result.stopped else self.progress.value())
        self.progress.setFormat(f"Cross-validation: {summary['completed']} of {result.k} folds")
        self.banner.show_message(f"Cross-validation{' (stopped)' if result.stopped else ''}: "
                                 f"{result.describe()}. Each fold is in the Runs tab.", "ok")
        self._on_message(f"Saved to {result.folder}")
        if result.runs:
            last = result.runs[-1]
            self.state.set_current_run(last.record(), last.evaluation)
        self.runs_panel.select_paths([str(r.run_dir) for r in result.runs])

    def _search_finished(self, result) -> None:
        self.search_panel.finish(result.stopped)
        best = result.best
        self.progress.setValue(1000 if not result.stopped else self.progress.value())
        self.progress.setFormat(f"Search: {len(result.trials)} trial(s)")
        if best is None:
            self.banner.show_message("The search ended without a finished trial. Give it more "
                                     "trials or time, or look at the log for why trials "
                                     "failed.", "warning")
        else:
            shown = (f"{100 * best.value:.1f}%" if result.metric == "accuracy"
                     else f"{best.value:.4g}")
            what = metric_label(f"val_{result.metric}")  # "Validation MAE (average error)"
            self.banner.show_message(f"Search{' (stopped)' if result.stopped else ''}: best "
                                     f"trial {best.number} with {what[0].lower()}{what[1:]} "
                                     f"{shown}. Press “Use the best settings” to keep them.",
                                     "ok")
            run = next((r for r in result.runs if r.run_dir.name == best.run), None)
            if run is not None:
                self.state.set_current_run(run.record(), run.evaluation)
        self._on_message(f"Saved to {result.folder}")

    @Slot(str)
    def _on_run_errored(self, message: str) -> None:
        job = getattr(self._worker, "job", None)
        if message == Cancelled.MESSAGE:  # Stop pressed while the data was being prepared
            self._end()
            self.progress.setFormat("Stopped")
            self.banner.show_message(message, "info")
            self._on_message(message)
            return
        oom = getattr(job, "out_of_memory", None)
        self._mark_failed(getattr(getattr(job, "job", job), "run_dir", None))
        self._end()
        self.progress.setFormat("Training failed")
        self.banner.show_message(message, "error")
        self._on_message(f"Error: {message}")
        if oom is not None and oom.batch_size > 1 and self._kind == "run":
            self.offer_smaller_batch(oom.smaller_batch, message, getattr(job, "run_dir", None))
            return
        dialogs.show_error(self, "Training failed", message)

    def _mark_failed(self, run_dir) -> None:
        """The failed run's entry says so (it was listed as running when it started)."""
        for record in self.state.project.runs:
            if run_dir is not None and record.path == str(run_dir) and \
                    record.status == "running":
                record.status = "failed"
                self.state.add_run(record, make_current=False)
                self.run_listed.emit()
                break

    def offer_smaller_batch(self, batch_size: int, message: str, run_dir=None) -> QMessageBox:
        """Out of memory: offer to go on with *batch_size* - from the failed run's last
        checkpoint when it has one, else from the start."""
        box = QMessageBox(QMessageBox.Icon.Warning, "Out of memory", message,
                          QMessageBox.StandardButton.Cancel, self)
        box.setObjectName("oomBox")
        retry = box.addButton(f"Retry with batch size {batch_size}",
                              QMessageBox.ButtonRole.AcceptRole)
        box.setInformativeText("Tip: “Retry with a smaller batch automatically” on the Model "
                               "page's Training tab does this without asking.")
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        retry.clicked.connect(lambda: self.retry_with_batch(batch_size, run_dir))
        box.open()
        self._offer = box
        return box

    def _close_offer(self) -> None:
        if self._offer is not None:
            try:
                self._offer.close()
            except RuntimeError:  # already deleted
                pass
            self._offer = None

    def retry_with_batch(self, batch_size: int, run_dir=None) -> None:
        """Set the batch size and go on: resume the failed run *run_dir* when it saved an
        epoch, else start again."""
        self._offer = None
        if self.is_training():
            return
        self.state.update_training(batch_size=batch_size)
        if run_dir is not None and RunFolder(run_dir).has_checkpoint:
            state = self.state
            self._launch(TrainingWorker(None, self._dataset_for(state.project.data.source),
                                        resume=run_dir, epochs=state.project.training.epochs,
                                        batch_size=batch_size),
                         state.spec.task if state.spec is not None else "classification")
        else:
            self.start_training()

    def _end(self) -> None:
        self.runs_panel.active_path = ""
        self.clock.stop()
        self.meter_timer.stop()
        self._tick()
        self.update_meters()
        self._worker = None
        self.state.set_training(False)
        self._update_buttons()
        self.curves.redraw_now()

    @Slot()
    def _update_buttons(self) -> None:
        running = self.is_training()
        spec = self.state.spec
        ready = not running and spec is not None and self.state.dataset is not None
        self.start_button.setEnabled(not running and spec is not None)
        self.stop_button.setEnabled(running)
        self.pause_button.setEnabled(running)
        self.crossval_action.setEnabled(ready)
        self.search_action.setEnabled(ready)
        if not running and self.pause_button.isChecked():
            with QSignalBlocker(self.pause_button):
                self.pause_button.setChecked(False)
            self.pause_button.setText("Pause")
        self.resume_button.setEnabled(not running and self.resumable_run() is not None)
        self.runs_panel._on_selection()
        if not running and spec is not None and self.banner.kind in ("", "info"):
            training = self.state.project.training
            self.banner.show_message(
                f"Ready: {spec.name.upper()} for {training.epochs} epochs, batch "
                f"{training.batch_size}, learning rate {training.lr:g}. Press Start training "
                f"(Ctrl+Enter); you can switch pages while it runs.", "info")
