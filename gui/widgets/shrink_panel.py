"""The Export step's "Make it smaller" tab: prune or distil the current run into a new run."""

from __future__ import annotations

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ml.export.compress import CompressionReport
from ml.export.shrink import SPARSITIES, student_choices
from ml.models.spec import summarize
from ml.runs.folder import RunFolder, load_run
from workers.base import TaskRunner
from workers.shrink_worker import ShrinkWorker

from .. import dialogs
from ..state import ProjectState
from ..theme import mute
from .common import MessageBanner
from .variant_table import VariantTable

INTRO = ("A smaller model loads faster, fits on small devices and costs less to run. "
         "<b>Pruning</b> sets the least important weights to zero and retrains the rest briefly; "
         "<b>distillation</b> trains a smaller network to imitate this one. Either way you get "
         "a new run, and the table below shows what you trade: size, speed and test score.")


class ShrinkPanel(QWidget):
    """Prune or distil the current run; the new run joins the project's runs.

    Signals
    -------
    export_requested()
        "Export the smaller model" made the new run current; show the Export tab.
    """

    export_requested = Signal()

    def __init__(self, state: ProjectState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.runner = TaskRunner(self)
        self.runner.finished.connect(self._on_finished)
        self.runner.errored.connect(self._on_errored)
        self.last_result = None
        self.last_report = None

        intro = QLabel(INTRO)
        intro.setWordWrap(True)
        form = self._build_method_form()

        buttons = self._build_buttons()
        self.banner = MessageBanner()
        self.log = QPlainTextEdit()
        self.log.setObjectName("shrinkLog")
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(500)
        self.log.setMaximumHeight(120)
        self.table = VariantTable()
        self.table.setObjectName("shrinkTable")
        self.table.hide()
        note = QLabel("Pruned weights are zeros: the file keeps its size but shrinks in a .zip; "
                      "a distilled network is smaller and faster everywhere. Times are for one "
                      "sample at a time on this computer's CPU (ONNX Runtime).")
        note.setWordWrap(True)
        mute(note)

        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.banner)
        layout.addWidget(self.table)
        layout.addWidget(self.log)
        layout.addWidget(note)
        layout.addStretch(1)
        state.current_run_changed.connect(self.refresh)
        self.refresh()

    def _build_method_form(self) -> QFormLayout:
        """Prune (how much) or distil (into which student), and the epochs."""
        self.prune_radio = QRadioButton("Prune: set this share of the weights to zero")
        self.prune_radio.setObjectName("pruneRadio")
        self.distill_radio = QRadioButton("Distil into a smaller network")
        self.distill_radio.setObjectName("distillRadio")
        group = QButtonGroup(self)
        group.addButton(self.prune_radio)
        group.addButton(self.distill_radio)
        self.prune_radio.setChecked(True)
        self.sparsity_combo = QComboBox()
        self.sparsity_combo.setObjectName("sparsityCombo")
        for share in SPARSITIES:
            self.sparsity_combo.addItem(f"{share:.0%}", share)
        self.sparsity_combo.setCurrentIndex(SPARSITIES.index(0.5))
        self.sparsity_combo.setToolTip("More zeros: a smaller .zip, usually a lower score. "
                                       "The table shows the score after retraining.")
        self.student_combo = QComboBox()
        self.student_combo.setObjectName("studentCombo")
        self.student_combo.setToolTip("The student network. It learns from this run's "
                                      "predictions (softened) as well as from the labels.")
        self.epochs_spin = QSpinBox()
        self.epochs_spin.setObjectName("shrinkEpochs")
        self.epochs_spin.setRange(0, 1000)
        self.epochs_spin.setSpecialValueText("automatic")
        self.epochs_spin.setToolTip("Pruning: retraining epochs (automatic: a quarter of the "
                                    "run's, 2 to 10). Distillation: the student's epochs "
                                    "(automatic: as many as the run had).")
        form = QFormLayout()
        form.addRow(self.prune_radio, self.sparsity_combo)
        form.addRow(self.distill_radio, self.student_combo)
        form.addRow("Epochs:", self.epochs_spin)
        for w in (self.prune_radio, self.distill_radio):
            w.toggled.connect(self._update_enabled)
        return form

    def _build_buttons(self) -> QHBoxLayout:
        """Start, Stop and Export the smaller model."""
        self.start_button = QPushButton("Make a smaller model")
        self.start_button.setObjectName("shrinkButton")
        self.start_button.setMinimumHeight(36)
        self.start_button.clicked.connect(self.start)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stop)
        self.use_button = QPushButton("Export the smaller model")
        self.use_button.setObjectName("useSmallerButton")
        self.use_button.setToolTip("Make the new run the current one; the Export tab then "
                                   "writes it")
        self.use_button.setEnabled(False)
        self.use_button.clicked.connect(self.use_smaller)
        buttons = QHBoxLayout()
        for b in (self.start_button, self.stop_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(self.use_button)
        return buttons

    @Slot()
    def refresh(self) -> None:
        """Offer the students that fit the current run."""
        if self.runner.is_running():
            return
        self.student_combo.clear()
        current = self.state.table_run
        choices = []
        self._show_kept(current)
        if current is not None:
            try:
                choices = student_choices(load_run(current.record.path))
            except Exception:  # noqa: BLE001 - a damaged run: starting explains why
                choices = []
        for s in choices:
            self.student_combo.addItem(f"{s.title} ({s.params:,} weights)", s.key)
        self.distill_radio.setEnabled(bool(choices))
        if not choices:
            self.prune_radio.setChecked(True)
        self.start_button.setEnabled(current is not None)
        self._update_enabled()

    def _show_kept(self, current) -> None:
        """The pruned and distilled versions measured of this run's weights before (kept in
        its folder, as its report shows them); nothing for a run without any."""
        kept = RunFolder(current.record.path).smaller_tables().get("derived") if current \
            else None
        report = CompressionReport.from_dict(kept) if kept else None
        if report is None:
            self.table.hide()
        else:
            self.table.show_report(report)

    def _update_enabled(self) -> None:
        self.sparsity_combo.setEnabled(self.prune_radio.isChecked())
        self.student_combo.setEnabled(self.distill_radio.isChecked())

    @Slot()
    def start(self) -> None:
        current = self.state.current_run
        if current is None or self.runner.is_running():
            return
        epochs = self.epochs_spin.value() or None
        if self.prune_radio.isChecked():
            worker = ShrinkWorker(current.record.path, "prune",
                                  sparsity=float(self.sparsity_combo.currentData()),
                                  epochs=epochs)
        else:
            worker = ShrinkWorker(current.record.path, "distill",
                                  student=str(self.student_combo.currentData()), epochs=epochs)
        worker.message_logged.connect(self.log.appendPlainText)
        self.log.clear()
        self.table.hide()
        self.use_button.setEnabled(False)
        self.banner.show_message("Training the smaller model …", "info")
        self.start_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.runner.start(worker)

    @Slot()
    def stop(self) -> None:
        self.runner.request_stop()
        self.banner.show_message("Stopping after this batch; the best epoch so far is kept …",
                                 "info")

    @Slot(object)
    def _on_finished(self, outcome) -> None:
        result, report = outcome
        self.last_result, self.last_report = outcome
        self.start_button.setEnabled(True)
        self.stop_button.setEnabled(False)
        self.state.add_run(result.record(), make_current=False)
        weights = [self._weights_text(result.teacher_dir, None),
                   self._weights_text(None, result.metrics)]
        self.table.show_report(report, weights)
        self.use_button.setEnabled(True)
        self.banner.show_message(f"✔ New run {result.run_dir.name}: {result.label}. It is in the "
                                 f"runs list; evaluate or export it like any run.", "ok")

    @Slot()
    def use_smaller(self) -> None:
        if self.last_result is None:
            return
        record = next((r for r in self.state.project.runs
                       if r.path == str(self.last_result.run_dir)), None)
        if record is not None:
            self.state.set_current_run(record)
            self.export_requested.emit()

    @staticmethod
    def _weights_text(run_dir, metrics: dict | None) -> str:
        """Weights of the original run (in *run_dir*), or of the new one from its *metrics*."""
        if metrics is None:
            try:
                return f"{summarize(load_run(run_dir).spec).total_params:,}"
            except Exception:  # noqa: BLE001 - the count is a nicety
                return ""
        text = f"{metrics.get('params', 0):,}"
        nonzero, prunable = metrics.get("nonzero_weights"), metrics.get("prunable_weights")
        if nonzero is not None and prunable and nonzero < prunable:
            text += f" ({1 - nonzero / prunable:.0%} zeros)"
        return text

    @Slot(str)
    def _on_errored(self, message: str) -> None:
        self.start_button.setEnabled(True)
        self.stop_button.setEnabled(False)
        self.banner.show_message(message, "error")
        dialogs.show_error(self, "Could not make a smaller model", message)
