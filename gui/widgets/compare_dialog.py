"""Compare runs side by side on the same rows, and average them into an ensemble.

The evaluations run in a worker (:func:`ml.evaluation.ensemble.compare_runs`); the dialog shows a
metrics table (the best value of each row in bold) and two models' confusion matrices - or, for
numbers, predicted-vs-actual plots - next to each other. An ensemble can be exported like a single
run.
"""

from __future__ import annotations

import re

from PySide6.QtCore import Qt, Slot
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ml.evaluation.ensemble import Comparison, Ensemble, compare_runs
from ml.export import FORMATS, export_ensemble, inputs_for_check
from ml.labels import metric_label, model_label
from ml.runs.folder import RunFolder, load_run
from ml.system.jobcontrol import check_stop
from workers.base import FunctionWorker, TaskRunner

from .. import dialogs
from .common import MessageBanner
from .plots import ConfusionMatrixWidget, ScatterPlotWidget

#: Metrics shown, in order: (key, higher is better); their labels are ml.labels'.
ROWS = (("accuracy", True), ("balanced_accuracy", True), ("f1_macro", True),
        ("f1_weighted", True), ("precision_macro", True), ("recall_macro", True),
        ("top2_accuracy", True), ("roc_auc", True), ("log_loss", False), ("mae", False),
        ("rmse", False), ("r2", True), ("mape", False))


def short_name(name: str) -> str:
    """A run folder's name as a column header: ``20261124-094608-digits-cnn`` -> ``09:46:08 ·
    cnn``; other names are kept."""
    match = re.match(r"^\d{8}-(\d{2})(\d{2})(\d{2})-.*-([^-]+)$", name)
    return f"{match[1]}:{match[2]}:{match[3]} · {match[4]}" if match else name


def _compare(paths: list[str], split: str, ensemble: bool, should_stop=None) -> Comparison:
    return compare_runs([load_run(p) for p in paths], split, ensemble=ensemble,
                        should_stop=should_stop)


def _export(paths: list[str], fmt: str, out: str, should_stop=None):
    runs = [load_run(p) for p in paths]
    x, checked_on = inputs_for_check(runs[0])
    check_stop(should_stop, "The export was stopped.")
    return export_ensemble(Ensemble(runs), fmt, out, x, checked_on, should_stop=should_stop)


class CompareDialog(QDialog):
    """Pick runs, compare them (and their ensemble), export the ensemble."""

    def __init__(self, state, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("compareDialog")
        self.setWindowTitle("Compare runs")
        self.state = state
        self.comparison: Comparison | None = None
        self._paths: list[str] = []
        self.runner = TaskRunner(self)
        self.runner.finished.connect(self._on_compared)
        self.runner.errored.connect(self._on_error)
        self.exporter = TaskRunner(self)
        self.exporter.finished.connect(self._on_exported)
        self.exporter.errored.connect(self._on_error)

        self._build_run_list()
        self.split_combo = QComboBox()
        self.split_combo.addItem("Test split", "test")
        self.split_combo.addItem("Validation split", "val")
        self.ensemble_check = QCheckBox("Add their average (an ensemble)")
        self.ensemble_check.setObjectName("ensembleCheck")
        self.ensemble_check.setToolTip("Average the runs' class probabilities (or, for numbers, "
                                       "their predictions) and score that as one model")
        self.compare_button = QPushButton("Compare")
        self.compare_button.setObjectName("compareButton")
        self.compare_button.clicked.connect(self.compare)
        self.banner = MessageBanner()
        self.banner.setObjectName("compareBanner")

        pair_box = self._build_pair_view()

        self.format_combo = QComboBox()
        for fmt, (title, suffix) in FORMATS.items():
            self.format_combo.addItem(f"{title} ({suffix})", fmt)
        self.export_button = QPushButton("Export the ensemble…")
        self.export_button.setObjectName("exportEnsembleButton")
        self.export_button.setEnabled(False)
        self.export_button.clicked.connect(self.export)

        left = QVBoxLayout()
        left.addWidget(QLabel("Runs (tick two or more):"))
        left.addWidget(self.run_list, 1)
        left.addWidget(self.split_combo)
        left.addWidget(self.ensemble_check)
        left.addWidget(self.compare_button)
        left.addStretch(0)
        export_row = QHBoxLayout()
        export_row.addWidget(self.format_combo)
        export_row.addWidget(self.export_button)
        left.addLayout(export_row)
        chooser = QWidget()
        chooser.setLayout(left)
        results = QSplitter(Qt.Orientation.Vertical)
        results.addWidget(self.table)
        results.addWidget(pair_box)
        results.setSizes([260, 420])
        body = QSplitter(Qt.Orientation.Horizontal)
        body.addWidget(chooser)
        body.addWidget(results)
        body.setSizes([320, 900])
        layout = QVBoxLayout(self)
        layout.addWidget(self.banner)
        layout.addWidget(body, 1)
        self.resize(1240, 760)
        self._show_pair()
        self._update_buttons()

    def _build_run_list(self) -> None:
        """The runs with a model, ticked to compare (the current one ticked)."""
        self.run_list = QListWidget()
        self.run_list.setObjectName("compareRuns")
        state = self.state
        current = state.current_run.record.path if state.current_run is not None else None
        for record in state.project.runs:
            if (record.status not in ("finished", "stopped")
                    or not RunFolder(record.path).has_model):
                continue
            metrics = ", ".join(f"{metric_label(k)} {v:.3f}" for k, v in record.metrics.items())
            what = model_label(record.model)
            # The name usually says the model already ("Run 3 · small MLP").
            shown = record.title if what.lower() in record.title.lower() else (
                f"{record.title} · {what}")
            item = QListWidgetItem(f"{shown} · {metrics}")
            item.setToolTip(f"Folder: {record.path}")
            item.setData(Qt.ItemDataRole.UserRole, record.path)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if record.path == current
                               else Qt.CheckState.Unchecked)
            self.run_list.addItem(item)
        self.run_list.itemChanged.connect(lambda _: self._update_buttons())

    def _build_pair_view(self) -> QWidget:
        """The comparison table's two runs side by side: matrices or scatter plots."""
        self.table = QTableWidget()
        self.table.setObjectName("compareTable")
        self.table.setTabKeyNavigation(False)  # Tab leaves the table; arrows move in it
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.left_combo, self.right_combo = QComboBox(), QComboBox()
        self.left_combo.currentIndexChanged.connect(lambda _: self._show_pair())
        self.right_combo.currentIndexChanged.connect(lambda _: self._show_pair())
        self.left_matrix, self.right_matrix = ConfusionMatrixWidget(), ConfusionMatrixWidget()
        self.left_scatter, self.right_scatter = ScatterPlotWidget(), ScatterPlotWidget()
        pair = QGridLayout()
        pair.addWidget(self.left_combo, 0, 0)
        pair.addWidget(self.right_combo, 0, 1)
        for col, widgets in enumerate(((self.left_matrix, self.left_scatter),
                                       (self.right_matrix, self.right_scatter))):
            for w in widgets:
                pair.addWidget(w, 1, col)
        pair_box = QWidget()
        pair_box.setLayout(pair)
        return pair_box

    # -- choosing -------------------------------------------------------------------------------
    def checked_paths(self) -> list[str]:
        return [self.run_list.item(i).data(Qt.ItemDataRole.UserRole)
                for i in range(self.run_list.count())
                if self.run_list.item(i).checkState() == Qt.CheckState.Checked]

    def check_paths(self, paths: list[str]) -> None:
        for i in range(self.run_list.count()):
            item = self.run_list.item(i)
            item.setCheckState(Qt.CheckState.Checked if item.data(Qt.ItemDataRole.UserRole)
                               in paths else Qt.CheckState.Unchecked)

    def _update_buttons(self) -> None:
        self.compare_button.setEnabled(len(self.checked_paths()) >= 2)

    # -- comparing ------------------------------------------------------------------------------
    @Slot()
    def compare(self) -> None:
        paths = self.checked_paths()
        if len(paths) < 2:
            return
        self._paths = paths
        self.compare_button.setEnabled(False)
        self.export_button.setEnabled(False)
        self.banner.show_message(f"Evaluating {len(paths)} runs …", "info")
        self.runner.start(FunctionWorker(_compare, paths, self.split_combo.currentData(),
                                         self.ensemble_check.isChecked()))

    def is_busy(self) -> bool:
        return self.runner.is_running() or self.exporter.is_running()

    @Slot(object)
    def _on_compared(self, comparison: Comparison) -> None:
        self.comparison = comparison
        self._update_buttons()
        first = comparison.evaluations[0]
        self.banner.show_message(f"All scored on the same {first.n:,} rows of the "
                                 f"{first.source}.", "ok")
        rows = [r for r in ROWS if any(r[0] in ev.metrics and ev.metrics[r[0]] ==
                                       ev.metrics[r[0]] for ev in comparison.evaluations)]
        self.table.clear()
        self.table.setRowCount(len(rows))
        self.table.setColumnCount(len(comparison.names))
        names = self.run_names(comparison)
        self.table.setHorizontalHeaderLabels(names)
        for c, name in enumerate(comparison.names):
            self.table.horizontalHeaderItem(c).setToolTip(f"{names[c]}\nFolder: {name}")
        self.table.setVerticalHeaderLabels([metric_label(key) for key, _ in rows])
        bold = QFont(self.font())
        bold.setBold(True)
        for r, (key, higher) in enumerate(rows):
            values = [ev.metrics.get(key, float("nan")) for ev in comparison.evaluations]
            finite = [v for v in values if v == v]
            best = (max(finite) if higher else min(finite)) if finite else None
            for c, value in enumerate(values):
                item = QTableWidgetItem("-" if value != value else f"{value:.4f}")
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if best is not None and value == best:
                    item.setFont(bold)
                    item.setForeground(Qt.GlobalColor.darkGreen)
                self.table.setItem(r, c, item)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        for combo, index in ((self.left_combo, 0),
                             (self.right_combo, len(comparison.names) - 1)):
            combo.blockSignals(True)
            combo.clear()
            combo.addItems(names)
            combo.setCurrentIndex(index)
            combo.blockSignals(False)
        self._show_pair()
        self.export_button.setEnabled(comparison.ensemble is not None)

    def run_names(self, comparison: Comparison) -> list[str]:
        """The compared models' names as the runs list shows them (the ensemble keeps its
        own): the runs' names, not their folders'."""
        by_path = {r.path: r for r in self.state.project.runs}
        names = []
        for i, name in enumerate(comparison.names):
            record = by_path.get(self._paths[i]) if i < len(self._paths) else None
            names.append(record.title if record is not None else short_name(name))
        return names

    def _show_pair(self) -> None:
        comparison = self.comparison
        classification = comparison is None or comparison.evaluations[0].task == "classification"
        for w in (self.left_matrix, self.right_matrix):
            w.setVisible(classification)
        for w in (self.left_scatter, self.right_scatter):
            w.setVisible(not classification)
        if comparison is None:
            return
        for combo, matrix, scatter in ((self.left_combo, self.left_matrix, self.left_scatter),
                                       (self.right_combo, self.right_matrix,
                                        self.right_scatter)):
            i = combo.currentIndex()
            if i < 0:
                continue
            ev = comparison.evaluations[i]
            if classification:
                matrix.set_matrix(ev.confusion, ev.class_names)
            else:
                scatter.set_points(ev.y_true, ev.y_pred)

    # -- exporting ------------------------------------------------------------------------------
    @Slot()
    def export(self) -> None:
        if self.comparison is None or self.comparison.ensemble is None:
            return
        fmt = self.format_combo.currentData()
        title, suffix = FORMATS[fmt]
        out = dialogs.save_file(self, "Export the ensemble", f"{title} (*{suffix})",
                                f"ensemble{suffix}")
        if not out:
            return
        self.export_button.setEnabled(False)
        self.banner.show_message("Exporting and checking the ensemble …", "info")
        self.exporter.start(FunctionWorker(_export, self._paths, fmt, out))

    @Slot(object)
    def _on_exported(self, report) -> None:
        self.export_button.setEnabled(True)
        self.last_report = report
        self.banner.show_message(report.summary, "ok")

    @Slot(str)
    def _on_error(self, message: str) -> None:
        self._update_buttons()
        self.export_button.setEnabled(self.comparison is not None
                                      and self.comparison.ensemble is not None)
        self.banner.show_message(message, "error")

    def done(self, result: int) -> None:  # noqa: D102 - QDialog API: stop the workers first
        self.runner.shutdown()
        self.exporter.shutdown()
        super().done(result)
