"""Step 3 - Train: start and stop, live curves, progress with ETA, and a log."""

from __future__ import annotations

import math
import time

import numpy as np
from PySide6.QtCore import QSignalBlocker, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (QHBoxLayout, QLabel, QPlainTextEdit, QProgressBar, QPushButton,
                               QSplitter, QVBoxLayout, QWidget)

from ml.pipeline import RunResult
from workers.base import TaskRunner
from workers.training_worker import TrainingWorker

from .. import dialogs
from ..state import ProjectState
from ..widgets.common import MessageBanner
from ..widgets.plots import LiveCurvesWidget


def format_seconds(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "--:--"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class TrainPage(QWidget):
    """Run the training worker and show what happens, live."""

    run_finished = Signal(object)  # RunResult

    def __init__(self, state: ProjectState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.runner = TaskRunner(self)
        self.runner.finished.connect(self._on_run_finished)
        self.runner.errored.connect(self._on_run_errored)
        self._worker: TrainingWorker | None = None
        self._started = 0.0

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
                                     "go on")
        self.pause_button.toggled.connect(self._on_pause_toggled)
        self.resume_button = QPushButton("▷  Resume")
        self.resume_button.setObjectName("resumeButton")
        self.resume_button.setToolTip("Continue the last stopped run from its last completed "
                                      "epoch (a finished run: train it for more epochs)")
        self.resume_button.setEnabled(False)
        self.resume_button.clicked.connect(self.resume_training)
        for button in (self.start_button, self.stop_button, self.pause_button,
                       self.resume_button):
            font = button.font()
            font.setPointSize(12)
            font.setBold(True)
            button.setFont(font)
            button.setMinimumHeight(38)
        self.start_button.setShortcut("Ctrl+Return")
        self.start_button.setToolTip("Start training (Ctrl+Enter)")
        self.stop_button.setToolTip("Stop after the current batch and keep the model so far")
        self.start_button.clicked.connect(self.start_training)
        self.stop_button.clicked.connect(self.stop_training)
        self.progress = QProgressBar()
        self.progress.setObjectName("trainProgress")
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(True)
        self.progress.setFormat("")
        self.progress.setMinimumHeight(26)
        self.time_label = QLabel("Not started")
        self.time_label.setObjectName("timeLabel")
        self.time_label.setMinimumWidth(260)
        self.device_label = QLabel("")
        self.device_label.setStyleSheet("color: #555;")
        self.banner = MessageBanner()
        self.banner.setObjectName("trainBanner")
        top = QHBoxLayout()
        top.addWidget(self.start_button)
        top.addWidget(self.stop_button)
        top.addWidget(self.pause_button)
        top.addWidget(self.resume_button)
        top.addWidget(self.progress, 1)
        top.addWidget(self.time_label)

        self.curves = LiveCurvesWidget()
        self.curves.setObjectName("liveCurves")
        self.log = QPlainTextEdit()
        self.log.setObjectName("trainLog")
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(5000)
        mono = QFont("monospace")
        mono.setStyleHint(QFont.StyleHint.Monospace)
        self.log.setFont(mono)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.curves)
        splitter.addWidget(self.log)
        splitter.setStretchFactor(0, 4)
        splitter.setStretchFactor(1, 1)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.device_label)
        layout.addWidget(self.banner)
        layout.addWidget(splitter, 1)

        # Elapsed time keeps ticking between progress signals.
        self.clock = QTimer(self)
        self.clock.setInterval(500)
        self.clock.timeout.connect(self._tick)
        self._eta = float("nan")
        self._epoch_text = ""
        state.steps_changed.connect(self._update_buttons)
        state.current_run_changed.connect(self._update_buttons)
        state.model_changed.connect(self._update_buttons)
        self._update_buttons()

    # -- control --------------------------------------------------------------------------------
    def is_training(self) -> bool:
        return self.runner.is_running()

    def resumable_run(self):
        """The current run when it can be continued: stopped (or cut off) with a checkpoint,
        or finished with fewer epochs than are now set."""
        run = self.state.current_run
        if run is None or not (run.path / "checkpoint.pt").is_file():
            return None
        if run.record.status == "finished":
            try:
                text = (run.path / "history.jsonl").read_text(encoding="utf-8")
            except OSError:
                return None
            done = len(text.splitlines())
            return run if done < self.state.project.training.epochs else None
        return run

    @Slot()
    def resume_training(self) -> None:
        """Continue the current run from its last checkpoint (up to the epochs set now)."""
        run = self.resumable_run()
        if self.is_training() or run is None:
            return
        state = self.state
        dataset = state.dataset if state.dataset is not None and \
            state.dataset.source == state.project.data.source else None
        self._launch(TrainingWorker(None, dataset, resume=run.path,
                                    epochs=state.project.training.epochs),
                     state.spec.task if state.spec is not None else run.record.task)

    @Slot()
    def start_training(self) -> None:
        state = self.state
        if self.is_training() or state.spec is None or state.dataset is None:
            return
        self._launch(TrainingWorker(state.project, state.dataset, state.project.runs_dir()),
                     state.spec.task)

    def _launch(self, worker: TrainingWorker, task: str) -> None:
        state = self.state
        self.banner.clear_message()
        self.curves.reset()
        self.curves.set_metric("accuracy" if task == "classification" else "mae")
        self.log.clear()
        self.progress.setValue(0)
        self.progress.setFormat("Preparing …")
        worker.fit_started.connect(self._on_fit_started)
        worker.batches_logged.connect(self._on_batches_logged)
        worker.epoch_finished.connect(self._on_epoch_finished)
        worker.progress_changed.connect(self._on_progress)
        worker.message_logged.connect(self._on_message)
        self._worker = worker
        self._started = time.monotonic()
        self._eta = float("nan")
        self._epoch_text = ""
        self.runner.start(worker)
        self.clock.start()
        state.set_training(True)
        self._update_buttons()

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

    # -- worker signals -------------------------------------------------------------------------
    @Slot(dict)
    def _on_fit_started(self, info: dict) -> None:
        self.device_label.setText(
            f"Training on {info['device']} · {info['n_train']:,} samples · batch "
            f"{info['batch_size']} · {info['params']:,} parameters · mixed precision "
            f"{info['amp']}")
        self.progress.setFormat("Epoch 1 …")

    @Slot(object)
    def _on_batches_logged(self, points: np.ndarray) -> None:
        self.curves.add_batches(points)

    @Slot(dict)
    def _on_epoch_finished(self, logs: dict) -> None:
        self.curves.add_epoch(logs)
        keys = ("loss", "accuracy", "mae", "val_loss", "val_accuracy", "val_mae")
        parts = [f"{k} {logs[k]:.4f}" for k in keys if k in logs]
        self._on_message(f"epoch {logs['epoch']:>3}  " + "  ".join(parts) +
                         f"  ({logs['epoch_seconds']:.2f} s)")

    @Slot(dict)
    def _on_progress(self, info: dict) -> None:
        self.progress.setValue(int(1000 * info["fraction"]))
        self._epoch_text = f"Epoch {info['epoch']}/{info['epochs']}"
        self.progress.setFormat(f"{self._epoch_text} · batch {info['batch']}/{info['batches']}"
                                f" · {100 * info['fraction']:.0f}%")
        self._eta = info["eta"]
        self._tick()

    @Slot(str)
    def _on_message(self, text: str) -> None:
        self.log.appendPlainText(text)

    @Slot()
    def _tick(self) -> None:
        elapsed = time.monotonic() - self._started
        self.time_label.setText(f"Elapsed {format_seconds(elapsed)} · ETA "
                                f"{format_seconds(self._eta)}")

    @Slot(object)
    def _on_run_finished(self, result: RunResult) -> None:
        self._end()
        self.progress.setValue(1000 if result.status == "finished" else self.progress.value())
        task = result.evaluation.task
        test = result.metrics["test"]
        headline = (f"test accuracy {100 * test['accuracy']:.1f}%, macro F1 {test['f1_macro']:.3f}"
                    if task == "classification" else
                    f"test MAE {test['mae']:.4g}, RMSE {test['rmse']:.4g}, R² {test['r2']:.3f}")
        best = result.fit.best_epoch
        best_text = f" Weights from the best validation epoch ({best})." if (
            self.state.project.training.restore_best and best) else ""
        verb = "finished" if result.status == "finished" else "stopped"
        self.progress.setFormat(f"Training {verb} after {result.fit.epochs_completed} epochs")
        self.banner.show_message(f"Training {verb}: {headline}.{best_text} Go on to Evaluate.",
                                 "ok")
        self._on_message(f"Saved to {result.run_dir}")
        self.state.add_run(result.record(), result.evaluation)
        self.run_finished.emit(result)

    @Slot(str)
    def _on_run_errored(self, message: str) -> None:
        self._end()
        self.progress.setFormat("Training failed")
        self.banner.show_message(message, "error")
        self._on_message(f"Error: {message}")
        dialogs.show_error(self, "Training failed", message)

    def _end(self) -> None:
        self.clock.stop()
        self._tick()
        self._worker = None
        self.state.set_training(False)
        self._update_buttons()
        self.curves.redraw_now()

    @Slot()
    def _update_buttons(self) -> None:
        running = self.is_training()
        spec = self.state.spec
        self.start_button.setEnabled(not running and spec is not None)
        self.stop_button.setEnabled(running)
        self.pause_button.setEnabled(running)
        if not running and self.pause_button.isChecked():
            with QSignalBlocker(self.pause_button):
                self.pause_button.setChecked(False)
            self.pause_button.setText("Pause")
        self.resume_button.setEnabled(not running and self.resumable_run() is not None)
        if not running and spec is not None and self.banner.kind in ("", "info"):
            training = self.state.project.training
            self.banner.show_message(
                f"Ready: {spec.name.upper()} for {training.epochs} epochs, batch "
                f"{training.batch_size}, learning rate {training.lr:g}. Press Start training "
                f"(Ctrl+Enter); you can switch pages while it runs.", "info")
