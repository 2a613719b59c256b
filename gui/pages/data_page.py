"""Step 1 - Data: pick a sample or a CSV, check the columns, choose the target and the split."""

from __future__ import annotations

import numpy as np
import pandas as pd
from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout,
                               QGroupBox, QHBoxLayout, QHeaderView, QLabel, QListWidget,
                               QListWidgetItem, QPushButton, QSpinBox, QSplitter, QTableView,
                               QTabWidget, QVBoxLayout, QWidget)

from ml.data.dataset import Dataset, load_dataset
from ml.data.samples import list_samples
from ml.data.split import split_sizes
from ml.data.tabular import to_numeric
from ml.project import COLUMN_ROLES, COLUMN_TYPES
from workers.base import FunctionWorker, TaskRunner

from .. import dialogs
from ..state import ProjectState
from ..widgets.common import MessageBanner, heading
from ..widgets.delegates import ChoiceDelegate
from ..widgets.plots import BarChartWidget
from ..widgets.table_models import DataFrameModel, RecordsModel

TASK_CHOICES = (("Detect from target", None), ("Classification", "classification"),
                ("Regression", "regression"))


class DataPage(QWidget):
    """Choose the data, see it, and decide what to predict."""

    def __init__(self, state: ProjectState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.loader = TaskRunner(self)
        self.loader.finished.connect(self._on_dataset_loaded)
        self.loader.errored.connect(self._on_load_errored)
        self._updating = False

        # -- left: where the data comes from ---------------------------------------------------
        self.sample_list = QListWidget()
        self.sample_list.setObjectName("sampleList")
        self.sample_list.setWordWrap(True)
        self.sample_list.setSpacing(2)
        for info in list_samples():
            item = QListWidgetItem(f"{info.title}\n{info.task} · {info.kind}")
            item.setData(Qt.ItemDataRole.UserRole, info.source)
            item.setToolTip(info.description)
            self.sample_list.addItem(item)
        self.sample_list.itemActivated.connect(self._on_sample_activated)
        self.sample_list.itemClicked.connect(self._on_sample_activated)
        self.open_button = QPushButton("Open CSV file…")
        self.open_button.setObjectName("openCsvButton")
        self.open_button.clicked.connect(self._on_open_clicked)
        self.loading_label = QLabel("")
        self.loading_label.setStyleSheet("color: #555;")
        source_box = QGroupBox("Sample datasets (built in, offline)")
        sb = QVBoxLayout(source_box)
        sb.addWidget(self.sample_list)
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(source_box, 1)
        ll.addWidget(QLabel("Or your own table:"))
        ll.addWidget(self.open_button)
        ll.addWidget(self.loading_label)
        left.setMinimumWidth(240)
        left.setMaximumWidth(340)

        # -- right: what is in it -------------------------------------------------------------
        self.title_label = heading("No data yet")
        self.subtitle_label = QLabel("Pick a sample dataset on the left, or open a CSV file.")
        self.subtitle_label.setWordWrap(True)
        self.error_banner = MessageBanner()
        self.error_banner.setObjectName("dataError")
        self.warning_banner = MessageBanner()
        self.warning_banner.setObjectName("dataWarnings")

        self.preview_model = DataFrameModel()
        self.preview = QTableView()
        self.preview.setObjectName("previewTable")
        self.preview.setModel(self.preview_model)
        self.preview.setAlternatingRowColors(True)
        self.preview.horizontalHeader().setDefaultSectionSize(110)
        self.preview.verticalHeader().setDefaultSectionSize(22)

        self.columns_model = RecordsModel(["Column", "Type", "Role", "Missing", "Distinct",
                                           "Example"])
        self.columns_model.editors = {1: (COLUMN_TYPES, self._on_type_edited),
                                      2: (COLUMN_ROLES, self._on_role_edited)}
        self.columns_view = QTableView()
        self.columns_view.setObjectName("columnsTable")
        self.columns_view.setModel(self.columns_model)
        self.columns_view.setItemDelegate(ChoiceDelegate(self.columns_view))
        self.columns_view.setEditTriggers(QAbstractItemView.EditTrigger.AllEditTriggers)
        self.columns_view.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.ResizeToContents)
        self.columns_view.horizontalHeader().setStretchLastSection(True)
        self.columns_view.verticalHeader().hide()

        self.tabs = QTabWidget()
        self.tabs.addTab(self.preview, "Preview")
        self.tabs.addTab(self.columns_view, "Columns (types and roles)")

        # -- target, task, split, balance ---------------------------------------------------
        self.target_combo = QComboBox()
        self.target_combo.setObjectName("targetCombo")
        self.target_combo.setMinimumContentsLength(10)
        self.target_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.target_combo.currentTextChanged.connect(self._on_target_changed)
        self.task_combo = QComboBox()
        self.task_combo.setObjectName("taskCombo")
        for label, value in TASK_CHOICES:
            self.task_combo.addItem(label, value)
        self.task_combo.currentIndexChanged.connect(self._on_task_changed)
        self.task_label = QLabel("")
        self.task_label.setWordWrap(True)
        target_box = QGroupBox("What to predict")
        tf = QFormLayout(target_box)
        tf.addRow("Target column:", self.target_combo)
        tf.addRow("Task:", self.task_combo)
        tf.addRow("", self.task_label)

        self.val_spin = self._percent_spin(15)
        self.test_spin = self._percent_spin(15)
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.stratify_check = QCheckBox("Keep class shares in every part (stratified)")
        self.stratify_check.setChecked(True)
        for w in (self.val_spin, self.test_spin, self.seed_spin):
            w.valueChanged.connect(self._on_split_changed)
        self.stratify_check.toggled.connect(self._on_split_changed)
        self.split_label = QLabel("")
        self.split_label.setWordWrap(True)
        split_box = QGroupBox("Train / validation / test split")
        sf = QFormLayout(split_box)
        sf.addRow("Validation share:", self.val_spin)
        sf.addRow("Test share:", self.test_spin)
        sf.addRow("Random seed:", self.seed_spin)
        sf.addRow(self.stratify_check)
        sf.addRow(self.split_label)

        self.balance_chart = BarChartWidget()
        self.balance_chart.setObjectName("balanceChart")

        side = QWidget()
        side.setObjectName("dataSidePanel")
        sl = QVBoxLayout(side)
        sl.setContentsMargins(0, 0, 0, 0)
        sl.addWidget(target_box)
        sl.addWidget(split_box)
        sl.addWidget(self.balance_chart, 10)
        sl.addStretch(1)  # keeps the boxes compact while the chart is hidden
        side.setMinimumWidth(330)
        side.setMaximumWidth(420)

        body = QHBoxLayout()
        body.addWidget(self.tabs, 1)
        body.addWidget(side)

        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(self.title_label)
        rl.addWidget(self.subtitle_label)
        rl.addWidget(self.error_banner)
        rl.addWidget(self.warning_banner)
        rl.addLayout(body, 1)

        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(1, 1)
        splitter.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.addWidget(splitter)

        state.dataset_changed.connect(self._on_dataset_changed)
        state.data_config_changed.connect(self._on_config_changed)
        state.project_replaced.connect(self._on_project_replaced)
        self._on_dataset_changed()

    @staticmethod
    def _percent_spin(value: float) -> QDoubleSpinBox:
        spin = QDoubleSpinBox()
        spin.setRange(1, 49)
        spin.setDecimals(0)
        spin.setSuffix(" %")
        spin.setValue(value)
        return spin

    # -- loading --------------------------------------------------------------------------------
    def load_source(self, source: str) -> None:
        """Load ``sample:NAME`` or a CSV path in the background."""
        self.loading_label.setText(f"Loading {source} …")
        self.open_button.setEnabled(False)
        self.loader.start(FunctionWorker(load_dataset, source))

    @Slot()
    def _on_project_replaced(self) -> None:
        # A file still loading belongs to the old project; it must not land in the new one.
        self.loader.cancel()
        self.loading_label.setText("")
        self.open_button.setEnabled(True)
        self._on_config_changed()

    @Slot(QListWidgetItem)
    def _on_sample_activated(self, item: QListWidgetItem) -> None:
        source = item.data(Qt.ItemDataRole.UserRole)
        if self.state.dataset is None or self.state.dataset.source != source:
            self.load_source(source)

    @Slot()
    def _on_open_clicked(self) -> None:
        path = dialogs.open_file(self, "Open a data table",
                                 "Tables (*.csv *.tsv *.txt);;All files (*)")
        if path:
            self.load_source(path)

    @Slot(object)
    def _on_dataset_loaded(self, dataset: Dataset) -> None:
        self.loading_label.setText("")
        self.open_button.setEnabled(True)
        self.state.set_dataset(dataset)

    @Slot(str)
    def _on_load_errored(self, message: str) -> None:
        # The project and the dataset already loaded stay as they were.
        self.loading_label.setText("")
        self.open_button.setEnabled(True)
        dialogs.show_error(self, "Could not open the data", message)

    # -- showing --------------------------------------------------------------------------------
    @Slot()
    def _on_dataset_changed(self) -> None:
        dataset = self.state.dataset
        self._updating = True
        try:
            self.target_combo.clear()
            if dataset is None:
                self.preview_model.set_frame(pd.DataFrame())
                self.title_label.setText("No data yet")
                self.subtitle_label.setText("Pick a sample dataset on the left, or open a CSV "
                                            "file.")
            else:
                self._show_dataset(dataset)
        finally:
            self._updating = False
        self._on_config_changed()

    def _show_dataset(self, dataset: Dataset) -> None:
        self.preview_model.set_frame(dataset.frame)
        self.target_combo.addItems([str(c) for c in dataset.frame.columns])
        self.title_label.setText(dataset.name)
        what = dataset.sample.description if dataset.sample else dataset.source
        self.subtitle_label.setText(f"{dataset.n_rows:,} rows × {dataset.frame.shape[1]} "
                                    f"columns — {what}")
        for i in range(self.sample_list.count()):
            item = self.sample_list.item(i)
            item.setSelected(item.data(Qt.ItemDataRole.UserRole) == dataset.source)

    @Slot()
    def _on_config_changed(self) -> None:
        state, data = self.state, self.state.project.data
        self._updating = True
        try:
            self.val_spin.setValue(round(data.split.val_fraction * 100))
            self.test_spin.setValue(round(data.split.test_fraction * 100))
            self.seed_spin.setValue(data.split.seed)
            self.stratify_check.setChecked(data.split.stratify)
            idx = [v for _, v in TASK_CHOICES].index(data.task)
            self.task_combo.setCurrentIndex(idx)
            if state.dataset is None:
                self.columns_model.set_rows([])
                self.error_banner.clear_message()
                self.warning_banner.clear_message()
                self.balance_chart.hide()
                return
            target = data.target or state.dataset.default_target
            self.target_combo.setCurrentText(target)
            self.preview_model.set_highlight(target)
        finally:
            self._updating = False
        summary = state.summary
        self.error_banner.show_message(state.data_error, "error")
        self.warning_banner.show_message(
            "\n".join(f"• {w}" for w in summary.warnings) if summary else "", "warning")
        rows = []
        for name, info in state.dataset.columns.items():
            kind = data.column_types.get(name, info.type)
            if summary is not None:
                role = summary.roles[name]
            else:
                role = "target" if name == target else data.column_roles.get(
                    name, "ignore" if kind == "text" else "feature")
            rows.append([name, kind, role, info.n_missing, info.n_unique, info.example[:40]])
        self.columns_model.set_rows(rows)
        if summary is None:
            self.task_label.setText("")
            self.split_label.setText("")
            self.balance_chart.hide()
            return
        self.balance_chart.show()
        detected = "detected" if data.task is None else "chosen"
        kind = f", {summary.kind} input" if summary.kind == "image" else ""
        self.task_label.setText(f"<b>{summary.task.capitalize()}</b> ({detected}{kind}), "
                                f"{len(summary.features)} features")
        stratified = summary.task == "classification" and data.split.stratify
        groups = list(summary.class_counts.values()) if stratified else [summary.n_rows]
        sizes = split_sizes(groups, data.split.val_fraction, data.split.test_fraction,
                            stratified)
        self.split_label.setText(f"{sizes['train']:,} train · {sizes['val']:,} validation · "
                                 f"{sizes['test']:,} test rows")
        if summary.task == "classification":
            self.balance_chart.set_bars(list(summary.class_counts),
                                        list(summary.class_counts.values()),
                                        f"Class balance ({len(summary.class_counts)} classes)")
        else:
            values = to_numeric(state.dataset.frame[summary.target]).to_numpy()
            self.balance_chart.set_histogram(values[np.isfinite(values)],
                                             f"Distribution of {summary.target}")

    # -- edits ----------------------------------------------------------------------------------
    @Slot(str)
    def _on_target_changed(self, name: str) -> None:
        if self._updating or not name or self.state.dataset is None:
            return
        self.state.update_data(target=name)

    @Slot(int)
    def _on_task_changed(self, index: int) -> None:
        if self._updating or self.state.dataset is None:
            return
        self.state.update_data(task=self.task_combo.itemData(index))

    @Slot()
    def _on_split_changed(self) -> None:
        if self._updating:
            return
        self.state.update_data(val_fraction=self.val_spin.value() / 100,
                               test_fraction=self.test_spin.value() / 100,
                               seed=self.seed_spin.value(),
                               stratify=self.stratify_check.isChecked())

    def _on_type_edited(self, row: int, value: str) -> None:
        self.state.set_column(self.columns_model.rows[row][0], type=value)

    def _on_role_edited(self, row: int, value: str) -> None:
        self.state.set_column(self.columns_model.rows[row][0], role=value)

    def shutdown(self) -> None:
        self.loader.shutdown()
