"""Step 4 - Evaluate: test-split metrics, per-class table, confusion matrix, predicted vs actual."""

from __future__ import annotations

import dataclasses
import html

import pandas as pd
from PySide6.QtCore import QSignalBlocker, Qt, QTimer, Slot
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QScrollArea,
    QSlider,
    QStackedWidget,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ml.evaluation import yardstick
from ml.evaluation.baseline import baseline_of, headline_notes, never_predicted
from ml.evaluation.evaluate import Evaluation, evaluate_run, rethreshold
from ml.labels import metric_label
from ml.runs.folder import load_run
from ml.system.jobcontrol import check_stop
from workers.base import FunctionWorker, TaskRunner

from .. import dialogs
from ..state import ProjectState
from ..theme import mute
from ..widgets.common import CardRow, MessageBanner, MetricCard, heading
from ..widgets.eval_plots import CurvesPanel, ImportanceChart, ResidualsPanel
from ..widgets.plots import ConfusionMatrixWidget, ScatterPlotWidget
from ..widgets.table_models import RecordsModel
from ..widgets.tryit_panel import TryItPanel

#: Metrics beyond the cards, in reading order: (key, label, as a percentage).
MORE_METRICS = (("balanced_accuracy", "balanced accuracy", True),
                ("f1_weighted", "weighted F1", False), ("top2_accuracy", "top-2 accuracy", True),
                ("top3_accuracy", "top-3 accuracy", True), ("roc_auc", "ROC AUC", False),
                ("average_precision", "average precision", False),
                ("log_loss", "log loss", False), ("mape", "mean absolute % error", True))


def describe_more(metrics: dict) -> str:
    """One line of the metrics the cards do not show."""
    parts = []
    for key, label, pct in MORE_METRICS:
        value = metrics.get(key)
        if value is None or value != value:  # absent or NaN
            continue
        parts.append(f"{label} <b>{100 * value:.1f}%</b>" if pct else
                     f"{label} <b>{value:.3f}</b>")
    return " · ".join(parts)


class ImportancePanel(QWidget):
    """Permutation feature importance of the evaluated rows, computed in the background."""

    INTRO = ("Shuffles one column at a time and measures how much the score drops: the "
             "columns the model relies on most come first.")

    def __init__(self, page: EvaluatePage):
        super().__init__()
        self.page = page
        self.runner = TaskRunner(self)
        self.runner.finished.connect(self._on_done)
        self.runner.errored.connect(self._on_error)
        self.button = QPushButton("Measure feature importance")
        self.button.setObjectName("importanceButton")
        self.button.clicked.connect(self.compute)
        self.note = QLabel(self.INTRO)
        self.note.setWordWrap(True)
        self.chart = ImportanceChart()
        self.chart.setObjectName("importanceChart")
        row = QHBoxLayout()
        row.addWidget(self.button)
        row.addWidget(self.note, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.chart, 1)
        self.result = None

    def reset(self) -> None:
        self.runner.cancel()
        self.result = None
        self.chart.set_importance([], [], [], "", "Feature importance")
        self.note.setText(self.INTRO)
        self.button.setEnabled(True)

    @Slot()
    def compute(self) -> None:
        current, ev = self.page.state.current_run, self.page.evaluation
        if current is None or ev is None or not isinstance(ev.examples, pd.DataFrame):
            return
        self.button.setEnabled(False)
        self.note.setText("Measuring …")
        self.runner.start(FunctionWorker(_importance, str(current.path), ev.examples))

    @Slot(object)
    def _on_done(self, result) -> None:
        self.result = result
        self.button.setEnabled(True)
        score = "accuracy" if result.score == "accuracy" else "R²"
        scale = 100.0 if result.score == "accuracy" else 1.0
        # The value axis says what a bar measures, in its unit (accuracy in percentage points).
        self.chart.set_importance(
            result.features, list(scale * result.mean), list(scale * result.std),
            f"drop in {score} when the column is shuffled"
            + (" (percentage points)" if scale == 100 else ""), "Feature importance")
        top = result.features[0]
        self.note.setText(f"The model relies most on <b>{top}</b>: shuffling it lowers the "
                          f"{score} by {scale * result.mean[0]:.3g}"
                          f"{' points' if scale == 100 else ''} (from "
                          f"{scale * result.baseline:.3g}). Whiskers: the spread over repeated "
                          f"shuffles; grey bars at or below 0: columns it ignores.")

    @Slot(str)
    def _on_error(self, message: str) -> None:
        self.button.setEnabled(True)
        self.note.setText(message)


def _importance(run_path: str, rows: pd.DataFrame, should_stop=None):
    from ml.evaluation.explain import permutation_importance

    run = load_run(run_path)
    return permutation_importance(run.load_model(), run.preprocessor, rows,
                                  should_stop=should_stop)


def _evaluate(run_path: str, data: str | None, split: str = "test", should_stop=None
              ) -> tuple[str, Evaluation]:
    run = load_run(run_path)
    check_stop(should_stop)
    return run_path, evaluate_run(run, data, split)


class EvaluatePage(QWidget):
    """How good is the model, and where does it go wrong."""

    def __init__(self, state: ProjectState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.runner = TaskRunner(self)
        self.runner.finished.connect(self._on_evaluated)
        self.runner.errored.connect(self._on_errored)
        self.evaluation: Evaluation | None = None

        top = self._build_run_row()

        self.cards = [MetricCard("") for _ in range(3)]
        self.cards_row = CardRow(self.cards)
        # What ignoring the inputs would score, beside the cards (ml.evaluation.baseline).
        self.baseline_note = MessageBanner()
        self.baseline_note.setObjectName("baselineNote")
        # The classic model fitted beside the run, on the same test rows (ml.evaluation.yardstick).
        self.yardstick_note = MessageBanner()
        self.yardstick_note.setObjectName("yardstickNote")
        self.yardstick_note.setWordWrap(True)
        self.banner = MessageBanner()
        self.banner.setObjectName("evaluateBanner")

        self._build_classification_view()

        regression = self._build_regression_view()
        self.views = QStackedWidget()
        self.views.addWidget(self.class_tabs)
        self.views.addWidget(regression)
        self._pred = None  # the predictions shown (moved by the threshold)
        self._threshold_run = ""  # the folder of the run whose threshold the slider sets
        self._file = ""  # the labelled file last evaluated on (the "On:" box's third choice)

        metrics_tab = QWidget()
        ml = QVBoxLayout(metrics_tab)
        ml.addWidget(self.source_label)
        ml.addWidget(self.cards_row)
        ml.addWidget(self.baseline_note)
        ml.addWidget(self.yardstick_note)
        ml.addWidget(self.more_metrics)
        ml.addWidget(self.views, 1)
        self.tryit = TryItPanel()
        self.tryit.setObjectName("tryItPanel")
        self.page_tabs = QTabWidget()
        self.page_tabs.setObjectName("evaluateTabs")
        # At the minimum window size the cards, the banner and the matrix need more height
        # than there is: the tab scrolls rather than squeezing the matrix off its bottom.
        metrics_scroll = QScrollArea()
        metrics_scroll.setObjectName("metricsScroll")
        metrics_scroll.setWidgetResizable(True)
        metrics_scroll.setFrameShape(QFrame.Shape.NoFrame)
        metrics_scroll.setWidget(metrics_tab)
        self.page_tabs.addTab(metrics_scroll, "Metrics")
        self.page_tabs.addTab(self.tryit, "Try it")
        self.page_tabs.currentChanged.connect(lambda _: self._sync_tryit())

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.banner)
        layout.addWidget(self.page_tabs, 1)

        state.runs_changed.connect(self._fill_runs)
        state.current_run_changed.connect(self._on_current_run_changed)
        state.threshold_changed.connect(self.tryit.use_threshold)
        self._fill_runs()
        self._on_current_run_changed()

    def _build_run_row(self) -> QHBoxLayout:
        """Which run, on which rows (or another file), and Compare runs."""
        self.run_combo = QComboBox()
        self.run_combo.setObjectName("runCombo")
        self.run_combo.setMinimumContentsLength(36)
        self.run_combo.activated.connect(self._on_run_chosen)
        self.file_button = QPushButton("Evaluate on another labelled file…")
        self.file_button.clicked.connect(self._on_file_clicked)
        self.split_combo = QComboBox()
        self.split_combo.setObjectName("splitCombo")
        self.split_combo.addItem("Test split", "test")
        self.split_combo.addItem("Validation split", "val")
        self.split_combo.setToolTip("Which of the run's own rows to evaluate on (the test rows "
                                    "were never used to pick the model)")
        self.split_combo.activated.connect(lambda _: self.evaluate_current())
        self.source_label = QLabel("")
        self.source_label.setObjectName("evaluationSource")
        self.source_label.setWordWrap(True)  # a file's overlap with training takes a sentence
        top = QHBoxLayout()
        top.addWidget(QLabel("Run:"))
        top.addWidget(self.run_combo, 1)
        top.addWidget(QLabel("On:"))
        top.addWidget(self.split_combo)
        top.addWidget(self.file_button)
        self.compare_button = QPushButton("Compare runs…")
        self.compare_button.setObjectName("compareRunsButton")
        self.compare_button.setToolTip("Runs side by side on the same rows, and their average "
                                       "as an ensemble you can export")
        self.compare_button.clicked.connect(self.open_compare)
        top.addWidget(self.compare_button)
        return top

    def _build_classification_view(self) -> None:
        """Per-class table, confusion matrix with its threshold, and the curves."""
        self.class_model = RecordsModel(["Class", "Precision", "Recall", "F1", "Support"])
        self.class_view = QTableView()
        self.class_view.setObjectName("perClassTable")
        self.class_view.setTabKeyNavigation(False)  # Tab leaves the table; arrows move in it
        self.class_view.setModel(self.class_model)
        self.class_view.verticalHeader().hide()
        # The names get the room: the numbers are short, and equal shares cut long names.
        header = self.class_view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.matrix = ConfusionMatrixWidget()
        self.matrix.setObjectName("confusionMatrix")
        self.matrix.setToolTip("Click a cell (or pick it with the arrow keys and press Enter) "
                               "to see its examples, the model's most confident first")
        self.matrix.cell_clicked.connect(self.show_cell)
        self.mistakes_button = QPushButton("Most confident mistakes…")
        self.mistakes_button.setObjectName("mistakesButton")
        self.mistakes_button.clicked.connect(self.show_mistakes)
        self.more_metrics = QLabel("")
        self.more_metrics.setObjectName("moreMetrics")
        self.more_metrics.setWordWrap(True)
        mute(self.more_metrics)
        classification = QWidget()
        cl = QHBoxLayout(classification)
        cl.setContentsMargins(0, 0, 0, 0)
        left = QVBoxLayout()
        left.addWidget(heading("Per class", 12))
        left.addWidget(self.class_view)
        cl.addLayout(left, 2)
        right = QVBoxLayout()
        title = QHBoxLayout()
        matrix_title = heading("Confusion matrix (click a cell for its examples)", 12)
        matrix_title.setWordWrap(True)  # beside the two controls at the minimum window size
        title.addWidget(matrix_title, 1)
        self.normalize_combo = QComboBox()
        self.normalize_combo.setObjectName("matrixNumbers")
        self.normalize_combo.addItem("Counts", False)
        self.normalize_combo.addItem("% of each true class", True)
        self.normalize_combo.setToolTip("What the cells say; the colours always show the share "
                                        "of each true class")
        self.normalize_combo.currentIndexChanged.connect(
            lambda _: self.matrix.set_normalized(self.normalize_combo.currentData()))
        title.addWidget(self.normalize_combo)
        title.addWidget(self.mistakes_button)
        right.addLayout(title)
        right.addWidget(self._build_threshold_row())
        right.addWidget(self.matrix, 1)
        cl.addLayout(right, 3)
        self.curves = CurvesPanel()
        self.curves.setObjectName("curvesPanel")
        self.class_tabs = QTabWidget()
        self.class_tabs.addTab(classification, "Classes and confusion")
        self.class_tabs.addTab(self.curves, "ROC, precision-recall, reliability")
        self.importance = ImportancePanel(self)

    def _build_threshold_row(self) -> QWidget:
        """Two classes: where the second class starts, as a slider; the matrix, the table and
        the cards follow it live, and it is saved with the run (a moment after it stops
        moving) for Try it, predict, the exports and the report."""
        self.threshold_slider = QSlider(Qt.Orientation.Horizontal)
        self.threshold_slider.setObjectName("thresholdSlider")
        self.threshold_slider.setRange(1, 99)
        self.threshold_slider.setValue(50)
        self.threshold_slider.valueChanged.connect(lambda v: self.set_threshold(v / 100))
        self.threshold_label = QLabel("")
        self.threshold_note = QLabel("")
        self.threshold_note.setObjectName("thresholdNote")
        self.threshold_note.setWordWrap(True)
        mute(self.threshold_note)
        self._save_timer = QTimer(self)
        self._save_timer.setSingleShot(True)
        self._save_timer.setInterval(400)
        self._save_timer.timeout.connect(self.save_threshold)
        self.threshold_row = QWidget()
        tr = QVBoxLayout(self.threshold_row)
        tr.setContentsMargins(0, 0, 0, 0)
        slider_row = QHBoxLayout()
        slider_row.addWidget(self.threshold_label)
        slider_row.addWidget(self.threshold_slider, 1)
        tr.addLayout(slider_row)
        tr.addWidget(self.threshold_note)
        return self.threshold_row

    def _build_regression_view(self) -> QWidget:
        """Predicted against actual, residuals, and Largest errors."""
        self.scatter = ScatterPlotWidget()
        self.scatter.setObjectName("scatterPlot")
        self.residuals = ResidualsPanel()
        self.residuals.setObjectName("residualsPanel")
        self.errors_button = QPushButton("Largest errors…")
        self.errors_button.setObjectName("largestErrorsButton")
        self.errors_button.clicked.connect(self.show_largest_errors)
        regression = QWidget()
        rl = QVBoxLayout(regression)
        rl.setContentsMargins(0, 0, 0, 0)
        self.reg_tabs = QTabWidget()
        self.reg_tabs.addTab(self.scatter, "Predicted vs actual")
        self.reg_tabs.addTab(self.residuals, "Residuals")
        self.reg_importance = ImportancePanel(self)
        self.reg_tabs.setCornerWidget(self.errors_button)
        rl.addWidget(self.reg_tabs)
        return regression

    # -- runs -----------------------------------------------------------------------------------
    @Slot()
    def _fill_runs(self) -> None:
        self.run_combo.blockSignals(True)
        self.run_combo.clear()
        for i, record in enumerate(self.state.project.runs):
            metrics = ", ".join(f"{metric_label(k)} {v:.3f}" for k, v in record.metrics.items())
            self.run_combo.addItem(f"{record.title} · {record.status} · {metrics}", i)
            self.run_combo.setItemData(i, f"Folder: {record.path}", Qt.ItemDataRole.ToolTipRole)
        current = self.state.current_run
        if current is not None:
            for i in range(self.run_combo.count()):
                if self.state.project.runs[self.run_combo.itemData(i)].path == current.record.path:
                    self.run_combo.setCurrentIndex(i)
        self.run_combo.blockSignals(False)

    @Slot(int)
    def _on_run_chosen(self, index: int) -> None:
        record = self.state.project.runs[self.run_combo.itemData(index)]
        self.state.set_current_run(record)

    @Slot()
    def _on_current_run_changed(self) -> None:
        self.runner.cancel()  # an evaluation of the previous run must not land on this one
        self._fill_runs()
        current = self.state.table_run
        if current is None:
            self.show_evaluation(None)
            return
        if current.evaluation is not None:
            self.show_evaluation(current.evaluation)
        else:
            self.evaluate_current()

    @Slot()
    def evaluate_current(self) -> None:
        current = self.state.table_run
        if current is None:
            return
        split = self.split_combo.currentData() or "test"
        if split == "file":
            self._start(str(current.path), self._file)
            return
        if current.evaluation is not None and split == "test":
            self.show_evaluation(current.evaluation)
            return
        self._start(str(current.path), None, split)

    @Slot()
    def _on_file_clicked(self) -> None:
        if self.state.current_run is None:
            return
        path = dialogs.open_file(self, "Evaluate on a labelled file",
                         "Tables (*.csv *.tsv *.txt);;All files (*)")
        if path:
            self._file = path
            self._start(str(self.state.current_run.path), path)

    def _name_source(self, source: str) -> None:
        """The "On:" box names what the numbers are on: a split, or the file just evaluated
        (choosing it again evaluates that file again)."""
        split = {"test split": "test", "validation split": "val"}.get(source)
        with QSignalBlocker(self.split_combo):
            if self.split_combo.count() > 2:
                self.split_combo.removeItem(2)
            if split is None:
                self.split_combo.addItem(f"File: {source}", "file")
                self.split_combo.setCurrentIndex(2)
            else:
                self.split_combo.setCurrentIndex(self.split_combo.findData(split))

    def _start(self, run_path: str, data: str | None, split: str = "test") -> None:
        self.banner.show_message("Evaluating …", "info")
        self.runner.start(FunctionWorker(_evaluate, run_path, data, split))

    @Slot(object)
    def _on_evaluated(self, result: tuple[str, Evaluation]) -> None:
        run_path, evaluation = result
        current = self.state.current_run
        if current is None or str(current.path) != run_path:
            return
        if evaluation.source == "test split":
            current.evaluation = evaluation
        self.show_evaluation(evaluation)

    @Slot(str)
    def _on_errored(self, message: str) -> None:
        self.banner.show_message(message, "error")
        dialogs.show_error(self, "Could not evaluate", message)

    @staticmethod
    def _offer_importance(tabs: QTabWidget, panel: ImportancePanel, evaluation) -> None:
        """A "Feature importance" tab for table rows (images and texts have none)."""
        rows = evaluation.examples
        table = isinstance(rows, pd.DataFrame)
        index = tabs.indexOf(panel)
        if table and index < 0:
            tabs.addTab(panel, "Feature importance")
        elif not table and index >= 0:
            tabs.removeTab(index)
        panel.reset()

    def _show_classes(self, pred, m: dict, cm, r) -> None:
        """Cards, per-class table, matrix and the metrics line for predictions *pred*."""
        ev = self.evaluation
        self._pred = pred
        self.cards[0].set_value(f"{100 * m['accuracy']:.1f}%", "accuracy")
        self.cards[1].set_value(f"{m['f1_macro']:.3f}", "macro F1")
        self.cards[2].set_value(f"{m['precision_macro']:.3f} / {m['recall_macro']:.3f}",
                                "macro precision / recall")
        self.class_model.set_rows([
            [name, float(r.precision[i]), float(r.recall[i]), float(r.f1[i]),
             int(r.support[i])] for i, name in enumerate(ev.class_names)])
        self.class_model.row_colors = {i: QColor(253, 236, 234)
                                       for i in range(len(ev.class_names))
                                       if r.support[i] and r.f1[i] < 0.8}
        self.matrix.set_matrix(cm, ev.class_names)
        self.more_metrics.setText(describe_more(m))
        self._show_baseline(dataclasses.replace(ev, y_pred=pred))

    def _show_baseline(self, evaluation: Evaluation) -> None:
        """The rare-class and baseline sentences under the cards; amber when the model is
        barely better than ignoring its inputs."""
        base = baseline_of(evaluation)
        self.baseline_note.show_message(" ".join(headline_notes(evaluation)),
                                        "warning" if (base is not None and base.close)
                                        or never_predicted(evaluation) else "info")
        classic = yardstick.beside(evaluation)
        if classic is None:
            self.yardstick_note.clear_message()
        else:
            behind = classic.gap <= -yardstick.LEVEL
            self.yardstick_note.show_message(classic.text(), "warning" if behind else "info")

    def _label_threshold(self, threshold: float) -> None:
        ev = self.evaluation
        self.threshold_label.setText(f"Say <b>{ev.class_names[1]}</b> from a probability of "
                                     f"<b>{threshold:.2f}</b>:")

    def set_threshold(self, threshold: float) -> None:
        """Two classes: predict the second one from *threshold* on; the matrix, per-class
        table, metrics and the curves' operating point follow at once, and the threshold is
        saved with the run a moment later (:meth:`save_threshold`)."""
        ev = self.evaluation
        if ev is None or ev.task != "classification" or len(ev.class_names) != 2:
            return
        self._apply_threshold(threshold)
        self.threshold_note.setText("Saving …")
        self._save_timer.start()

    def _apply_threshold(self, threshold: float) -> None:
        """Show the evaluation decided at *threshold* (the run's cached one follows)."""
        ev = rethreshold(self.evaluation, threshold)
        self.evaluation = ev
        current = self.state.current_run
        if current is not None and ev.source == "test split" and \
                str(current.path) == self._threshold_run:
            current.evaluation = ev
        self._label_threshold(threshold)
        self._show_classes(ev.y_pred, ev.metrics, ev.confusion, ev.report)
        self.curves.set_threshold(threshold)

    @Slot()
    def save_threshold(self) -> None:
        """Save the shown threshold with its run, so that Try it, predict, every export, the
        package and the report decide there too."""
        from ml.errors import TrainDeskError
        from ml.runs.folder import RunFolder

        self._save_timer.stop()
        ev = self.evaluation
        if ev is None or ev.threshold is None or not self._threshold_run:
            return
        try:
            saved = RunFolder.open(self._threshold_run).set_threshold(ev.threshold)
        except TrainDeskError as exc:
            self.threshold_note.setText("")
            self.banner.show_message(f"The threshold was not saved: {exc}", "error")
            return
        self._note_threshold(saved)
        self.state.threshold_changed.emit(self._threshold_run, saved)

    def _note_threshold(self, threshold: float) -> None:
        self.threshold_note.setText(f"Saved with the run: Try it, predict, the exports, the "
                                    f"package and the report also decide at "
                                    f"{threshold:.2f}.")

    def _saved_threshold(self, evaluation: Evaluation) -> float:
        """The run's saved threshold (an evaluation made before it was saved, e.g. at the end
        of a resumed training, may be at another)."""
        from ml.errors import TrainDeskError
        from ml.runs.folder import DEFAULT_THRESHOLD, RunFolder, check_threshold

        try:  # run.json and config.json only: this runs on the GUI thread
            saved = (RunFolder.open(self._threshold_run).settings().get("decision") or {}).get(
                "threshold")
            return DEFAULT_THRESHOLD if saved is None else check_threshold(saved)
        except TrainDeskError:
            return evaluation.threshold

    def hideEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if self._save_timer.isActive():  # leaving the page: a threshold just chosen is kept
            self.save_threshold()
        super().hideEvent(event)

    # -- examples -------------------------------------------------------------------------------
    @Slot(int, int)
    def show_cell(self, true_class: int, predicted: int):
        """The examples of one confusion-matrix cell, the model's most confident first."""
        from ml.evaluation.metrics import cell_examples

        from ..widgets.examples import ExamplesDialog

        ev = self.evaluation
        if ev is None or ev.task != "classification":
            return None
        rows = cell_examples(ev.y_true, ev.proba, true_class, predicted, pred=self._pred)
        names = ev.class_names
        what = (f"{names[true_class]} recognised" if true_class == predicted else
                f"{names[true_class]} taken for {names[predicted]}")
        dialog = ExamplesDialog(ev, rows, f"{what}: {len(rows)} example(s)", self)
        dialog.explain_requested.connect(self.explain_example)
        dialog.open()
        return dialog

    @Slot()
    def show_mistakes(self):
        """The wrong predictions the model was surest of."""
        from ml.evaluation.metrics import most_confident_mistakes

        from ..widgets.examples import ExamplesDialog

        ev = self.evaluation
        if ev is None or ev.task != "classification":
            return None
        rows = most_confident_mistakes(ev.y_true, ev.proba, limit=200)
        dialog = ExamplesDialog(ev, rows, f"The most confident mistakes ({len(rows)})", self)
        dialog.explain_requested.connect(self.explain_example)
        dialog.open()
        return dialog

    @Slot()
    def show_largest_errors(self):
        """Regression: the rows the model missed by most."""
        from ml.evaluation.metrics import largest_errors

        from ..widgets.examples import ExamplesDialog

        ev = self.evaluation
        if ev is None or ev.task != "regression":
            return None
        rows = largest_errors(ev.y_true, ev.y_pred, limit=200)
        dialog = ExamplesDialog(ev, rows, f"The largest errors ({len(rows)})", self,
                                order="largest error first")
        dialog.explain_requested.connect(self.explain_example)
        dialog.open()
        return dialog

    # -- showing --------------------------------------------------------------------------------
    @Slot()
    def open_compare(self):
        """The Compare runs dialog (the current run ticked)."""
        from ..widgets.compare_dialog import CompareDialog

        dialog = CompareDialog(self.state, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    @Slot(int)
    def explain_example(self, row: int) -> None:
        """Open evaluated example *row* in the Try it tab (see ExamplesDialog)."""
        if self.evaluation is not None:
            self.show_try_it().explain_example(self.evaluation, row)

    def show_try_it(self) -> TryItPanel:
        """Switch to the Try it tab (its model loads in the background)."""
        self.page_tabs.setCurrentWidget(self.tryit)
        return self.tryit

    def _sync_tryit(self) -> None:
        """The Try it tab follows the current run; its model is loaded when the tab shows."""
        if self.page_tabs.currentWidget() is not self.tryit:
            return
        current = self.state.current_run
        examples = self.evaluation.examples if self.evaluation is not None else None
        self.tryit.set_run(str(current.path) if current is not None and current.record.status
                           != "running" else None, examples)

    def show_evaluation(self, evaluation: Evaluation | None) -> None:
        if self._save_timer.isActive():  # the threshold just chosen for the evaluation shown
            self.save_threshold()
        self.evaluation = evaluation
        self.banner.clear_message()
        if evaluation is not None:
            self._name_source(evaluation.source)
        self._sync_tryit()
        if evaluation is None:
            for card in self.cards:
                card.set_value("-", "")
            self.source_label.setText("Train a model to see how well it does.")
            self.class_model.set_rows([])
            self.matrix.set_matrix([[]], [])
            self.more_metrics.setText("")
            self.baseline_note.clear_message()
            self.yardstick_note.clear_message()
            return
        current = self.state.current_run
        run_name = html.escape(current.record.title) if current is not None else ""
        # What the rows were used for, as ml found it: another file may hold training rows.
        self.source_label.setText(f"<b>{run_name}</b> on the <b>{html.escape(evaluation.source)}"
                                  f"</b>: {html.escape(evaluation.rows_text)}")
        m = evaluation.metrics
        if evaluation.task == "classification":
            self.views.setCurrentIndex(0)
            binary = len(evaluation.class_names) == 2
            self.threshold_row.setVisible(binary)
            self._threshold_run = str(current.path) if current is not None else ""
            self._show_classes(evaluation.y_pred, m, evaluation.confusion, evaluation.report)
            self.mistakes_button.setEnabled(evaluation.examples is not None)
            self.curves.set_evaluation(evaluation)
            if binary:
                threshold = self._saved_threshold(evaluation)
                with QSignalBlocker(self.threshold_slider):
                    self.threshold_slider.setValue(round(100 * threshold))
                if threshold != evaluation.threshold:
                    self._apply_threshold(threshold)
                self._label_threshold(threshold)
                self._note_threshold(threshold)
            self._offer_importance(self.class_tabs, self.importance, evaluation)
        else:
            self.more_metrics.setText(describe_more(m))
            self.residuals.set_evaluation(evaluation)
            self.errors_button.setEnabled(evaluation.examples is not None)
            self._offer_importance(self.reg_tabs, self.reg_importance, evaluation)
            self.views.setCurrentIndex(1)
            self.cards[0].set_value(f"{m['mae']:.4g}", "mean absolute error")
            self.cards[1].set_value(f"{m['rmse']:.4g}", "root mean squared error")
            self.cards[2].set_value(f"{m['r2']:.3f}", "R² (1 is perfect)")
            self._show_baseline(evaluation)
            self.scatter.set_points(evaluation.y_true, evaluation.y_pred)
