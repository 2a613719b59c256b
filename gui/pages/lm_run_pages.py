"""Steps 3 to 5 of a language-model project: fine-tune with live curves and a sample answer
every epoch; perplexity before and after, base and fine-tuned answers side by side and a chat
try-it panel that streams its answer; the merged model folder, the adapter and the report."""

from __future__ import annotations

from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import QTimer, Signal, Slot
from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ml.errors import Cancelled, TrainDeskError
from ml.evaluation.generate import Sampling
from ml.evaluation.lm_report import change_text, perplexity_text, said, write_lm_report
from ml.export.causal import save_adapter, save_merged
from ml.jobs.causal import check_ids, load_tuned
from ml.runs.folder import RunFolder, now_iso
from ml.runs.project import RunRecord
from workers.base import FunctionWorker, TaskRunner
from workers.lm_worker import GenerateWorker, LMTrainingWorker

from .. import dialogs
from ..state import ProjectState
from ..theme import mute
from ..widgets.common import MessageBanner, MetricCard, heading
from ..widgets.plots import BLUE, ORANGE, style_plot

#: Milliseconds between redraws of the curves (the plots are drawn from a timer, not per
#: signal).
REDRAW_MS = 250


def _record(result) -> RunRecord:
    """The project's entry for a language-model run."""
    test = result.metrics.get("test") or {}
    metrics = {k: v for k, v in (("perplexity", test.get("perplexity")),
                                 ("perplexity_before", test.get("perplexity_before")))
               if isinstance(v, (int, float))}
    return RunRecord(id=Path(result.run_dir).name, path=str(result.run_dir), created=now_iso(),
                     status=result.status, task="causal-lm", model=result.name,
                     metrics=metrics, epochs=len(result.history),
                     seconds=float(result.metrics.get("seconds") or 0.0), name=result.name)


def _open(run_dir: str) -> RunFolder | None:
    """*run_dir*'s folder, or ``None`` when it is gone or unreadable (another program or a
    full disk may have broken it; the page then shows nothing of it rather than failing)."""
    if not run_dir or not RunFolder.is_run(run_dir):
        return None
    try:
        return RunFolder.open(run_dir)
    except TrainDeskError:
        return None


class LMTrainPage(QWidget):
    """Start, stop and resume; loss and validation perplexity per epoch; the sample answers."""

    run_finished = Signal(object)
    #: A run started (or resumed) and is in the project's list as running.
    run_listed = Signal()

    def __init__(self, state: ProjectState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.runner = TaskRunner(self)
        self.history: list[dict] = []
        #: Every step's loss so far, at its position in epochs (the faint curve).
        self.steps: list[tuple[float, float]] = []
        self.run_dir = ""
        layout = QVBoxLayout(self)
        layout.addWidget(heading("Fine-tune"))
        row = QHBoxLayout()
        self.start_button = QPushButton("Start")
        self.stop_button = QPushButton("Stop")
        self.resume_button = QPushButton("Resume the last run")
        for button, slot in ((self.start_button, self.start), (self.stop_button, self.stop),
                             (self.resume_button, self.resume)):
            button.clicked.connect(slot)
            row.addWidget(button)
        row.addStretch(1)
        layout.addLayout(row)
        self.banner = MessageBanner()
        layout.addWidget(self.banner)
        cards = QHBoxLayout()
        self.epoch_card, self.loss_card = MetricCard("epoch"), MetricCard("training loss")
        self.perplexity_card = MetricCard("validation perplexity (lower is better)")
        self.speed_card = MetricCard("tokens per second")
        for card in (self.epoch_card, self.loss_card, self.perplexity_card, self.speed_card):
            cards.addWidget(card)
        layout.addLayout(cards)
        plots = QHBoxLayout()
        self.loss_plot, self.perplexity_plot = pg.PlotWidget(), pg.PlotWidget()
        style_plot(self.loss_plot.getPlotItem(), "Training loss", "epoch", "loss")
        style_plot(self.perplexity_plot.getPlotItem(), "Validation perplexity", "epoch",
                   "perplexity")
        self.batch_curve = self.loss_plot.plot([], [], pen=pg.mkPen(BLUE + (90,), width=1))
        self.loss_curve = self.loss_plot.plot([], [], pen=pg.mkPen(BLUE, width=3), symbol="o",
                                              symbolBrush=pg.mkBrush(BLUE))
        self.perplexity_curve = self.perplexity_plot.plot(
            [], [], pen=pg.mkPen(ORANGE, width=3), symbol="o", symbolBrush=pg.mkBrush(ORANGE))
        plots.addWidget(self.loss_plot)
        plots.addWidget(self.perplexity_plot)
        layout.addLayout(plots, 1)
        layout.addWidget(QLabel("The model's answer to the same prompt after each epoch:"))
        self.samples = QPlainTextEdit()
        self.samples.setReadOnly(True)
        layout.addWidget(self.samples, 1)
        self.timer = QTimer(self)
        self.timer.setInterval(REDRAW_MS)
        self.timer.timeout.connect(self._redraw)
        self.runner.finished.connect(self._on_finished)
        self.runner.errored.connect(self._on_failed)
        state.lm_changed.connect(self._update_buttons)
        state.current_run_changed.connect(self._update_buttons)
        self._update_buttons()

    def is_training(self) -> bool:
        return self.runner.is_running()

    def _last_run(self) -> str:
        runs = [r for r in self.state.project.runs if r.task == "causal-lm"]
        return runs[-1].path if runs else ""

    @Slot()
    def _update_buttons(self) -> None:
        busy = self.is_training()
        self.start_button.setEnabled(not busy and self.state.step_enabled(2))
        self.stop_button.setEnabled(busy)
        folder = _open(self._last_run())
        resumable = folder is not None and folder.status in ("stopped", "failed", "running")
        self.resume_button.setEnabled(not busy and resumable)

    def _begin(self, worker: LMTrainingWorker) -> None:
        self.history, self.steps, self.run_dir = [], [], ""
        self.samples.clear()
        self.banner.show_message("Loading the model and measuring it before training …",
                                 "info")
        worker.epoch_finished.connect(self._on_epoch)
        worker.batches.connect(self._on_batches)
        worker.message.connect(self._on_message)  # a slot, not a lambda: runs on this thread
        worker.run_started.connect(self._on_run_started)
        self.runner.start(worker)
        self.state.set_training(True)
        self.timer.start()
        self._update_buttons()

    @Slot()
    def start(self) -> None:
        if self.is_training():
            return
        project = self.state.project
        self._begin(LMTrainingWorker(project.language_model, runs_dir=project.runs_dir()))

    @Slot()
    def resume(self) -> None:
        last, folder = self._last_run(), _open(self._last_run())
        if folder is None:
            self.banner.show_message(f"The last run's folder {last} cannot be read; start a "
                                     f"new run.", "error")
            return
        if not self.is_training():
            self._begin(LMTrainingWorker(None, runs_dir=self.state.project.runs_dir(),
                                         resume=last))
            self.history = folder.read_history()
            for logs in self.history:
                self._show_sample(logs)

    @Slot()
    def stop(self) -> None:
        """Stop after the current batch; the run keeps its last epoch."""
        self.runner.request_stop()
        self.banner.show_message("Stopping after this batch …", "info")

    @Slot(str)
    def _on_message(self, text: str) -> None:
        self.banner.show_message(text, "info")

    @Slot(str)
    def _on_run_started(self, path: str) -> None:
        """List the run as running at once: if the app is killed, the saved project still
        knows it, and Resume goes on with it."""
        self.run_dir = path
        if self._list(path, "running"):
            self.run_listed.emit()

    def _list(self, path: str, status: str = "") -> bool:
        """Put the run in *path* in the project's list as it is now (*status*: as it will be
        in a moment); False when its folder cannot be read."""
        folder = _open(path)
        if folder is None:
            return False
        test = folder.read_metrics().get("test") or {}
        metrics = {k: float(v) for k, v in test.items() if isinstance(v, (int, float))}
        self.state.add_run(RunRecord(id=folder.name, path=str(folder.path),
                                     created=str(folder.info.get("created") or now_iso()),
                                     status=status or folder.status, task="causal-lm",
                                     name=folder.title, metrics=metrics,
                                     epochs=len(folder.read_history())),
                           make_current=not status and folder.has_model)
        return True

    @Slot(list)
    def _on_batches(self, points: list) -> None:
        self.steps.extend(points)
        self.loss_card.set_value(f"{points[-1][1]:.3f}")

    @Slot(dict)
    def _on_epoch(self, logs: dict) -> None:
        self.history.append(logs)
        self._show_sample(logs)
        self.epoch_card.set_value(str(logs["epoch"]))
        self.loss_card.set_value(f"{logs['loss']:.3f}")
        self.perplexity_card.set_value(perplexity_text(logs.get("val_perplexity")))
        self.speed_card.set_value(f"{logs.get('tokens_per_second', 0):,.0f}")

    def _show_sample(self, logs: dict) -> None:
        said = " ".join(str(logs.get("sample", "")).split()) or "(nothing yet)"
        self.samples.appendPlainText(f"Epoch {logs['epoch']}: {said}")

    @Slot()
    def _redraw(self) -> None:
        epochs = [h["epoch"] for h in self.history]
        self.batch_curve.setData([p[0] for p in self.steps], [p[1] for p in self.steps])
        self.loss_curve.setData(epochs, [h["loss"] for h in self.history])
        ppl = [(h["epoch"], h["val_perplexity"]) for h in self.history
               if isinstance(h.get("val_perplexity"), float) and h["val_perplexity"] < 1e12]
        self.perplexity_curve.setData([p[0] for p in ppl], [p[1] for p in ppl])

    def _done(self) -> None:
        self.timer.stop()
        self._redraw()
        self.state.set_training(False)
        self._update_buttons()

    @Slot(object)
    def _on_finished(self, result) -> None:
        self._done()
        test = result.metrics.get("test") or {}
        if result.status == "finished":
            self.banner.show_message(
                f"Finished: test perplexity {perplexity_text(test.get('perplexity'))}, "
                f"{perplexity_text(test.get('perplexity_before'))} before fine-tuning. See the "
                f"answers side by side on the Evaluate step.", "ok")
        else:
            self.banner.show_message(f"Stopped after epoch {len(result.history)}; Resume goes "
                                     f"on from there.", "warning")
        self.state.add_run(_record(result))
        self.run_finished.emit(result)

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self._done()
        if message == Cancelled.MESSAGE:  # Stop pressed while the model was being read
            self.banner.show_message(message, "warning")
            if self.run_dir:  # a resume: the run is as it was before
                self._list(self.run_dir)
            return
        self.banner.show_message(message, "error")
        folder = _open(self.run_dir)
        if folder is not None:
            self.state.add_run(RunRecord(id=folder.name, path=str(folder.path),
                                         created=now_iso(), status=folder.status,
                                         task="causal-lm", name=folder.title),
                               make_current=folder.has_model)


class LMEvaluatePage(QWidget):
    """Perplexity before and after; the base and fine-tuned answers to the same test
    questions; a chat try-it panel that streams its answer."""

    def __init__(self, state: ProjectState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.runner = TaskRunner(self)
        self.loaded = None
        #: The try-it conversation so far (``{"role", "content"}`` turns), and who answers.
        self.conversation: list[dict] = []
        self._speakers: list[str] = []
        #: The thread of an answer cancelled by New conversation, until it has ended.
        self._draining = None
        layout = QVBoxLayout(self)
        layout.addWidget(heading("How much better it got"))
        self.perplexity_table = QTableWidget(2, 3)
        self.perplexity_table.setHorizontalHeaderLabels(["before", "after", "change"])
        self.perplexity_table.setVerticalHeaderLabels(["validation perplexity",
                                                       "test perplexity"])
        self.perplexity_table.setMaximumHeight(90)
        self.perplexity_table.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.Stretch)
        layout.addWidget(self.perplexity_table)
        layout.addWidget(mute(QLabel("Perplexity: how surprised the model is by the examples' "
                                     "answers, on average; lower is better, 1 is perfect.")))
        self.compare_table = QTableWidget(0, 4)
        self.compare_table.setHorizontalHeaderLabels(["question", "expected", "base model",
                                                      "fine-tuned"])
        self.compare_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.compare_table.setWordWrap(True)
        for table in (self.perplexity_table, self.compare_table):
            table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
            table.setTabKeyNavigation(False)  # Tab leaves the table, as everywhere in the app
        layout.addWidget(self.compare_table, 1)
        layout.addWidget(self._try_box(), 1)
        self.runner.finished.connect(self._on_answered)
        self.runner.errored.connect(self._on_failed)
        self.runner.running_changed.connect(self.stop_button.setEnabled)
        self.runner.running_changed.connect(self._update_ask)
        self.stop_button.setEnabled(False)
        state.current_run_changed.connect(self._refresh)
        state.runs_changed.connect(self._refresh)
        self._refresh()

    def _try_box(self) -> QGroupBox:
        box = QGroupBox("Try it")
        layout = QVBoxLayout(box)
        self.prompt_edit = QPlainTextEdit()
        self.prompt_edit.setPlaceholderText("Ask the fine-tuned model something …")
        self.prompt_edit.setMaximumHeight(70)
        layout.addWidget(self.prompt_edit)
        form = QFormLayout()
        row = QHBoxLayout()
        self.temperature_spin = QDoubleSpinBox()
        self.temperature_spin.setRange(0.0, 2.0)
        self.temperature_spin.setSingleStep(0.1)
        self.temperature_spin.setValue(0.7)
        self.temperature_spin.setToolTip("0: always the most likely word; higher: more varied")
        self.top_p_spin = QDoubleSpinBox()
        self.top_p_spin.setRange(0.05, 1.0)
        self.top_p_spin.setSingleStep(0.05)
        self.top_p_spin.setValue(0.9)
        self.top_p_spin.setToolTip("Choose among the most likely words that together have "
                                   "this probability")
        self.tokens_spin = QSpinBox()
        self.tokens_spin.setRange(1, 4096)
        self.tokens_spin.setValue(128)
        self.base_check = QCheckBox("Answer with the base model")
        for label, widget in (("Temperature", self.temperature_spin),
                              ("Top-p", self.top_p_spin), ("Longest answer (tokens)",
                                                           self.tokens_spin)):
            row.addWidget(QLabel(label))
            row.addWidget(widget)
        row.addWidget(self.base_check)
        row.addStretch(1)
        form.addRow(row)
        layout.addLayout(form)
        buttons = QHBoxLayout()
        self.ask_button = QPushButton("Ask")
        self.ask_button.clicked.connect(self.ask)
        self.stop_button = QPushButton("Stop")
        self.stop_button.clicked.connect(lambda: self.runner.request_stop())
        self.new_button = QPushButton("New conversation")
        self.new_button.clicked.connect(self.new_conversation)
        self.status_label = mute(QLabel())
        for widget in (self.ask_button, self.stop_button, self.new_button):
            buttons.addWidget(widget)
        buttons.addWidget(self.status_label, 1)
        layout.addLayout(buttons)
        self.answer = QPlainTextEdit()
        self.answer.setReadOnly(True)
        layout.addWidget(self.answer, 1)
        return box

    def _run_dir(self) -> str:
        return self.state.language_model_run

    @Slot()
    def _refresh(self) -> None:
        run_dir = self._run_dir()
        if self.loaded is not None and self.loaded.run_dir != run_dir:
            self.loaded = None  # another run: its model is loaded on the next question
            self.new_conversation()
        folder = _open(run_dir)
        metrics = folder.read_metrics() if folder is not None else {}
        lora = folder is not None and folder.settings().get(
            "language_model", {}).get("mode") == "lora"
        self.base_check.setEnabled(lora)
        if not lora:
            self.base_check.setChecked(False)
        self.base_check.setToolTip(
            "Answer with the model as it was before fine-tuning (the adapter switched off)."
            if lora else "This run tuned every weight; its base model answers in the table "
                         "above.")
        for r, split in enumerate(("val", "test")):
            part = metrics.get(split) or {}
            before, after = part.get("perplexity_before"), part.get("perplexity")
            change = change_text(before, after)
            for c, text in enumerate((perplexity_text(before) if part else "",
                                      perplexity_text(after) if part else "", change)):
                self.perplexity_table.setItem(r, c, QTableWidgetItem(text))
        rows = metrics.get("compare") or []
        self.compare_table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, key in enumerate(("prompt", "reference", "base", "tuned")):
                self.compare_table.setItem(r, c, QTableWidgetItem(said(row[key])))
        self.compare_table.resizeRowsToContents()
        self._update_ask()

    @Slot()
    def _update_ask(self) -> None:
        """Ask needs a trained run and no answer being written."""
        folder = _open(self._run_dir())
        self.ask_button.setEnabled(folder is not None and folder.has_model and not self._busy())

    @Slot()
    def ask(self) -> None:
        prompt = self.prompt_edit.toPlainText().strip()
        run_dir = self._run_dir()
        if not prompt or not run_dir or self._busy():
            return
        sampling = Sampling(max_new_tokens=self.tokens_spin.value(),
                            temperature=self.temperature_spin.value(),
                            top_p=self.top_p_spin.value())
        speaker = "Base model" if self.base_check.isChecked() else "Fine-tuned model"
        asked = self.conversation + [{"role": "user", "content": prompt}]
        worker = GenerateWorker(self.loaded or run_dir, asked, sampling,
                                base=self.base_check.isChecked())
        worker.piece.connect(self._on_piece)
        worker.loaded.connect(self._on_loaded)
        worker.progress.connect(self._on_progress)
        self._pending = (prompt, speaker)
        self._show_transcript(asked, self._speakers + ["You"], open_speaker=speaker)
        self.prompt_edit.clear()
        self.runner.start(worker)

    @Slot()
    def new_conversation(self) -> None:
        """Forget the turns so far: the next question starts afresh. An answer still being
        written stops; Ask waits until it has (the model is the same one, switched between
        base and fine-tuned, so two answers must never run at once)."""
        worker = self.runner.worker
        self.runner.cancel()
        if worker is not None and worker.thread() is not None:
            self._draining = worker.thread()
            self._draining.finished.connect(self._update_ask)
        self.conversation, self._speakers = [], []
        self.answer.clear()
        self._update_ask()

    def _busy(self) -> bool:
        draining = self._draining is not None and not self._draining.isFinished()
        return self.runner.is_running() or draining

    def _show_transcript(self, turns: list[dict], speakers: list[str],
                         open_speaker: str = "") -> None:
        text = "\n\n".join(f"{who}: {turn['content']}" for who, turn in zip(speakers, turns,
                                                                          strict=True))
        if open_speaker:
            text += ("\n\n" if text else "") + f"{open_speaker}: "
        self.answer.setPlainText(text)

    @Slot(float, str)
    def _on_progress(self, fraction: float, text: str) -> None:
        if self._from_current():
            self.status_label.setText(text)

    def _from_current(self) -> bool:
        """Whether the signal being handled comes from the answer being written (a cancelled
        one's late pieces are dropped)."""
        return self.sender() is self.runner.worker

    @Slot(object)
    def _on_loaded(self, loaded) -> None:
        if loaded.run_dir == self._run_dir():  # still the run shown: keep it for the next turn
            self.loaded = loaded
        if self._from_current():
            self.status_label.setText("")

    @Slot(str)
    def _on_piece(self, piece: str) -> None:
        if not self._from_current():
            return
        cursor = self.answer.textCursor()
        cursor.movePosition(QTextCursor.MoveOperation.End)
        cursor.insertText(piece)
        self.answer.setTextCursor(cursor)

    @Slot(object)
    def _on_answered(self, text: str) -> None:
        prompt, speaker = self._pending
        if self.loaded is not None and self.loaded.kind == "text":
            self.conversation, self._speakers = [], []  # a text model goes on; it does not chat
        self.conversation += [{"role": "user", "content": prompt},
                              {"role": "assistant", "content": text}]
        self._speakers += ["You", speaker]
        self._show_transcript(self.conversation, self._speakers)  # the pieces add up to it

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self.answer.setPlainText("")
        dialogs.show_error(self, "Could not answer", message)


def _export_merged(run_dir: str, out: str) -> str:
    model, tokenizer, folder = load_tuned(run_dir, "cpu")
    gap = save_merged(model, tokenizer, out, check_ids(folder, tokenizer))
    return (f"Saved the merged model to {out}. Checked: loaded back with transformers, its "
            f"logits differ from the run's by {gap:.2g} at most.")


def _export_adapter(run_dir: str, out: str) -> str:
    model, _, _ = load_tuned(run_dir, "cpu")
    save_adapter(model, out)
    return f"Saved the LoRA adapter (peft format) to {out}."


def _export_report(run_dir: str, out: str) -> str:
    written = write_lm_report(RunFolder.open(run_dir), out)
    return "Wrote the report: " + " and ".join(str(p) for p in written) + "."


class LMExportPage(QWidget):
    """The merged model folder, the LoRA adapter, and the report with the before/after
    table."""

    def __init__(self, state: ProjectState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.runner = TaskRunner(self)
        layout = QVBoxLayout(self)
        layout.addWidget(heading("Take the model with you"))
        self.merged_button = QPushButton("Save the merged model folder…")
        self.adapter_button = QPushButton("Save the LoRA adapter…")
        self.report_button = QPushButton("Write a report…")
        notes = ("A folder that AutoModelForCausalLM.from_pretrained loads (safetensors, "
                 "config, tokenizer), checked by loading it back.",
                 "The small adapter alone, in peft's format, to load on top of the base model.",
                 "An HTML page and a PDF for people who do not work in machine learning: the "
                 "data, the settings, the curves, perplexity before and after, and the "
                 "answers side by side.")
        for button, note, slot in zip((self.merged_button, self.adapter_button,
                                       self.report_button), notes,
                                      (self.save_merged, self.save_adapter, self.save_report),
                                      strict=True):
            button.clicked.connect(slot)
            layout.addWidget(button)
            label = mute(QLabel(note))
            label.setWordWrap(True)
            layout.addWidget(label)
        self.banner = MessageBanner()
        layout.addWidget(self.banner)
        layout.addStretch(1)
        self.runner.finished.connect(lambda text: self.banner.show_message(text, "ok"))
        self.runner.errored.connect(lambda text: self.banner.show_message(text, "error"))
        state.current_run_changed.connect(self._refresh)
        self._refresh()

    def _run_dir(self) -> str:
        return self.state.language_model_run

    @Slot()
    def _refresh(self) -> None:
        run_dir = self._run_dir()
        folder = _open(run_dir)
        lora = folder is not None and folder.settings().get(
            "language_model", {}).get("mode") == "lora"
        trained = folder is not None and folder.has_model
        self.merged_button.setEnabled(trained)
        self.report_button.setEnabled(trained)
        self.adapter_button.setEnabled(lora and trained)
        self.adapter_button.setToolTip("" if lora or not run_dir else
                                       "This run fine-tuned every weight: it has no adapter.")

    def _start(self, fn, out: str) -> None:
        self.banner.show_message(f"Writing {out} …", "info")
        self.runner.start(FunctionWorker(fn, self._run_dir(), out))

    @Slot()
    def save_merged(self) -> None:
        out = dialogs.open_folder(self, "Choose an empty folder for the merged model")
        if out:
            self._start(_export_merged, out)

    @Slot()
    def save_adapter(self) -> None:
        out = dialogs.open_folder(self, "Choose an empty folder for the adapter")
        if out:
            self._start(_export_adapter, out)

    @Slot()
    def save_report(self) -> None:
        out = dialogs.save_file(self, "Write the report", "HTML (*.html)")
        if out:
            self._start(_export_report, out)
