"""The run history: a sortable table of the project's runs, their curves overlaid, a diff of
two runs' settings, re-run, clone-and-edit and delete."""

from __future__ import annotations

import json
import math

import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ml.errors import TrainDeskError
from ml.labels import group_label, model_label, setting_label
from ml.runs.folder import RunFolder, config_diff, delete_run, project_from_config, read_history
from ml.runs.project import Project, RunRecord

from .. import dialogs
from ..theme import mute
from .common import format_duration
from .plots import style_plot

#: Distinct colours for overlaid runs (Tableau 10).
PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
           (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]


class _SortItem(QTableWidgetItem):
    """A cell that sorts by a number (or text) of its own, not by what it shows."""

    def __init__(self, text: str, key):
        super().__init__(text)
        self.key = key
        self.setFlags(self.flags() & ~Qt.ItemFlag.ItemIsEditable)

    def __lt__(self, other):  # noqa: D105 - Qt sorting
        a, b = self.key, getattr(other, "key", None)
        if isinstance(a, (int, float)) and isinstance(b, (int, float)):
            return (math.isnan(a), a) < (math.isnan(b), b)  # blanks last
        return str(a) < str(b)


def read_config(record: RunRecord) -> dict:
    """A run's settings (its ``config.json`` with later changes, read by its
    :class:`~ml.runs.folder.RunFolder`).

    Raises
    ------
    TrainDeskError
        If the folder is missing, damaged or from a newer TrainDesk.
    """
    try:
        return RunFolder.open(record.path).settings()
    except TrainDeskError as exc:
        raise TrainDeskError(f"The settings of run {record.id} cannot be read: {exc}") from None


class RunsPanel(QWidget):
    """Every run of the project; select runs to overlay their curves.

    Signals
    -------
    rerun_requested(Project)
        Train again with exactly this run's settings.
    clone_requested(Project)
        Put this run's settings into the project to edit them.
    """

    rerun_requested = Signal(object)
    clone_requested = Signal(object)
    resume_requested = Signal(object)  # RunRecord

    COLUMNS = ("Run", "Group", "Status", "Model", "Test", "Best validation", "Epochs", "Time",
               "Created")

    def __init__(self, state, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.table = QTableWidget(0, len(self.COLUMNS))
        self.table.setObjectName("runsTable")
        self.table.setTabKeyNavigation(False)  # Tab leaves the table; arrows move in it
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setSortingEnabled(True)
        self.table.verticalHeader().hide()
        self.table.setAlternatingRowColors(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._on_selection)
        self.table.doubleClicked.connect(lambda _: self._open_selected())
        # Double-click opens a run; its name is edited with Rename (or F2), then typed in place.
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.EditKeyPressed)
        self.table.itemChanged.connect(self._on_item_changed)
        self._filling = False
        buttons = self._build_buttons()

        self.loss_plot = pg.PlotWidget()
        self.metric_plot = pg.PlotWidget()
        style_plot(self.loss_plot.getPlotItem(), "Validation loss", "epoch", "loss")
        style_plot(self.metric_plot.getPlotItem(), "Validation metric", "epoch", "")
        self.loss_legend = self.loss_plot.getPlotItem().addLegend(offset=(-10, 10),
                                                                  labelTextSize="10pt")
        plots = QWidget()
        row = QHBoxLayout(plots)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.loss_plot)
        row.addWidget(self.metric_plot)
        splitter = QSplitter(Qt.Orientation.Vertical)
        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.addWidget(self.table, 1)
        top_layout.addLayout(buttons)
        splitter.addWidget(top)
        splitter.addWidget(plots)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(splitter)
        self.overlaid: list[str] = []  # run ids on the plots, in order
        self.active_path = ""  # the run training now (its "running" is true)
        state.runs_changed.connect(self.refresh)
        state.project_replaced.connect(self.refresh)
        self.refresh()

    def _build_buttons(self) -> QHBoxLayout:
        """The hint and the actions on the selected runs, in a row under the table."""
        self.compare_button = QPushButton("Compare settings")
        self.compare_button.setToolTip("Select two runs: the settings they differ in")
        self.compare_button.clicked.connect(self.compare_selected)
        self.resume_button = QPushButton("Resume")
        self.resume_button.setObjectName("resumeRunButton")
        self.resume_button.setToolTip("Continue a stopped, failed or interrupted run from its "
                                      "last completed epoch")
        self.resume_button.clicked.connect(self._resume)
        self.rerun_button = QPushButton("Re-run")
        self.rerun_button.setToolTip("Train again with exactly this run's settings")
        self.rerun_button.clicked.connect(self._rerun)
        self.clone_button = QPushButton("Clone and edit")
        self.clone_button.setToolTip("Put this run's settings into the project and open the "
                                     "Model page to change them")
        self.clone_button.clicked.connect(self._clone)
        self.open_button = QPushButton("Evaluate")
        self.open_button.setToolTip("Make this run the one the Evaluate and Export pages show")
        self.open_button.clicked.connect(self._open_selected)
        self.rename_button = QPushButton("Rename")
        self.rename_button.setObjectName("renameRunButton")
        self.rename_button.setToolTip("Give the run a name of your own (F2); it is kept in the "
                                      "run folder")
        self.rename_button.clicked.connect(self.rename_selected)
        self.delete_button = QPushButton("Delete…")
        self.delete_button.setObjectName("deleteRunsButton")
        self.delete_button.clicked.connect(self.delete_selected)
        buttons = QHBoxLayout()
        self.hint = QLabel("Select runs to overlay their curves; two to compare settings.")
        self.hint.setWordWrap(True)  # beside seven buttons it would be cut off at 1280 px
        mute(self.hint)
        buttons.addWidget(self.hint, 1)
        for b in (self.open_button, self.rename_button, self.resume_button, self.compare_button,
                  self.rerun_button, self.clone_button, self.delete_button):
            buttons.addWidget(b)
        return buttons

    # -- table ----------------------------------------------------------------------------------
    @Slot()
    def refresh(self) -> None:
        """Fill the table from the project's runs (keeping the selection)."""
        chosen = {r.path for r in self.selected_records()}
        table = self.table
        self._filling = True
        table.setSortingEnabled(False)
        table.setRowCount(0)
        for record in self.state.project.runs:
            r = table.rowCount()
            table.insertRow(r)
            classification = record.task == "classification"
            test = record.metrics.get("accuracy" if classification else "mae", math.nan)
            history = read_history(record.path)
            key = "val_accuracy" if classification else "val_mae"
            vals = [h[key] for h in history if key in h]
            best = (max(vals) if classification else min(vals)) if vals else math.nan
            epochs = record.epochs or len(history)
            seconds = record.seconds or (history[-1].get("seconds", math.nan) if history
                                         else math.nan)
            cells = [
                _SortItem(record.title, record.title.lower()),
                _SortItem(group_label(record.group), record.group),
                _SortItem(self.status_of(record), self.status_of(record)),
                _SortItem(model_label(record.model), record.model),
                _SortItem(_metric_text(test, classification), test),
                _SortItem(_metric_text(best, classification), best),
                _SortItem(str(epochs), epochs),
                _SortItem(format_duration(seconds) if math.isfinite(seconds) else "",
                          seconds),
                _SortItem(record.created.replace("T", " ")[:19], record.created)]
            cells[0].setData(Qt.ItemDataRole.UserRole, record.path)
            cells[0].setFlags(cells[0].flags() | Qt.ItemFlag.ItemIsEditable)  # the name
            cells[0].setToolTip(f"{record.title}\nFolder: {record.path}")
            for c, item in enumerate(cells):
                if c >= 4:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight
                                          | Qt.AlignmentFlag.AlignVCenter)
                table.setItem(r, c, item)
        table.setSortingEnabled(True)
        self._filling = False
        for r in range(table.rowCount()):
            if table.item(r, 0).data(Qt.ItemDataRole.UserRole) in chosen:
                table.selectRow(r)
        self._on_selection()

    def status_of(self, record: RunRecord) -> str:
        """A run listed as running that is not training now was cut off (a crash or a kill)."""
        if record.status == "running" and record.path != self.active_path:
            return "interrupted"
        return record.status

    def resumable(self, record: RunRecord) -> bool:
        return (self.status_of(record) in ("stopped", "failed", "interrupted")
                and RunFolder(record.path).has_checkpoint)

    def selected_records(self) -> list[RunRecord]:
        rows = sorted({i.row() for i in self.table.selectionModel().selectedRows()})
        by_path = {r.path: r for r in self.state.project.runs}
        out = []
        for r in rows:
            item = self.table.item(r, 0)
            record = by_path.get(item.data(Qt.ItemDataRole.UserRole)) if item else None
            if record is not None:
                out.append(record)
        return out

    def select_paths(self, paths: list[str]) -> None:
        """Select the rows of these runs (tests and the search's "show trials")."""
        self.table.clearSelection()
        mode = self.table.selectionMode()
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.MultiSelection)
        for r in range(self.table.rowCount()):
            if self.table.item(r, 0).data(Qt.ItemDataRole.UserRole) in paths:
                self.table.selectRow(r)
        self.table.setSelectionMode(mode)

    @Slot()
    def _on_selection(self) -> None:
        records = self.selected_records()
        one = len(records) == 1
        busy = self.state.training
        self.open_button.setEnabled(one and RunFolder(records[0].path).has_model)
        self.rename_button.setEnabled(one)
        self.resume_button.setEnabled(one and not busy and self.resumable(records[0]))
        self.compare_button.setEnabled(len(records) == 2)
        self.rerun_button.setEnabled(one and not busy)
        self.clone_button.setEnabled(one and not busy)
        self.delete_button.setEnabled(bool(records) and not busy)
        self._overlay(records)

    def _overlay(self, records: list[RunRecord]) -> None:
        """Draw the validation loss and metric of *records*, one colour per run."""
        lp, mp = self.loss_plot.getPlotItem(), self.metric_plot.getPlotItem()
        lp.clear()
        mp.clear()
        self.loss_legend.clear()
        self.overlaid = []
        tasks = {r.task for r in records}
        # Nothing (or classes) selected: accuracy; MAE only when every run predicts a number.
        metric = "mae" if tasks == {"regression"} else "accuracy"
        style_plot(mp, "Validation accuracy" if metric == "accuracy" else
                   "Validation MAE", "epoch", "accuracy (%)" if metric == "accuracy" else
                   "MAE (target units)")
        for i, record in enumerate(records[:len(PALETTE) * 2]):
            history = read_history(record.path)
            colour = PALETTE[i % len(PALETTE)]
            pen = pg.mkPen(colour, width=3,
                           style=Qt.PenStyle.SolidLine if i < len(PALETTE)
                           else Qt.PenStyle.DashLine)
            x = [h["epoch"] for h in history if "val_loss" in h]
            lp.plot(x, [h["val_loss"] for h in history if "val_loss" in h], pen=pen,
                    name=record.title)
            key = "val_" + metric
            scale = 100.0 if metric == "accuracy" else 1.0
            mx = [h["epoch"] for h in history if key in h]
            mp.plot(mx, [scale * h[key] for h in history if key in h], pen=pen)
            self.overlaid.append(record.id)

    # -- actions --------------------------------------------------------------------------------
    def _one(self) -> RunRecord | None:
        records = self.selected_records()
        return records[0] if len(records) == 1 else None

    def _settings(self, record: RunRecord) -> Project | None:
        try:
            return project_from_config(read_config(record), self.state.project.name)
        except TrainDeskError as exc:
            dialogs.show_error(self, "Run settings", exc)
            return None

    @Slot()
    def _open_selected(self) -> None:
        record = self._one()
        if record is not None and RunFolder(record.path).has_model:
            self.state.set_current_run(record)

    @Slot()
    def _resume(self) -> None:
        record = self._one()
        if record is not None and not self.state.training and self.resumable(record):
            self.resume_requested.emit(record)

    @Slot()
    def _rerun(self) -> None:
        record = self._one()
        settings = self._settings(record) if record else None
        if settings is not None:
            self.rerun_requested.emit(settings)

    @Slot()
    def _clone(self) -> None:
        record = self._one()
        settings = self._settings(record) if record else None
        if settings is not None:
            self.state.use_settings(settings)
            self.clone_requested.emit(settings)

    @Slot()
    def compare_selected(self) -> QDialog | None:
        """Show the settings two selected runs differ in (returns the dialog)."""
        records = self.selected_records()
        if len(records) != 2:
            return None
        try:
            a, b = (read_config(r) for r in records)
        except TrainDeskError as exc:
            dialogs.show_error(self, "Compare settings", exc)
            return None
        diff = config_diff(a, b)
        dialog = QDialog(self)
        dialog.setObjectName("compareDialog")
        dialog.setWindowTitle("Compare run settings")
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        layout = QVBoxLayout(dialog)
        if not diff:
            layout.addWidget(QLabel("The two runs have the same settings."))
        table = QTableWidget(len(diff), 3)
        table.setObjectName("diffTable")
        table.setTabKeyNavigation(False)  # Tab leaves the table; arrows move in it
        table.setHorizontalHeaderLabels(["Setting", records[0].title, records[1].title])
        table.verticalHeader().hide()
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        for r, (key, va, vb) in enumerate(diff):
            for c, value in enumerate((setting_label(key), _show(va), _show(vb))):
                table.setItem(r, c, QTableWidgetItem(value))
        table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        table.setVisible(bool(diff))
        layout.addWidget(table)
        box = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        box.rejected.connect(dialog.reject)
        layout.addWidget(box)
        dialog.resize(720, min(600, 120 + 30 * len(diff)))
        dialog.open()
        return dialog

    @Slot()
    def rename_selected(self) -> None:
        """Start typing a new name for the selected run, in its row."""
        record = self._one()
        if record is None:
            return
        for r in range(self.table.rowCount()):
            item = self.table.item(r, 0)
            if item.data(Qt.ItemDataRole.UserRole) == record.path:
                self.table.setCurrentItem(item)
                self.table.editItem(item)
                return

    @Slot(QTableWidgetItem)
    def _on_item_changed(self, item: QTableWidgetItem) -> None:
        """A name typed in the Run column: stored in the run folder and the project."""
        if self._filling or item.column() != 0:
            return
        # Later, not inside the table's own signal: renaming refills the table.
        path, text = item.data(Qt.ItemDataRole.UserRole), item.text()
        QTimer.singleShot(0, lambda: self._rename(path, text))

    def _rename(self, path: str, text: str) -> None:
        record = next((r for r in self.state.project.runs if r.path == path), None)
        if record is None or " ".join(text.split()) == record.title:
            self.refresh()  # shows the name as stored (spaces tidied)
            return
        try:
            self.state.rename_run(record, text)
        except TrainDeskError as exc:
            dialogs.show_error(self, "Rename the run", exc)
            self.refresh()  # back to the name it has

    @Slot()
    def delete_selected(self) -> None:
        """Delete the selected runs' folders (after asking) and drop them from the project."""
        records = self.selected_records()
        if not records or self.state.training:
            return
        names = ", ".join(r.title for r in records[:5]) + (
            f" and {len(records) - 5} more" if len(records) > 5 else "")
        if not dialogs.ask_yes_no(self, "Delete runs",
                                  f"Delete {len(records)} run(s) ({names}) with their models "
                                  f"and checkpoints? This cannot be undone."):
            return
        deleted, errors = [], []
        for record in records:
            try:
                delete_run(record.path)
                deleted.append(record)
            except TrainDeskError as exc:
                errors.append(str(exc))
        if deleted:
            self.state.remove_runs(deleted)
        if errors:
            dialogs.show_error(self, "Delete runs", "\n".join(errors))


def _metric_text(value: float, classification: bool) -> str:
    if not math.isfinite(value):
        return ""
    return f"{100 * value:.1f}%" if classification else f"{value:.4g}"


def _show(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)
